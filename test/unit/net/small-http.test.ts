import { once } from 'node:events';
import { connect, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { serveSmallHttp, SMALL_HTTP_DEFAULTS, type SmallHandler, type SmallHttpLimits } from '../../../src/net/small-http.ts';

let server: Server | null = null;
afterEach(() => {
  server?.close();
  server = null;
});

const echo: SmallHandler = (req) => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ method: req.method, path: req.path, q: req.query.get('q'), a: req.headers.get('x-a') ?? null, body: req.body.toString() }),
});

async function start(handler: SmallHandler = echo, limits: Partial<SmallHttpLimits> = {}): Promise<number> {
  server = await serveSmallHttp({ host: '127.0.0.1', port: 0 }, handler, { ...SMALL_HTTP_DEFAULTS, ...limits });
  return (server.address() as AddressInfo).port;
}

/** Sends raw bytes, returns everything the server sent until it closed (or 2 s passed). */
async function raw(port: number, ...parts: (string | Buffer)[]): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  for (const p of parts) socket.write(p);
  await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 2000))]);
  socket.destroy();
  return Buffer.concat(chunks).toString('latin1');
}

describe('serveSmallHttp', () => {
  it('answers fetch with keep-alive, query strings, headers and a body', async () => {
    const port = await start();
    const base = `http://127.0.0.1:${port}`;
    const get = await fetch(`${base}/x/y?q=1%202`, { headers: { 'x-a': 'b' } });
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual({ method: 'GET', path: '/x/y', q: '1 2', a: 'b', body: '' });
    const post = await fetch(`${base}/p`, { method: 'POST', body: JSON.stringify({ ip: '1.2.3.4' }) });
    expect(await post.json()).toMatchObject({ method: 'POST', body: '{"ip":"1.2.3.4"}' });
  });

  it('serves pipelined requests in order on one connection', async () => {
    const port = await start();
    const out = await raw(port, 'GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\nconnection: close\r\n\r\n');
    expect([...out.matchAll(/"path":"(\/\d)"/g)].map((m) => m[1])).toEqual(['/1', '/2', '/3']);
    expect(out).toMatch(/connection: close/);
  });

  it('a body split across writes arrives whole', async () => {
    const port = await start();
    const out = await raw(port, 'POST / HTTP/1.1\r\ncontent-length: 10\r\nconnection: close\r\n\r\nhello', ' wor', 'ld');
    expect(out).toContain('"body":"hello worl"');
  });

  it.each([
    ['garbage request line', 'HELLO\r\n\r\n', 400],
    ['absolute-form target', 'GET http://x/ HTTP/1.1\r\n\r\n', 400],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400],
    ['space before colon', 'GET / HTTP/1.1\r\nhost : x\r\n\r\n', 400],
    ['folded header', 'GET / HTTP/1.1\r\nx-a: 1\r\n  2\r\n\r\n', 400],
    ['bad content-length', 'POST / HTTP/1.1\r\ncontent-length: 1, 1\r\n\r\nx', 400],
    ['chunked body', 'POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n', 411],
    ['body too large', 'POST / HTTP/1.1\r\ncontent-length: 2000\r\n\r\n', 413],
    ['too many headers', `GET / HTTP/1.1\r\n${'x: 1\r\n'.repeat(10)}\r\n`, 431],
    ['head too large', `GET /${'a'.repeat(3000)} HTTP/1.1\r\n\r\n`, 431],
    ['head too large, never ends', `GET / HTTP/1.1\r\nx: ${'a'.repeat(3000)}`, 431],
  ])('%s → %i and the connection closes', async (_name, request, status) => {
    const port = await start(echo, { maxHeaders: 8, maxBodyBytes: 1000, maxHeadBytes: 2048 });
    const out = await raw(port, request);
    expect(out.startsWith(`HTTP/1.1 ${status} `)).toBe(true);
    expect(out).toMatch(/connection: close/);
  });

  it('times out a slow request with 408 and closes an idle connection silently', async () => {
    const port = await start(echo, { requestTimeoutMs: 100, idleTimeoutMs: 100 });
    expect(await raw(port, 'GET / HTTP/1.1\r\n')).toMatch(/^HTTP\/1\.1 408 /);
    expect(await raw(port)).toBe('');
  });

  it('a throwing or rejecting handler gives 500 and the server keeps serving', async () => {
    let calls = 0;
    const port = await start(() => {
      calls++;
      if (calls === 1) throw new Error('boom');
      if (calls === 2) return Promise.reject(new Error('boom'));
      return { status: 204 };
    });
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(500);
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(500);
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(204);
  });

  it('HEAD gets the headers without the body', async () => {
    const port = await start();
    const out = await raw(port, 'HEAD /h HTTP/1.1\r\nconnection: close\r\n\r\n');
    expect(out).toMatch(/^HTTP\/1\.1 200 OK\r\ncontent-length: \d+\r\n/);
    expect(out.endsWith('\r\n\r\n')).toBe(true);
  });
});
