// The L7 data plane must survive whatever a client sends: arbitrary bytes and malformed HTTP/1.1 in
// arbitrary splits to the plain listener, and arbitrary bytes after the HTTP/2 preface over TLS, never crash
// the thread or wedge the proxy, which still serves a normal request afterwards.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIpSetState, SharedIpSetWriter } from '../../src/blocklist/shared-ip-set.ts';
import type { L7Proxy } from '../../src/http/proxy.ts';
import { buildL7Proxy } from '../../src/http/setup.ts';
import { ConnLimits, createConnLimitsState } from '../../src/proxy/conn-limits.ts';
import { rootLogger } from '../../src/telemetry/log.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { certificateSet, testCa, testCert } from '../helpers/certs.ts';
import { fcParams } from '../helpers/fc.ts';

const requestish = fc.oneof(
  fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)),
  fc
    .tuple(
      fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', 'G\0T', '', 'CONNECT'),
      fc.constantFrom('/', '/a?b=c', '*', 'http://x/', '', '/%00', 'x.example:443'),
      fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1\n', 'PRI'),
      fc.array(
        fc.tuple(
          fc.constantFrom('host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'expect', 'x-forwarded-for', 'a b', ''),
          fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('chunked', '-1', '99999999999', 'websocket', '100-continue', 'close, x')),
        ),
        { maxLength: 8 },
      ),
      fc.string({ maxLength: 80 }),
    )
    .map(([m, t, v, hs, body]) => Buffer.from(`${m} ${t} ${v}\r\n${hs.map(([k, val]) => `${k}: ${val}\r\n`).join('')}\r\n${body}`, 'latin1')),
);

describe('L7Proxy (fuzz)', () => {
  let origin: Server;
  let proxy: L7Proxy;
  let port = 0;
  let tlsPort = 0;
  const agent = new Agent();

  beforeAll(async () => {
    origin = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    const originPort = (origin.address() as { port: number }).port;
    ({ proxy } = buildL7Proxy(
      {
        listen: { host: '127.0.0.1', port: 0 },
        tls: {
          listen: { host: '127.0.0.1', port: 0 },
          minVersion: 'TLSv1.2',
          ciphers: undefined,
          ticketKeys: randomBytes(48),
          certificates: certificateSet(testCert(['fuzz.example'])),
          contextCacheSize: 4,
        },
        routes: [],
        defaultOrigins: [`http://127.0.0.1:${originPort}`],
        trustedProxies: ['127.0.0.0/8'],
        proxyProtocol: false,
        limits: {
          headerTimeoutMs: 300,
          requestTimeoutMs: 1_000,
          keepAliveTimeoutMs: 300,
          maxHeaderBytes: 4_096,
          maxHeaders: 50,
          maxBodyBytes: 10_000,
          maxRequestsPerConnection: 10,
          maxConcurrentStreams: 10,
          minBodyRate: 1_024,
          h2ResetBurst: 50,
          h2ResetRate: 10,
        },
        upstream: { connectTimeoutMs: 500, headersTimeoutMs: 1_000, bodyTimeoutMs: 1_000, connectionsPerOrigin: 4, ejectAfterFailures: 5, ejectMs: 1_000, originCa: null, verifyOrigins: true },
        waf: null,
        rateLimit: null,
      },
      {
        connLimits: new ConnLimits(createConnLimitsState({ threads: 1, maxConnections: 1000, perIpMaxConnections: 0 }), 0),
        blockList: new SharedIpSetWriter(createIpSetState(16)),
        rateCounter: null,
        metrics: createMetrics(),
        log: rootLogger(),
        threadName: 'fuzz',
      },
    ));
    port = (await proxy.listen()).port;
    tlsPort = proxy.tlsPort;
  });

  afterAll(async () => {
    await proxy.close();
    await agent.close();
    origin.closeAllConnections();
    await new Promise<void>((r) => origin.close(() => r()));
  });

  async function stillServes(): Promise<void> {
    const res = await request(`http://127.0.0.1:${port}/`, { dispatcher: agent, signal: AbortSignal.timeout(3_000) });
    expect(await res.body.text()).toBe('ok');
  }

  async function sendAndForget(socket: Socket, bytes: Buffer, split: number): Promise<void> {
    socket.on('error', () => {});
    for (let i = 0; i < bytes.length; i += split) socket.write(bytes.subarray(i, i + split));
    await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 100))]);
    socket.destroy();
  }

  it('HTTP/1.1: never crashes or wedges, and a normal request succeeds after each input', async () => {
    await fc.assert(
      fc.asyncProperty(requestish, fc.integer({ min: 1, max: 64 }), async (bytes, split) => {
        const socket = connect(port, '127.0.0.1');
        await once(socket, 'connect');
        await sendAndForget(socket, bytes, split);
        await stillServes();
      }),
      fcParams(40),
    );
  }, 120_000);

  it('HTTP/2 over TLS: arbitrary frames after the preface never crash or wedge the proxy', async () => {
    const frame = fc
      .tuple(fc.integer({ min: 0, max: 0xff }), fc.integer({ min: 0, max: 0xff }), fc.integer({ min: 0, max: 0x7fffffff }), fc.uint8Array({ maxLength: 64 }))
      .map(([type, flags, stream, payload]) => {
        const header = Buffer.alloc(9);
        header.writeUIntBE(payload.length, 0, 3);
        header[3] = type;
        header[4] = flags;
        header.writeUInt32BE(stream, 5);
        return Buffer.concat([header, Buffer.from(payload)]);
      });
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { maxLength: 12 }), async (frames) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'fuzz.example', ca: testCa(), ALPNProtocols: ['h2'] });
        await once(socket, 'secureConnect');
        await sendAndForget(socket as unknown as Socket, Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), ...frames]), 4096);
        await stillServes();
      }),
      fcParams(30),
    );
  }, 120_000);
});
