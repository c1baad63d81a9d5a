// TcpProxy against real loopback sockets: forwarding both ways (JS and kernel splice), backpressure, half-close,
// backend failures, limits, the shared blocklist, drain, and reusePort sharing.
import { createHash } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createIpSetState, SharedIpSetWriter } from '../../../src/blocklist/shared-ip-set.ts';
import { loadNative } from '../../../src/native/binding.ts';
import { Splicer } from '../../../src/native/splicer.ts';
import { ConnLimits, createConnLimitsState } from '../../../src/proxy/conn-limits.ts';
import { TcpProxy } from '../../../src/proxy/tcp.ts';
import { rootLogger } from '../../../src/telemetry/log.ts';
import { createMetrics } from '../../../src/telemetry/metrics.ts';
import { roundTrip, startEchoServer } from '../../helpers/echo-server.ts';
import { freePort } from '../../helpers/ports.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

const native = loadNative();
if (!native.ok && process.env['CI'] === 'true') throw native.error;

async function proxyTo(backendPort: number, opts: { forwarding: 'js' | 'splice'; maxConnections?: number; perIp?: number; idleMs?: number; connectMs?: number; port?: number; state?: SharedArrayBuffer; blocklist?: SharedIpSetWriter }) {
  const state = opts.state ?? createConnLimitsState({ threads: 2, maxConnections: opts.maxConnections ?? 1000, perIpMaxConnections: opts.perIp ?? 0 });
  const blocklist = opts.blocklist ?? new SharedIpSetWriter(createIpSetState(64));
  const metrics = createMetrics();
  const splicer = opts.forwarding === 'splice' && native.ok ? new Splicer(native.binding) : null;
  const proxy = new TcpProxy({
    listen: { host: '127.0.0.1', port: opts.port ?? 0 },
    backend: { host: '127.0.0.1', port: backendPort },
    connectTimeoutMs: opts.connectMs ?? 2_000,
    idleTimeoutMs: opts.idleMs ?? 30_000,
    noDelay: true,
    limits: new ConnLimits(state, opts.port === undefined ? 0 : 1),
    blockList: blocklist,
    metrics,
    log: rootLogger(),
    threadName: 'test',
    splicer,
  });
  const { port } = await proxy.listen();
  cleanups.push(async () => {
    await proxy.close();
    splicer?.close();
  });
  return { proxy, port, metrics, blocklist, state };
}

async function echoBackend() {
  const echo = await startEchoServer();
  cleanups.push(async () => echo[Symbol.asyncDispose]());
  return echo;
}

async function metricValue(metrics: ReturnType<typeof createMetrics>, name: string, labels: Record<string, string> = {}): Promise<number> {
  const json = await metrics.registry.getMetricsAsJSON();
  const m = json.find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

/** Closes when the socket closes; resolves with everything it received. */
function collect(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (b: Buffer) => chunks.push(b));
  return new Promise((resolve) => socket.on('close', () => resolve(Buffer.concat(chunks))));
}

describe.each(['js', 'splice'] as const)('TcpProxy (%s forwarding)', (forwarding) => {
  it('round-trips data and counts the connection', async () => {
    const echo = await echoBackend();
    const { port, metrics, proxy } = await proxyTo(echo.port, { forwarding });
    const payload = Buffer.from('hello, backend');
    expect((await roundTrip(port, payload)).toString()).toBe('hello, backend');
    await new Promise((r) => setTimeout(r, 50));
    expect(proxy.stats()).toMatchObject({ accepted: 1, active: 0, bytesIn: payload.length, bytesOut: payload.length });
    expect(await metricValue(metrics, 'secbeat_requests_total', { status_class: 'ok' })).toBe(1);
  });

  it('moves 32 MiB each way intact through a slow reader (backpressure, not buffering)', async () => {
    const echo = await echoBackend();
    const { port } = await proxyTo(echo.port, { forwarding });
    const block = Buffer.alloc(1 << 20, 0xab);
    const client = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    await new Promise((r) => client.once('connect', r));
    const sent = createHash('sha256');
    const received = createHash('sha256');
    let receivedBytes = 0;
    let maxQueued = 0;
    client.on('data', (b: Buffer) => {
      received.update(b);
      receivedBytes += b.length;
      // Read slowly: pause a little every MiB.
      if (receivedBytes % (1 << 20) < b.length) {
        client.pause();
        setTimeout(() => client.resume(), 5);
      }
    });
    const done = new Promise((r) => client.once('end', r));
    for (let i = 0; i < 32; i++) {
      block[0] = i;
      sent.update(block);
      if (!client.write(Buffer.from(block))) await new Promise((r) => client.once('drain', r));
      maxQueued = Math.max(maxQueued, client.writableLength);
    }
    client.end();
    await done;
    client.destroy();
    expect(receivedBytes).toBe(32 << 20);
    expect(received.digest('hex')).toBe(sent.digest('hex'));
    expect(maxQueued).toBeLessThanOrEqual(2 << 20); // the client never had to queue the whole stream
  });

  it('propagates half-close in both directions', async () => {
    // A backend that answers after the client's FIN, then sends its own FIN.
    const backend = createServer({ allowHalfOpen: true }, (s) => {
      const got: Buffer[] = [];
      s.on('data', (b: Buffer) => got.push(b));
      s.on('end', () => s.end(`got ${Buffer.concat(got).toString()}`));
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => backend.close(() => r())));
    const { port } = await proxyTo((backend.address() as { port: number }).port, { forwarding });
    const client = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const all = collect(client);
    client.on('connect', () => client.end('ping'));
    expect((await all).toString()).toBe('got ping');
  });

  it('a dead backend closes the client and counts an upstream error', async () => {
    // Port 1 on loopback: nothing listens there, and unlike a "free" port no parallel test can take it.
    const dead = 1;
    const { port, metrics } = await proxyTo(dead, { forwarding });
    const client = connect({ host: '127.0.0.1', port });
    client.on('error', () => {});
    await collect(client);
    expect(await metricValue(metrics, 'secbeat_upstream_errors_total', { kind: 'connect_refused' })).toBe(1);
  });

  it('closes connections idle longer than the idle timeout', async () => {
    const echo = await echoBackend();
    const { port, metrics } = await proxyTo(echo.port, { forwarding, idleMs: 200 });
    const client = connect({ host: '127.0.0.1', port });
    client.on('error', () => {});
    const closed = collect(client);
    await closed;
    await new Promise((r) => setTimeout(r, 20));
    expect(await metricValue(metrics, 'secbeat_upstream_errors_total', { kind: 'idle_timeout' })).toBe(1);
  });

  it('drain lets open connections finish, refuses new ones, then closes the rest', async () => {
    const echo = await echoBackend();
    const { port, proxy } = await proxyTo(echo.port, { forwarding });
    const lingering = connect({ host: '127.0.0.1', port });
    lingering.on('error', () => {});
    await new Promise((r) => lingering.once('connect', r));
    await new Promise((r) => setTimeout(r, 50));
    const closed = collect(lingering);
    const report = await proxy.drain(100);
    expect(report).toEqual({ closedGracefully: 0, closedForcibly: 1 });
    await closed;
    await expect(roundTrip(port, Buffer.from('x'), 1_000)).rejects.toThrow();
  });
});

describe('TcpProxy admission', () => {
  it('refuses by blocklist at once, keeps existing connections, and lifts on removal', async () => {
    const echo = await echoBackend();
    const { port, blocklist, metrics } = await proxyTo(echo.port, { forwarding: 'js' });
    const existing = connect({ host: '127.0.0.1', port });
    await new Promise((r) => existing.once('connect', r));
    blocklist.add('127.0.0.1', null);
    await expect(roundTrip(port, Buffer.from('x'), 1_000)).rejects.toThrow();
    existing.write('still');
    const echoed = await new Promise<Buffer>((r) => existing.once('data', r));
    expect(echoed.toString()).toBe('still');
    existing.destroy();
    blocklist.remove('127.0.0.1');
    expect((await roundTrip(port, Buffer.from('ok'))).toString()).toBe('ok');
    expect(await metricValue(metrics, 'secbeat_attacks_blocked_total', { reason: 'blocklist' })).toBe(1);
  });

  it('enforces max_connections and the per-IP cap across two listeners sharing one port', async () => {
    const echo = await echoBackend();
    const shared = createConnLimitsState({ threads: 2, maxConnections: 1000, perIpMaxConnections: 3 });
    const port = await freePort();
    const a = await proxyTo(echo.port, { forwarding: 'js', port, state: shared });
    // Second listener on the same port (reusePort), as a second thread would.
    const b = await proxyTo(echo.port, { forwarding: 'js', port, state: shared, blocklist: a.blocklist });
    const sockets: Socket[] = [];
    for (let i = 0; i < 6; i++) {
      const s = connect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      sockets.push(s);
    }
    await new Promise((r) => setTimeout(r, 300));
    const accepted = a.proxy.stats().accepted + b.proxy.stats().accepted;
    const refused = a.proxy.stats().refused + b.proxy.stats().refused;
    expect(accepted).toBe(3);
    expect(refused).toBe(3);
    for (const s of sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 200));
    expect(new ConnLimits(shared, 0).activeTotal()).toBe(0);
  });
});

describe('TcpProxy listen errors', () => {
  it('reports a port it cannot bind as SECBEAT_ERR_PROXY_LISTEN', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => blocker.close(() => r())));
    const taken = (blocker.address() as { port: number }).port;
    const proxy = new TcpProxy({
      listen: { host: '127.0.0.1', port: taken },
      backend: { host: '127.0.0.1', port: 1 },
      connectTimeoutMs: 100,
      idleTimeoutMs: 1_000,
      noDelay: true,
      limits: new ConnLimits(createConnLimitsState({ threads: 1, maxConnections: 1, perIpMaxConnections: 0 }), 0),
      blockList: new SharedIpSetWriter(createIpSetState(1)),
      metrics: createMetrics(),
      log: rootLogger(),
      threadName: 't',
      splicer: null,
    });
    await expect(proxy.listen()).rejects.toMatchObject({ code: 'SECBEAT_ERR_PROXY_LISTEN' });
  });
});
