// The admin Unix socket: newline-delimited JSON requests `{ id, cmd, ...args }` in, one JSON reply line
// `{ id, ok, result | error }` out per request. Owned by the admin actor (src/actors/admin.ts); what a command
// does is the handler's business (src/node/commands.ts). Nothing a client sends can crash the node or make
// it hold more than a bounded amount of memory per connection.
import { chmod, link, lstat, mkdir, mkdtemp, rm, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { SecbeatError, toErrorData, type ErrorCode } from '../errors.ts';
import { ADMIN_COMMANDS, decodeAdminRequest, type AdminRequest, type AdminResponse } from '../messages.ts';
import type { Logger } from '../telemetry/log.ts';
import { RejectionLog } from './rejection-log.ts';

/** Executes one decoded request; resolves to the result, throws (ideally a SecbeatError) for failures. */
export type AdminHandler = (req: AdminRequest) => Promise<unknown>;

export interface AdminServerOptions {
  path: string;
  handler: AdminHandler;
  log: Logger;
  /** Longest accepted request line, in bytes before the '\n'. */
  maxLineBytes?: number;
  maxInFlightPerConnection?: number;
  maxConnections?: number;
  /** Deadline for a handler; commands that carry their own `timeoutMs` get that plus a grace period. */
  requestTimeoutMs?: number;
  /** Replies queued to a client that does not read; above this the connection is destroyed. */
  maxQueuedOutputBytes?: number;
}

export const ADMIN_SERVER_DEFAULTS = {
  // A bulk domain upload (domains.upsert, up to MAX_DOMAINS_PER_CALL domains) is one line of ~1.4 MB.
  maxLineBytes: 4 * 1024 * 1024,
  maxInFlightPerConnection: 16,
  maxConnections: 64,
  // The longest deadline a request can carry itself (actor.inject timeoutMs ≤ 60 s) plus a grace period.
  requestTimeoutMs: 65_000,
  maxQueuedOutputBytes: 8 * 1024 * 1024,
} as const;

/** Added to a command's own `timeoutMs` (drain, inject --ask) so its answer beats the socket deadline. */
const COMMAND_DEADLINE_GRACE_MS = 5_000;
/** How long `close()` lets a connection flush queued replies before destroying it. */
const CLOSE_GRACE_MS = 1_000;
/** How long the stale-socket probe waits for a connect; a listener that cannot accept in time counts as live. */
const PROBE_TIMEOUT_MS = 1_000;
/** `sun_path` is 108 bytes on Linux including the terminating NUL (unix(7)). */
const MAX_SOCKET_PATH_BYTES = 107;

const NEWLINE = 0x0a;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

type Settings = Required<Omit<AdminServerOptions, 'path' | 'handler' | 'log'>>;

export class AdminServer implements AsyncDisposable {
  readonly path: string;
  readonly #handler: AdminHandler;
  readonly #log: Logger;
  readonly #settings: Settings;
  readonly #connections = new Set<AdminConnection>();
  readonly #rejections: RejectionLog;
  #server: Server | null = null;
  /** Inode of the socket file we created, so close() never unlinks a successor's socket. */
  #inode: number | null = null;

  constructor(options: AdminServerOptions) {
    this.path = options.path;
    this.#handler = options.handler;
    this.#log = options.log;
    this.#settings = {
      maxLineBytes: options.maxLineBytes ?? ADMIN_SERVER_DEFAULTS.maxLineBytes,
      maxInFlightPerConnection: options.maxInFlightPerConnection ?? ADMIN_SERVER_DEFAULTS.maxInFlightPerConnection,
      maxConnections: options.maxConnections ?? ADMIN_SERVER_DEFAULTS.maxConnections,
      requestTimeoutMs: options.requestTimeoutMs ?? ADMIN_SERVER_DEFAULTS.requestTimeoutMs,
      maxQueuedOutputBytes: options.maxQueuedOutputBytes ?? ADMIN_SERVER_DEFAULTS.maxQueuedOutputBytes,
    };
    this.#rejections = new RejectionLog(options.log);
  }

  /**
   * Binds the socket with mode 0600 before any client can reach it: the server binds inside a fresh private
   * (0700) directory next to `path`, chmods the socket, then hard-links it to `path`. link(2) fails if the
   * name exists, so a node that started concurrently is never replaced.
   */
  async listen(): Promise<void> {
    if (this.#server) throw new Error('AdminServer.listen() called twice');
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      throw listenError(`cannot create the directory ${dir} for the admin socket: ${reason(err)}`, err);
    });
    await this.#removeStaleSocket();
    const privateDir = await mkdtemp(join(dir, '.sb-')).catch((err: unknown) => {
      throw listenError(`cannot create a private directory next to the admin socket ${this.path}: ${reason(err)}`, err);
    });
    const bindPath = join(privateDir, 's');
    const server = createServer({ allowHalfOpen: true }, (socket) => this.#accept(socket));
    try {
      if (Buffer.byteLength(bindPath) > MAX_SOCKET_PATH_BYTES) {
        throw listenError(
          `the admin socket path ${this.path} is too long: Unix socket paths are limited to ${MAX_SOCKET_PATH_BYTES} bytes ` +
            `and the server binds at ${bindPath} (${Buffer.byteLength(bindPath)} bytes) first`,
        );
      }
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(bindPath, () => {
          server.off('error', reject);
          resolve();
        });
      }).catch((err: unknown) => {
        throw listenError(`cannot listen on the admin socket ${this.path}: ${reason(err)}`, err);
      });
      await chmod(bindPath, 0o600).catch((err: unknown) => {
        throw listenError(`cannot restrict the admin socket to mode 0600: ${reason(err)}`, err);
      });
      await link(bindPath, this.path).catch((err: unknown) => {
        throw listenError(
          (err as NodeJS.ErrnoException).code === 'EEXIST'
            ? `another process created ${this.path} while this node was starting`
            : `cannot create the admin socket ${this.path}: ${reason(err)}`,
          err,
        );
      });
      this.#inode = (await lstat(this.path)).ino;
    } catch (err) {
      server.close();
      throw err;
    } finally {
      await rm(privateDir, { recursive: true, force: true });
    }
    // After listening, accept errors (EMFILE, ENFILE) are transient: log them, keep serving.
    server.on('error', (err) => this.#log.warn({ err }, 'admin socket accept failed'));
    this.#server = server;
  }

  /** Stops listening, ends every connection (replies already queued are flushed) and removes the socket file. */
  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const conn of this.#connections) conn.end(CLOSE_GRACE_MS);
    await closed;
    this.#rejections.flush();
    const inode = this.#inode;
    this.#inode = null;
    const current = await lstat(this.path).catch(() => null);
    if (current && current.ino === inode) await unlink(this.path).catch(() => undefined);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #removeStaleSocket(): Promise<void> {
    const stat = await lstat(this.path).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw listenError(`cannot inspect ${this.path}: ${reason(err)}`, err);
    });
    if (!stat) return;
    if (!stat.isSocket()) throw listenError(`${this.path} exists and is not a socket; refusing to replace it`);
    const probe = await probeSocket(this.path);
    if (probe === 'live') {
      throw listenError(`another process is listening on the admin socket ${this.path} (is another node running?)`);
    }
    if (probe !== 'stale') throw listenError(`cannot tell whether ${this.path} is in use: ${probe}`);
    this.#log.info({ socket: this.path }, 'removing stale admin socket');
    await unlink(this.path).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw listenError(`cannot remove the stale socket ${this.path}: ${reason(err)}`, err);
    });
  }

  #accept(socket: Socket): void {
    if (this.#connections.size >= this.#settings.maxConnections) {
      const message = `too many admin connections (${this.#settings.maxConnections}); try again later`;
      this.#rejections.note('SECBEAT_ERR_ADMIN_BUSY', message);
      socket.on('error', () => socket.destroy());
      socket.end(`${JSON.stringify(errorResponse(null, 'SECBEAT_ERR_ADMIN_BUSY', message))}\n`);
      socket.resume();
      setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
      return;
    }
    const conn = new AdminConnection(socket, this.#handler, this.#log, this.#settings, this.#rejections);
    this.#connections.add(conn);
    socket.once('close', () => this.#connections.delete(conn));
  }
}

/** One client connection: line framing, request dispatch, bounded in-flight work and output. */
class AdminConnection {
  readonly #socket: Socket;
  readonly #handler: AdminHandler;
  readonly #log: Logger;
  readonly #settings: Settings;
  readonly #rejections: RejectionLog;
  /** Bytes of the current, unterminated line (never more than maxLineBytes in total). */
  #partial: Buffer[] = [];
  #partialBytes = 0;
  /** True after a line overflowed, until its '\n': the rest of it is dropped unread. */
  #discarding = false;
  #inFlight = 0;
  #readEnded = false;

  constructor(socket: Socket, handler: AdminHandler, log: Logger, settings: Settings, rejections: RejectionLog) {
    this.#socket = socket;
    this.#handler = handler;
    this.#log = log;
    this.#settings = settings;
    this.#rejections = rejections;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('drain', () => socket.resume());
    socket.on('error', (err) => {
      this.#log.debug({ err }, 'admin connection error');
      socket.destroy();
    });
  }

  /** Half-closes after queued replies are flushed; destroys the socket if that takes longer than `graceMs`. */
  end(graceMs: number): void {
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), graceMs).unref();
  }

  #onData(chunk: Buffer): void {
    let start = 0;
    while (start <= chunk.length) {
      const newline = chunk.indexOf(NEWLINE, start);
      const end = newline === -1 ? chunk.length : newline;
      this.#append(chunk, start, end);
      if (newline === -1) return;
      this.#endLine();
      start = newline + 1;
    }
  }

  #append(chunk: Buffer, start: number, end: number): void {
    if (this.#discarding || end === start) return;
    if (this.#partialBytes + (end - start) > this.#settings.maxLineBytes) {
      this.#partial = [];
      this.#partialBytes = 0;
      this.#discarding = true;
      this.#reject(null, 'SECBEAT_ERR_ADMIN_LINE_TOO_LONG', `request line longer than ${this.#settings.maxLineBytes} bytes; it was discarded`);
      return;
    }
    // Copy: a small view would otherwise keep the whole 64 KiB read buffer alive while the line grows.
    this.#partial.push(start === 0 && end === chunk.length ? chunk : Buffer.copyBytesFrom(chunk, start, end - start));
    this.#partialBytes += end - start;
  }

  #endLine(): void {
    const line = this.#partial.length === 1 ? this.#partial[0]! : Buffer.concat(this.#partial, this.#partialBytes);
    const discarded = this.#discarding;
    this.#partial = [];
    this.#partialBytes = 0;
    this.#discarding = false;
    if (!discarded) this.#handleLine(line);
  }

  /** EOF ends the last line even without '\n' (`printf '{…}' | socat`); replies still go out before FIN. */
  #onEnd(): void {
    if (this.#partialBytes > 0) this.#endLine();
    this.#readEnded = true;
    this.#endIfIdle();
  }

  #endIfIdle(): void {
    if (this.#readEnded && this.#inFlight === 0 && !this.#socket.destroyed) this.#socket.end();
  }

  #handleLine(bytes: Buffer): void {
    if (isBlank(bytes)) return;
    let text: string;
    try {
      text = UTF8.decode(bytes);
    } catch {
      this.#reject(null, 'SECBEAT_ERR_ADMIN_MALFORMED', 'the request line is not valid UTF-8');
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      this.#reject(null, 'SECBEAT_ERR_ADMIN_MALFORMED', `invalid JSON: ${jsonErrorMessage(err, text)}`);
      return;
    }
    const decoded = decodeAdminRequest(parsed);
    if (!decoded.ok) {
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        this.#reject(null, 'SECBEAT_ERR_ADMIN_MALFORMED', `the request must be a JSON object like {"id":1,"cmd":"ping"}`);
      } else if (decoded.unknownCommand) {
        this.#reject(decoded.id, 'SECBEAT_ERR_ADMIN_UNKNOWN_COMMAND', `${decoded.issues.join('; ')}; valid commands: ${ADMIN_COMMANDS.join(', ')}`);
      } else {
        this.#reject(decoded.id, 'SECBEAT_ERR_ADMIN_INVALID_ARGS', decoded.issues.join('; '));
      }
      return;
    }
    const req = decoded.value;
    if (this.#inFlight >= this.#settings.maxInFlightPerConnection) {
      this.#reject(req.id, 'SECBEAT_ERR_ADMIN_BUSY', `${this.#inFlight} requests already in flight on this connection; wait for their replies`);
      return;
    }
    void this.#run(req);
  }

  async #run(req: AdminRequest): Promise<void> {
    this.#inFlight++;
    const deadlineMs = 'timeoutMs' in req ? Math.max(this.#settings.requestTimeoutMs, req.timeoutMs + COMMAND_DEADLINE_GRACE_MS) : this.#settings.requestTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<AdminResponse>((resolve) => {
      timer = setTimeout(
        () => resolve(errorResponse(req.id, 'SECBEAT_ERR_ASK_TIMEOUT', `${req.cmd} did not complete within ${deadlineMs} ms; it may still finish in the node`)),
        deadlineMs,
      );
    });
    // A handler that throws synchronously instead of rejecting is still an error reply, not a crash.
    const handled = Promise.resolve()
      .then(() => this.#handler(req))
      .then(
        (result): AdminResponse => ({ id: req.id, ok: true, result: result ?? null }),
        (err: unknown): AdminResponse => {
          const error = toErrorData(err);
          // Catalogued failures are answers; anything else is a bug in a command and needs a human.
          if (error.code === 'SECBEAT_ERR_INTERNAL') this.#log.error({ err, cmd: req.cmd }, 'admin command failed unexpectedly');
          return { id: req.id, ok: false, error };
        },
      );
    const response = await Promise.race([handled, timedOut]);
    clearTimeout(timer);
    // The slot is freed at the reply: a handler that outlives its deadline is the node's to bound (asks have timeouts).
    this.#inFlight--;
    this.#send(response);
    this.#endIfIdle();
  }

  #reject(id: string | number | null, code: ErrorCode, message: string): void {
    this.#rejections.note(code, message);
    this.#send(errorResponse(id, code, message));
  }

  #send(response: AdminResponse): void {
    const socket = this.#socket;
    if (socket.destroyed || socket.writableEnded) return;
    // Checked before writing, so one large reply always goes out but a client that never reads cannot pile up more.
    if (socket.writableLength > this.#settings.maxQueuedOutputBytes) {
      this.#log.debug({ queuedBytes: socket.writableLength }, 'admin client does not read its replies; closing the connection');
      socket.destroy();
      return;
    }
    let line: string;
    try {
      line = JSON.stringify(response);
    } catch (err) {
      line = JSON.stringify(errorResponse(response.id, 'SECBEAT_ERR_INTERNAL', `the result cannot be encoded as JSON: ${reason(err)}`));
    }
    // Backpressure: stop reading requests until the client has taken its replies ('drain' resumes).
    if (!socket.write(`${line}\n`)) socket.pause();
  }
}

/** Connects once: 'live' if something accepts, 'stale' if nobody listens, otherwise the reason it could not tell. */
function probeSocket(path: string): Promise<'live' | 'stale' | string> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    const done = (outcome: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => done('live'), PROBE_TIMEOUT_MS);
    socket.once('connect', () => done('live'));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? 'stale' : reason(err)));
  });
}

function errorResponse(id: string | number | null, code: ErrorCode, message: string): AdminResponse {
  return { id, ok: false, error: { code, message } };
}

/**
 * Start-up failures of the socket. The catalogue has no admin listen code yet (SECBEAT_ERR_ADMIN_LISTEN is
 * requested); until then these surface as SECBEAT_ERR_INTERNAL with a message that says what is wrong.
 */
function listenError(message: string, cause?: unknown): SecbeatError {
  return new SecbeatError('SECBEAT_ERR_ADMIN_LISTEN', message, cause === undefined ? undefined : { cause });
}

/**
 * V8's SyntaxError names the position ("… in JSON at position 7 (line 1 column 8)") or quotes the bad token,
 * except for a truncated request ("Unexpected end of JSON input"), where the position is the end of the line.
 */
function jsonErrorMessage(err: unknown, text: string): string {
  const message = reason(err);
  return message === 'Unexpected end of JSON input' ? `${message} at position ${text.length}` : message;
}

/** JSON whitespace only (space, tab, CR): such lines, like empty ones, are ignored. */
function isBlank(bytes: Buffer): boolean {
  for (const b of bytes) if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false;
  return true;
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
