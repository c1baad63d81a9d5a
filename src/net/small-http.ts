// A small, strict HTTP/1.1 server on node:net for the node's own management endpoints (/metrics, /health,
// the admin API): a few requests a minute from Prometheus and operators. node:http would cost the main
// thread ~6.6 MB of its ~100 MB idle budget (measured: 108.6 → 102.0 MB with it gone), and the data plane
// never uses this code. It speaks the subset such clients use — one request at a time per connection,
// keep-alive, Content-Length bodies — and refuses the rest with a status (chunked request bodies: 411; a
// pipelined second request simply waits its turn). Every buffer and wait is bounded: head size, header
// count, body size, head and idle timeouts, connections.
import { createServer, type Server, type Socket } from 'node:net';

export interface SmallHttpLimits {
  maxHeadBytes: number;
  maxHeaders: number;
  maxBodyBytes: number;
  /** From the first byte of a request to the end of its body. */
  requestTimeoutMs: number;
  /** Between requests on a kept-alive connection. */
  idleTimeoutMs: number;
  maxConnections: number;
}

export const SMALL_HTTP_DEFAULTS: SmallHttpLimits = {
  maxHeadBytes: 16 * 1024,
  maxHeaders: 64,
  maxBodyBytes: 1024 * 1024,
  requestTimeoutMs: 10_000,
  idleTimeoutMs: 5_000,
  maxConnections: 64,
};

export interface SmallRequest {
  method: string;
  /** The path without the query string, not decoded. */
  path: string;
  query: URLSearchParams;
  /** Lower-case names; repeated headers joined with ", " (RFC 9110 §5.3). */
  headers: ReadonlyMap<string, string>;
  body: Buffer;
  remoteAddress: string;
}

export interface SmallResponse {
  status: number;
  headers?: Readonly<Record<string, string>>;
  body?: string | Buffer;
}

export type SmallHandler = (req: SmallRequest) => SmallResponse | Promise<SmallResponse>;

/** How the server answers what it refuses itself (malformed, too large, too slow) and a handler that failed. */
export type SmallErrorResponder = (status: number, message: string) => SmallResponse;

const textError: SmallErrorResponder = (status, message) => ({ status, body: `${message}\n` });

const REASONS: Readonly<Record<number, string>> = {
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  411: 'Length Required',
  413: 'Content Too Large',
  422: 'Unprocessable Content',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

/** RFC 9110 token characters (method, header names). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field values: visible ASCII, obs-text, spaces and tabs; no CR, LF or NUL (request smuggling). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\/[\x21-\x7e]*) HTTP\/1\.([01])$/;
const HEAD_END = Buffer.from('\r\n\r\n');

class RequestError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

interface Head {
  method: string;
  target: string;
  minor: number;
  headers: Map<string, string>;
  contentLength: number;
}

/** Starts listening; resolves once bound (rejects with the listen error). Errors are plain text by default. */
export async function serveSmallHttp(
  listen: { host: string; port: number },
  handler: SmallHandler,
  limits: SmallHttpLimits = SMALL_HTTP_DEFAULTS,
  errorResponse: SmallErrorResponder = textError,
): Promise<Server> {
  const server = createServer({ noDelay: true }, (socket) => new Connection(socket, handler, limits, errorResponse));
  server.maxConnections = limits.maxConnections;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: listen.host, port: listen.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** One client connection: read a head, then its body, answer, repeat. */
class Connection {
  #buffer: Buffer = Buffer.alloc(0);
  #head: Head | null = null;
  #busy = false;
  #timer: NodeJS.Timeout;
  readonly #socket: Socket;
  readonly #handler: SmallHandler;
  readonly #limits: SmallHttpLimits;
  readonly #errorResponse: SmallErrorResponder;

  constructor(socket: Socket, handler: SmallHandler, limits: SmallHttpLimits, errorResponse: SmallErrorResponder) {
    this.#socket = socket;
    this.#handler = handler;
    this.#limits = limits;
    this.#errorResponse = errorResponse;
    this.#timer = setTimeout(() => this.#timeout(), limits.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => clearTimeout(this.#timer));
  }

  #onData(chunk: Buffer): void {
    // The first byte of a request starts its deadline; the idle wait before it is over.
    if (this.#buffer.length === 0 && !this.#busy && this.#head === null) this.#startTimer(this.#limits.requestTimeoutMs);
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    // A client racing ahead of our answers is held back by TCP, not by our memory.
    if (this.#buffer.length > this.#limits.maxHeadBytes + this.#limits.maxBodyBytes) this.#socket.pause();
    this.#advance();
  }

  #advance(): void {
    if (this.#busy) return;
    try {
      if (this.#head === null) {
        const end = this.#buffer.indexOf(HEAD_END);
        if (end === -1) {
          if (this.#buffer.length > this.#limits.maxHeadBytes) throw new RequestError(431, 'request head too large');
          return;
        }
        if (end + 4 > this.#limits.maxHeadBytes) throw new RequestError(431, 'request head too large');
        this.#head = parseHead(this.#buffer.subarray(0, end).toString('latin1'), this.#limits);
        this.#buffer = this.#buffer.subarray(end + 4);
      }
      const head = this.#head;
      if (this.#buffer.length < head.contentLength) return;
      const body = Buffer.from(this.#buffer.subarray(0, head.contentLength));
      this.#buffer = this.#buffer.subarray(head.contentLength);
      this.#head = null;
      this.#dispatch(head, body);
    } catch (err) {
      const status = err instanceof RequestError ? err.status : 400;
      this.#respond(this.#errorResponse(status, err instanceof Error ? err.message : 'bad request'), false);
    }
  }

  #startTimer(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#timeout(), ms);
  }

  #dispatch(head: Head, body: Buffer): void {
    this.#busy = true;
    const q = head.target.indexOf('?');
    const request: SmallRequest = {
      method: head.method,
      path: q === -1 ? head.target : head.target.slice(0, q),
      query: new URLSearchParams(q === -1 ? '' : head.target.slice(q + 1)),
      headers: head.headers,
      body,
      remoteAddress: this.#socket.remoteAddress ?? '',
    };
    const keepAlive = head.minor === 1 && head.headers.get('connection')?.toLowerCase() !== 'close';
    let answer: Promise<SmallResponse>;
    try {
      answer = Promise.resolve(this.#handler(request));
    } catch (err) {
      answer = Promise.reject(err);
    }
    answer.then(
      (response) => this.#respond(response, keepAlive, head.method === 'HEAD'),
      () => this.#respond(this.#errorResponse(500, 'internal error'), keepAlive),
    );
  }

  #respond(response: SmallResponse, keepAlive: boolean, headOnly = false): void {
    const socket = this.#socket;
    if (socket.destroyed) return;
    const body = response.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(response.body) ? response.body : Buffer.from(response.body);
    let head = `HTTP/1.1 ${response.status} ${REASONS[response.status] ?? 'Unknown'}\r\ncontent-length: ${body.length}\r\n`;
    for (const [name, value] of Object.entries(response.headers ?? {})) head += `${name}: ${value}\r\n`;
    head += keepAlive ? '\r\n' : 'connection: close\r\n\r\n';
    socket.write(head, 'latin1');
    if (!headOnly && body.length > 0) socket.write(body);
    this.#busy = false;
    if (!keepAlive) {
      clearTimeout(this.#timer);
      socket.end();
      return;
    }
    // A pipelined request already waiting has started; otherwise the connection idles.
    this.#startTimer(this.#buffer.length > 0 ? this.#limits.requestTimeoutMs : this.#limits.idleTimeoutMs);
    socket.resume();
    if (this.#buffer.length > 0) this.#advance();
  }

  #timeout(): void {
    // Mid-request: say so. Idle between requests: just close, as keep-alive servers do.
    if (this.#head !== null || this.#buffer.length > 0) this.#respond(this.#errorResponse(408, 'request timeout'), false);
    else this.#socket.destroy();
  }
}

function parseHead(text: string, limits: SmallHttpLimits): Head {
  const lines = text.split('\r\n');
  const requestLine = REQUEST_LINE.exec(lines[0]!);
  if (requestLine === null) throw new RequestError(400, 'malformed request line');
  if (lines.length - 1 > limits.maxHeaders) throw new RequestError(431, 'too many header fields');
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    // A space before the colon or a folded line are smuggling vectors (RFC 9112 §5.1, §5.2): refuse.
    if (!TOKEN.test(name)) throw new RequestError(400, 'malformed header field');
    const value = line.slice(colon + 1).trim();
    if (!FIELD_VALUE.test(value)) throw new RequestError(400, 'malformed header field');
    const key = name.toLowerCase();
    const prev = headers.get(key);
    headers.set(key, prev === undefined ? value : `${prev}, ${value}`);
  }
  if (headers.has('transfer-encoding')) throw new RequestError(411, 'chunked request bodies are not accepted; send Content-Length');
  const length = headers.get('content-length');
  let contentLength = 0;
  if (length !== undefined) {
    if (!/^[0-9]{1,10}$/.test(length)) throw new RequestError(400, 'malformed Content-Length');
    contentLength = Number(length);
    if (contentLength > limits.maxBodyBytes) throw new RequestError(413, `body larger than ${limits.maxBodyBytes} bytes`);
  }
  return { method: requestLine[1]!, target: requestLine[2]!, minor: Number(requestLine[3]), headers, contentLength };
}
