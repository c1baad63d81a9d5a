// The admin socket server against real Unix sockets in a temp directory, with small in-test handlers: framing,
// error replies, limits, start-up checks on the socket file, and that nothing a client does disturbs it.
import { link, lstat, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AdminClient } from '../../../src/admin/client.ts';
import { AdminServer, type AdminHandler, type AdminServerOptions } from '../../../src/admin/server.ts';
import { SecbeatError } from '../../../src/errors.ts';
import type { AdminRequest } from '../../../src/messages.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sb-admin-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const logLines: string[] = [];
const captured = pino(
  { level: 'debug' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  }),
);

/** Pings answer 'pong'; actor.inspect waits on a gate the test opens; everything else echoes the request. */
function gatedHandler(): { handler: AdminHandler; release: (address: string, value?: unknown) => void } {
  const gates = new Map<string, (value: unknown) => void>();
  const waiting = new Map<string, unknown>();
  return {
    handler: (req: AdminRequest) => {
      if (req.cmd === 'ping') return Promise.resolve('pong');
      if (req.cmd !== 'actor.inspect') return Promise.resolve({ echo: req });
      return new Promise((resolve) => {
        if (waiting.has(req.address)) resolve(waiting.get(req.address));
        else gates.set(req.address, resolve);
      });
    },
    release: (address, value = { address }) => {
      const gate = gates.get(address);
      if (gate) gate(value);
      else waiting.set(address, value);
    },
  };
}

async function startServer(
  handler: AdminHandler,
  opts: Partial<Omit<AdminServerOptions, 'handler' | 'log'>> = {},
): Promise<{ server: AdminServer; path: string; dir: string }> {
  const dir = await tempDir();
  const path = opts.path ?? join(dir, 'admin.sock');
  const server = new AdminServer({ path, handler, log: captured, ...opts });
  await server.listen();
  cleanups.push(() => server.close());
  return { server, path, dir };
}

/** A reply line as the tests read it (`error` is absent on ok replies). */
interface Reply {
  id: string | number | null;
  ok: boolean;
  result?: unknown;
  error: { code: string; message: string };
}

/** A bare socket that records every reply line, for tests that need to send bytes the client never would. */
class Raw {
  readonly socket: Socket;
  readonly lines: string[] = [];
  readonly closed: Promise<void>;
  #buffer = '';
  #waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      this.#buffer += text;
      const parts = this.#buffer.split('\n');
      this.#buffer = parts.pop()!;
      this.lines.push(...parts);
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.on('close', () => {
      for (const w of this.#waiters.splice(0)) w();
      resolve();
    }));
  }

  static open(path: string): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once('error', reject);
      socket.once('connect', () => {
        const raw = new Raw(socket);
        cleanups.push(async () => void socket.destroy());
        resolve(raw);
      });
    });
  }

  send(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  /** Waits until `n` reply lines have arrived and returns them parsed. */
  async replies(n: number): Promise<Reply[]> {
    while (this.lines.length < n) {
      if (this.socket.destroyed) throw new Error(`connection closed after ${this.lines.length} of ${n} replies`);
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    return this.lines.slice(0, n).map((l) => JSON.parse(l) as Reply);
  }
}

const ping = (id: number | string): string => `${JSON.stringify({ id, cmd: 'ping' })}\n`;

describe('AdminServer: socket file', () => {
  it('creates the socket with mode 0600 in a missing parent directory created 0700, and removes it on close', async () => {
    const dir = await tempDir();
    const path = join(dir, 'run', 'admin.sock');
    const server = new AdminServer({ path, handler: gatedHandler().handler, log: captured });
    await server.listen();
    const sock = await lstat(path);
    expect(sock.isSocket()).toBe(true);
    expect(sock.mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'run'))).mode & 0o777).toBe(0o700);
    await server.close();
    await expect(lstat(path)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('replaces a stale socket file that nothing listens on', async () => {
    const dir = await tempDir();
    const path = join(dir, 'admin.sock');
    // A socket file whose listener is gone: bind elsewhere, hard-link it to `path`, close the listener.
    const other = createServer();
    await new Promise<void>((r) => other.listen(join(dir, 'other.sock'), r));
    await link(join(dir, 'other.sock'), path);
    await new Promise((r) => other.close(r));
    expect((await lstat(path)).isSocket()).toBe(true);
    const { path: served } = await startServer(gatedHandler().handler, { path });
    await using client = await AdminClient.connect(served);
    expect(await client.request({ cmd: 'ping' })).toEqual({ id: 1, ok: true, result: 'pong' });
  });

  it('refuses to start when another process listens on the socket, and leaves it alone', async () => {
    const dir = await tempDir();
    const path = join(dir, 'admin.sock');
    const live: Server = createServer((s) => s.on('error', () => undefined).end('live\n'));
    await new Promise<void>((r) => live.listen(path, r));
    cleanups.push(() => new Promise((r) => live.close(() => r())));
    const server = new AdminServer({ path, handler: gatedHandler().handler, log: captured });
    await expect(server.listen()).rejects.toThrow(/another process is listening on the admin socket/);
    await expect(server.listen()).rejects.toBeInstanceOf(SecbeatError);
    const reply = await new Promise<string>((resolve) => connect(path).on('data', (b) => resolve(b.toString())));
    expect(reply).toBe('live\n');
  });

  it('explains a socket path too long to bind, and leaves nothing behind', async () => {
    // The path itself fits (≤ 107 bytes); the private bind directory next to it does not.
    const dir = join(await tempDir(), 'd'.repeat(80));
    const path = join(dir, 'a.sk');
    expect(Buffer.byteLength(path)).toBeLessThanOrEqual(107);
    const server = new AdminServer({ path, handler: gatedHandler().handler, log: captured });
    await expect(server.listen()).rejects.toThrow(/admin socket path .* is too long: Unix socket paths are limited to 107 bytes/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses to replace a file that is not a socket', async () => {
    const dir = await tempDir();
    const path = join(dir, 'admin.sock');
    await writeFile(path, 'keep me');
    const server = new AdminServer({ path, handler: gatedHandler().handler, log: captured });
    await expect(server.listen()).rejects.toThrow(/exists and is not a socket/);
    expect(await readFile(path, 'utf8')).toBe('keep me');
  });
});

describe('AdminServer: requests', () => {
  it('answers a ping through AdminClient', async () => {
    const { path } = await startServer(gatedHandler().handler);
    await using client = await AdminClient.connect(path);
    expect(await client.request({ cmd: 'ping' })).toEqual({ id: 1, ok: true, result: 'pong' });
    expect(await client.request({ cmd: 'ping' })).toEqual({ id: 2, ok: true, result: 'pong' });
  });

  it('completes requests out of order, correlated by id', async () => {
    const gated = gatedHandler();
    const { path } = await startServer(gated.handler);
    const raw = await Raw.open(path);
    raw.send(`${JSON.stringify({ id: 'slow', cmd: 'actor.inspect', address: 'a' })}\n${ping('fast')}`);
    expect((await raw.replies(1))[0]).toEqual({ id: 'fast', ok: true, result: 'pong' });
    gated.release('a', { address: 'a' });
    expect((await raw.replies(2))[1]).toEqual({ id: 'slow', ok: true, result: { address: 'a' } });

    await using client = await AdminClient.connect(path);
    const slow = client.request({ cmd: 'actor.inspect', address: 'b' });
    const fast = await client.request({ cmd: 'ping' });
    expect(fast).toEqual({ id: 2, ok: true, result: 'pong' });
    gated.release('b', 'done');
    expect(await slow).toEqual({ id: 1, ok: true, result: 'done' });
  });

  it('answers malformed JSON with its position and keeps the connection', async () => {
    const { path } = await startServer(gatedHandler().handler);
    const raw = await Raw.open(path);
    raw.send(`{"id":1,"cmd":\nnot json\n${ping(3)}`);
    const [first, second, third] = await raw.replies(3);
    expect(first).toMatchObject({ id: null, ok: false, error: { code: 'SECBEAT_ERR_ADMIN_MALFORMED' } });
    expect(first!.error.message).toMatch(/invalid JSON: .*position 14/);
    expect(second).toMatchObject({ id: null, ok: false, error: { code: 'SECBEAT_ERR_ADMIN_MALFORMED' } });
    expect(third).toEqual({ id: 3, ok: true, result: 'pong' });
  });

  it('rejects JSON that is not an object', async () => {
    const { path } = await startServer(gatedHandler().handler);
    const raw = await Raw.open(path);
    raw.send('[1,2]\n42\nnull\n"ping"\n');
    for (const reply of await raw.replies(4)) {
      expect(reply).toMatchObject({ id: null, ok: false, error: { code: 'SECBEAT_ERR_ADMIN_MALFORMED', message: expect.stringMatching(/JSON object/) } });
    }
  });

  it('rejects invalid UTF-8', async () => {
    const { path } = await startServer(gatedHandler().handler);
    const raw = await Raw.open(path);
    raw.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a]));
    expect((await raw.replies(1))[0]).toMatchObject({ id: null, ok: false, error: { code: 'SECBEAT_ERR_ADMIN_MALFORMED', message: expect.stringMatching(/UTF-8/) } });
  });

  it('names the valid commands when the command is unknown', async () => {
    const { path } = await startServer(gatedHandler().handler);
    const raw = await Raw.open(path);
    raw.send(`${JSON.stringify({ id: 7, cmd: 'format.disk' })}\n`);
    const [reply] = await raw.replies(1);
    expect(reply).toMatchObject({ id: 7, ok: false, error: { code: 'SECBEAT_ERR_ADMIN_UNKNOWN_COMMAND' } });
    expect(reply!.error.message).toMatch(/"format\.disk".*valid commands: ping, threads\.list.*node\.shutdown/);
  });

  it('names the field when arguments are invalid', async () => {
    const { path } = await startServer(gatedHandler().handler);
    const raw = await Raw.open(path);
    raw.send(
      [
        JSON.stringify({ id: 1, cmd: 'actor.inspect' }),
        JSON.stringify({ id: 2, cmd: 'log.level', level: 'loud' }),
        JSON.stringify({ id: 3, cmd: 'ping', extra: true }),
        JSON.stringify({ cmd: 'ping' }),
        '',
      ].join('\n'),
    );
    const replies = await raw.replies(4);
    expect(replies.map((r) => [r.id, r.error.code])).toEqual([
      [1, 'SECBEAT_ERR_ADMIN_INVALID_ARGS'],
      [2, 'SECBEAT_ERR_ADMIN_INVALID_ARGS'],
      [3, 'SECBEAT_ERR_ADMIN_INVALID_ARGS'],
      [null, 'SECBEAT_ERR_ADMIN_INVALID_ARGS'],
    ]);
    expect(replies.map((r) => r.error.message)).toEqual([
      expect.stringMatching(/^address: /),
      expect.stringMatching(/^level: /),
      expect.stringMatching(/extra/),
      expect.stringMatching(/^id: /),
    ]);
  });

  it('ignores empty lines and accepts CRLF; a last line without newline is answered at EOF', async () => {
    const { path } = await startServer(gatedHandler().handler);
    const raw = await Raw.open(path);
    raw.send(`\n\r\n \t \n${ping(1).replace('\n', '\r\n')}{"id":2,"cmd":"ping"}`);
    raw.socket.end();
    await raw.closed;
    expect(raw.lines.map((l) => JSON.parse(l))).toEqual([
      { id: 1, ok: true, result: 'pong' },
      { id: 2, ok: true, result: 'pong' },
    ]);
  });

  it('discards a line that is too long, answers once, and resynchronises at the next newline', async () => {
    const { path } = await startServer(gatedHandler().handler, { maxLineBytes: 64 });
    const raw = await Raw.open(path);
    raw.send('x'.repeat(50));
    raw.send('y'.repeat(50)); // crosses the limit across chunks
    raw.send(`${'z'.repeat(10_000)}\n${ping(1)}`);
    const first = await raw.replies(2);
    expect(first[0]).toMatchObject({ id: null, ok: false, error: { code: 'SECBEAT_ERR_ADMIN_LINE_TOO_LONG', message: expect.stringMatching(/64 bytes/) } });
    expect(first[1]).toEqual({ id: 1, ok: true, result: 'pong' });
    raw.send(`${'w'.repeat(65)}\n${'v'.repeat(64)}\n`);
    const replies = await raw.replies(4);
    expect(replies[2]).toMatchObject({ error: { code: 'SECBEAT_ERR_ADMIN_LINE_TOO_LONG' } });
    // Exactly at the limit: not too long, just not JSON.
    expect(replies[3]).toMatchObject({ error: { code: 'SECBEAT_ERR_ADMIN_MALFORMED' } });
  });

  it('answers busy beyond the in-flight limit, then serves again', async () => {
    const gated = gatedHandler();
    const { path } = await startServer(gated.handler, { maxInFlightPerConnection: 2 });
    const raw = await Raw.open(path);
    const inspect = (id: number, address: string): string => `${JSON.stringify({ id, cmd: 'actor.inspect', address })}\n`;
    raw.send(inspect(1, 'a') + inspect(2, 'b') + inspect(3, 'c'));
    expect((await raw.replies(1))[0]).toMatchObject({ id: 3, ok: false, error: { code: 'SECBEAT_ERR_ADMIN_BUSY' } });
    gated.release('a');
    gated.release('b');
    const replies = await raw.replies(3);
    expect(replies.slice(1).map((r) => r.id).sort()).toEqual([1, 2]);
    raw.send(ping(4));
    expect((await raw.replies(4))[3]).toEqual({ id: 4, ok: true, result: 'pong' });
  });

  it('turns handler failures into error replies: SecbeatError keeps its code, anything else is internal', async () => {
    const handler = (req: AdminRequest): Promise<unknown> => {
      if (req.cmd === 'actor.inspect') return Promise.reject(new SecbeatError('SECBEAT_ERR_ACTOR_NOT_FOUND', `no actor at ${req.address}`));
      if (req.cmd === 'actor.stop') return Promise.reject(new Error('boom'));
      if (req.cmd === 'actor.restart') throw new TypeError('thrown synchronously');
      if (req.cmd === 'node.stats') return Promise.resolve({ big: 10n });
      return Promise.resolve(undefined);
    };
    const { path } = await startServer(handler);
    await using client = await AdminClient.connect(path);
    expect(await client.request({ cmd: 'actor.inspect', address: 'ghost' })).toEqual({
      id: 1,
      ok: false,
      error: { code: 'SECBEAT_ERR_ACTOR_NOT_FOUND', message: 'no actor at ghost' },
    });
    expect(await client.request({ cmd: 'actor.stop', address: 'x' })).toEqual({ id: 2, ok: false, error: { code: 'SECBEAT_ERR_INTERNAL', message: 'boom' } });
    expect(await client.request({ cmd: 'actor.restart', address: 'x' })).toEqual({
      id: 3,
      ok: false,
      error: { code: 'SECBEAT_ERR_INTERNAL', message: 'thrown synchronously' },
    });
    expect(await client.request({ cmd: 'node.stats' })).toMatchObject({ id: 4, ok: false, error: { code: 'SECBEAT_ERR_INTERNAL', message: expect.stringMatching(/cannot be encoded as JSON/) } });
    expect(await client.request({ cmd: 'ping' })).toEqual({ id: 5, ok: true, result: null });
  });

  it('answers a timeout when the handler hangs', async () => {
    const { path } = await startServer(gatedHandler().handler, { requestTimeoutMs: 30 });
    await using client = await AdminClient.connect(path);
    const reply = await client.request({ cmd: 'actor.inspect', address: 'never' });
    expect(reply).toMatchObject({ id: 1, ok: false, error: { code: 'SECBEAT_ERR_ASK_TIMEOUT', message: expect.stringMatching(/actor\.inspect did not complete within 30 ms/) } });
    expect(await client.request({ cmd: 'ping' })).toEqual({ id: 2, ok: true, result: 'pong' });
  });

  it('gives commands that carry their own timeoutMs that deadline plus a grace period', async () => {
    const handler = (req: AdminRequest): Promise<unknown> => new Promise((r) => setTimeout(() => r(req.cmd), 60));
    const { path } = await startServer(handler, { requestTimeoutMs: 10 });
    await using client = await AdminClient.connect(path);
    expect(await client.request({ cmd: 'node.drain', timeoutMs: 0 })).toEqual({ id: 1, ok: true, result: 'node.drain' });
  });

  it('survives a client that disconnects mid-request', async () => {
    let release = (): void => undefined;
    let started = (): void => undefined;
    const running = new Promise<void>((r) => (started = r));
    const handler = (req: AdminRequest): Promise<unknown> => {
      if (req.cmd === 'ping') return Promise.resolve('pong');
      started();
      return new Promise((r) => (release = () => r('late')));
    };
    const { path } = await startServer(handler);
    const raw = await Raw.open(path);
    raw.send(`${JSON.stringify({ id: 1, cmd: 'actor.inspect', address: 'a' })}\n`);
    await running;
    raw.socket.destroy();
    await raw.closed;
    release();
    await using client = await AdminClient.connect(path);
    expect(await client.request({ cmd: 'ping' })).toEqual({ id: 1, ok: true, result: 'pong' });
  });

  it('refuses connections beyond the limit with a busy reply', async () => {
    const { path } = await startServer(gatedHandler().handler, { maxConnections: 1 });
    const first = await Raw.open(path);
    const second = await Raw.open(path);
    await second.closed;
    expect(second.lines.map((l) => JSON.parse(l))).toEqual([
      { id: null, ok: false, error: { code: 'SECBEAT_ERR_ADMIN_BUSY', message: expect.stringMatching(/too many admin connections/) } },
    ]);
    first.send(ping(1));
    expect(await first.replies(1)).toEqual([{ id: 1, ok: true, result: 'pong' }]);
  });

  it('drops a client that never reads once its queued replies pass the cap', async () => {
    const big = 'x'.repeat(4 * 1024 * 1024);
    const { path } = await startServer(() => Promise.resolve(big), { maxQueuedOutputBytes: 1024 });
    const raw = await Raw.open(path);
    raw.socket.pause();
    raw.send(ping(1) + ping(2) + ping(3));
    // A paused socket never sees the close, so wait for the server's word, then read what made it out.
    while (!logLines.some((l) => l.includes('does not read its replies'))) await new Promise((r) => setImmediate(r));
    raw.socket.resume();
    await raw.closed;
    expect(raw.lines.length).toBeLessThan(3);
    await using client = await AdminClient.connect(path);
    expect((await client.request({ cmd: 'ping' })).ok).toBe(true);
  });

  it('logs rejections as admin.rejected security events, rate-limited', async () => {
    const { path } = await startServer(gatedHandler().handler);
    logLines.length = 0;
    const raw = await Raw.open(path);
    raw.send('nope\n'.repeat(50));
    await raw.replies(50);
    const events = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['event'] === 'admin.rejected' && 'code' in l);
    expect(events.length).toBe(10);
    expect(events[0]).toMatchObject({ security: true, code: 'SECBEAT_ERR_ADMIN_MALFORMED', detail: expect.stringMatching(/invalid JSON/) });
  });

  it('close() ends open connections and stops accepting', async () => {
    const { server, path } = await startServer(gatedHandler().handler);
    const raw = await Raw.open(path);
    await server.close();
    await raw.closed;
    await expect(AdminClient.connect(path)).rejects.toMatchObject({ code: 'SECBEAT_ERR_ADMIN_CONNECT' });
  });
});
