// The management listener must survive whatever reaches it: arbitrary bytes in arbitrary splits never
// crash the process or wedge the server, which still answers a normal request afterwards.
import { once } from 'node:events';
import { connect, type AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveSmallHttp, SMALL_HTTP_DEFAULTS } from '../../src/net/small-http.ts';
import { fcParams } from '../helpers/fc.ts';

const requestish = fc.oneof(
  fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)),
  fc
    .tuple(
      fc.constantFrom('GET', 'POST', 'HEAD', 'DELETE', 'G\0T', ''),
      fc.constantFrom('/', '/metrics', '/a?b=c', '*', 'http://x/', ''),
      fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1\n'),
      fc.array(fc.tuple(fc.constantFrom('content-length', 'transfer-encoding', 'connection', 'x', 'a b', ''), fc.string({ maxLength: 20 })), { maxLength: 6 }),
      fc.string({ maxLength: 50 }),
    )
    .map(([m, t, v, hs, body]) => Buffer.from(`${m} ${t} ${v}\r\n${hs.map(([k, val]) => `${k}: ${val}\r\n`).join('')}\r\n${body}`, 'latin1')),
);

describe('serveSmallHttp (fuzz)', () => {
  let port = 0;
  let server: Awaited<ReturnType<typeof serveSmallHttp>>;
  beforeAll(async () => {
    server = await serveSmallHttp({ host: '127.0.0.1', port: 0 }, () => ({ status: 200, body: 'ok' }), { ...SMALL_HTTP_DEFAULTS, requestTimeoutMs: 100, idleTimeoutMs: 100 });
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => server.close());

  it('never wedges: a normal request succeeds after each input', async () => {
    await fc.assert(
      fc.asyncProperty(requestish, fc.integer({ min: 1, max: 64 }), async (bytes, split) => {
        const socket = connect(port, '127.0.0.1');
        await once(socket, 'connect');
        socket.on('error', () => {});
        for (let i = 0; i < bytes.length; i += split) socket.write(bytes.subarray(i, i + split));
        await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 150))]);
        socket.destroy();
        const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
        expect(await res.text()).toBe('ok');
      }),
      fcParams(40),
    );
  }, 60_000);
});
