// The origin client of L7 mode (src/http/origin-pool.ts) against real origins on 127.0.0.1: node:http servers for
// well-behaved ones, raw node:net servers for the ones that stall, lie or switch protocols, node:https with the
// test CA for TLS. Every origin and pool a test makes is closed after it.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { OriginError, OriginPool, type OriginCall, type OriginHandler, type OriginPoolSettings, type OriginRequest } from '../../../src/http/origin-pool.ts';
import { testCa, testCert } from '../../helpers/certs.ts';
import { freePort } from '../../helpers/ports.ts';

const SETTINGS: OriginPoolSettings = { connections: 4, connectTimeoutMs: 2_000, headersTimeoutMs: 2_000, bodyTimeoutMs: 2_000, ca: null, verify: true };

const disposers: (() => unknown)[] = [];
afterEach(async () => {
  for (const dispose of disposers.splice(0).reverse()) await dispose();
});

function originPool(url: URL, settings: Partial<OriginPoolSettings> = {}): OriginPool {
  const pool = new OriginPool(url, { ...SETTINGS, ...settings });
  disposers.push(() => pool.close());
  return pool;
}

/** A listening origin and the TCP connections it accepted (all of them, closed or not). */
interface Origin {
  url: URL;
  sockets: Socket[];
}

async function listen(server: Server, scheme: 'http' | 'https' = 'http'): Promise<Origin> {
  const sockets: Socket[] = [];
  server.on('connection', (socket: Socket) => sockets.push(socket));
  server.listen({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  disposers.push(async () => {
    for (const socket of sockets) socket.destroy();
    server.close();
    await once(server, 'close');
  });
  return { url: new URL(`${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`), sockets };
}

const httpOrigin = (handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Origin> => listen(createHttpServer(handler));

/** A raw origin: `onRequest` once per request head read on a connection (requests here have no body). */
function rawOrigin(onRequest: (socket: Socket, head: string, connection: number) => void): Promise<Origin> {
  let connections = 0;
  return listen(
    createNetServer((socket) => {
      const connection = connections++;
      let buffered = '';
      socket.on('error', () => {});
      socket.on('data', (data: Buffer) => {
        buffered += data.toString('latin1');
        for (let end = buffered.indexOf('\r\n\r\n'); end !== -1; end = buffered.indexOf('\r\n\r\n')) {
          const head = buffered.slice(0, end);
          buffered = buffered.slice(end + 4);
          onRequest(socket, head, connection);
        }
      });
    }),
  );
}

/** What a handler heard. `events` lists every callback, so one after the end shows. */
interface Exchange {
  status: number;
  headers: string[];
  body: Buffer;
  error: OriginError | null;
  events: string[];
}

/** Dispatches `request`; `done` settles at the exchange's last callback. `hooks` run after the recording. */
function send(pool: OriginPool, request: Partial<OriginRequest> = {}, hooks: Partial<OriginHandler> = {}): { call: OriginCall; done: Promise<Exchange> } {
  const exchange: Exchange = { status: 0, headers: [], body: Buffer.alloc(0), error: null, events: [] };
  const parts: Buffer[] = [];
  let settle!: (e: Exchange) => void;
  const done = new Promise<Exchange>((resolve) => (settle = resolve));
  const call = pool.dispatch(
    { method: 'GET', path: '/', headers: ['host', 'origin.test'], body: null, bodyLength: -1, ...request },
    {
      onResponseStart(status, headers) {
        exchange.events.push('start');
        Object.assign(exchange, { status, headers });
        hooks.onResponseStart?.(status, headers);
      },
      onResponseData(chunk) {
        exchange.events.push('data');
        parts.push(Buffer.from(chunk));
        return hooks.onResponseData?.(chunk) ?? true;
      },
      onResponseEnd() {
        exchange.events.push('end');
        exchange.body = Buffer.concat(parts);
        settle(exchange);
      },
      onResponseError(err) {
        exchange.events.push(`error ${err.kind}`);
        exchange.error = err;
        exchange.body = Buffer.concat(parts);
        settle(exchange);
      },
      onUpgrade(status, headers, socket, head) {
        exchange.events.push('upgrade');
        Object.assign(exchange, { status, headers, body: head });
        hooks.onUpgrade?.(status, headers, socket, head);
        settle(exchange);
      },
    },
  );
  return { call, done };
}

/** Resolves once `socket` has closed, at once if it has already. */
const closed = (socket: Socket): Promise<unknown> => (socket.closed ? Promise.resolve() : once(socket, 'close'));

/** Polls `condition` every 5 ms; fails the test after `ms`. */
async function until(condition: () => boolean, ms = 3_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${ms} ms: ${condition.toString()}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Sends an Upgrade request; the exchange, and the socket handed to onUpgrade (destroyed after the test). */
async function upgrade(pool: OriginPool): Promise<{ got: Exchange; socket: Socket }> {
  let upgraded = null as Socket | null;
  const got = await send(pool, { headers: ['host', 'origin.test', 'upgrade', 'echo', 'connection', 'upgrade'] }, {
    onUpgrade: (_status, _headers, socket) => {
      upgraded = socket;
    },
  }).done;
  const socket = upgraded!;
  disposers.push(() => socket.destroy());
  return { got, socket };
}

/** Writes `text` on an upgraded socket and expects the echoing origin to send it back. */
async function expectEcho(socket: Socket, text: string): Promise<void> {
  socket.on('error', () => {});
  socket.resume();
  socket.write(text);
  const [echoed] = (await once(socket, 'data')) as [Buffer];
  expect(echoed.toString()).toBe(text);
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/**
 * An origin that answers with what it received: method, framing headers, body length and digest. It starts
 * reading 100 ms late, so that a large body fills the loopback buffers and the pool has to wait for 'drain'.
 */
const echoOrigin = (): Promise<Origin> =>
  httpOrigin((req, res) => {
    req.pause();
    setTimeout(() => req.resume(), 100);
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    req.on('end', () => {
      const seen = { method: req.method, contentLength: req.headers['content-length'] ?? null, transferEncoding: req.headers['transfer-encoding'] ?? null, length, sha: hash.digest('hex') };
      res.end(JSON.stringify(seen));
    });
  });

async function* chunksOf(data: Buffer, size: number): AsyncIterable<Buffer> {
  for (let i = 0; i < data.length; i += size) {
    // An empty chunk must not reach the wire: in chunked framing it would end the body.
    if (i === size) yield Buffer.alloc(0);
    yield data.subarray(i, i + size);
  }
}

describe('OriginPool', () => {
  it('reuses one keep-alive connection for sequential requests', async () => {
    const origin = await httpOrigin((req, res) => res.end(`hello ${req.url}`));
    const pool = originPool(origin.url);
    for (let i = 0; i < 10; i++) {
      const { done } = send(pool, { path: `/${i}` });
      const got = await done;
      expect(got.events).toEqual(['start', 'data', 'end']);
      expect(got.status).toBe(200);
      expect(got.body.toString()).toBe(`hello /${i}`);
    }
    expect(origin.sockets).toHaveLength(1);
    expect(pool.stats).toEqual({ connections: 1, idle: 1, queued: 0 });
  });

  it('opens at most `connections` and queues the rest in order', async () => {
    let active = 0;
    let most = 0;
    const order: string[] = [];
    const origin = await httpOrigin((req, res) => {
      most = Math.max(most, ++active);
      order.push(req.url!);
      setTimeout(() => {
        active--;
        res.end(req.url);
      }, 50);
    });
    const pool = originPool(origin.url, { connections: 2 });
    const sent = Array.from({ length: 6 }, (_, i) => send(pool, { path: `/${i}` }));
    expect(pool.stats).toEqual({ connections: 2, idle: 0, queued: 4 });
    const got = await Promise.all(sent.map((s) => s.done));
    expect(got.map((g) => g.body.toString())).toEqual(['/0', '/1', '/2', '/3', '/4', '/5']);
    expect(most).toBe(2);
    expect(origin.sockets).toHaveLength(2);
    // FIFO: the queued four went out in the order they came.
    expect(order.slice(2)).toEqual(['/2', '/3', '/4', '/5']);
    expect(pool.stats).toEqual({ connections: 2, idle: 2, queued: 0 });
  });

  it('streams a request body of known length intact, without piling up listeners', async () => {
    const origin = await echoOrigin();
    const pool = originPool(origin.url);
    const data = randomBytes(16 * 1024 * 1024);
    let socket = null as Socket | null;
    const sent = send(pool, { method: 'PUT', body: chunksOf(data, 64 * 1024), bodyLength: data.length }, {
      onResponseStart: () => {
        socket = sent.call.connection!.socket;
      },
    });
    const got = await sent.done;
    expect(got.status).toBe(200);
    expect(JSON.parse(got.body.toString())).toEqual({ method: 'PUT', contentLength: String(data.length), transferEncoding: null, length: data.length, sha: sha256(data) });
    // Each wait for 'drain' must leave no listener behind on the kept connection.
    expect(socket!.listenerCount('drain')).toBe(0);
    expect(socket!.listenerCount('close')).toBeLessThanOrEqual(1);
  });

  it('streams a request body of unknown length chunked, intact', async () => {
    const origin = await echoOrigin();
    const pool = originPool(origin.url);
    // Each chunk is three writes (size line, data, CRLF): all three must go out even when the buffer is full.
    const data = randomBytes(16 * 1024 * 1024 + 7);
    const got = await send(pool, { method: 'POST', body: chunksOf(data, 100_000), bodyLength: -1 }).done;
    expect(got.status).toBe(200);
    expect(JSON.parse(got.body.toString())).toEqual({ method: 'POST', contentLength: null, transferEncoding: 'chunked', length: data.length, sha: sha256(data) });
    // The chunked body ended cleanly: the connection carries the next request.
    expect((await send(pool).done).status).toBe(200);
    expect(origin.sockets).toHaveLength(1);
  });

  it('frames a buffered body with Content-Length, and a body method without one with Content-Length: 0', async () => {
    const origin = await echoOrigin();
    const pool = originPool(origin.url);
    const seen = async (request: Partial<OriginRequest>): Promise<unknown> => JSON.parse((await send(pool, request).done).body.toString());
    expect(await seen({ method: 'POST', body: Buffer.from('hello') })).toEqual({ method: 'POST', contentLength: '5', transferEncoding: null, length: 5, sha: sha256(Buffer.from('hello')) });
    expect(await seen({ method: 'POST' })).toMatchObject({ contentLength: '0', transferEncoding: null, length: 0 });
    expect(await seen({ method: 'PATCH', body: Buffer.alloc(0) })).toMatchObject({ contentLength: '0', transferEncoding: null, length: 0 });
    expect(await seen({ method: 'GET' })).toMatchObject({ contentLength: null, transferEncoding: null, length: 0 });
    expect(origin.sockets).toHaveLength(1);
  });

  it('reads no more of the body until resume(), without a body timeout meanwhile', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const origin = await httpOrigin((_req, res) => res.end(data));
    const pool = originPool(origin.url, { bodyTimeoutMs: 100 });
    let calls = 0;
    // Full after the first slice.
    const sent = send(pool, {}, { onResponseData: () => ++calls > 1 });
    await until(() => calls === 1);
    // Three body timeouts' worth of waiting: nothing is read, and the paused exchange is not timed out.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(calls).toBe(1);
    sent.call.resume();
    const got = await sent.done;
    expect(got.error).toBeNull();
    expect(sha256(got.body)).toBe(sha256(data));
  });

  it('a connection paused on a response\'s last chunk is read again for the next request', async () => {
    const origin = await httpOrigin((req, res) => res.end(`small ${req.url}`));
    const pool = originPool(origin.url, { headersTimeoutMs: 500 });
    // The client's buffer is full at the very end: the exchange is over, so there is nothing to resume().
    const first = await send(pool, { path: '/1' }, { onResponseData: () => false }).done;
    expect(first.events).toEqual(['start', 'data', 'end']);
    const second = await send(pool, { path: '/2' }).done;
    expect(second.error).toBeNull();
    expect(second.body.toString()).toBe('small /2');
    expect(origin.sockets).toHaveLength(1);
  });

  it('answers HEAD without waiting for the body its Content-Length announces, and reuses the connection', async () => {
    const origin = await httpOrigin((req, res) => {
      res.setHeader('content-length', 100);
      res.end(req.method === 'HEAD' ? undefined : 'x'.repeat(100));
    });
    const pool = originPool(origin.url);
    const head = await send(pool, { method: 'HEAD' }).done;
    expect(head.events).toEqual(['start', 'end']);
    expect(head.headers).toContain('100');
    expect((await send(pool).done).body.toString()).toBe('x'.repeat(100));
    expect(origin.sockets).toHaveLength(1);
  });

  it('connect_refused: nothing listens on the port', async () => {
    const pool = originPool(new URL(`http://127.0.0.1:${await freePort()}`));
    const got = await send(pool).done;
    expect(got.events).toEqual(['error connect_refused']);
    expect(got.error).toBeInstanceOf(OriginError);
    expect(got.error!.connectionFailure).toBe(true);
    expect(got.error!.timeout).toBe(false);
    await until(() => pool.stats.connections === 0);
  });

  it('connect_timeout: a listener whose accept queue is full drops the SYN', async () => {
    // A worker listens with a backlog of 1 and then blocks its own event loop, so it never accepts: two
    // connections fill the kernel's accept queue and later SYNs are dropped (the connect would retry for minutes).
    const release = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(
      `const { createServer } = require('node:net');
       const { parentPort, workerData } = require('node:worker_threads');
       const server = createServer();
       server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
         parentPort.postMessage(server.address().port);
         Atomics.wait(workerData, 0, 0);
         server.close();
       });`,
      { eval: true, workerData: release },
    );
    disposers.push(async () => {
      Atomics.store(release, 0, 1);
      Atomics.notify(release, 0);
      await worker.terminate();
    });
    const [port] = (await once(worker, 'message')) as [number];
    const fillers = Array.from({ length: 2 }, () => connect(port, '127.0.0.1').on('error', () => {}));
    disposers.push(() => fillers.forEach((s) => s.destroy()));
    await Promise.all(fillers.map((s) => once(s, 'connect')));

    const pool = originPool(new URL(`http://127.0.0.1:${port}`), { connectTimeoutMs: 150 });
    const got = await send(pool).done;
    expect(got.events).toEqual(['error connect_timeout']);
    expect(got.error!.connectionFailure).toBe(true);
    expect(got.error!.timeout).toBe(true);
    await until(() => pool.stats.connections === 0);
  });

  it('headers_timeout: the origin never answers, and the connection is closed', async () => {
    const origin = await httpOrigin(() => {});
    const pool = originPool(origin.url, { headersTimeoutMs: 150 });
    const got = await send(pool).done;
    expect(got.events).toEqual(['error headers_timeout']);
    expect(got.error!.timeout).toBe(true);
    expect(got.error!.connectionFailure).toBe(false);
    await closed(origin.sockets[0]!);
    await until(() => pool.stats.connections === 0);
  });

  it('body_timeout: the origin sends the head and part of the body, then stalls', async () => {
    const origin = await rawOrigin((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc'));
    const pool = originPool(origin.url, { bodyTimeoutMs: 150 });
    const got = await send(pool).done;
    expect(got.events).toEqual(['start', 'data', 'error body_timeout']);
    expect(got.body.toString()).toBe('abc');
    expect(got.error!.timeout).toBe(true);
    await closed(origin.sockets[0]!);
  });

  it('bad_response: garbage from the origin fails the exchange, and the connection is not reused', async () => {
    const origin = await rawOrigin((socket, _head, connection) =>
      socket.write(connection === 0 ? 'SSH-2.0-OpenSSH_9.6\r\n\r\n' : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
    );
    const pool = originPool(origin.url);
    const got = await send(pool).done;
    expect(got.events).toEqual(['error bad_response']);
    expect(got.error!.message).toMatch(/status line/);
    expect(got.error!.connectionFailure).toBe(false);
    await closed(origin.sockets[0]!);
    const next = await send(pool).done;
    expect(next.body.toString()).toBe('ok');
    expect(origin.sockets).toHaveLength(2);
  });

  it('reset: the origin drops the connection mid-response', async () => {
    const origin = await rawOrigin((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial'));
    const pool = originPool(origin.url);
    const got = await send(pool).done;
    expect(got.events).toEqual(['start', 'data', 'error reset']);
    expect(got.error!.connectionFailure).toBe(true);
  });

  it('a close-delimited body ends at the close, and that connection is not kept', async () => {
    const origin = await rawOrigin((socket) => socket.end('HTTP/1.1 200 OK\r\n\r\nuntil close'));
    const pool = originPool(origin.url);
    const got = await send(pool).done;
    expect(got.events).toEqual(['start', 'data', 'end']);
    expect(got.body.toString()).toBe('until close');
    await until(() => pool.stats.connections === 0);
  });

  it('bytes after a complete response: that connection is dropped, and a queued request goes out on a new one', async () => {
    const requests: number[] = [];
    const origin = await rawOrigin((socket, _head, connection) => {
      requests.push(connection);
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok${connection === 0 ? 'HTTP/1.1 200 OK\r\n' : ''}`);
    });
    const pool = originPool(origin.url, { connections: 1 });
    const first = send(pool);
    const second = send(pool);
    expect((await first.done).events).toEqual(['start', 'data', 'end']);
    const got = await second.done;
    expect(got.error).toBeNull();
    expect(got.body.toString()).toBe('ok');
    // The confused connection never carried the queued request.
    expect(requests).toEqual([0, 1]);
  });

  it('after the origin closes an idle keep-alive connection, the next request opens a new one', async () => {
    const server = createHttpServer((_req, res) => res.end('ok'));
    server.keepAliveTimeout = 50;
    const origin = await listen(server);
    const pool = originPool(origin.url);
    expect((await send(pool).done).body.toString()).toBe('ok');
    await closed(origin.sockets[0]!);
    await until(() => pool.stats.connections === 0);
    const got = await send(pool).done;
    expect(got.body.toString()).toBe('ok');
    expect(origin.sockets).toHaveLength(2);
  });

  it('sends an idempotent request again on a fresh connection when a kept-alive one was closed under it', async () => {
    // The second request on the first connection meets the origin's idle close: no response, just the close.
    const closingSecond = (): Promise<Origin> => {
      let requests = 0;
      return rawOrigin((socket, _head, connection) => {
        requests++;
        if (connection === 0 && requests === 2) return void socket.destroy();
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      });
    };
    const origin = await closingSecond();
    const pool = originPool(origin.url);
    expect((await send(pool).done).body.toString()).toBe('ok');
    const again = await send(pool).done;
    expect(again.events).toEqual(['start', 'data', 'end']);
    expect(origin.sockets).toHaveLength(2);
    // A POST on a healthy connection goes through; on one closed under it, it is not replayed: the origin may have taken it up.
    expect((await send(pool, { method: 'POST', body: Buffer.from('x') }).done).events).toEqual(['start', 'data', 'end']);
    const dropping = await closingSecond();
    const pool2 = originPool(dropping.url);
    expect((await send(pool2).done).body.toString()).toBe('ok');
    expect((await send(pool2, { method: 'POST', body: Buffer.from('x') }).done).events).toEqual(['error reset']);
  });

  it('a handler that throws costs its exchange and connection, not the thread', async () => {
    const origin = await httpOrigin((_req, res) => res.end('ok'));
    const pool = originPool(origin.url);
    const got = await send(pool, {}, { onResponseStart: () => { throw new Error('refused by the client side'); } }).done;
    expect(got.events).toEqual(['start', 'error bad_response']);
    expect(got.error!.message).toMatch(/refused by the client side/);
    expect((await send(pool).done).body.toString()).toBe('ok');
    expect(origin.sockets).toHaveLength(2);
  });

  it('does not keep a connection the origin said it would close', async () => {
    const origin = await httpOrigin((_req, res) => {
      res.setHeader('connection', 'close');
      res.end('bye');
    });
    const pool = originPool(origin.url);
    expect((await send(pool).done).body.toString()).toBe('bye');
    expect((await send(pool).done).body.toString()).toBe('bye');
    expect(origin.sockets).toHaveLength(2);
  });

  it('abort() mid-response: no further callbacks, and the connection is destroyed', async () => {
    const origin = await rawOrigin((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
      setTimeout(() => socket.writable && socket.write('defghij'), 50);
    });
    const pool = originPool(origin.url);
    const sent = send(pool, {}, {
      onResponseData: () => {
        sent.call.abort();
        return true;
      },
    });
    await until(() => sent.call.done);
    await closed(origin.sockets[0]!);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const got = await Promise.race([sent.done, Promise.resolve(null)]);
    expect(got).toBeNull();
    expect(pool.stats.connections).toBe(0);
  });

  it('abort() from onResponseStart with the whole response in one read: nothing more is heard, nothing reused', async () => {
    const heard: string[] = [];
    const origin = await httpOrigin((_req, res) => res.end('whole'));
    const pool = originPool(origin.url);
    const sent = send(pool, {}, {
      onResponseStart: () => {
        heard.push('start');
        sent.call.abort();
      },
      onResponseData: () => {
        heard.push('data');
        return true;
      },
    });
    await until(() => sent.call.done);
    await closed(origin.sockets[0]!);
    await until(() => pool.stats.connections === 0);
    expect(heard).toEqual(['start']);
    expect((await send(pool).done).body.toString()).toBe('whole');
    expect(origin.sockets).toHaveLength(2);
  });

  it('abort() of a queued call: it never goes out, the queue moves on', async () => {
    const paths: string[] = [];
    const origin = await httpOrigin((req, res) => {
      paths.push(req.url!);
      setTimeout(() => res.end(req.url), 20);
    });
    const pool = originPool(origin.url, { connections: 1 });
    const first = send(pool, { path: '/first' });
    const dropped = send(pool, { path: '/dropped' });
    const last = send(pool, { path: '/last' });
    dropped.call.abort();
    expect((await first.done).body.toString()).toBe('/first');
    expect((await last.done).body.toString()).toBe('/last');
    expect(paths).toEqual(['/first', '/last']);
    expect(await Promise.race([dropped.done, Promise.resolve(null)])).toBeNull();
  });

  it('request_body: a failing request body fails the exchange with its cause', async () => {
    const origin = await echoOrigin();
    const pool = originPool(origin.url);
    const cause = new Error('the client went away');
    async function* failing(): AsyncIterable<Buffer> {
      yield Buffer.from('some');
      throw cause;
    }
    const got = await send(pool, { method: 'POST', body: failing(), bodyLength: -1 }).done;
    expect(got.events).toEqual(['error request_body']);
    expect(got.error!.cause).toBe(cause);
    await until(() => pool.stats.connections === 0);
  });

  it('101 upgrade: the handler gets the socket and the bytes that came with the head', async () => {
    const origin = await rawOrigin((socket) => {
      // Head and the first upgraded bytes in one write, then an echo.
      socket.removeAllListeners('data');
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhello');
      socket.on('data', (data: Buffer) => socket.write(data));
    });
    const pool = originPool(origin.url);
    const { got, socket } = await upgrade(pool);
    expect(got.events).toEqual(['upgrade']);
    expect(got.status).toBe(101);
    expect(got.headers).toEqual(['Upgrade', 'echo', 'Connection', 'Upgrade']);
    expect(got.body.toString()).toBe('hello');
    expect(pool.stats.connections).toBe(0);
    // The pool's listeners are gone: the socket is the handler's alone.
    expect([socket.listenerCount('data'), socket.listenerCount('close'), socket.listenerCount('error')]).toEqual([0, 0, 0]);
    await expectEcho(socket, 'ping');
  });

  describe('https', () => {
    async function tlsOrigin(): Promise<Origin> {
      const { cert, key } = testCert(['127.0.0.1']);
      return listen(createHttpsServer({ cert, key }, (_req, res) => res.end('secure')), 'https');
    }

    it('verifies the origin with the configured CA', async () => {
      const origin = await tlsOrigin();
      const pool = originPool(origin.url, { ca: testCa() });
      expect((await send(pool).done).body.toString()).toBe('secure');
      expect((await send(pool).done).body.toString()).toBe('secure');
      expect(origin.sockets).toHaveLength(1);
    });

    it('101 upgrade: the TLS socket is handed over with only the pool\'s listeners taken off', async () => {
      const { cert, key } = testCert(['127.0.0.1']);
      const server = createTlsServer({ cert, key }, (socket) => {
        socket.once('data', () => {
          socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
          socket.on('data', (data: Buffer) => socket.write(data));
        });
      });
      const origin = await listen(server, 'https');
      // What Node itself puts on a client TLS socket (its 'close' listener frees the SSL state).
      const fresh = tlsConnect({ host: '127.0.0.1', port: Number(origin.url.port), ca: testCa() });
      await once(fresh, 'secureConnect');
      const own = ['data', 'close', 'error'].map((event) => fresh.listenerCount(event));
      fresh.destroy();

      const { got, socket } = await upgrade(originPool(origin.url, { ca: testCa() }));
      expect(got.events).toEqual(['upgrade']);
      expect(['data', 'close', 'error'].map((event) => socket.listenerCount(event))).toEqual(own);
      await expectEcho(socket, 'over tls');
    });

    it('connect_error without the CA, unless verification is off', async () => {
      const origin = await tlsOrigin();
      const got = await send(originPool(origin.url)).done;
      expect(got.events).toEqual(['error connect_error']);
      expect(got.error!.connectionFailure).toBe(true);
      expect((await send(originPool(origin.url, { verify: false })).done).body.toString()).toBe('secure');
    });
  });

  it('close() ends queued calls with an error, destroys connections, and refuses new calls', async () => {
    const origin = await httpOrigin(() => {});
    const pool = originPool(origin.url, { connections: 1 });
    const inFlight = send(pool);
    const queued = [send(pool), send(pool)];
    await until(() => origin.sockets.length === 1);
    pool.close();
    for (const q of queued) {
      const got = await q.done;
      expect(got.events).toEqual(['error connect_error']);
      expect(got.error!.message).toMatch(/closed/);
      expect(q.call.done).toBe(true);
    }
    expect((await inFlight.done).events).toEqual(['error reset']);
    await closed(origin.sockets[0]!);
    expect(pool.stats).toEqual({ connections: 0, idle: 0, queued: 0 });
    expect((await send(pool).done).events).toEqual(['error connect_error']);
  });
});
