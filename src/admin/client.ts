// Client side of the admin socket, used by `secbeat ctl` (src/cli/ctl.ts) and tests: one connection, requests
// numbered from 1, replies matched to requests by id whatever order the node answers in.
import { createConnection, type Socket } from 'node:net';
import { SecbeatError, isErrorCode, type ErrorData } from '../errors.ts';
import type { AdminCommand, AdminResponse } from '../messages.ts';

export const ADMIN_CLIENT_DEFAULTS = {
  connectTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  /** A reply line longer than this is treated as a broken connection rather than buffered further. */
  maxReplyChars: 64 * 1024 * 1024,
} as const;

interface Pending {
  resolve: (response: AdminResponse) => void;
  reject: (err: SecbeatError) => void;
  timer: NodeJS.Timeout;
}

export class AdminClient implements AsyncDisposable {
  readonly path: string;
  readonly #socket: Socket;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #buffer = '';
  /** Set once the connection is unusable; later requests fail with it at once. */
  #failure: SecbeatError | null = null;

  private constructor(socket: Socket, path: string) {
    this.#socket = socket;
    this.path = path;
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.#onData(text));
    socket.on('error', (err) => this.#fail(connectError(path, err.message)));
    socket.on('close', () => this.#fail(connectError(path, 'the node closed the connection')));
  }

  static connect(path: string, timeoutMs: number = ADMIN_CLIENT_DEFAULTS.connectTimeoutMs): Promise<AdminClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(connectError(path, `no connection within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        socket.destroy();
        reject(connectError(path, err.message));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new AdminClient(socket, path));
      });
    });
  }

  /** Sends one command; resolves with the node's reply (ok or not), rejects only when no reply can arrive. */
  request(cmd: AdminCommand, timeoutMs: number = ADMIN_CLIENT_DEFAULTS.requestTimeoutMs): Promise<AdminResponse> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new SecbeatError('SECBEAT_ERR_ASK_TIMEOUT', `no reply to ${cmd.cmd} from ${this.path} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#socket.write(`${JSON.stringify({ ...cmd, id })}\n`);
    });
  }

  close(): void {
    this.#fail(connectError(this.path, 'the client closed the connection'));
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  #onData(text: string): void {
    this.#buffer += text;
    let newline = this.#buffer.indexOf('\n');
    while (newline !== -1) {
      const line = this.#buffer.slice(0, newline);
      this.#buffer = this.#buffer.slice(newline + 1);
      if (line.trim() !== '') this.#onReply(line);
      newline = this.#buffer.indexOf('\n');
    }
    if (this.#buffer.length > ADMIN_CLIENT_DEFAULTS.maxReplyChars) {
      this.#fail(connectError(this.path, `a reply exceeded ${ADMIN_CLIENT_DEFAULTS.maxReplyChars} characters`));
    }
  }

  #onReply(line: string): void {
    const response = parseResponse(line);
    if (!response) {
      this.#fail(connectError(this.path, `the node sent an unreadable reply: ${line.slice(0, 200)}`));
      return;
    }
    if (response.id === null) {
      // The node could not tell which request this answers (a line it could not frame, or a refused
      // connection). With one request outstanding it is that one; with several, none can be trusted.
      const ids = [...this.#pending.keys()];
      if (ids.length === 1) this.#settle(ids[0]!, response);
      else for (const id of ids) this.#settle(id, response);
      return;
    }
    if (typeof response.id === 'number') this.#settle(response.id, response);
  }

  #settle(id: number, response: AdminResponse): void {
    const pending = this.#pending.get(id);
    if (!pending) return; // already timed out
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(response);
  }

  #fail(err: SecbeatError): void {
    this.#failure ??= err;
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(this.#failure);
    }
    this.#socket.destroy();
  }
}

function connectError(path: string, why: string): SecbeatError {
  return new SecbeatError('SECBEAT_ERR_ADMIN_CONNECT', `cannot reach the admin socket at ${path}: ${why}`);
}

/** Checks a reply line's shape; an error code this client does not know is kept in the message. */
function parseResponse(line: string): AdminResponse | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const r = value as Record<string, unknown>;
  const id = r['id'];
  if (!(id === null || typeof id === 'string' || typeof id === 'number')) return null;
  if (r['ok'] === true) return { id, ok: true, result: r['result'] ?? null };
  if (r['ok'] !== false || typeof r['error'] !== 'object' || r['error'] === null) return null;
  const e = r['error'] as Record<string, unknown>;
  if (typeof e['code'] !== 'string' || typeof e['message'] !== 'string') return null;
  const error: ErrorData = isErrorCode(e['code'])
    ? { code: e['code'], message: e['message'] }
    : { code: 'SECBEAT_ERR_INTERNAL', message: `${e['code']}: ${e['message']}` };
  return { id, ok: false, error };
}
