// Slowloris and slow POST against a real L7Proxy on loopback: a bounded number of slow connections (headers
// dribbled a byte at a time; bodies dribbled after their headers) must not starve normal clients, whose
// requests keep succeeding; slowloris connections are closed with 408 once header_timeout_ms passes. The
// latency figures are printed, not asserted (timed assertions do not belong in unit tests).
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { createIpSetState, SharedIpSetWriter } from '../../../src/blocklist/shared-ip-set.ts';
import { buildL7Proxy } from '../../../src/http/setup.ts';
import type { L7Proxy } from '../../../src/http/proxy.ts';
import { ConnLimits, createConnLimitsState } from '../../../src/proxy/conn-limits.ts';
import { rootLogger } from '../../../src/telemetry/log.ts';
import { createMetrics } from '../../../src/telemetry/metrics.ts';

const SLOWLORIS = 200;
const SLOW_POSTS = 50;
const NORMAL_WINDOW_MS = 3_000;
const HEADER_TIMEOUT_MS = 1_000;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

async function setup(): Promise<{ proxy: L7Proxy; port: number }> {
  const origin: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(randomBytes(512).toString('hex')));
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        origin.closeAllConnections();
        origin.close(() => r());
      }),
  );
  const { proxy } = buildL7Proxy(
    {
      listen: { host: '127.0.0.1', port: 0 },
      tls: null,
      routes: [],
      defaultOrigins: [`http://127.0.0.1:${(origin.address() as { port: number }).port}`],
      trustedProxies: [],
      proxyProtocol: false,
      limits: {
        headerTimeoutMs: HEADER_TIMEOUT_MS,
        requestTimeoutMs: 2_000,
        keepAliveTimeoutMs: 5_000,
        maxHeaderBytes: 16_384,
        maxHeaders: 100,
        maxBodyBytes: 10 << 20,
        maxRequestsPerConnection: 0,
        maxConcurrentStreams: 100,
        minBodyRate: 1_024,
        h2ResetBurst: 200,
        h2ResetRate: 20,
      },
      upstream: { connectTimeoutMs: 1_000, headersTimeoutMs: 5_000, bodyTimeoutMs: 5_000, connectionsPerOrigin: 16, ejectAfterFailures: 5, ejectMs: 1_000, originCa: null, verifyOrigins: true },
      waf: null,
      rateLimit: null,
    },
    {
      connLimits: new ConnLimits(createConnLimitsState({ threads: 1, maxConnections: 10_000, perIpMaxConnections: 0 }), 0),
      blockList: new SharedIpSetWriter(createIpSetState(16)),
      rateCounter: null,
      metrics: createMetrics(),
      log: rootLogger(),
      threadName: 'slow',
    },
  );
  const { port } = await proxy.listen();
  cleanups.push(() => proxy.close());
  return { proxy, port };
}

/** A slow client: `head` first, then one byte of `dribble` every `everyMs`, until closed. Records how it ended. */
function slowClient(port: number, head: string, dribble: string, everyMs: number): { socket: Socket; reply: () => string } {
  const socket = connect(port, '127.0.0.1');
  let reply = '';
  socket.on('data', (b: Buffer) => (reply += b.toString()));
  socket.on('error', () => {});
  let i = 0;
  socket.on('connect', () => {
    socket.write(head);
    const timer = setInterval(() => {
      if (socket.destroyed || i >= dribble.length) return clearInterval(timer);
      socket.write(dribble[i++]!);
    }, everyMs);
    socket.once('close', () => clearInterval(timer));
  });
  cleanups.push(() => void socket.destroy());
  return { socket, reply: () => reply };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

describe('L7Proxy under slow clients', () => {
  it(`${SLOWLORIS} slowloris and ${SLOW_POSTS} slow-POST connections do not starve normal clients`, async () => {
    const { port } = await setup();
    const loris = Array.from({ length: SLOWLORIS }, () => slowClient(port, 'GET / HTTP/1.1\r\nHost: x\r\n', 'X-a: b\r\n'.repeat(100), 50));
    const posts = Array.from({ length: SLOW_POSTS }, () =>
      slowClient(port, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n', 'a'.repeat(100_000), 50),
    );
    const agent = new Agent({ connections: 8 });
    cleanups.push(() => agent.close());
    const latencies: number[] = [];
    let failures = 0;
    const until = performance.now() + NORMAL_WINDOW_MS;
    // Four closed loops of normal requests for the whole window, while the slow ones hold their sockets.
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (performance.now() < until) {
          const t0 = performance.now();
          try {
            const res = await request(`http://127.0.0.1:${port}/`, { dispatcher: agent, signal: AbortSignal.timeout(5_000) });
            await res.body.text();
            if (res.statusCode === 200) latencies.push(performance.now() - t0);
            else failures++;
          } catch {
            failures++;
          }
        }
      }),
    );
    latencies.sort((a, b) => a - b);
    const lorisClosed = loris.filter((c) => c.socket.destroyed || c.reply().length > 0).length;
    const lorisTimedOut = loris.filter((c) => /^HTTP\/1\.1 408 /.test(c.reply())).length;
    const postsTimedOut = posts.filter((c) => /^HTTP\/1\.1 408 /.test(c.reply())).length;
    console.log(
      `slow clients: ${latencies.length} normal requests in ${NORMAL_WINDOW_MS} ms, ${failures} failed, ` +
        `p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms, ` +
        `max ${latencies.at(-1)?.toFixed(2)} ms; slowloris answered/closed ${lorisClosed}/${SLOWLORIS} (408: ${lorisTimedOut}); ` +
        `slow POSTs answered 408 ${postsTimedOut}/${SLOW_POSTS}`,
    );
    expect(failures).toBe(0);
    expect(latencies.length).toBeGreaterThan(100);
    // header_timeout_ms (1 s) is long past: every slowloris connection was answered 408 and closed.
    expect(lorisTimedOut).toBe(SLOWLORIS);
    // 20 bytes/s is far under min_body_rate (1 KiB/s): each slow POST was answered 408 once its grace ran out,
    // releasing the origin connection its streamed body held.
    expect(postsTimedOut).toBe(SLOW_POSTS);
  }, 30_000);
});
