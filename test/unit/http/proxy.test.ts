// L7Proxy against real origins and real clients on loopback (undici, node:http, node:http2): routing by
// host, header hygiene and client identity, streamed bodies both ways with limits, error statuses with ids,
// retries and passive health, and TLS with certificates by SNI for HTTP/1.1 and HTTP/2.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect as h2connect, constants } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { Readable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { createIpSetState, SharedIpSetWriter } from '../../../src/blocklist/shared-ip-set.ts';
import { buildL7Proxy, type L7Settings } from '../../../src/http/setup.ts';
import type { L7Proxy } from '../../../src/http/proxy.ts';
import { ConnLimits, createConnLimitsState } from '../../../src/proxy/conn-limits.ts';
import { createRateCountersState, RateCounter, RateCountersReader, windowIndex } from '../../../src/ratelimit/shared-counters.ts';
import { rootLogger } from '../../../src/telemetry/log.ts';
import { createMetrics, type Metrics } from '../../../src/telemetry/metrics.ts';
import { certificateSet, testCa, testCert } from '../../helpers/certs.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** An origin that answers with `handler`; its port. */
async function origin(handler: Handler): Promise<number> {
  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return (server.address() as { port: number }).port;
}

/** An origin that echoes what it saw: method, url, headers, and the body's length and sha256. */
function echoHandler(name = 'origin'): Handler {
  return (req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (b: Buffer) => {
      hash.update(b);
      bytes += b.length;
    });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.setHeader('proxy-connection', 'keep-alive');
      res.setHeader('x-origin', name);
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bytes, sha256: hash.digest('hex') }));
    });
  };
}

const LIMITS: L7Settings['limits'] = {
  headerTimeoutMs: 2_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  maxHeaderBytes: 8_192,
  maxHeaders: 50,
  maxBodyBytes: 64 * 1024 * 1024,
  maxRequestsPerConnection: 0,
  maxConcurrentStreams: 100,
  minBodyRate: 1_024,
  h2ResetBurst: 200,
  h2ResetRate: 20,
};

const UPSTREAM: L7Settings['upstream'] = {
  connectTimeoutMs: 1_000,
  headersTimeoutMs: 2_000,
  bodyTimeoutMs: 10_000,
  connectionsPerOrigin: 8,
  ejectAfterFailures: 2,
  ejectMs: 60_000,
  originCa: null,
  verifyOrigins: true,
};

interface Started {
  proxy: L7Proxy;
  port: number;
  tlsPort: number;
  metrics: Metrics;
  blockList: SharedIpSetWriter;
  /** The shared rate counters (one thread region and the fleet's), when settings.rateLimit is set. */
  rateCounters: SharedArrayBuffer;
}

async function startProxy(over: Partial<L7Settings> & { defaultOrigins: string[] }): Promise<Started> {
  const metrics = createMetrics();
  const blockList = new SharedIpSetWriter(createIpSetState(64));
  const settings: L7Settings = {
    listen: { host: '127.0.0.1', port: 0 },
    tls: null,
    routes: [],
    trustedProxies: [],
    proxyProtocol: false,
    limits: LIMITS,
    upstream: UPSTREAM,
    waf: null,
    rateLimit: null,
    ...over,
  };
  const rateCounters = createRateCountersState({ threads: 1, slotsPerRegion: 1024 });
  const rateCounter = settings.rateLimit === null ? null : new RateCounter(rateCounters, 0, settings.rateLimit.windowMs);
  const { proxy } = buildL7Proxy(settings, {
    connLimits: new ConnLimits(createConnLimitsState({ threads: 1, maxConnections: 1000, perIpMaxConnections: 0 }), 0),
    blockList,
    rateCounter,
    metrics,
    log: rootLogger(),
    threadName: 'test',
  });
  const { port } = await proxy.listen();
  cleanups.push(() => proxy.close());
  return { proxy, port, tlsPort: proxy.tlsPort, metrics, blockList, rateCounters };
}

const agent = new Agent({ keepAliveTimeout: 1_000 });
afterAll(() => agent.close());

async function get(port: number, path = '/', headers: Record<string, string> = {}) {
  const res = await request(`http://127.0.0.1:${port}${path}`, { headers, dispatcher: agent });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** One series of a metric, after the proxy's batched counts are flushed. */
async function metric({ proxy, metrics }: Started, name: string, labels: Record<string, string>): Promise<number> {
  proxy.flushMetrics();
  const json = await metrics.registry.getMetricsAsJSON();
  const m = json.find((x) => x.name === name);
  return m?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value ?? 0;
}

describe('L7Proxy over HTTP/1.1', () => {
  it('forwards a request, strips hop-by-hop headers and sets the forwarding set', async () => {
    const o = await origin(echoHandler());
    const started = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`] });
    const { port } = started;
    const res = await get(port, '/a/b?c=1', { 'x-custom': 'v', 'x-forwarded-for': '203.0.113.9' });
    expect(res.status).toBe(200);
    expect(res.headers['proxy-connection']).toBeUndefined(); // the origin's hop-by-hop header is not passed on
    expect(res.headers['x-origin']).toBe('origin');
    const seen = JSON.parse(res.text) as { url: string; headers: Record<string, string> };
    expect(seen.url).toBe('/a/b?c=1');
    expect(seen.headers['x-custom']).toBe('v');
    expect(seen.headers['host']).toBe(`127.0.0.1:${port}`);
    // The peer is not a trusted proxy: its X-Forwarded-For is replaced, not extended.
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['forwarded']).toBe(`for=127.0.0.1;proto=http;host="127.0.0.1:${port}"`);
    expect(await metric(started, 'secbeat_requests_total', { mode: 'l7', status_class: '2xx' })).toBe(1);
  });

  it('drops the fields a Connection header names (raw client: undici will not send such a request)', async () => {
    const o = await origin(echoHandler());
    const { port } = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`] });
    const reply = await new Promise<string>((resolve, reject) => {
      const s = netConnect(port, '127.0.0.1', () =>
        s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close, X-Drop-Me\r\nX-Drop-Me: 1\r\nX-Keep-Me: 2\r\n\r\n'),
      );
      let got = '';
      s.on('data', (b: Buffer) => (got += b.toString()));
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
    const seen = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> };
    expect(seen.headers['x-drop-me']).toBeUndefined();
    expect(seen.headers['x-keep-me']).toBe('2');
  });

  it('extends X-Forwarded-For from a trusted proxy and names the client it vouches for', async () => {
    const o = await origin(echoHandler());
    const { port } = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`], trustedProxies: ['127.0.0.0/8'] });
    const seen = JSON.parse((await get(port, '/', { 'x-forwarded-for': '198.51.100.7' })).text) as { headers: Record<string, string> };
    expect(seen.headers['x-forwarded-for']).toBe('198.51.100.7, 127.0.0.1');
    expect(seen.headers['forwarded']).toMatch(/^for=198\.51\.100\.7;/);
  });

  it('routes by host: exact names, one-label wildcards, and the default', async () => {
    const a = await origin(echoHandler('a'));
    const b = await origin(echoHandler('b'));
    const d = await origin(echoHandler('default'));
    const { port } = await startProxy({
      defaultOrigins: [`http://127.0.0.1:${d}`],
      routes: [
        { hosts: ['a.example'], origins: [`http://127.0.0.1:${a}`] },
        { hosts: ['*.b.example'], origins: [`http://127.0.0.1:${b}`] },
      ],
    });
    expect((await get(port, '/', { host: 'A.Example:80' })).headers['x-origin']).toBe('a');
    expect((await get(port, '/', { host: 'x.b.example' })).headers['x-origin']).toBe('b');
    expect((await get(port, '/', { host: 'x.y.b.example' })).headers['x-origin']).toBe('default');
    expect((await get(port, '/', { host: 'other.example' })).headers['x-origin']).toBe('default');
  });

  it('streams a 32 MiB chunked upload and a 32 MiB download intact', async () => {
    const big = randomBytes(32 << 20);
    const o = await origin((req, res) => {
      if (req.method === 'POST') return echoHandler()(req, res);
      res.end(big);
    });
    const { port } = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`] });
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let i = 0; i < big.length; i += 1 << 20) yield big.subarray(i, i + (1 << 20));
    }
    const up = await request(`http://127.0.0.1:${port}/up`, { method: 'POST', body: Readable.from(chunks()), dispatcher: agent });
    const seen = (await up.body.json()) as { bytes: number; sha256: string };
    expect(seen.bytes).toBe(big.length);
    expect(seen.sha256).toBe(createHash('sha256').update(big).digest('hex'));
    const down = await request(`http://127.0.0.1:${port}/down`, { dispatcher: agent });
    const got = Buffer.from(await down.body.arrayBuffer());
    expect(got.equals(big)).toBe(true);
  });

  it('answers 413 with an error id for bodies over the limit, declared or chunked', async () => {
    const o = await origin(echoHandler());
    const { port } = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`], limits: { ...LIMITS, maxBodyBytes: 1024 } });
    const declared = await request(`http://127.0.0.1:${port}/`, { method: 'POST', body: Buffer.alloc(2048), dispatcher: agent });
    expect(declared.statusCode).toBe(413);
    const text = await declared.body.text();
    expect(text).toMatch(/^413 payload_too_large\nerror id: [0-9a-f]{12}\n$/);
    expect(declared.headers['x-secbeat-error-id']).toBe(/error id: (\w+)/.exec(text)![1]);
    async function* chunked(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 4; i++) yield Buffer.alloc(512);
    }
    const streamed = await request(`http://127.0.0.1:${port}/`, { method: 'POST', body: Readable.from(chunked()), dispatcher: agent });
    expect(streamed.statusCode).toBe(413);
    await streamed.body.text();
  });

  it('answers 431 for too many header fields and for an oversized header block', async () => {
    const o = await origin(echoHandler());
    const { port } = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`] });
    const many: Record<string, string> = {};
    for (let i = 0; i < 60; i++) many[`x-h${i}`] = '1';
    expect((await get(port, '/', many)).status).toBe(431);
    // Raw socket: the block is over max_header_bytes, so Node's parser stops and the proxy answers itself.
    const reply = await new Promise<string>((resolve) => {
      const s = netConnect(port, '127.0.0.1', () => s.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`));
      let got = '';
      s.on('data', (b: Buffer) => (got += b.toString()));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 431 /);
    expect(reply).toMatch(/error id: [0-9a-f]{12}/);
  });

  it('answers 400 with an error id for a malformed request and keeps serving', async () => {
    const o = await origin(echoHandler());
    const { port } = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`] });
    const reply = await new Promise<string>((resolve) => {
      const s = netConnect(port, '127.0.0.1', () => s.write('GARBAGE\x00\x01 / HTTP/9\r\n\r\n'));
      let got = '';
      s.on('data', (b: Buffer) => (got += b.toString()));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect((await get(port)).status).toBe(200);
  });

  it('answers 502 when the origin refuses, counting the upstream error, and 504 when it is too slow', async () => {
    const started = await startProxy({ defaultOrigins: ['http://127.0.0.1:1'] });
    const { port } = started;
    const refused = await get(port);
    expect(refused.status).toBe(502);
    expect(refused.text).toMatch(/^502 bad_gateway\nerror id: /);
    expect(refused.text).not.toMatch(/ECONNREFUSED|127\.0\.0\.1/);
    expect(await metric(started, 'secbeat_upstream_errors_total', { mode: 'l7', kind: 'connect_refused' })).toBeGreaterThanOrEqual(1);

    const slow = await origin((_req, res) => void setTimeout(() => res.end('late'), 5_000).unref());
    const s = await startProxy({
      defaultOrigins: [`http://127.0.0.1:${slow}`],
      upstream: { connectTimeoutMs: 1_000, headersTimeoutMs: 200, bodyTimeoutMs: 1_000, connectionsPerOrigin: 2, ejectAfterFailures: 5, ejectMs: 1_000, originCa: null, verifyOrigins: true },
      waf: null,
    });
    expect((await get(s.port)).status).toBe(504);
  });

  it('retries an idempotent request once on another origin, and ejects the dead one', async () => {
    const live = await origin(echoHandler('live'));
    const { port } = await startProxy({ defaultOrigins: ['http://127.0.0.1:1', `http://127.0.0.1:${live}`] });
    for (let i = 0; i < 6; i++) {
      const res = await get(port);
      expect(res.status).toBe(200);
      expect(res.headers['x-origin']).toBe('live');
    }
    // A POST is not retried: it fails on the dead origin only if it is picked, which ejection now prevents.
    const post = await request(`http://127.0.0.1:${port}/`, { method: 'POST', body: 'x', dispatcher: agent });
    expect(post.statusCode).toBe(200);
    await post.body.text();
  });

  it('proxies to an https:// origin whose certificate verifies, and answers 502 for one that does not', async () => {
    const origin = createHttpsServer(testCert(['127.0.0.1']), echoHandler('tls-origin'));
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => origin.close(() => r())));
    const url = `https://127.0.0.1:${(origin.address() as { port: number }).port}`;
    const trusting = await startProxy({ defaultOrigins: [url], upstream: { ...UPSTREAM, originCa: testCa() } });
    const r = await get(trusting.port, '/secure');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toMatchObject({ url: '/secure', headers: { 'x-forwarded-proto': 'http' } });
    // Node's bundled roots do not know the test CA: the origin is refused, never served unverified.
    const strict = await startProxy({ defaultOrigins: [url] });
    expect((await get(strict.port, '/secure')).status).toBe(502);
  });

  it('refuses connections from a blocked address before reading a byte', async () => {
    const o = await origin(echoHandler());
    const { port, proxy, blockList } = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`] });
    blockList.add('127.0.0.1', null);
    await expect(get(port)).rejects.toThrow();
    expect(proxy.stats().refused).toBeGreaterThanOrEqual(1);
    blockList.remove('127.0.0.1');
    expect((await get(port)).status).toBe(200);
  });

  it('passes Expect: 100-continue through to an upload', async () => {
    const o = await origin(echoHandler());
    const { port } = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`] });
    const body = Buffer.alloc(100_000, 7);
    const result = await new Promise<{ status: number; continued: boolean; text: string }>((resolve, reject) => {
      let continued = false;
      const req = httpRequest({ host: '127.0.0.1', port, method: 'PUT', path: '/', headers: { expect: '100-continue', 'content-length': body.length } });
      req.on('continue', () => {
        continued = true;
        req.end(body);
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (b: Buffer) => (text += b.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, continued, text }));
      });
      req.on('error', reject);
    });
    expect(result.continued).toBe(true);
    expect(result.status).toBe(200);
    expect((JSON.parse(result.text) as { bytes: number }).bytes).toBe(body.length);
  });

  it('passes a WebSocket upgrade through and joins the two connections', async () => {
    const o = await origin(echoHandler());
    // The origin's server object: accept the upgrade, then echo every byte in upper case.
    const server = createServer();
    server.on('upgrade', (req: IncomingMessage, socket: import('node:stream').Duplex) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Seen-Key: ${req.headers['sec-websocket-key']}\r\n\r\n`);
      socket.on('data', (b: Buffer) => socket.write(b.toString().toUpperCase()));
      // node:http sockets are half-open capable: end ours when the proxy ends the tunnel.
      socket.on('end', () => socket.end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const wsPort = (server.address() as { port: number }).port;
    const { port } = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`], routes: [{ hosts: ['ws.example'], origins: [`http://127.0.0.1:${wsPort}`] }] });
    const s = netConnect(port, '127.0.0.1');
    cleanups.push(() => void s.destroy());
    let got = '';
    s.on('data', (b: Buffer) => (got += b.toString()));
    s.write('GET /chat HTTP/1.1\r\nHost: ws.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    await vi.waitFor(() => expect(got).toMatch(/\r\n\r\n$/));
    expect(got).toMatch(/^HTTP\/1\.1 101 /);
    expect(got.toLowerCase()).toContain('x-seen-key: dghlihnhbxbszq==');
    got = '';
    s.write('hello through the tunnel');
    await vi.waitFor(() => expect(got).toBe('HELLO THROUGH THE TUNNEL'));
  });

  it('drain lets an in-flight request finish and then stops accepting', async () => {
    let release: () => void = () => {};
    const o = await origin((_req, res) => void (release = () => res.end('done')));
    const { port, proxy } = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`] });
    const inflight = get(port);
    await vi.waitFor(() => expect(proxy.stats().active).toBe(1));
    const report = proxy.drain(10_000);
    release();
    expect((await inflight).text).toBe('done');
    expect(await report).toEqual({ closedGracefully: 1, closedForcibly: 0 });
    await expect(get(port)).rejects.toThrow();
  });
});

describe('L7Proxy rate limit', () => {
  // A minute-long window: the test's requests all fall in one (a window boundary would reset the count).
  const RATE = { requests: 5, windowMs: 60_000 };

  it('answers 429 past the limit, per client as X-Forwarded-For names it from a trusted proxy', async () => {
    const o = await origin((_req, res) => res.end('ok'));
    const started = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`], trustedProxies: ['127.0.0.0/8'], rateLimit: RATE });
    const from = (client: string) => get(started.port, '/', { 'x-forwarded-for': client });
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await from('203.0.113.7')).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    // Another client has a count of its own.
    expect((await from('198.51.100.1')).status).toBe(200);
    expect(await metric(started, 'secbeat_rate_limited_total', { reason: 'over_limit' })).toBe(2);
    const reader = new RateCountersReader(started.rateCounters);
    expect(reader.nodeCounts(windowIndex(Date.now(), RATE.windowMs)).get('203.0.113.7')).toBe(7);
  });

  it('adds what the rest of the fleet counted to the thread\'s own count', async () => {
    const o = await origin((_req, res) => res.end('ok'));
    const started = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`], trustedProxies: ['127.0.0.0/8'], rateLimit: RATE });
    new RateCountersReader(started.rateCounters).setFleetCount('203.0.113.8', windowIndex(Date.now(), RATE.windowMs), 4);
    const first = await get(started.port, '/', { 'x-forwarded-for': '203.0.113.8' });
    const second = await get(started.port, '/', { 'x-forwarded-for': '203.0.113.8' });
    expect([first.status, second.status]).toEqual([200, 429]);
  });

  it('refuses a blocked client request by request and closes its connection', async () => {
    const o = await origin((_req, res) => res.end('ok'));
    const started = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`], trustedProxies: ['127.0.0.0/8'], rateLimit: RATE });
    started.blockList.add('203.0.113.9', null);
    const res = await get(started.port, '/', { 'x-forwarded-for': '203.0.113.9' });
    expect(res.status).toBe(429);
    expect(res.headers['connection']).toBe('close');
    expect(res.text).toMatch(/too_many_requests/);
    expect((await get(started.port, '/', { 'x-forwarded-for': '203.0.113.10' })).status).toBe(200);
    expect(await metric(started, 'secbeat_rate_limited_total', { reason: 'blocked' })).toBe(1);
  });
});

describe('L7Proxy with PROXY protocol', () => {
  /** Sends `prefix` then an HTTP/1.1 request on one connection; resolves with the whole reply. */
  function rawExchange(port: number, prefix: Buffer | string): Promise<string> {
    return new Promise((resolve) => {
      const s = netConnect(port, '127.0.0.1', () => {
        s.write(prefix);
        s.write('GET /pp HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.66\r\nConnection: close\r\n\r\n');
      });
      let got = '';
      s.on('data', (b: Buffer) => (got += b.toString()));
      s.on('close', () => resolve(got));
      s.on('error', () => {});
    });
  }

  function v2Header(source: string, dest: string): Buffer {
    const header = Buffer.alloc(28);
    Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]).copy(header, 0);
    header[12] = 0x21; // version 2, PROXY
    header[13] = 0x11; // TCP over IPv4
    header.writeUInt16BE(12, 14);
    source.split('.').forEach((octet, i) => (header[16 + i] = Number(octet)));
    dest.split('.').forEach((octet, i) => (header[20 + i] = Number(octet)));
    header.writeUInt16BE(40000, 24);
    header.writeUInt16BE(80, 26);
    return header;
  }

  function originSaw(reply: string): { headers: Record<string, string> } {
    return JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> };
  }

  it('takes the client address from a v1 or v2 header sent by a trusted proxy', async () => {
    const o = await origin(echoHandler());
    const { port } = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`], proxyProtocol: true, trustedProxies: ['127.0.0.0/8'] });
    const v1 = originSaw(await rawExchange(port, 'PROXY TCP4 198.51.100.7 10.0.0.1 40000 80\r\n'));
    // The header's client is not a trusted proxy itself: its own X-Forwarded-For is replaced.
    expect(v1.headers['x-forwarded-for']).toBe('198.51.100.7');
    expect(v1.headers['forwarded']).toMatch(/^for=198\.51\.100\.7;/);
    const v2 = originSaw(await rawExchange(port, v2Header('192.0.2.44', '10.0.0.1')));
    expect(v2.headers['x-forwarded-for']).toBe('192.0.2.44');
  });

  it('refuses a connection without a header, with a bad one, or from an untrusted sender', async () => {
    const o = await origin(echoHandler());
    const trusted = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`], proxyProtocol: true, trustedProxies: ['127.0.0.0/8'] });
    expect(await rawExchange(trusted.port, '')).toBe('');
    expect(await rawExchange(trusted.port, 'PROXY TCP4 not-an-ip 10.0.0.1 1 2\r\n')).toBe('');
    const untrusted = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`], proxyProtocol: true, trustedProxies: ['10.0.0.0/8'] });
    expect(await rawExchange(untrusted.port, 'PROXY TCP4 198.51.100.7 10.0.0.1 40000 80\r\n')).toBe('');
    expect(await metric(trusted, 'secbeat_attacks_blocked_total', { mode: 'l7', reason: 'proxy_protocol' })).toBe(2);
    expect(await metric(untrusted, 'secbeat_attacks_blocked_total', { mode: 'l7', reason: 'proxy_protocol' })).toBe(1);
  });

  it('applies the blocklist to the address the header names', async () => {
    const o = await origin(echoHandler());
    const { port, blockList } = await startProxy({ defaultOrigins: [`http://127.0.0.1:${o}`], proxyProtocol: true, trustedProxies: ['127.0.0.0/8'] });
    blockList.add('198.51.100.7', null);
    expect(await rawExchange(port, 'PROXY TCP4 198.51.100.7 10.0.0.1 40000 80\r\n')).toBe('');
    expect(originSaw(await rawExchange(port, 'PROXY TCP4 198.51.100.8 10.0.0.1 40000 80\r\n')).headers['x-forwarded-for']).toBe('198.51.100.8');
  });
});

describe('L7Proxy over TLS', () => {
  async function startTls(o: number, extra: Partial<L7Settings> = {}) {
    const a = testCert(['a.example']);
    const b = testCert(['b.example', '*.b.example']);
    const fallback = testCert(['default.example']);
    const started = await startProxy({
      defaultOrigins: [`http://127.0.0.1:${o}`],
      tls: {
        listen: { host: '127.0.0.1', port: 0 },
        minVersion: 'TLSv1.2',
        ciphers: undefined,
        ticketKeys: randomBytes(48),
        certificates: certificateSet(fallback, [
          { hosts: ['a.example'], pem: a },
          { hosts: ['b.example', '*.b.example'], pem: b },
        ]),
        contextCacheSize: 10,
      },
      ...extra,
    });
    return started;
  }

  it('reads a PROXY header before the TLS handshake and names its client to the origin over HTTP/2', async () => {
    const o = await origin(echoHandler());
    const { tlsPort } = await startTls(o, { proxyProtocol: true, trustedProxies: ['127.0.0.0/8'] });
    const raw = netConnect(tlsPort, '127.0.0.1');
    await new Promise((r) => raw.once('connect', r));
    raw.write('PROXY TCP4 198.51.100.9 10.0.0.1 40000 443\r\n');
    const session = h2connect(`https://a.example:${tlsPort}`, { createConnection: () => tlsConnect({ socket: raw, servername: 'a.example', ca: testCa(), ALPNProtocols: ['h2'] }) });
    cleanups.push(() => void session.close());
    const body = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':path': '/pp' });
      let text = '';
      stream.on('data', (b: Buffer) => (text += b.toString()));
      stream.on('end', () => resolve(text));
      stream.on('error', reject);
      stream.end();
    });
    expect((JSON.parse(body) as { headers: Record<string, string> }).headers['x-forwarded-for']).toBe('198.51.100.9');
  });

  function peerName(port: number, servername: string): Promise<string> {
    return new Promise((resolve, reject) => {
      // Names are checked here by hand: the default certificate does not cover an unknown name, by design.
      const options = { host: '127.0.0.1', port, servername, ca: testCa(), ALPNProtocols: ['h2', 'http/1.1'], checkServerIdentity: () => undefined };
      const s = tlsConnect(options, () => {
        const cn = s.getPeerCertificate().subject.CN;
        s.end();
        resolve(String(cn));
      });
      s.on('error', reject);
    });
  }

  it('serves the certificate of each SNI name, and the default for unknown names', async () => {
    const o = await origin(echoHandler());
    const { tlsPort } = await startTls(o);
    expect(await peerName(tlsPort, 'a.example')).toBe('a.example');
    expect(await peerName(tlsPort, 'x.b.example')).toBe('b.example');
    expect(await peerName(tlsPort, 'unknown.example')).toBe('default.example');
    // No SNI at all (a client connecting by address): the default certificate too, not a failed handshake.
    const noSni = await new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: tlsPort, ca: testCa(), checkServerIdentity: () => undefined }, () => {
        const cn = String(s.getPeerCertificate().subject.CN);
        s.end();
        resolve(cn);
      });
      s.on('error', reject);
    });
    expect(noSni).toBe('default.example');
  });

  it('frees the origin connections of HTTP/2 streams the client resets before their responses arrive', async () => {
    // Each response comes late and large: by then its stream is gone and every write reports a full buffer.
    const o = await origin((_req, res) => setTimeout(() => res.end(Buffer.alloc(256 * 1024)), 100));
    const { tlsPort } = await startTls(o);
    const session = h2connect(`https://a.example:${tlsPort}`, { ca: testCa(), servername: 'a.example', host: '127.0.0.1', port: tlsPort } as never);
    cleanups.push(() => void session.close());
    const streams = Array.from({ length: 16 }, (_, i) => session.request({ ':path': `/reset/${i}`, ':authority': 'a.example' }));
    for (const stream of streams) stream.on('error', () => {});
    await new Promise((r) => setTimeout(r, 30));
    for (const stream of streams) stream.close(constants.NGHTTP2_CANCEL);
    // Twice the pool's 8 connections: each one an abandoned exchange still held would leave these queued.
    const statuses = Array.from(
      { length: 16 },
      (_, i) =>
        new Promise<number>((resolve, reject) => {
          const stream = session.request({ ':path': `/after/${i}`, ':authority': 'a.example' });
          stream.on('response', (h) => resolve(Number(h[':status'])));
          stream.on('error', reject);
          stream.resume();
        }),
    );
    const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('requests after the resets never got a response')), 3_000));
    expect(await Promise.race([Promise.all(statuses), deadline])).toEqual(Array(16).fill(200));
  });

  it('refuses a blocked client over HTTP/2 with 429 and no connection header, the session still usable', async () => {
    const o = await origin((_req, res) => res.end('ok'));
    const started = await startTls(o, { trustedProxies: ['127.0.0.0/8'], rateLimit: { requests: 100, windowMs: 60_000 } });
    started.blockList.add('203.0.113.9', null);
    const session = h2connect(`https://a.example:${started.tlsPort}`, { ca: testCa(), servername: 'a.example', host: '127.0.0.1', port: started.tlsPort } as never);
    cleanups.push(() => void session.close());
    const status = (client: string) =>
      new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':path': '/', ':authority': 'a.example', 'x-forwarded-for': client });
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.on('error', reject);
        stream.resume();
        stream.end();
      });
    expect(await status('203.0.113.9')).toBe(429);
    expect(await status('198.51.100.3')).toBe(200);
  });

  it('proxies HTTP/2 with many concurrent streams and HTTP/1.1 over TLS on the same port', async () => {
    const o = await origin(echoHandler());
    const started = await startTls(o);
    const { tlsPort } = started;
    const session = h2connect(`https://a.example:${tlsPort}`, { ca: testCa(), servername: 'a.example', host: '127.0.0.1', port: tlsPort } as never);
    cleanups.push(() => void session.close());
    const one = (i: number): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const stream = session.request({ ':path': `/s/${i}`, ':authority': 'a.example' });
        let status = 0;
        let body = '';
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.on('data', (b: Buffer) => (body += b.toString()));
        stream.on('end', () => resolve({ status, body }));
        stream.on('error', reject);
        stream.end();
      });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => one(i)));
    for (const [i, r] of results.entries()) {
      expect(r.status).toBe(200);
      const seen = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
      expect(seen.url).toBe(`/s/${i}`);
      expect(seen.headers['x-forwarded-proto']).toBe('https');
      expect(seen.headers['host']).toBe('a.example');
    }
    // A request body over HTTP/2 is streamed to the origin too (1 MiB, no Content-Length).
    const payload = randomBytes(1 << 20);
    const posted = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': '/upload', ':authority': 'a.example' });
      let body = '';
      stream.on('data', (b: Buffer) => (body += b.toString()));
      stream.on('end', () => resolve(body));
      stream.on('error', reject);
      stream.end(payload);
    });
    expect(JSON.parse(posted)).toMatchObject({ method: 'POST', bytes: payload.length, sha256: createHash('sha256').update(payload).digest('hex') });
    const h1 = await new Promise<number>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'a.example', ca: testCa(), ALPNProtocols: ['http/1.1'] }, () =>
        s.write('GET /h1 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n'),
      );
      let got = '';
      s.on('data', (b: Buffer) => (got += b.toString()));
      s.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(got)?.[1])));
      s.on('error', reject);
    });
    expect(h1).toBe(200);
    expect(await metric(started, 'secbeat_requests_total', { mode: 'l7', status_class: '2xx' })).toBe(52);
  });
});
