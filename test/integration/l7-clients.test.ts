// Issue 3's acceptance with real clients: one real L7 node (bin/secbeat run, two worker threads, TLS) in front
// of one real origin per domain, each domain with its own certificate, driven by curl, undici, node:http2,
// Node's global WebSocket, h2load and nghttp: keep-alive, chunked bodies, 100-continue, 512 MiB each way with
// the node's memory measured, WebSocket upgrades, HTTP/2 with many streams, and SNI routing.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { connect as tlsConnect, getCACertificates, setDefaultCACertificates } from 'node:tls';
import { promisify } from 'node:util';
import { Agent, Pool, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testCa, testCert } from '../helpers/certs.ts';
import { curl, curlRun } from '../helpers/curl.ts';
import { startNode, type NodeProcess } from '../helpers/node-process.ts';
import { freePort } from '../helpers/ports.ts';
import { acceptWebSockets } from '../helpers/ws-origin.ts';

const run = promisify(execFile);

/**
 * The routes, one origin and one certificate each (the first host is the certificate's CN). `localhost` is
 * for Node's global WebSocket, which resolves names itself: it is Node's bundled undici (7.x), whose handshake
 * fails through this project's undici 8 Agent, the only way to give it a connect lookup.
 */
const DOMAINS = [
  { origin: 'alpha', hosts: ['alpha.example'] },
  { origin: 'beta', hosts: ['beta.example', '*.beta.example'] },
  { origin: 'gamma', hosts: ['gamma.example'] },
  { origin: 'local', hosts: ['localhost'] },
] as const;

const MIB = 1024 * 1024;

/** Each way in the streaming test: far more than the node may grow by (MEMORY_GROWTH_LIMIT_BYTES). */
const LARGE_TRANSFER_BYTES = 512 * MIB;
const MEMORY_GROWTH_LIMIT_BYTES = 128 * MIB;

/** What an origin saw of a request (its JSON answer), or of a WebSocket handshake (its first message). */
interface Seen {
  origin: string;
  method: string;
  url: string;
  host: string;
  xForwardedFor: string;
  xForwardedProto: string;
  xForwardedHost: string;
  bytes: number;
  sha256: string;
}

interface Origin {
  name: string;
  server: Server;
  port: number;
  requests: number;
}

const PATTERN_BLOCK_BYTES = 64 * 1024;
const PATTERN_SEED = randomBytes(PATTERN_BLOCK_BYTES);

/**
 * `total` bytes generated block by block, never held whole: the seed with each block's index stamped in its
 * first bytes, so a block lost, repeated or swapped on the way changes the sha256.
 */
function* pattern(total: number): Generator<Buffer> {
  for (let i = 0; i * PATTERN_BLOCK_BYTES < total; i++) {
    const block = Buffer.from(PATTERN_SEED);
    block.writeUInt32BE(i, 0);
    yield block.subarray(0, Math.min(PATTERN_BLOCK_BYTES, total - i * PATTERN_BLOCK_BYTES));
  }
}

function patternSha256(total: number): string {
  const hash = createHash('sha256');
  for (const block of pattern(total)) hash.update(block);
  return hash.digest('hex');
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function headerOf(req: IncomingMessage, name: string): string {
  return String(req.headers[name] ?? '');
}

/**
 * An origin for one domain. `/download?bytes=N` answers N pattern bytes (with `&chunked`, without a length, so
 * Node sends them chunked); anything else is echoed as a Seen; WebSocket upgrades are accepted and echoed.
 */
async function startOrigin(name: string): Promise<Origin> {
  const seen = (req: IncomingMessage, bytes: number, digest: string): Seen => ({
    origin: name,
    method: req.method ?? '',
    url: req.url ?? '',
    host: headerOf(req, 'host'),
    xForwardedFor: headerOf(req, 'x-forwarded-for'),
    xForwardedProto: headerOf(req, 'x-forwarded-proto'),
    xForwardedHost: headerOf(req, 'x-forwarded-host'),
    bytes,
    sha256: digest,
  });
  const server = createServer((req, res) => {
    origin.requests++;
    const url = new URL(req.url ?? '/', 'http://origin');
    if (url.pathname === '/download') {
      const total = Number(url.searchParams.get('bytes'));
      res.writeHead(200, { 'content-type': 'application/octet-stream', ...(url.searchParams.has('chunked') ? {} : { 'content-length': total }) });
      Readable.from(pattern(total)).pipe(res);
      return;
    }
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(seen(req, bytes, hash.digest('hex'))));
    });
  });
  acceptWebSockets(server, (req) => JSON.stringify(seen(req, 0, '')));
  const origin: Origin = { name, server, port: 0, requests: 0 };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin.port = (server.address() as { port: number }).port;
  return origin;
}

/** Resident memory of a process from /proc/<pid>/status, bytes: now and the high-water mark. */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/** The CN of the certificate the TLS listener presents for `servername` (checked by hand, so any name connects). */
function peerCn(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername, ca: testCa(), checkServerIdentity: () => undefined, timeout: 5_000 }, () => {
      const cn = String(s.getPeerCertificate().subject.CN);
      s.end();
      resolve(cn);
    });
    s.on('timeout', () => s.destroy(new Error(`TLS to ${servername} timed out`)));
    s.on('error', reject);
  });
}

/** One request on an HTTP/2 session: status and body. */
function h2get(session: ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path });
    let status = 0;
    let body = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => resolve({ status, body }));
    stream.on('error', reject);
    stream.end();
  });
}

/**
 * A WebSocket session with Node's global client: sends `messages` once open, closes (1000) after the origin's
 * hello and every echo arrived; what arrived and the close, or an error after `timeoutMs`.
 */
function webSocketSession(url: string, messages: readonly (string | Buffer)[], timeoutMs = 10_000): Promise<{ received: (string | Buffer)[]; code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    const received: (string | Buffer)[] = [];
    let failure: unknown = null;
    const timer = setTimeout(() => {
      reject(new Error(`${url}: no close after ${timeoutMs} ms (received ${received.length})`));
      ws.close();
    }, timeoutMs);
    ws.onopen = () => {
      for (const m of messages) ws.send(m);
    };
    ws.onmessage = (e) => {
      const data = e.data as string | ArrayBuffer;
      received.push(typeof data === 'string' ? data : Buffer.from(data));
      if (received.length === messages.length + 1) ws.close(1000, 'done');
    };
    // undici's error event carries the cause in `error` (an ErrorEvent, which the Node types do not declare).
    ws.onerror = (e) => (failure = (e as Event & { error?: unknown }).error ?? e);
    ws.onclose = (e) => {
      clearTimeout(timer);
      if (e.code === 1006) reject(new Error(`${url}: connection failed`, { cause: failure }));
      else resolve({ received, code: e.code, reason: e.reason });
    };
  });
}

describe('l7 node with real clients', () => {
  let node: NodeProcess;
  let origins: Origin[] = [];
  let fallback: Origin;
  let dir = '';
  let caFile = '';
  let tlsPort = 0;

  const originOf = (name: string): Origin => origins.find((o) => o.name === name)!;
  /** curl's --resolve for `host` on the plain or the TLS port: the name stays in Host, SNI and :authority. */
  const resolveTo = (host: string, port: number): string[] => ['--resolve', `${host}:${port}:127.0.0.1`];
  /** `ctl stats`: the node's own PID, and the connections its listeners accepted so far (both threads). */
  const stats = async (): Promise<{ pid: number; connectionsAccepted: number }> => {
    const reply = await node.admin({ cmd: 'node.stats' });
    return reply.result as { pid: number; connectionsAccepted: number };
  };
  const accepted = async (): Promise<number> => (await stats()).connectionsAccepted;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'secbeat-l7-clients-'));
    caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, testCa());
    const pemFiles = (name: string, names: readonly string[]): { cert: string; key: string } => {
      const pem = testCert(names);
      const files = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
      writeFileSync(files.cert, pem.cert);
      writeFileSync(files.key, pem.key);
      return files;
    };
    origins = await Promise.all(DOMAINS.map((d) => startOrigin(d.origin)));
    fallback = await startOrigin('default');
    const defaultCert = pemFiles('default', ['default.example']);
    const routes = DOMAINS.map((d) => {
      const files = pemFiles(d.origin, d.hosts);
      return `
[[l7.routes]]
hosts = ${JSON.stringify(d.hosts)}
origins = ["http://127.0.0.1:${originOf(d.origin).port}"]
cert_path = "${files.cert}"
key_path = "${files.key}"
`;
    });
    tlsPort = await freePort();
    node = await startNode({
      mode: 'l7',
      backendPort: fallback.port,
      extraToml: `
[tls]
enabled = true
cert_path = "${defaultCert.cert}"
key_path = "${defaultCert.key}"

[l7]
tls_bind_address = "127.0.0.1:${tlsPort}"
# The streaming test sends 512 MiB in one request.
max_body_bytes = 0
request_timeout_ms = 120000
${routes.join('')}`,
    });
  }, 60_000);

  afterAll(async () => {
    await node?.[Symbol.asyncDispose]();
    for (const o of [...origins, fallback]) {
      if (o === undefined) continue;
      o.server.closeAllConnections();
      await new Promise<void>((r) => o.server.close(() => r()));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps connections alive: curl with several URLs, an undici Pool, one HTTP/2 session', { timeout: 60_000 }, async () => {
    const alpha = originOf('alpha');
    const paths = [1, 2, 3, 4, 5].map((i) => `/keepalive/${i}`);
    // One curl run, five transfers, per protocol: only the first one connects.
    const variants = [
      { flag: '--http1.1', base: `http://alpha.example:${node.port}`, resolve: resolveTo('alpha.example', node.port) },
      { flag: '--http1.1', base: `https://alpha.example:${tlsPort}`, resolve: resolveTo('alpha.example', tlsPort) },
      { flag: '--http2', base: `https://alpha.example:${tlsPort}`, resolve: resolveTo('alpha.example', tlsPort) },
    ];
    for (const v of variants) {
      const before = { accepted: await accepted(), requests: alpha.requests };
      const outputs = paths.flatMap((p) => ['-o', '/dev/null', `${v.base}${p}`]);
      const { stdout } = await curlRun([v.flag, '--cacert', caFile, ...v.resolve, '-w', '%{num_connects} %{http_code} %{http_version}\n', ...outputs]);
      const version = v.flag === '--http2' ? '2' : '1.1';
      expect(stdout.toString().trim().split('\n'), `${v.flag} ${v.base}`).toEqual(['1', '0', '0', '0', '0'].map((n) => `${n} 200 ${version}`));
      expect(await accepted()).toBe(before.accepted + 1);
      expect(alpha.requests).toBe(before.requests + paths.length);
    }

    // undici: a keep-alive Pool, requests one after the other, all on the connection the first one opened. One
    // connection at most: an unbounded Pool opens a second one when a request follows the previous response's
    // end before the Pool has seen that connection free again; here a reconnect can only follow a close.
    const pool = new Pool(`http://127.0.0.1:${node.port}`, { connections: 1 });
    try {
      const before = await accepted();
      for (let i = 0; i < 20; i++) {
        const res = await pool.request({ path: `/pool/${i}`, method: 'GET', headers: { host: 'beta.example' } });
        expect(res.statusCode).toBe(200);
        expect(res.headers['connection']).not.toBe('close');
        expect(await res.body.json()).toMatchObject({ origin: 'beta', url: `/pool/${i}`, host: 'beta.example' });
      }
      expect(await accepted()).toBe(before + 1);
    } finally {
      await pool.close();
    }

    // node:http2: 100 concurrent requests on one session.
    const before = await accepted();
    const session = h2connect(`https://gamma.example:${tlsPort}`, { host: '127.0.0.1', port: tlsPort, servername: 'gamma.example', ca: testCa() });
    try {
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => h2get(session, `/h2/${i}`)));
      for (const [i, r] of results.entries()) {
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body)).toMatchObject({ origin: 'gamma', url: `/h2/${i}`, xForwardedProto: 'https' });
      }
      expect(await accepted()).toBe(before + 1);
    } finally {
      session.close();
    }
  });

  it('carries chunked request bodies and a chunked response intact', { timeout: 60_000 }, async () => {
    // --data-binary with a chunked Transfer-Encoding: one body the node buffers (under 64 KiB), one it streams.
    for (const size of [40 * 1024, 3 * MIB]) {
      const body = randomBytes(size);
      const file = join(dir, `chunked-${size}.bin`);
      writeFileSync(file, body);
      const r = await curlRun(['-v', '--http1.1', ...resolveTo('alpha.example', node.port), '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${file}`, `http://alpha.example:${node.port}/chunked`]);
      expect(r.stderr).toMatch(/^> Transfer-Encoding: chunked\r?$/m);
      expect(JSON.parse(r.stdout.toString())).toMatchObject({ origin: 'alpha', method: 'POST', bytes: size, sha256: sha256(body) });
    }

    // -T - : a PUT from stdin, whose length curl cannot know, so it sends chunks; over TLS HTTP/1.1.
    const streamed = 5 * MIB;
    const put = await curlRun(['-v', '--http1.1', '--cacert', caFile, ...resolveTo('www.beta.example', tlsPort), '-T', '-', `https://www.beta.example:${tlsPort}/put`], {
      stdin: Readable.from(pattern(streamed)),
    });
    expect(put.stderr).toMatch(/^> Transfer-Encoding: chunked\r?$/m);
    expect(JSON.parse(put.stdout.toString())).toMatchObject({ origin: 'beta', method: 'PUT', host: `www.beta.example:${tlsPort}`, bytes: streamed, sha256: patternSha256(streamed) });

    // The origin answers without a length (chunked); the node passes it on chunked too.
    const download = 6 * MIB + 123;
    const d = await curlRun(['-v', '--http1.1', ...resolveTo('gamma.example', node.port), `http://gamma.example:${node.port}/download?bytes=${download}&chunked`]);
    expect(d.stderr).toMatch(/^< transfer-encoding: chunked\r?$/im);
    expect(d.stderr).not.toMatch(/^< content-length:/im);
    expect(d.stdout.length).toBe(download);
    expect(sha256(d.stdout)).toBe(patternSha256(download));
  });

  it('answers Expect: 100-continue before a 2 MiB upload, plain and over TLS', { timeout: 60_000 }, async () => {
    const body = randomBytes(2 * MIB);
    const file = join(dir, 'continue.bin');
    writeFileSync(file, body);
    const targets = [
      { url: `http://gamma.example:${node.port}/continue`, resolve: resolveTo('gamma.example', node.port), proto: 'http' },
      { url: `https://gamma.example:${tlsPort}/continue`, resolve: resolveTo('gamma.example', tlsPort), proto: 'https' },
    ];
    for (const t of targets) {
      // --expect100-timeout: without the node's 100 curl would send the body anyway after 1 s; make that a failure.
      const r = await curlRun(['-v', '--http1.1', '--cacert', caFile, ...t.resolve, '--expect100-timeout', '30', '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, t.url]);
      expect(r.stderr).toMatch(/^> Expect: 100-continue\r?$/m);
      expect(r.stderr).toMatch(/^< HTTP\/1\.1 100 Continue\r?$/m);
      expect(r.stderr).toMatch(/^< HTTP\/1\.1 200 OK\r?$/m);
      expect(JSON.parse(r.stdout.toString())).toMatchObject({ origin: 'gamma', method: 'POST', xForwardedProto: t.proto, bytes: body.length, sha256: sha256(body) });
    }
  });

  it(`streams ${LARGE_TRANSFER_BYTES / MIB} MiB up and down with the node's memory bounded`, { timeout: 180_000 }, async () => {
    const expected = patternSha256(LARGE_TRANSFER_BYTES);
    // The node's own PID (bin/secbeat is a shell script that execs node; this does not depend on it).
    const { pid } = await stats();
    // Writing 5 to clear_refs resets VmHWM to the current RSS (proc(5)): the next VmHWM is this transfer's peak.
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    const before = memoryOf(pid);
    const agent = new Agent({ headersTimeout: 120_000, bodyTimeout: 30_000 });
    try {
      const up = await request(`http://127.0.0.1:${node.port}/upload`, {
        method: 'PUT',
        headers: { host: 'alpha.example', 'content-length': String(LARGE_TRANSFER_BYTES) },
        body: Readable.from(pattern(LARGE_TRANSFER_BYTES)),
        dispatcher: agent,
      });
      expect(up.statusCode).toBe(200);
      expect(await up.body.json()).toMatchObject({ origin: 'alpha', bytes: LARGE_TRANSFER_BYTES, sha256: expected });

      const down = await request(`http://127.0.0.1:${node.port}/download?bytes=${LARGE_TRANSFER_BYTES}`, { headers: { host: 'beta.example' }, dispatcher: agent });
      expect(down.statusCode).toBe(200);
      expect(down.headers['content-length']).toBe(String(LARGE_TRANSFER_BYTES));
      const hash = createHash('sha256');
      let received = 0;
      for await (const chunk of down.body as AsyncIterable<Buffer>) {
        hash.update(chunk);
        received += chunk.length;
      }
      expect(received).toBe(LARGE_TRANSFER_BYTES);
      expect(hash.digest('hex')).toBe(expected);
    } finally {
      await agent.close();
    }
    const after = memoryOf(pid);
    const growth = after.hwm - before.rss;
    console.info(
      `node memory, MiB: RSS before ${(before.rss / MIB).toFixed(1)}, peak during ${(after.hwm / MIB).toFixed(1)} (+${(growth / MIB).toFixed(1)}), RSS after ${(after.rss / MIB).toFixed(1)}`,
    );
    expect(growth).toBeLessThan(MEMORY_GROWTH_LIMIT_BYTES);
  });

  it('upgrades to WebSocket with Node\'s global client, plain and over TLS (HTTP/1.1 by ALPN)', { timeout: 60_000 }, async () => {
    // The global client cannot be given a CA; this worker's default CA set gets the test CA for the wss run.
    const systemCas = getCACertificates('default');
    setDefaultCACertificates([...systemCas, testCa().toString()]);
    try {
      const binary = randomBytes(300 * 1024);
      for (const [url, proto] of [
        [`ws://localhost:${node.port}/chat?room=1`, 'http'],
        [`wss://localhost:${tlsPort}/chat?room=1`, 'https'],
      ] as const) {
        const session = await webSocketSession(url, ['hello through the node', binary]);
        expect(session.received).toHaveLength(3);
        const [hello, text, echoed] = session.received;
        const port = proto === 'http' ? node.port : tlsPort;
        expect(JSON.parse(String(hello))).toMatchObject({ origin: 'local', method: 'GET', url: '/chat?room=1', host: `localhost:${port}`, xForwardedProto: proto, xForwardedFor: '127.0.0.1' });
        expect(text).toBe('hello through the node');
        expect(Buffer.isBuffer(echoed) && echoed.equals(binary)).toBe(true);
        expect({ code: session.code, reason: session.reason }).toEqual({ code: 1000, reason: 'done' });
      }
    } finally {
      setDefaultCACertificates(systemCas);
    }
  });

  it('serves h2load\'s 2,000 requests on 4 connections × 50 streams, and nghttp\'s request, over HTTP/2', { timeout: 90_000 }, async () => {
    const beta = originOf('beta');
    const before = beta.requests;
    // --connect-to keeps beta.example as SNI and :authority while connecting to loopback.
    const { stdout } = await run('h2load', ['-n', '2000', '-c', '4', '-m', '50', `--connect-to=127.0.0.1:${tlsPort}`, `https://beta.example:${tlsPort}/h2load`], { timeout: 60_000 });
    expect(stdout).toMatch(/^Application protocol: h2$/m);
    expect(stdout).toMatch(/^requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout$/m);
    expect(stdout).toMatch(/^status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx$/m);
    expect(beta.requests).toBe(before + 2000);

    // nghttp -v prints the frames (the response's HEADERS with :status) and then the body.
    const n = await run('nghttp', ['-v', '-t', '10', `https://localhost:${tlsPort}/nghttp?x=1`], { timeout: 20_000 });
    expect(n.stdout).toMatch(/The negotiated protocol: h2/);
    expect(n.stdout).toMatch(/recv \(stream_id=\d+\) :status: 200/);
    const body = /\{"origin".*?\}/.exec(n.stdout)?.[0];
    expect(JSON.parse(body ?? 'null')).toMatchObject({ origin: 'local', method: 'GET', url: '/nghttp?x=1', host: `localhost:${tlsPort}`, xForwardedProto: 'https' });
  });

  it('routes each domain by SNI and Host over HTTP/2 and HTTP/1.1 with its own certificate; unknown names get the default', { timeout: 60_000 }, async () => {
    for (const d of DOMAINS) {
      // A wildcard route is reached through a name under it.
      const host = d.hosts.map((h) => h.replace('*.', 'www.')).at(-1)!;
      for (const [flag, version] of [
        ['--http2', '2'],
        ['--http1.1', '1.1'],
      ] as const) {
        const r = await curl([flag, '--cacert', caFile, ...resolveTo(host, tlsPort), `https://${host}:${tlsPort}/sni`]);
        expect({ status: r.status, version: r.version, sslVerify: r.sslVerify }, `${host} ${flag}`).toEqual({ status: 200, version, sslVerify: 0 });
        expect(JSON.parse(r.body)).toMatchObject({
          origin: d.origin,
          url: '/sni',
          host: `${host}:${tlsPort}`,
          xForwardedFor: '127.0.0.1',
          xForwardedProto: 'https',
          xForwardedHost: `${host}:${tlsPort}`,
        });
      }
      expect(await peerCn(tlsPort, host)).toBe(d.hosts[0]);
    }
    expect(await peerCn(tlsPort, 'unknown.example')).toBe('default.example');
    // The default certificate does not cover an unknown name: a verifying client refuses it (curl exit 60).
    await expect(curl(['--cacert', caFile, ...resolveTo('unknown.example', tlsPort), `https://unknown.example:${tlsPort}/`])).rejects.toThrow(/SSL|certificate/i);
    // Without verification, the unknown name is served by the default route.
    const unknown = await curl(['-k', ...resolveTo('unknown.example', tlsPort), `https://unknown.example:${tlsPort}/fallback`]);
    expect(unknown.status).toBe(200);
    expect(JSON.parse(unknown.body)).toMatchObject({ origin: 'default', url: '/fallback' });
  });
});
