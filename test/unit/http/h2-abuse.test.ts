// HTTP/2 abuse against a real L7Proxy over TLS, with frames written by hand: rapid reset (CVE-2023-44487)
// in both shapes (streams cancelled once the proxy took them, and HEADERS+RST_STREAM pairs nghttp2 drops
// before the proxy sees them), a CONTINUATION flood (CVE-2024-27983), and an idle session. Each attack
// ends its connection with GOAWAY or a close, counts a security event by reason, and leaves the proxy
// serving other clients.
import { randomBytes } from 'node:crypto';
import { connect as h2connect } from 'node:http2';
import { DEFAULT_CIPHERS } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { CertificateStore } from '../../../src/tls/cert-store.ts';
import { testCa, testCert } from '../../helpers/certs.ts';
import { connectH2, FLAG, frame, FRAME, getRequestBlock, literal, rstStream } from '../../helpers/h2-frames.ts';
import { startL7Proxy, type TestL7Proxy } from '../../helpers/l7-proxy.ts';

const NAME = 'h2.example';
const ENHANCE_YOUR_CALM = 0xb;
const RESET_BURST = 50;

let proxy: TestL7Proxy | null = null;
afterEach(async () => {
  await proxy?.[Symbol.asyncDispose]();
  proxy = null;
});

async function start(limits: Parameters<typeof startL7Proxy>[1] = {}, answerAfterMs = 0): Promise<TestL7Proxy> {
  const store = new CertificateStore({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphers: DEFAULT_CIPHERS, contextCacheSize: 4 }, randomBytes(48));
  store.install(NAME, testCert([NAME]));
  proxy = await startL7Proxy(store, { h2ResetBurst: RESET_BURST, h2ResetRate: 5, ...limits }, answerAfterMs);
  return proxy;
}

/** A normal HTTP/2 request on a fresh session: the proxy still serves. */
async function stillServes(port: number): Promise<number> {
  const session = h2connect(`https://${NAME}:${port}`, { ca: testCa(), host: '127.0.0.1', port } as never);
  try {
    return await new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':path': '/' });
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.on('error', reject);
      stream.resume();
    });
  } finally {
    session.close();
  }
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms))]);
}

describe('L7Proxy under HTTP/2 abuse', () => {
  it('answers streams cancelled after the proxy took them with GOAWAY(ENHANCE_YOUR_CALM) past the burst', async () => {
    // The origin answers late, so every cancelled stream still holds an origin request.
    const p = await start({}, 200);
    const c = await connectH2(p.tlsPort, NAME);
    let sent = 0;
    let goaway: number | null | undefined;
    void c.goaway.then((code) => (goaway = code));
    // Ten streams at a time, each cancelled once the proxy has had a moment to dispatch it to the origin.
    for (let round = 0; round < 40 && goaway === undefined; round++) {
      const ids = Array.from({ length: 10 }, (_, i) => 1 + 2 * (round * 10 + i));
      c.send(Buffer.concat(ids.map((id) => frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, getRequestBlock(NAME)))));
      await new Promise((r) => setTimeout(r, 5));
      c.send(Buffer.concat(ids.map((id) => rstStream(id))));
      sent += ids.length;
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await within(c.goaway, 3_000, 'GOAWAY')).toBe(ENHANCE_YOUR_CALM);
    expect(sent).toBeGreaterThan(RESET_BURST);
    expect(sent).toBeLessThanOrEqual(RESET_BURST + 20);
    expect(await p.counter('secbeat_attacks_blocked_total', { mode: 'l7', reason: 'h2_rapid_reset' })).toBe(1);
    expect(await stillServes(p.tlsPort)).toBe(200);
  });

  it('ends a session that sends HEADERS + RST_STREAM pairs in one burst', async () => {
    const p = await start();
    const c = await connectH2(p.tlsPort, NAME);
    const pairs = Array.from({ length: 2_000 }, (_, i) => [frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1 + 2 * i, getRequestBlock(NAME)), rstStream(1 + 2 * i)]);
    c.send(Buffer.concat(pairs.flat()));
    // Whichever bucket empties first ends it: the proxy's (streams it took) or nghttp2's (every RST_STREAM).
    // The GOAWAY itself may be lost: closing on a client whose frames are still unread resets the connection.
    await within(c.goaway, 3_000, 'connection end');
    const counted = async (): Promise<number> =>
      (await p.counter('secbeat_attacks_blocked_total', { mode: 'l7', reason: 'h2_rapid_reset' })) +
      (await p.counter('secbeat_attacks_blocked_total', { mode: 'l7', reason: 'h2_protocol_error' }));
    await expect.poll(counted).toBe(1);
    expect(await stillServes(p.tlsPort)).toBe(200);
  });

  it('ends a CONTINUATION flood and names it', async () => {
    const p = await start();
    const c = await connectH2(p.tlsPort, NAME);
    // HEADERS without END_HEADERS, then an endless header block: tiny fields, thousands of frames.
    const flood = [frame(FRAME.HEADERS, 0, 1, getRequestBlock(NAME))];
    for (let i = 0; i < 10_000; i++) flood.push(frame(FRAME.CONTINUATION, 0, 1, literal('x-a', 'b')));
    c.send(Buffer.concat(flood));
    await within(c.goaway, 3_000, 'connection end');
    await expect.poll(() => p.counter('secbeat_attacks_blocked_total', { mode: 'l7', reason: 'h2_continuation_flood' })).toBe(1);
    expect(await stillServes(p.tlsPort)).toBe(200);
  });

  it('answers 408 to an HTTP/2 request body that arrives slower than min_body_rate', async () => {
    const p = await start({ headerTimeoutMs: 400, minBodyRate: 1_024 });
    const session = h2connect(`https://${NAME}:${p.tlsPort}`, { ca: testCa(), host: '127.0.0.1', port: p.tlsPort } as never);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/upload' });
      const timer = setInterval(() => stream.write(Buffer.alloc(10)), 100);
      const status = await within(
        new Promise<number>((resolve, reject) => {
          stream.on('response', (h) => resolve(Number(h[':status'])));
          stream.on('error', reject);
        }),
        3_000,
        'a response',
      ).finally(() => clearInterval(timer));
      expect(status).toBe(408);
      expect(await p.counter('secbeat_attacks_blocked_total', { mode: 'l7', reason: 'slow_body' })).toBe(1);
    } finally {
      session.destroy();
    }
  });

  it('closes an HTTP/2 session left idle for the keep-alive timeout, with GOAWAY(NO_ERROR)', async () => {
    const p = await start({ keepAliveTimeoutMs: 300 });
    const c = await connectH2(p.tlsPort, NAME);
    expect(await within(c.goaway, 3_000, 'GOAWAY')).toBe(0x0);
  });
});
