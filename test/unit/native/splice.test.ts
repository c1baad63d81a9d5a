// The splice engine over real loopback sockets: client ⇄ [A] ⇄ engine ⇄ [B] ⇄ backend. Covers data
// integrity, half-close and reset propagation, idle timeout, remove(), many connections, exactly-once
// reports, and engines in worker threads that are terminated. Needs the addon built (npm install does it).
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  loadNativeFrom,
  loadNative,
  nativeCandidates,
  socketFd,
  type NativeBinding,
  type SpliceClosed,
  type SpliceEngineConstructor,
} from '../../../src/native/binding.ts';
import { Splicer, type SplicedConnection } from '../../../src/native/splicer.ts';
import { roundTrip, startEchoServer, type EchoServer } from '../../helpers/echo-server.ts';

function requireBinding(): { binding: NativeBinding; path: string } {
  const loaded = loadNative();
  if (!loaded.ok) throw loaded.error; // a missing build is a failure, not a skip: npm install builds it
  return loaded;
}

/** Names of this process's threads that are splice engines (pthread_setname_np "sb-splice"). */
function engineThreads(): number {
  let n = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === 'sb-splice') n++;
    } catch {
      // the thread exited between readdir and read
    }
  }
  return n;
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0 }, r));
  return (server.address() as { port: number }).port;
}

async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((r) => server.close(() => r()));
}

interface SpliceProxy extends AsyncDisposable {
  port: number;
  /** One per accepted connection, in accept order. */
  spliced: Promise<SplicedConnection>[];
  closed: SpliceClosed[];
}

/** A TCP proxy whose data path is the engine: accepts A, connects B to the backend, splices A ⇄ B. */
async function startSpliceProxy(splicer: Splicer, backendPort: number, idleTimeoutMs = 0, pauseOnConnect = false): Promise<SpliceProxy> {
  const sockets = new Set<Socket>();
  const proxy: SpliceProxy = {
    port: 0,
    spliced: [],
    closed: [],
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.destroy();
      await closeServer(server);
    },
  };
  const server = createServer({ allowHalfOpen: true, pauseOnConnect }, (a) => {
    const b = connect({ host: '127.0.0.1', port: backendPort, allowHalfOpen: true });
    b.pause(); // before 'connect': Node then never starts reading B
    for (const s of [a, b]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {}); // the tests observe outcomes at the client and backend ends
    }
    proxy.spliced.push(
      new Promise<void>((r) => b.once('connect', () => r())).then(async () => {
        const conn = await splicer.splice(a, b, idleTimeoutMs);
        void conn.closed.then((e) => proxy.closed.push(e));
        return conn;
      }),
    );
  });
  proxy.port = await listen(server);
  return proxy;
}

/** A backend with a custom per-connection handler. */
async function startBackend(handler: (s: Socket) => void): Promise<{ port: number } & AsyncDisposable> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    handler(s);
  });
  const port = await listen(server);
  return {
    port,
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.destroy();
      await closeServer(server);
    },
  };
}

function connectClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => resolve(s));
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

describe('native splice engine', () => {
  let binding: NativeBinding;
  let splicer: Splicer;
  let echo: EchoServer;

  beforeAll(async () => {
    binding = requireBinding().binding;
    splicer = new Splicer(binding);
    echo = await startEchoServer();
  });

  afterAll(async () => {
    splicer.close();
    await echo[Symbol.asyncDispose]();
  });

  it('loads from the build output and types match the binary', () => {
    const { path } = requireBinding();
    expect(nativeCandidates()).toContain(path);
    expect(binding.abiVersion).toBe(1);
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

  it('rejects bad arguments and fds it cannot take, taking nothing', async () => {
    const engine = new binding.SpliceEngine(() => {});
    try {
      expect(() => engine.add(1.5, 0, 1, 0)).toThrow(RangeError);
      expect(() => engine.add(1, -1, 1, 0)).toThrow(RangeError);
      expect(() => (engine.add as (...a: unknown[]) => void)('x', 0, 1, 0)).toThrow(TypeError);
      expect(() => engine.add(1, 0, 1, 0)).toThrow(expect.objectContaining({ code: 'ENOTSOCK' }));
      expect(engine.stats()).toEqual({ connections: 0, pipesPooled: 0, pipesInUse: 0 });
    } finally {
      engine.close();
    }
    expect(() => engine.add(1, 0, 1, 0)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
    expect(() => new (binding.SpliceEngine as unknown as new (x: unknown) => unknown)(42)).toThrow(TypeError);
  });

  it('refuses an id it still owns and accepts it again once reported', async () => {
    const events: SpliceClosed[] = [];
    const engine = new binding.SpliceEngine((batch) => events.push(...batch));
    const server = createServer({ pauseOnConnect: true });
    const accepted = new Promise<Socket>((r) => server.once('connection', r));
    const client = await connectClient(await listen(server));
    const peer = await accepted;
    try {
      engine.add(1, socketFd(peer), socketFd(client), 0);
      expect(() => engine.add(1, socketFd(peer), socketFd(client), 0)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
      );
      expect(engine.stats().connections).toBe(1);
      expect(engine.remove(1)).toBe(true);
      await until(() => events.length === 1, 'the removed report');
      expect(events[0]).toEqual({ id: 1, bytesAtoB: 0, bytesBtoA: 0, reason: 'removed' });
      engine.add(1, socketFd(peer), socketFd(client), 0);
      engine.close();
      await until(() => events.length === 2, 'the report of close()');
      expect(events[1]!.reason).toBe('removed');
    } finally {
      engine.close();
      client.destroy();
      peer.destroy();
      await closeServer(server);
    }
  });

  it('round-trips a small payload and reports closed once with byte counts', async () => {
    await using proxy = await startSpliceProxy(splicer, echo.port);
    const reply = await roundTrip(proxy.port, Buffer.from('hello, splice'));
    expect(reply.toString()).toBe('hello, splice');
    const conn = await proxy.spliced[0]!;
    const closed = await conn.closed;
    expect(closed).toEqual({ id: conn.id, bytesAtoB: 13, bytesBtoA: 13, reason: 'closed' });
  });

  it('moves 64 MiB each way intact', async () => {
    await using proxy = await startSpliceProxy(splicer, echo.port);
    const total = 64 * 1024 * 1024;
    const chunk = randomBytes(1024 * 1024);
    const sent = createHash('sha256');
    const received = createHash('sha256');
    let receivedBytes = 0;
    const client = await connectClient(proxy.port);
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
    client.destroy();
    expect(receivedBytes).toBe(total);
    expect(received.digest('hex')).toBe(sent.digest('hex'));
    const closed = await (await proxy.spliced[0]!).closed;
    expect(closed).toMatchObject({ bytesAtoB: total, bytesBtoA: total, reason: 'closed' });
  }, 60_000);

  it('propagates a client half-close: the backend sees EOF and can still answer', async () => {
    let backendSawEnd = false;
    await using backend = await startBackend((s) => {
      const got: Buffer[] = [];
      s.on('data', (b: Buffer) => got.push(b));
      s.once('end', () => {
        backendSawEnd = true;
        s.end(`got ${Buffer.concat(got).toString()}`);
      });
    });
    await using proxy = await startSpliceProxy(splicer, backend.port);
    const client = await connectClient(proxy.port);
    const reply = readAll(client);
    client.end('request');
    expect((await reply).toString()).toBe('got request');
    expect(backendSawEnd).toBe(true);
    client.destroy();
    expect((await (await proxy.spliced[0]!).closed).reason).toBe('closed');
  });

  it('propagates a backend half-close: the client sees EOF and can still send', async () => {
    let backendGot: Promise<Buffer> | null = null;
    await using backend = await startBackend((s) => {
      backendGot = readAll(s);
      s.end('banner');
    });
    await using proxy = await startSpliceProxy(splicer, backend.port);
    const client = await connectClient(proxy.port);
    const banner = await readAll(client);
    expect(banner.toString()).toBe('banner');
    client.end('after the backend closed its side');
    await until(() => backendGot !== null, 'backend connection');
    expect((await backendGot!).toString()).toBe('after the backend closed its side');
    client.destroy();
    expect((await (await proxy.spliced[0]!).closed).reason).toBe('closed');
  });

  it('propagates a client reset to the backend as a reset', async () => {
    let backendOutcome: Promise<string> | null = null;
    await using backend = await startBackend((s) => {
      backendOutcome = closeOutcome(s);
    });
    await using proxy = await startSpliceProxy(splicer, backend.port);
    const client = await connectClient(proxy.port);
    client.on('error', () => {});
    client.write('x');
    await proxy.spliced[0];
    await until(() => backendOutcome !== null, 'backend connection');
    client.resetAndDestroy();
    expect(await backendOutcome!).toBe('ECONNRESET');
    expect((await (await proxy.spliced[0]!).closed).reason).toBe('reset');
  });

  it('propagates a backend reset to the client as a reset', async () => {
    await using backend = await startBackend((s) => {
      s.once('data', () => s.resetAndDestroy());
    });
    await using proxy = await startSpliceProxy(splicer, backend.port);
    const client = await connectClient(proxy.port);
    const outcome = closeOutcome(client);
    client.write('trigger');
    expect(await outcome).toBe('ECONNRESET');
    expect((await (await proxy.spliced[0]!).closed).reason).toBe('reset');
  });

  it('reports idle connections and closes both sides', async () => {
    await using proxy = await startSpliceProxy(splicer, echo.port, 100);
    const client = await connectClient(proxy.port);
    const outcome = closeOutcome(client);
    client.write('one message, then silence');
    const closed = await (await proxy.spliced[0]!).closed;
    expect(closed.reason).toBe('idle');
    expect(closed.bytesAtoB).toBe(closed.bytesBtoA);
    expect(await outcome).toBe('none');
  });

  it('forwards bytes Node had read before the hand-off (no pauseOnConnect) and with pauseOnConnect', async () => {
    for (const pauseOnConnect of [false, true]) {
      await using proxy = await startSpliceProxy(splicer, echo.port, 0, pauseOnConnect);
      const payload = randomBytes(200_000); // more than the 64 KiB Node reads ahead into a paused socket
      expect((await roundTrip(proxy.port, payload)).equals(payload)).toBe(true);
    }
  });

  it('remove() aborts a connection with reason "removed", once', async () => {
    await using proxy = await startSpliceProxy(splicer, echo.port);
    const client = await connectClient(proxy.port);
    const outcome = closeOutcome(client);
    const conn = await proxy.spliced[0]!;
    expect(splicer.remove(conn.id)).toBe(true);
    expect((await conn.closed).reason).toBe('removed');
    expect(splicer.remove(conn.id)).toBe(false);
    expect(await outcome).toBe('none');
  });

  it('handles 500 concurrent connections, each reported exactly once', async () => {
    const reports = new Map<number, number>();
    const Recording = function (onClosed: (e: SpliceClosed[]) => void) {
      return new binding.SpliceEngine((events) => {
        for (const e of events) reports.set(e.id, (reports.get(e.id) ?? 0) + 1);
        onClosed(events);
      });
    } as unknown as SpliceEngineConstructor;
    const own = new Splicer({ ...binding, SpliceEngine: Recording });
    try {
      await using proxy = await startSpliceProxy(own, echo.port);
      const payloads = Array.from({ length: 500 }, (_, i) => randomBytes(1 + ((i * 7919) % 32768)));
      const replies = await Promise.all(payloads.map((p) => roundTrip(proxy.port, p, 30_000)));
      replies.forEach((r, i) => expect(r.equals(payloads[i]!)).toBe(true));
      const conns = await Promise.all(proxy.spliced);
      // Racing remove() against connections that are closing anyway must not double-report.
      for (const c of conns) own.remove(c.id);
      const closed = await Promise.all(conns.map((c) => c.closed));
      expect(new Set(closed.map((c) => c.id)).size).toBe(500);
      await new Promise((r) => setTimeout(r, 50)); // a late duplicate would arrive within a turn or two
      expect(reports.size).toBe(500);
      expect([...reports.values()].every((n) => n === 1)).toBe(true);
      expect(own.stats()).toMatchObject({ connections: 0, pipesInUse: 0 });
    } finally {
      own.close();
    }
  }, 60_000);

  it('close() reports owned connections as removed and stops its thread', async () => {
    const before = engineThreads();
    const own = new Splicer(binding);
    expect(engineThreads()).toBe(before + 1);
    await using proxy = await startSpliceProxy(own, echo.port);
    const client = await connectClient(proxy.port);
    const outcome = closeOutcome(client);
    const conn = await proxy.spliced[0]!;
    own.close();
    // close() joined the thread; its /proc entry can outlive the join by a moment (the kernel wakes the
    // joiner before it reaps the task).
    await until(() => engineThreads() === before, 'the engine thread to exit', 2_000);
    expect((await conn.closed).reason).toBe('removed');
    expect(await outcome).toBe('none');
  });

  it('runs in a worker thread; terminating the worker mid-transfer leaves no engine thread', async () => {
    const before = engineThreads();
    // Everything inside the worker: an echo backend, a proxy spliced by the worker's own engine, and a
    // client streaming through it; then the worker is terminated while bytes are moving.
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const net = require('node:net');
      const { SpliceEngine } = require(workerData.path);
      const engine = new SpliceEngine(() => {});
      const backend = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s)).listen(0, '127.0.0.1', () => {
        const proxy = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (a) => {
          const b = net.connect({ port: backend.address().port, host: '127.0.0.1', allowHalfOpen: true });
          b.pause();
          b.on('connect', () => {
            engine.add(1, a._handle.fd, b._handle.fd, 0);
            parentPort.postMessage({ spliced: true, stats: engine.stats() });
          });
        }).listen(0, '127.0.0.1', () => {
          const c = net.connect({ port: proxy.address().port, host: '127.0.0.1' });
          const chunk = Buffer.alloc(65536, 7);
          let moved = 0;
          c.on('data', (d) => { moved += d.length; if (moved > 4 * 1024 * 1024) parentPort.postMessage({ moving: true }); });
          const pump = () => { while (c.write(chunk)); };
          c.on('drain', pump);
          c.on('connect', pump);
        });
      });`;
    const worker = new Worker(code, { eval: true, workerData: { path: requireBinding().path } });
    const errors: unknown[] = [];
    worker.on('error', (e) => errors.push(e));
    let spliced = false;
    await new Promise<void>((resolve) => {
      worker.on('message', (m: { spliced?: boolean; moving?: boolean }) => {
        if (m.spliced) spliced = true;
        if (m.moving) resolve();
      });
    });
    expect(spliced).toBe(true);
    expect(engineThreads()).toBe(before + 1);
    await worker.terminate();
    expect(errors).toEqual([]);
    // The env cleanup hook joined the thread during terminate(); the kernel may take a moment to reap it.
    await until(() => engineThreads() === before, 'the engine thread to exit', 2_000);
  });

  it('an exception thrown by onClosed reaches the thread as an uncaught exception', async () => {
    const code = `
      const { workerData } = require('node:worker_threads');
      const net = require('node:net');
      const { SpliceEngine } = require(workerData.path);
      const engine = new SpliceEngine(() => { throw new Error('thrown by onClosed'); });
      const sink = net.createServer(() => {}).listen(0, '127.0.0.1', () => {
        const server = net.createServer({ pauseOnConnect: true }, (a) => {
          const b = net.connect({ port: sink.address().port, host: '127.0.0.1' });
          b.pause();
          b.on('connect', () => { engine.add(1, a._handle.fd, b._handle.fd, 0); engine.remove(1); });
        }).listen(0, '127.0.0.1', () => net.connect({ port: server.address().port, host: '127.0.0.1' }));
      });`;
    const worker = new Worker(code, { eval: true, workerData: { path: requireBinding().path } });
    const error = await new Promise<Error>((r) => worker.once('error', r));
    expect(error.message).toBe('thrown by onClosed');
    await worker.terminate();
  });

  it('an idle engine does not keep a worker alive, and its thread ends with the worker', async () => {
    const before = engineThreads();
    const code = `
      const { workerData } = require('node:worker_threads');
      const { SpliceEngine } = require(workerData.path);
      globalThis.engine = new SpliceEngine(() => {});`;
    const worker = new Worker(code, { eval: true, workerData: { path: requireBinding().path } });
    const exitCode = await new Promise<number>((r) => worker.once('exit', r));
    expect(exitCode).toBe(0);
    await until(() => engineThreads() === before, 'the engine thread to exit', 2_000);
  });

  it('socketFd finds the fd of a connected socket and -1 otherwise', async () => {
    const client = await connectClient(echo.port);
    expect(socketFd(client)).toBeGreaterThan(2);
    client.destroy();
    expect(socketFd(client)).toBe(-1);
  });
});
