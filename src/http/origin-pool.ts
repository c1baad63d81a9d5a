// Keep-alive HTTP/1.1 connections to one origin (plain or TLS), for L7 mode's upstream phase. One request per
// connection at a time (no pipelining: a slow response never holds up the next), a FIFO queue when all
// `connections` are busy, and deadlines (connect, response head, body idle, keep-alive idle) checked by one
// sweep per pool rather than a timer per request.
//
// Why not undici, which the rest of the project uses for HTTP clients: a request through undici's Pool cost
// this proxy about 16 µs of CPU more than this (bench/l7 prototype on this 2-vCPU VM: 14.6k vs 19.2k
// requests per CPU-second, node:http in front, 1 KiB responses), and CPU per request is what L7 mode is
// measured by. This client does only what the proxy needs: write one head string (and body) per request,
// parse the response in place (./response-parser.ts), hand body slices straight to the client's response.
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { NEED_MORE, PARSE_ERROR, ResponseParser, type ResponseSink } from './response-parser.ts';

export interface OriginPoolSettings {
  connections: number;
  connectTimeoutMs: number;
  /** From the request's last byte written to the response head. */
  headersTimeoutMs: number;
  /** Longest silence between response body bytes while the client keeps up; 0 = none. */
  bodyTimeoutMs: number;
  /** For https:// origins: PEM CA bundle (null = Node's bundled roots) and whether to verify at all. */
  ca: Buffer | null;
  verify: boolean;
}

/** Why an origin exchange failed. The connection kinds happen before any of the response arrived. */
export type OriginFailure =
  | 'connect_refused'
  | 'connect_timeout'
  | 'connect_error'
  | 'reset'
  | 'headers_timeout'
  | 'body_timeout'
  | 'bad_response'
  | 'request_body';

export class OriginError extends Error {
  readonly kind: OriginFailure;

  constructor(kind: OriginFailure, message: string, options?: ErrorOptions) {
    super(message, options);
    this.kind = kind;
  }

  /** The origin could not be reached or dropped the connection: counts toward ejection, and may be retried elsewhere. */
  get connectionFailure(): boolean {
    return this.kind === 'connect_refused' || this.kind === 'connect_timeout' || this.kind === 'connect_error' || this.kind === 'reset';
  }

  get timeout(): boolean {
    return this.kind === 'connect_timeout' || this.kind === 'headers_timeout' || this.kind === 'body_timeout';
  }
}

export interface OriginRequest {
  method: string;
  path: string;
  /** Flat [name, value, ...]; no framing fields (Content-Length, Transfer-Encoding): the pool sets those. */
  headers: string[];
  body: Buffer | AsyncIterable<Buffer> | null;
  /** Length of a streamed body when the client declared one; -1 sends it chunked. */
  bodyLength: number;
}

/** The exchange's side. No callback comes after onResponseEnd, onResponseError, onUpgrade or abort(). */
export interface OriginHandler {
  onResponseStart(status: number, headers: string[]): void;
  /** false: the client's buffer is full; the connection stops reading until resume(). */
  onResponseData(chunk: Buffer): boolean;
  onResponseEnd(): void;
  onResponseError(err: OriginError): void;
  /** 101 Switching Protocols: from here the socket (and `head`, bytes already read past the response) is the handler's. */
  onUpgrade(status: number, headers: string[], socket: Socket, head: Buffer): void;
}

/** Keep-alive connections idle this long are closed (under the 5 s most servers keep them, so we close first). */
const IDLE_MS = 4_000;
/** RFC 9110 §9.2.2: safe to send again when the first attempt surely was not processed. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** Methods that carry a body by definition: sent with Content-Length: 0 when they have none (RFC 9110 §8.6). */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** One request's place in the pool: queued, then on a connection. */
export class OriginCall {
  readonly request: OriginRequest;
  readonly handler: OriginHandler;
  /** Set while on a connection. */
  connection: OriginConnection | null = null;
  done = false;
  /** Sent once more already, after a reused connection turned out closed (see OriginConnection.#stale). */
  resent = false;

  constructor(request: OriginRequest, handler: OriginHandler) {
    this.request = request;
    this.handler = handler;
  }

  /** Ends the exchange with no further callbacks; its connection, mid-response, cannot be reused. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    this.connection?.destroy();
  }

  /** After onResponseData said false and the client drained. */
  resume(): void {
    const c = this.connection;
    if (c === null) return;
    c.lastDataAt = performance.now();
    c.socket.resume();
  }
}

export class OriginPool {
  readonly #host: string;
  readonly #port: number;
  readonly #tls: boolean;
  readonly #settings: OriginPoolSettings;
  /** Most recently used last: reuse the warmest connection, let the coldest idle out. */
  readonly #idle: OriginConnection[] = [];
  readonly #all = new Set<OriginConnection>();
  readonly #queue: OriginCall[] = [];
  readonly #sweep: NodeJS.Timeout;
  #closed = false;

  constructor(url: URL, settings: OriginPoolSettings) {
    this.#tls = url.protocol === 'https:';
    this.#host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.#port = url.port === '' ? (this.#tls ? 443 : 80) : Number(url.port);
    this.#settings = settings;
    const shortest = Math.min(settings.connectTimeoutMs, settings.headersTimeoutMs, settings.bodyTimeoutMs || Infinity, IDLE_MS);
    this.#sweep = setInterval(() => this.#checkDeadlines(), Math.min(1_000, Math.max(25, Math.floor(shortest / 4)))).unref();
  }

  /** Connections open (connecting, busy or idle) and requests waiting for one. */
  get stats(): { connections: number; idle: number; queued: number } {
    return { connections: this.#all.size, idle: this.#idle.length, queued: this.#queue.length };
  }

  dispatch(request: OriginRequest, handler: OriginHandler): OriginCall {
    const call = new OriginCall(request, handler);
    if (this.#closed) {
      queueMicrotask(() => handler.onResponseError(new OriginError('connect_error', 'origin pool closed')));
      call.done = true;
      return call;
    }
    const idle = this.#idle.pop();
    if (idle !== undefined) idle.start(call);
    else if (this.#all.size < this.#settings.connections) this.#open().start(call);
    else this.#queue.push(call);
    return call;
  }

  /** Closes every connection now (the proxy drains its clients first). */
  close(): void {
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const call of this.#queue.splice(0)) {
      if (call.done) continue;
      call.done = true;
      call.handler.onResponseError(new OriginError('connect_error', 'origin pool closed'));
    }
    for (const connection of [...this.#all]) connection.destroy();
  }

  /** @internal A connection finished its exchange and may carry another. */
  released(connection: OriginConnection): void {
    // The last exchange may have ended with its client's buffer full (the socket paused for it): from now on
    // the socket reads again, for the next response or, idle, to see the origin close it.
    connection.socket.resume();
    let next = this.#queue.shift();
    while (next !== undefined && next.done) next = this.#queue.shift();
    if (next !== undefined) return connection.start(next);
    connection.idleSince = performance.now();
    this.#idle.push(connection);
  }

  /** @internal A call whose kept-alive connection was found closed: first in line for a fresh one. */
  resend(call: OriginCall): void {
    if (this.#closed) {
      call.done = true;
      return call.handler.onResponseError(new OriginError('reset', 'the origin closed the connection'));
    }
    if (this.#all.size < this.#settings.connections) this.#open().start(call);
    else this.#queue.unshift(call);
  }

  /** @internal A connection closed or was handed over (upgrade): a queued request may open a new one. */
  gone(connection: OriginConnection): void {
    if (!this.#all.delete(connection)) return;
    const i = this.#idle.indexOf(connection);
    if (i !== -1) this.#idle.splice(i, 1);
    let next = this.#queue.shift();
    while (next !== undefined && next.done) next = this.#queue.shift();
    if (next !== undefined && !this.#closed) this.#open().start(next);
  }

  #open(): OriginConnection {
    const s = this.#settings;
    const socket = this.#tls
      ? tlsConnect({
          host: this.#host,
          port: this.#port,
          ...(isIP(this.#host) === 0 ? { servername: this.#host } : {}),
          ALPNProtocols: ['http/1.1'],
          rejectUnauthorized: s.verify,
          ...(s.ca === null ? {} : { ca: s.ca }),
        })
      : netConnect({ host: this.#host, port: this.#port, noDelay: true });
    const connection = new OriginConnection(this, socket, this.#tls);
    this.#all.add(connection);
    return connection;
  }

  #checkDeadlines(): void {
    const now = performance.now();
    const s = this.#settings;
    for (const c of this.#all) {
      if (c.connecting) {
        if (now - c.openedAt > s.connectTimeoutMs) c.fail(new OriginError('connect_timeout', `no connection within ${s.connectTimeoutMs} ms`));
      } else if (c.call === null) {
        if (now - c.idleSince > IDLE_MS) c.destroy();
      } else if (!c.headSeen) {
        if (c.requestSent && now - c.sentAt > s.headersTimeoutMs) c.fail(new OriginError('headers_timeout', `no response head within ${s.headersTimeoutMs} ms`));
      } else if (s.bodyTimeoutMs > 0 && !c.socket.isPaused() && now - c.lastDataAt > s.bodyTimeoutMs) {
        c.fail(new OriginError('body_timeout', `response body idle for ${s.bodyTimeoutMs} ms`));
      }
    }
  }
}

/** One socket to the origin and the exchange it carries, if any. */
export class OriginConnection implements ResponseSink {
  readonly socket: Socket;
  readonly #pool: OriginPool;
  readonly #parser = new ResponseParser();
  call: OriginCall | null = null;
  connecting = true;
  readonly openedAt = performance.now();
  idleSince = 0;
  sentAt = 0;
  lastDataAt = 0;
  requestSent = false;
  headSeen = false;
  #reusable = true;
  #closed = false;
  /** Responses this connection has carried: a reused one may have been closed by the origin as we sent. */
  #served = 0;
  /** A 101 head, handed over with the socket once the parser says where it ended. */
  #upgradeHead: { status: number; headers: string[] } | null = null;
  /** Kept to be taken off at an upgrade: only these, a TLS socket's own 'close' listener frees its SSL state. */
  readonly #listeners = {
    data: (data: Buffer): void => this.#onData(data),
    error: (err: NodeJS.ErrnoException): void => {
      // A stale keep-alive connection errs (ECONNRESET, EPIPE) and then closes: 'close' sends the call again.
      if (this.call !== null && this.#stale(this.call)) return void this.socket.destroy();
      this.fail(connectionError(err, this.connecting));
    },
    close: (): void => this.#onClose(),
  };

  constructor(pool: OriginPool, socket: Socket, tls: boolean) {
    this.#pool = pool;
    this.socket = socket;
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      this.connecting = false;
      if (this.call !== null) this.#write(this.call);
    });
    socket.setNoDelay(true);
    socket.on('data', this.#listeners.data);
    socket.on('error', this.#listeners.error);
    socket.on('close', this.#listeners.close);
  }

  start(call: OriginCall): void {
    this.call = call;
    call.connection = this;
    this.headSeen = false;
    this.requestSent = false;
    this.#reusable = true;
    this.#parser.expect(this, call.request.method === 'HEAD');
    if (!this.connecting) this.#write(call);
  }

  destroy(): void {
    this.#reusable = false;
    this.socket.destroy();
  }

  /** Ends the current exchange with `err` and the connection with it. */
  fail(err: OriginError): void {
    const call = this.call;
    this.call = null;
    this.destroy();
    if (call !== null && !call.done) {
      call.done = true;
      call.handler.onResponseError(err);
    }
  }

  onHead(status: number, headers: string[]): void {
    this.headSeen = true;
    this.lastDataAt = performance.now();
    if (this.#parser.upgraded) {
      this.#upgradeHead = { status, headers };
      return;
    }
    const call = this.call!;
    if (!call.done) call.handler.onResponseStart(status, headers);
  }

  onBody(chunk: Buffer): void {
    const call = this.call!;
    if (call.done) return;
    if (!call.handler.onResponseData(chunk)) this.socket.pause();
    this.lastDataAt = performance.now();
  }

  onEnd(reusable: boolean): void {
    const call = this.call!;
    this.#served++;
    this.#reusable &&= reusable;
    this.call = null;
    call.connection = null;
    if (!call.done) {
      call.done = true;
      call.handler.onResponseEnd();
    }
  }

  #onData(data: Buffer): void {
    if (this.call === null) {
      // Nothing was asked: bytes here are a protocol error (or a late answer to an aborted request).
      this.destroy();
      return;
    }
    const parser = this.#parser;
    let result: number;
    try {
      result = parser.execute(data);
    } catch (err) {
      // A handler that throws (a bug of the proxy's, say a header the client side refuses) runs inside this
      // socket's 'data' event: uncaught, it would end the thread and every connection on it. It costs this
      // exchange and this connection only.
      return this.fail(new OriginError('bad_response', `the response could not be passed on: ${(err as Error).message}`, { cause: err }));
    }
    if (result === NEED_MORE) return;
    if (result === PARSE_ERROR) return this.fail(new OriginError('bad_response', `malformed response from the origin: ${parser.error}`));
    if (parser.upgraded) return this.#upgrade(this.call, data.subarray(result));
    // Released here, not in onEnd, so the whole read is seen first: bytes after a complete response, with one
    // request in flight, mean a confused origin, and a queued request must not go out on it. A response may also
    // end before its request body was all sent (an early 413): the connection is then mid-request.
    if (this.#reusable && this.requestSent && !this.#closed && result === data.length) this.#pool.released(this);
    else this.destroy();
  }

  #onClose(): void {
    this.#closed = true;
    this.connecting = false;
    const call = this.call;
    if (call !== null && this.#parser.endsAtClose) {
      this.#parser.closed();
    } else if (call !== null && this.#stale(call)) {
      this.call = null;
      call.connection = null;
      call.resent = true;
      this.#pool.gone(this);
      this.#pool.resend(call);
      return;
    } else if (call !== null) {
      this.fail(new OriginError('reset', 'the origin closed the connection'));
    }
    this.#pool.gone(this);
  }

  /**
   * The origin closed a kept-alive connection just as this request went out on it (its idle timeout raced
   * ours): no byte of a response came, so the origin never took the request up. An idempotent request whose
   * body is in memory goes once more, on a fresh connection, instead of failing a healthy origin (RFC 9112
   * §9.3.1; nginx and undici do the same).
   */
  #stale(call: OriginCall): boolean {
    const { method, body } = call.request;
    return this.#served > 0 && !this.headSeen && !call.resent && !call.done && IDEMPOTENT.has(method) && (body === null || Buffer.isBuffer(body));
  }

  #upgrade(call: OriginCall, rest: Buffer): void {
    const { status, headers } = this.#upgradeHead!;
    this.call = null;
    this.socket.off('data', this.#listeners.data);
    this.socket.off('close', this.#listeners.close);
    this.socket.off('error', this.#listeners.error);
    this.socket.pause();
    this.#pool.gone(this);
    if (call.done) return void this.socket.destroy();
    call.done = true;
    call.handler.onUpgrade(status, headers, this.socket, rest);
  }

  #write(call: OriginCall): void {
    const { method, path, headers, body, bodyLength } = call.request;
    let head = `${method} ${path} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    const socket = this.socket;
    if (body === null || Buffer.isBuffer(body)) {
      const length = body === null ? (BODY_METHODS.has(method) ? 0 : -1) : body.length;
      head += length === -1 ? '\r\n' : `content-length: ${length}\r\n\r\n`;
      if (body === null || body.length === 0) {
        socket.write(head, 'latin1');
      } else {
        // One writev for head and body.
        socket.cork();
        socket.write(head, 'latin1');
        socket.write(body);
        socket.uncork();
      }
      this.#sent();
      return;
    }
    head += bodyLength >= 0 ? `content-length: ${bodyLength}\r\n\r\n` : 'transfer-encoding: chunked\r\n\r\n';
    socket.write(head, 'latin1');
    void this.#stream(call, body, bodyLength < 0);
  }

  #sent(): void {
    this.requestSent = true;
    this.sentAt = performance.now();
  }

  /** Writes a streamed request body with backpressure; a failure of the body ends the exchange. */
  async #stream(call: OriginCall, body: AsyncIterable<Buffer>, chunked: boolean): Promise<void> {
    const socket = this.socket;
    try {
      for await (const chunk of body) {
        // Ended meanwhile (aborted, failed, or answered early, which destroyed the connection).
        if (call.done || this.call !== call) return;
        if (chunk.length === 0) continue;
        if (chunked) {
          // All three parts whatever write() says about the buffer: backpressure is waited for below.
          socket.cork();
          socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
          socket.write(chunk);
          socket.write('\r\n', 'latin1');
          socket.uncork();
        } else {
          socket.write(chunk);
        }
        if (socket.writableNeedDrain && !socket.destroyed) await drained(socket);
        if (socket.destroyed) return;
      }
      if (chunked) socket.write('0\r\n\r\n', 'latin1');
      this.#sent();
    } catch (err) {
      if (this.call === call) this.fail(new OriginError('request_body', 'the request body failed', { cause: err }));
      else this.destroy();
    }
  }
}

/** Resolves once the socket drains, or closes (then the caller sees it destroyed). */
function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

function connectionError(err: NodeJS.ErrnoException, connecting: boolean): OriginError {
  if (!connecting) return new OriginError('reset', err.message, { cause: err });
  return new OriginError(err.code === 'ECONNREFUSED' ? 'connect_refused' : 'connect_error', err.message, { cause: err });
}
