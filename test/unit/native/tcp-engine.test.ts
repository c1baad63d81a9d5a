// The native TcpEngine over real loopback sockets: client → engine listener → backend started by each test.
// Covers the loader, argument checks, admission (accepted events, decide), data integrity, half-close and
// reset propagation, backend connect failures and deadlines, removeAll/stopListening/close, many connections
// with exactly-once reports, SO_REUSEPORT sharing, and engines in worker threads. Needs the addon built
// (npm install does it).
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import {
  loadNative,
  loadNativeFrom,
  NATIVE_ABI_VERSION,
  nativeCandidates,
  type AcceptedClient,
  type ClosedConnection,
  type NativeBinding,
  type TcpEngine,
  type TcpEngineListenOptions,
  type TcpEngineOptions,
} from '../../../src/native/binding.ts';
import { roundTrip, startEchoServer, type EchoServer } from '../../helpers/echo-server.ts';
import { freePort } from '../../helpers/ports.ts';

function requireBinding(): { binding: NativeBinding; path: string } {
  const loaded = loadNative();
  if (!loaded.ok) throw loaded.error; // a missing build is a failure, not a skip: npm install builds it
  return loaded;
}

// Every socket, server, engine and worker a test makes is disposed here, also when the test fails midway.
const cleanups: (() => Promise<void> | void)[] = [];
function defer(cleanup: () => Promise<void> | void): void {
  cleanups.push(cleanup);
}
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups.length = 0;
});

/**
 * Thread ids of this process's engine threads (pthread_setname_np "sb-tcp"). Tests compare id sets rather
 * than counts: other test files run in other threads of this process and may start engines meanwhile.
 */
function engineThreadIds(): Set<string> {
  const ids = new Set<string>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === 'sb-tcp') ids.add(tid);
    } catch {
      // the thread exited between readdir and read
    }
  }
  return ids;
}

function newIds(after: Set<string>, before: Set<string>): Set<string> {
  return new Set([...after].filter((tid) => !before.has(tid)));
}

/**
 * Waits until one of `started` (engine threads that appeared while the test created its engine) is gone.
 * Normally there is exactly one; if another file's engine started in the same moment, the set holds both and
 * the check can only be weaker, never wrong. A joined thread's /proc entry can outlive the join by a moment
 * (the kernel wakes the joiner before it reaps the task), hence the wait.
 */
async function untilThreadExits(started: Set<string>): Promise<void> {
  expect(started.size).toBeGreaterThanOrEqual(1);
  await until(() => {
    const now = engineThreadIds();
    return [...started].some((tid) => !now.has(tid));
  }, 'the engine thread to exit', 2_000);
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function listenOn(server: Server, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((r) => server.listen({ host, port: 0 }, r));
  defer(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as { port: number }).port;
}

async function echoBackend(): Promise<EchoServer> {
  const echo = await startEchoServer();
  defer(async () => {
    await echo[Symbol.asyncDispose]();
  });
  return echo;
}

/** A backend with a custom per-connection handler; `connections` counts what it accepted. */
async function startBackend(handler: (s: Socket) => void): Promise<{ port: number; connections: number }> {
  const sockets = new Set<Socket>();
  const backend = { port: 0, connections: 0 };
  const server = createServer({ allowHalfOpen: true }, (s) => {
    backend.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    handler(s);
  });
  backend.port = await listenOn(server);
  defer(() => {
    for (const s of sockets) s.destroy();
  });
  return backend;
}

/** What the proxy does with each client as its accepted event arrives; `hold` leaves it for the test. */
type Verdict = 'admit' | 'refuse' | 'hold';

interface EngineProxy {
  engine: TcpEngine;
  port: number;
  verdict: Verdict;
  /** Every accepted event and every closed event, in delivery order. */
  accepted: AcceptedClient[];
  closed: ClosedConnection[];
}

/** An engine listening on loopback with its own verdict policy; closed after the test. */
function startEngine(
  binding: NativeBinding,
  listen: Partial<TcpEngineListenOptions> & { backendPort: number },
  options: TcpEngineOptions & { verdict?: Verdict } = {},
): EngineProxy {
  const { verdict = 'admit', ...engineOptions } = options;
  // onEvents runs on a later turn than this one, so `proxy` is assigned by then.
  const engine = new binding.TcpEngine((accepted, closed) => {
    proxy.accepted.push(...accepted);
    proxy.closed.push(...closed);
    if (proxy.verdict === 'hold' || accepted.length === 0) return;
    const ids = accepted.map((c) => c.id);
    if (proxy.verdict === 'admit') proxy.engine.decide(ids, []);
    else proxy.engine.decide([], ids);
  }, engineOptions);
  defer(() => engine.close());
  const proxy: EngineProxy = { engine, port: 0, verdict, accepted: [], closed: [] };
  proxy.port = engine.listen({ host: '127.0.0.1', port: 0, backendHost: '127.0.0.1', ...listen });
  return proxy;
}

async function closedEvent(proxy: EngineProxy, id: number): Promise<ClosedConnection> {
  await until(() => proxy.closed.some((c) => c.id === id), `the closed event of connection ${id}`);
  return proxy.closed.find((c) => c.id === id)!;
}

async function acceptedEvent(proxy: EngineProxy, index: number): Promise<AcceptedClient> {
  await until(() => proxy.accepted.length > index, `accepted event #${index}`);
  return proxy.accepted[index]!;
}

/**
 * A client through a fresh connection whose closed event comes after everything the engine did before: the
 * engine reports from one thread in order, so once it is in, any stray report about an earlier connection
 * would be in too.
 */
async function barrier(proxy: EngineProxy): Promise<void> {
  const index = proxy.accepted.length;
  await roundTrip(proxy.port, Buffer.from('barrier'));
  await closedEvent(proxy, (await acceptedEvent(proxy, index)).id);
}

function dial(port: number, host = '127.0.0.1'): Socket {
  const s = connect({ host, port, allowHalfOpen: true });
  defer(() => {
    s.destroy();
  });
  return s;
}

function connected(s: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
}

function readAll(s: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (b: Buffer) => chunks.push(b));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
  });
}

/** Writes `text` and resolves with as many bytes read back (through an echo backend). */
function echoOnce(s: Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (b: Buffer): void => {
      got += b.toString();
      if (got.length >= text.length) {
        s.off('data', onData);
        s.off('error', reject);
        resolve(got);
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(text);
  });
}

/** Resolves with the error code the socket failed with, or 'none' if the peer ended it cleanly (FIN). */
function closeOutcome(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    let code = 'none';
    s.on('error', (e: NodeJS.ErrnoException) => (code = e.code ?? e.message));
    s.on('data', () => {});
    s.once('end', () => s.destroy()); // allowHalfOpen sockets stay open after EOF until told otherwise
    s.once('close', () => resolve(code));
  });
}

/** Waits for a worker's first message that satisfies `match`; rejects if the worker fails or exits first. */
function workerMessage<T>(worker: Worker, match: (m: T) => boolean): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: T): void => {
      if (!match(m)) return;
      worker.off('message', onMessage);
      resolve(m);
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before the message`)));
  });
}

function startWorker(code: string, workerData: Record<string, unknown> = {}): Worker {
  const worker = new Worker(code, { eval: true, workerData: { path: requireBinding().path, ...workerData } });
  defer(async () => {
    await worker.terminate();
  });
  return worker;
}

/**
 * The accept queue length of the IPv4 listener on 127.0.0.1:`port`: the rx_queue of its LISTEN row in
 * /proc/net/tcp (addresses as a little-endian host prints them).
 */
function acceptQueueLength(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local && fields[3] === '0A') return Number.parseInt(fields[4]?.split(':')[1] ?? '', 16);
  }
  return -1;
}

/** The engine's methods with the argument types loosened, for feeding them what TypeScript would reject. */
interface LooseEngine {
  listen(options?: unknown): number;
  decide(admit?: unknown, refuse?: unknown): void;
}
type LooseEngineConstructor = new (...args: unknown[]) => TcpEngine;

describe('native TcpEngine: loading and arguments', () => {
  it('loads from the build output and its abiVersion matches the typed surface', () => {
    const { binding, path } = requireBinding();
    expect(nativeCandidates()).toContain(path);
    expect(binding.abiVersion).toBe(NATIVE_ABI_VERSION);
    expect(typeof binding.TcpEngine).toBe('function');
  });

  it('lists every path tried and why when the addon cannot be loaded', () => {
    const missing = '/nonexistent/secbeat_native.node';
    const notAddon = new URL(import.meta.url).pathname; // a file that exists but is no shared object
    const result = loadNativeFrom([missing, notAddon]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('SECBEAT_ERR_INTERNAL');
    expect(result.error.message).toContain(`${missing}: not found`);
    expect(result.error.message).toContain(`${notAddon}: `);
    expect(nativeCandidates({ SECBEAT_NATIVE_PATH: '/opt/x.node' })).toEqual(['/opt/x.node']);
  });

  it('rejects bad constructor arguments', () => {
    const Loose = requireBinding().binding.TcpEngine as unknown as LooseEngineConstructor;
    const onEvents = (): void => {};
    expect(() => new Loose()).toThrow(TypeError);
    expect(() => new Loose(42)).toThrow(TypeError);
    expect(() => new Loose(onEvents, 5)).toThrow(TypeError);
    expect(() => new Loose(onEvents, { pipeSizeBytes: 'big' })).toThrow(TypeError);
    expect(() => new Loose(onEvents, { pipeSizeBytes: -1 })).toThrow(RangeError);
    expect(() => new Loose(onEvents, { pipeSizeBytes: 1.5 })).toThrow(RangeError);
    expect(() => (Loose as unknown as (...args: unknown[]) => unknown)(onEvents)).toThrow(TypeError);
  });

  it('rejects bad listen options without listening, then listens once', async () => {
    const { binding } = requireBinding();
    const engine = new binding.TcpEngine(() => {});
    defer(() => engine.close());
    const loose = engine as unknown as LooseEngine;
    const good = { host: '127.0.0.1', port: 0, backendHost: '127.0.0.1', backendPort: 9 };
    expect(() => loose.listen()).toThrow(TypeError);
    expect(() => loose.listen({ ...good, host: 'localhost' })).toThrow(TypeError);
    expect(() => loose.listen({ ...good, host: 7 })).toThrow(TypeError);
    expect(() => loose.listen({ ...good, port: 65536 })).toThrow(RangeError);
    expect(() => loose.listen({ ...good, port: -1 })).toThrow(RangeError);
    expect(() => loose.listen({ ...good, port: 80.5 })).toThrow(RangeError);
    expect(() => loose.listen({ ...good, port: '80' })).toThrow(TypeError);
    expect(() => loose.listen({ ...good, backendPort: undefined })).toThrow(TypeError);
    expect(() => loose.listen({ ...good, backendHost: 'backend.example' })).toThrow(TypeError);
    expect(() => loose.listen({ ...good, backlog: 0 })).toThrow(RangeError);
    expect(() => loose.listen({ ...good, connectTimeoutMs: -1 })).toThrow(RangeError);
    expect(() => loose.listen({ ...good, idleTimeoutMs: 1.5 })).toThrow(RangeError);
    expect(() => loose.listen({ ...good, noDelay: 'yes' })).toThrow(TypeError);
    const port = engine.listen(good);
    expect(port).toBeGreaterThan(0);
    expect(() => engine.listen(good)).toThrow(expect.objectContaining({ code: 'EALREADY' }));
    // The listen() that succeeded is the one in force.
    const client = dial(port);
    client.on('error', () => {});
    await connected(client);
  });

  it('reports a port held by a socket without SO_REUSEPORT as EADDRINUSE from bind, and may listen elsewhere', async () => {
    const { binding } = requireBinding();
    const taken = await listenOn(createServer());
    const engine = new binding.TcpEngine(() => {});
    defer(() => engine.close());
    expect(() => engine.listen({ host: '127.0.0.1', port: taken, backendHost: '127.0.0.1', backendPort: 9 })).toThrow(
      expect.objectContaining({ code: 'EADDRINUSE', syscall: 'bind' }),
    );
    // A failed bind leaves the engine unbound, not "already listening".
    expect(engine.listen({ host: '127.0.0.1', port: 0, backendHost: '127.0.0.1', backendPort: 9 })).toBeGreaterThan(0);
  });

  it('decide() rejects unknown, duplicate and malformed ids and then takes no verdict at all', async () => {
    const { binding } = requireBinding();
    const echo = await echoBackend();
    const proxy = startEngine(binding, { backendPort: echo.port }, { verdict: 'hold' });
    const loose = proxy.engine as unknown as LooseEngine;
    const client = dial(proxy.port);
    const { id } = await acceptedEvent(proxy, 0);
    const invalid = expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' });
    expect(() => proxy.engine.decide([id, id + 1000], [])).toThrow(invalid);
    expect(() => proxy.engine.decide([], [id + 1000, id])).toThrow(invalid);
    expect(() => proxy.engine.decide([id], [id])).toThrow(invalid);
    expect(() => proxy.engine.decide([id, id], [])).toThrow(invalid);
    expect(() => loose.decide([id, 1.5], [])).toThrow(TypeError);
    expect(() => loose.decide([id], 'x')).toThrow(TypeError);
    expect(() => loose.decide(id, [])).toThrow(TypeError);
    expect(proxy.engine.stats()).toMatchObject({ waiting: 1, connections: 0 });
    proxy.engine.decide([id], []);
    expect(proxy.engine.stats()).toMatchObject({ waiting: 0, connections: 1 });
    expect(() => proxy.engine.decide([], [id])).toThrow(invalid);
    // Still admitted (the failed calls took nothing, the throwing one above included): it forwards.
    expect(await echoOnce(client, 'admitted')).toBe('admitted');
    expect(echo.connections).toBe(1);
  });

  it('after close(): decide() and listen() throw ERR_INVALID_STATE, the rest are no-ops', () => {
    const { binding } = requireBinding();
    const engine = new binding.TcpEngine(() => {});
    engine.close();
    const closed = expect.objectContaining({ code: 'ERR_INVALID_STATE' });
    expect(() => engine.decide([], [])).toThrow(closed);
    expect(() => engine.listen({ host: '127.0.0.1', port: 0, backendHost: '127.0.0.1', backendPort: 9 })).toThrow(closed);
    expect(() => {
      engine.stopListening();
      engine.removeAll();
      engine.close();
    }).not.toThrow();
    expect(engine.stats()).toEqual({
      connections: 0,
      waiting: 0,
      pipesPooled: 0,
      pipesInUse: 0,
      bytesIn: 0,
      bytesOut: 0,
      acceptErrors: 0,
    });
  });
});

describe('native TcpEngine: admission', () => {
  it('accepted events carry the client address: 127.0.0.1, and ::1 on an IPv6 listener', async () => {
    const { binding } = requireBinding();
    const echo = await echoBackend();
    const v4 = startEngine(binding, { backendPort: echo.port });
    expect((await roundTrip(v4.port, Buffer.from('over IPv4'))).toString()).toBe('over IPv4');
    expect(await acceptedEvent(v4, 0)).toEqual({ id: expect.any(Number), ip: '127.0.0.1', ipv6: false });
    expect((await closedEvent(v4, v4.accepted[0]!.id)).ip).toBe('127.0.0.1');

    const v6 = startEngine(binding, { host: '::1', backendPort: echo.port });
    const client = dial(v6.port, '::1');
    const reply = readAll(client);
    client.end('over IPv6');
    expect((await reply).toString()).toBe('over IPv6');
    expect(await acceptedEvent(v6, 0)).toEqual({ id: expect.any(Number), ip: '::1', ipv6: true });
    expect((await closedEvent(v6, v6.accepted[0]!.id)).ip).toBe('::1');
  });

  it('a refused client is reset, never reported, and never reaches the backend', async () => {
    const { binding } = requireBinding();
    const backend = await startBackend((s) => s.pipe(s));
    const proxy = startEngine(binding, { backendPort: backend.port }, { verdict: 'refuse' });
    const refused = dial(proxy.port);
    expect(await closeOutcome(refused)).toBe('ECONNRESET');
    const { id: refusedId } = await acceptedEvent(proxy, 0);
    proxy.verdict = 'admit';
    await barrier(proxy);
    expect(proxy.closed.map((c) => c.id)).not.toContain(refusedId);
    expect(proxy.closed).toHaveLength(1);
    expect(backend.connections).toBe(1); // the barrier's
    expect(proxy.engine.stats()).toMatchObject({ waiting: 0, connections: 0 });
  });

  it('forwards what a client sent, half-close included, while it waited for its verdict', async () => {
    const { binding } = requireBinding();
    const echo = await echoBackend();
    const proxy = startEngine(binding, { backendPort: echo.port }, { verdict: 'hold' });
    const payload = randomBytes(100_000);
    const client = dial(proxy.port);
    const reply = readAll(client);
    client.end(payload);
    const { id } = await acceptedEvent(proxy, 0);
    expect(echo.connections).toBe(0);
    proxy.engine.decide([id], []);
    expect((await reply).equals(payload)).toBe(true);
    expect(await closedEvent(proxy, id)).toMatchObject({ bytesIn: payload.length, bytesOut: payload.length, reason: 'closed' });
  });
});

describe('native TcpEngine: forwarding', () => {
  it('round-trips a small payload and reports it closed once, with byte counts and times', async () => {
    const { binding } = requireBinding();
    const echo = await echoBackend();
    const proxy = startEngine(binding, { backendPort: echo.port });
    const reply = await roundTrip(proxy.port, Buffer.from('hello, engine'));
    expect(reply.toString()).toBe('hello, engine');
    const { id } = await acceptedEvent(proxy, 0);
    const closed = await closedEvent(proxy, id);
    expect(closed).toEqual({
      id,
      ip: '127.0.0.1',
      bytesIn: 13,
      bytesOut: 13,
      connectMs: expect.any(Number),
      durationMs: expect.any(Number),
      reason: 'closed',
    });
    expect(closed.connectMs).toBeGreaterThanOrEqual(0);
    expect(closed.durationMs).toBeGreaterThanOrEqual(closed.connectMs);
    await barrier(proxy);
    expect(proxy.closed.filter((c) => c.id === id)).toHaveLength(1);
    expect(proxy.engine.stats()).toMatchObject({ connections: 0, waiting: 0, pipesInUse: 0, bytesIn: 13 + 7, bytesOut: 13 + 7 });
  });

  // 256 KiB is the engine's default pipe size; 0 keeps the kernel's 64 KiB (16 slots).
  it.each([262_144, 0])('moves 64 MiB each way intact (pipeSizeBytes %i)', async (pipeSizeBytes) => {
    const { binding } = requireBinding();
    const echo = await echoBackend();
    const proxy = startEngine(binding, { backendPort: echo.port }, { pipeSizeBytes });
    const total = 64 * 1024 * 1024;
    const chunk = randomBytes(1024 * 1024);
    const sent = createHash('sha256');
    const received = createHash('sha256');
    let receivedBytes = 0;
    const client = dial(proxy.port);
    const done = new Promise<void>((resolve, reject) => {
      client.on('data', (b: Buffer) => {
        received.update(b);
        receivedBytes += b.length;
      });
      client.once('end', () => resolve());
      client.once('error', reject);
    });
    for (let i = 0; i < total / chunk.length; i++) {
      // vary the content per chunk so a reordering of chunks changes the hash
      chunk.writeUInt32BE(i, 0);
      sent.update(chunk);
      if (!client.write(Buffer.from(chunk))) await new Promise((r) => client.once('drain', r));
    }
    client.end();
    await done;
    expect(receivedBytes).toBe(total);
    expect(received.digest('hex')).toBe(sent.digest('hex'));
    const closed = await closedEvent(proxy, (await acceptedEvent(proxy, 0)).id);
    expect(closed).toMatchObject({ bytesIn: total, bytesOut: total, reason: 'closed' });
  }, 60_000);

  it('propagates a client half-close: the backend sees EOF and can still answer', async () => {
    const { binding } = requireBinding();
    let backendSawEnd = false;
    const backend = await startBackend((s) => {
      const got: Buffer[] = [];
      s.on('data', (b: Buffer) => got.push(b));
      s.once('end', () => {
        backendSawEnd = true;
        s.end(`got ${Buffer.concat(got).toString()}`);
      });
    });
    const proxy = startEngine(binding, { backendPort: backend.port });
    const client = dial(proxy.port);
    const reply = readAll(client);
    client.end('request');
    expect((await reply).toString()).toBe('got request');
    expect(backendSawEnd).toBe(true);
    const closed = await closedEvent(proxy, (await acceptedEvent(proxy, 0)).id);
    expect(closed).toMatchObject({ bytesIn: 7, bytesOut: 11, reason: 'closed' });
  });

  it('propagates a backend half-close: the client sees EOF and can still send', async () => {
    const { binding } = requireBinding();
    let backendGot: Promise<Buffer> | null = null;
    const backend = await startBackend((s) => {
      backendGot = readAll(s);
      s.end('banner');
    });
    const proxy = startEngine(binding, { backendPort: backend.port });
    const client = dial(proxy.port);
    const banner = await readAll(client);
    expect(banner.toString()).toBe('banner');
    client.end('after the backend closed its side');
    await until(() => backendGot !== null, 'the backend connection');
    expect((await backendGot!).toString()).toBe('after the backend closed its side');
    expect((await closedEvent(proxy, (await acceptedEvent(proxy, 0)).id)).reason).toBe('closed');
  });

  it('propagates a client reset to the backend as a reset', async () => {
    const { binding } = requireBinding();
    let backendOutcome: Promise<string> | null = null;
    const backend = await startBackend((s) => {
      backendOutcome = closeOutcome(s);
      s.pipe(s);
    });
    const proxy = startEngine(binding, { backendPort: backend.port });
    const client = dial(proxy.port);
    client.on('error', () => {});
    expect(await echoOnce(client, 'x')).toBe('x');
    client.resetAndDestroy();
    expect(await backendOutcome!).toBe('ECONNRESET');
    expect((await closedEvent(proxy, (await acceptedEvent(proxy, 0)).id)).reason).toBe('reset');
  });

  it('propagates a backend reset to the client as a reset', async () => {
    const { binding } = requireBinding();
    const backend = await startBackend((s) => {
      s.once('data', () => s.resetAndDestroy());
    });
    const proxy = startEngine(binding, { backendPort: backend.port });
    const client = dial(proxy.port);
    const outcome = closeOutcome(client);
    client.write('trigger');
    expect(await outcome).toBe('ECONNRESET');
    expect((await closedEvent(proxy, (await acceptedEvent(proxy, 0)).id)).reason).toBe('reset');
  });
});

describe('native TcpEngine: backend failures and deadlines', () => {
  it('a backend that refuses resets the client: connect_refused, connectMs -1', async () => {
    const { binding } = requireBinding();
    const proxy = startEngine(binding, { backendPort: await freePort() });
    const client = dial(proxy.port);
    expect(await closeOutcome(client)).toBe('ECONNRESET');
    const closed = await closedEvent(proxy, (await acceptedEvent(proxy, 0)).id);
    expect(closed).toMatchObject({ bytesIn: 0, bytesOut: 0, connectMs: -1, reason: 'connect_refused' });
    expect(closed.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('a backend connect that never completes times out: connect_timeout, connectMs -1', async () => {
    const { binding } = requireBinding();
    // A loopback listener with backlog 1 in a worker whose event loop is blocked, so nothing accepts. Linux
    // keeps backlog + 1 completed handshakes in the accept queue and drops every SYN after that, so a
    // connect to it stays in SYN_SENT: the same as a backend that does not answer, without leaving loopback.
    const release = new Int32Array(new SharedArrayBuffer(4));
    const stalled = startWorker(
      `const { parentPort, workerData } = require('node:worker_threads');
      const server = require('node:net').createServer();
      server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
        parentPort.postMessage(server.address().port);
        Atomics.wait(workerData.release, 0, 0);
        server.close();
      });`,
      { release },
    );
    defer(() => {
      Atomics.store(release, 0, 1);
      Atomics.notify(release, 0);
    });
    const stalledPort = await workerMessage<number>(stalled, () => true);
    for (let i = 0; i < 2; i++) dial(stalledPort).on('error', () => {});
    await until(() => acceptQueueLength(stalledPort) === 2, 'the stalled accept queue to fill');

    const proxy = startEngine(binding, { backendPort: stalledPort, connectTimeoutMs: 100 });
    const client = dial(proxy.port);
    expect(await closeOutcome(client)).toBe('ECONNRESET');
    const closed = await closedEvent(proxy, (await acceptedEvent(proxy, 0)).id);
    expect(closed).toMatchObject({ bytesIn: 0, bytesOut: 0, connectMs: -1, reason: 'connect_timeout' });
    expect(closed.durationMs).toBeGreaterThanOrEqual(100);
  });

  it('closes a connection idle for idleTimeoutMs on both sides: idle', async () => {
    const { binding } = requireBinding();
    let backendOutcome: Promise<string> | null = null;
    const backend = await startBackend((s) => {
      backendOutcome = closeOutcome(s);
      s.on('data', (b: Buffer) => s.write(b));
    });
    // Generous next to a loopback echo (well under a millisecond), so the echo always lands before the timeout.
    const proxy = startEngine(binding, { backendPort: backend.port, idleTimeoutMs: 250 });
    const client = dial(proxy.port);
    const outcome = closeOutcome(client);
    expect(await echoOnce(client, 'one message, then silence')).toBe('one message, then silence');
    const closed = await closedEvent(proxy, (await acceptedEvent(proxy, 0)).id);
    expect(closed).toMatchObject({ bytesIn: 25, bytesOut: 25, reason: 'idle' });
    expect(closed.durationMs).toBeGreaterThanOrEqual(250);
    expect(await outcome).toBe('none');
    await until(() => backendOutcome !== null, 'the backend connection');
    expect(await backendOutcome!).toBe('none');
  });
});

describe('native TcpEngine: lifecycle', () => {
  it('removeAll() ends admitted connections as removed, once, and leaves waiting clients waiting', async () => {
    const { binding } = requireBinding();
    const echo = await echoBackend();
    const proxy = startEngine(binding, { backendPort: echo.port });
    const admitted = [dial(proxy.port), dial(proxy.port)];
    for (const c of admitted) expect(await echoOnce(c, 'ping')).toBe('ping');
    const outcomes = admitted.map(closeOutcome);
    proxy.verdict = 'hold';
    const waiting = dial(proxy.port);
    const { id: waitingId } = await acceptedEvent(proxy, 2);

    proxy.engine.removeAll();
    await until(() => proxy.closed.length === 2, 'two removed reports');
    expect(proxy.closed.map((c) => c.reason)).toEqual(['removed', 'removed']);
    expect(proxy.closed.map((c) => c.bytesIn)).toEqual([4, 4]);
    expect(await Promise.all(outcomes)).toEqual(['none', 'none']);
    expect(proxy.engine.stats()).toMatchObject({ connections: 0, waiting: 1 });

    proxy.engine.removeAll();
    proxy.engine.decide([waitingId], []);
    expect(await echoOnce(waiting, 'still here')).toBe('still here');
    waiting.end();
    expect((await closedEvent(proxy, waitingId)).reason).toBe('closed');
    const ids = proxy.closed.map((c) => c.id);
    expect(new Set(ids).size).toBe(3);
    expect(ids).toHaveLength(3);
  });

  it('stopListening() refuses new connections and keeps open ones forwarding', async () => {
    const { binding } = requireBinding();
    const echo = await echoBackend();
    const proxy = startEngine(binding, { backendPort: echo.port });
    const open = dial(proxy.port);
    expect(await echoOnce(open, 'before')).toBe('before');
    proxy.engine.stopListening();
    // The engine thread closes the listener on its next turn: a client that slips in meanwhile is admitted
    // like any other, so probe until one is refused.
    const deadline = Date.now() + 5_000;
    for (;;) {
      const probe = dial(proxy.port);
      const result = await new Promise<string>((r) => {
        probe.once('connect', () => r('connected'));
        probe.once('error', (e: NodeJS.ErrnoException) => r(e.code ?? e.message));
      });
      probe.destroy();
      if (result === 'ECONNREFUSED') break;
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(await echoOnce(open, 'after')).toBe('after');
    proxy.engine.stopListening();
    open.end();
    const closed = await closedEvent(proxy, (await acceptedEvent(proxy, 0)).id);
    expect(closed).toMatchObject({ bytesIn: 11, bytesOut: 11, reason: 'closed' });
  });

  it('handles 500 concurrent connections, each reported exactly once, with byte totals that add up', async () => {
    const { binding } = requireBinding();
    const echo = await echoBackend();
    const proxy = startEngine(binding, { backendPort: echo.port });
    const payloads = Array.from({ length: 500 }, (_, i) => randomBytes(1 + ((i * 7919) % 32768)));
    const replies = await Promise.all(payloads.map((p) => roundTrip(proxy.port, p, 30_000)));
    replies.forEach((r, i) => expect(r.equals(payloads[i]!)).toBe(true));
    // Racing removeAll() against connections that are closing anyway must not double-report.
    proxy.engine.removeAll();
    await until(() => proxy.closed.length >= 500, '500 closed events', 30_000);
    await barrier(proxy);
    expect(proxy.accepted).toHaveLength(501);
    expect(proxy.closed).toHaveLength(501);
    expect(new Set(proxy.closed.map((c) => c.id)).size).toBe(501);
    const sum = (key: 'bytesIn' | 'bytesOut'): number => proxy.closed.reduce((n, c) => n + c[key], 0);
    const sent = payloads.reduce((n, p) => n + p.length, 0) + 'barrier'.length;
    const stats = proxy.engine.stats();
    expect(stats).toMatchObject({ connections: 0, waiting: 0, pipesInUse: 0, bytesIn: sent, bytesOut: sent });
    expect(sum('bytesIn')).toBe(sent);
    expect(sum('bytesOut')).toBe(sent);
  }, 60_000);

  it('close() reports admitted connections as removed, resets waiting clients, and stops its thread', async () => {
    const { binding } = requireBinding();
    const echo = await echoBackend();
    const before = engineThreadIds();
    const proxy = startEngine(binding, { backendPort: echo.port });
    const started = newIds(engineThreadIds(), before);
    const admitted = dial(proxy.port);
    expect(await echoOnce(admitted, 'ping')).toBe('ping');
    const admittedOutcome = closeOutcome(admitted);
    proxy.verdict = 'hold';
    const waiting = dial(proxy.port);
    const waitingOutcome = closeOutcome(waiting);
    await acceptedEvent(proxy, 1);

    proxy.engine.close();
    await untilThreadExits(started);
    const closed = await closedEvent(proxy, proxy.accepted[0]!.id);
    expect(closed).toMatchObject({ bytesIn: 4, bytesOut: 4, reason: 'removed' });
    expect(await admittedOutcome).toBe('none');
    expect(await waitingOutcome).toBe('ECONNRESET');
    expect(proxy.closed).toHaveLength(1);
    expect(proxy.engine.stats()).toMatchObject({ connections: 0, waiting: 0 });
  });

  it('two engines listening on one port (SO_REUSEPORT) both accept and forward', async () => {
    const { binding } = requireBinding();
    const echo = await echoBackend();
    const first = startEngine(binding, { backendPort: echo.port });
    const second = startEngine(binding, { port: first.port, backendPort: echo.port });
    expect(second.port).toBe(first.port);
    // The kernel spreads connections by a hash of the 4-tuple: a few dozen reach both almost surely.
    for (let i = 0; i < 200 && (first.accepted.length === 0 || second.accepted.length === 0); i++) {
      expect((await roundTrip(first.port, Buffer.from(`#${i}`))).toString()).toBe(`#${i}`);
      await until(() => first.accepted.length + second.accepted.length === i + 1, `accepted event #${i}`);
    }
    expect(first.accepted.length).toBeGreaterThan(0);
    expect(second.accepted.length).toBeGreaterThan(0);
    await until(
      () => first.closed.length === first.accepted.length && second.closed.length === second.accepted.length,
      'every connection reported by its own engine',
    );
    expect([...first.closed, ...second.closed].every((c) => c.reason === 'closed')).toBe(true);
  });
});

/**
 * Worker-script prelude defining collectGarbage(). The flag is process-wide and only adds a `gc` global to
 * contexts created afterwards, hence the fresh vm context (and a name no earlier worker already got).
 */
const COLLECT_GARBAGE = `require('node:v8').setFlagsFromString('--expose-gc');
      const collectGarbage = require('node:vm').runInNewContext('gc');`;

describe('native TcpEngine: worker threads', () => {
  it('runs in a worker thread; terminating the worker mid-transfer leaves no engine thread', async () => {
    const before = engineThreadIds();
    // Everything inside the worker: an echo backend, the worker's own engine admitting every client, and a
    // client streaming through it; then the worker is terminated while bytes are moving.
    const worker = startWorker(`
      const { parentPort, workerData } = require('node:worker_threads');
      const net = require('node:net');
      const { TcpEngine } = require(workerData.path);
      const engine = new TcpEngine((accepted) => {
        if (accepted.length > 0) engine.decide(accepted.map((c) => c.id), []);
      });
      const backend = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s)).listen(0, '127.0.0.1', () => {
        const port = engine.listen({ host: '127.0.0.1', port: 0, backendHost: '127.0.0.1', backendPort: backend.address().port });
        parentPort.postMessage({ listening: true });
        const c = net.connect({ port, host: '127.0.0.1' });
        const chunk = Buffer.alloc(65536, 7);
        let moved = 0;
        c.on('data', (d) => {
          moved += d.length;
          if (moved > 4 * 1024 * 1024 && moved - d.length <= 4 * 1024 * 1024) {
            parentPort.postMessage({ moving: true, stats: engine.stats() });
          }
        });
        const pump = () => { while (c.write(chunk)); };
        c.on('drain', pump);
        c.on('connect', pump);
      });`);
    const errors: unknown[] = [];
    worker.on('error', (e) => errors.push(e));
    await workerMessage<{ listening?: boolean }>(worker, (m) => m.listening === true);
    const started = newIds(engineThreadIds(), before);
    const moving = await workerMessage<{ moving?: boolean; stats?: { connections: number } }>(worker, (m) => m.moving === true);
    expect(moving.stats?.connections).toBe(1);
    await worker.terminate();
    expect(errors).toEqual([]);
    // The env cleanup hook joined the thread during terminate().
    await untilThreadExits(started);
  });

  it('an exception thrown by onEvents reaches the thread as an uncaught exception', async () => {
    const worker = startWorker(`
      const { workerData } = require('node:worker_threads');
      const net = require('node:net');
      const { TcpEngine } = require(workerData.path);
      const engine = new TcpEngine(() => { throw new Error('thrown by onEvents'); });
      const port = engine.listen({ host: '127.0.0.1', port: 0, backendHost: '127.0.0.1', backendPort: 9 });
      net.connect({ port, host: '127.0.0.1' }).on('error', () => {});`);
    const error = await new Promise<Error>((r) => worker.once('error', r));
    expect(error.message).toBe('thrown by onEvents');
  });

  it('an engine that does not listen lets its worker exit, and its thread ends with the worker', async () => {
    const before = engineThreadIds();
    // The worker waits (Atomics.wait) after creating its engine until the test has noted the new thread.
    const noted = new Int32Array(new SharedArrayBuffer(4));
    const worker = startWorker(
      `const { parentPort, workerData } = require('node:worker_threads');
      const { TcpEngine } = require(workerData.path);
      globalThis.engine = new TcpEngine(() => {});
      parentPort.postMessage('created');
      Atomics.wait(workerData.noted, 0, 0);`,
      { noted },
    );
    const exited = new Promise<number>((r) => worker.once('exit', r));
    await workerMessage<string>(worker, (m) => m === 'created');
    const started = newIds(engineThreadIds(), before);
    Atomics.store(noted, 0, 1);
    Atomics.notify(noted, 0);
    expect(await exited).toBe(0);
    await untilThreadExits(started);
  });

  it('close() of a listening engine lets GC collect it', async () => {
    // A listening engine pins itself (and keeps its loop alive); close() must drop that pin, or the wrapper
    // with its epoll and eventfd descriptors would live until the thread's environment is torn down.
    const worker = startWorker(`
      const { parentPort, workerData } = require('node:worker_threads');
      ${COLLECT_GARBAGE}
      const { TcpEngine } = require(workerData.path);
      let collected = false;
      const registry = new FinalizationRegistry(() => { collected = true; });
      (() => {
        const engine = new TcpEngine(() => {});
        engine.listen({ host: '127.0.0.1', port: 0, backendHost: '127.0.0.1', backendPort: 9 });
        engine.close();
        registry.register(engine, 0);
      })();
      let tries = 0;
      const timer = setInterval(() => {
        collectGarbage();
        if (collected || ++tries === 200) {
          clearInterval(timer);
          parentPort.postMessage(collected ? 'collected' : 'still alive after 200 collections');
        }
      }, 5);`);
    expect(await workerMessage<string>(worker, () => true)).toBe('collected');
  });

  for (const end of ['stopListening', 'close'] as const) {
    it(`an engine dropped after ${end}() with a batch still queued is collected safely`, async () => {
      // The engine thread queues an accepted batch while the worker's JS is busy; the worker then calls
      // ${end}(), drops the engine and collects it before the queued batch is dispatched. Dispatching it to
      // the destroyed wrapper was a use-after-free: it crashed the process (SIGSEGV, SIGFPE, bad_alloc) within
      // a few rounds, so a regression fails this file loudly rather than through an assertion.
      const worker = startWorker(
        `
        const { parentPort, workerData } = require('node:worker_threads');
        const net = require('node:net');
        ${COLLECT_GARBAGE}
        const { TcpEngine } = require(workerData.path);
        const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
        (async () => {
          let rounds = 0;
          for (; rounds < 20; rounds++) {
            let engine = new TcpEngine(() => {});
            const port = engine.listen({ host: '127.0.0.1', port: 0, backendHost: '127.0.0.1', backendPort: 9 });
            const client = net.connect(port, '127.0.0.1').on('error', () => {});
            await new Promise((r) => client.once('connect', r));
            const until = Date.now() + 20;
            while (Date.now() < until); // the engine accepts and queues its batch meanwhile
            engine[workerData.end]();
            engine = null;
            collectGarbage();
            await sleep(20);
            client.destroy();
          }
          parentPort.postMessage({ rounds });
        })();`,
        { end },
      );
      expect(await workerMessage<{ rounds?: number }>(worker, (m) => m.rounds !== undefined)).toEqual({ rounds: 20 });
    });
  }

  for (const end of ['stopListening', 'close'] as const) {
    it(`a listening engine keeps its worker alive until ${end}()`, async () => {
      // The worker never listens on parentPort, so only the engine can keep it alive. On its first client it
      // refuses it and calls ${end}(), after which nothing holds the worker.
      const worker = startWorker(
        `
        const { parentPort, workerData } = require('node:worker_threads');
        const { TcpEngine } = require(workerData.path);
        const engine = new TcpEngine((accepted) => {
          if (accepted.length === 0) return;
          engine.decide([], accepted.map((c) => c.id));
          parentPort.postMessage({ accepted: accepted.length });
          engine[workerData.end]();
        });
        const port = engine.listen({ host: '127.0.0.1', port: 0, backendHost: '127.0.0.1', backendPort: 9 });
        parentPort.postMessage({ port });`,
        { end },
      );
      const exited = new Promise<number>((r) => worker.once('exit', r));
      const { port } = await workerMessage<{ port?: number }>(worker, (m) => m.port !== undefined);
      // Ample time for a worker that nothing keeps alive to exit; a live one then takes the client.
      await new Promise((r) => setTimeout(r, 200));
      const accepted = workerMessage<{ accepted?: number }>(worker, (m) => m.accepted !== undefined);
      const client = dial(port!);
      expect(await closeOutcome(client)).toBe('ECONNRESET');
      expect((await accepted).accepted).toBe(1);
      expect(await exited).toBe(0);
    });
  }
});
