// A real L7 node (bin/secbeat run, two worker threads) in front of a real origin, driven by curl: plain
// HTTP/1.1 routed by Host, HTTP/2 over TLS with the route's certificate chosen by SNI, error statuses with
// ids, and `secbeat ctl` listing the L7 listeners.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testCa, testCert } from '../helpers/certs.ts';
import { curl } from '../helpers/curl.ts';
import { startNode, type NodeProcess } from '../helpers/node-process.ts';
import { freePort } from '../helpers/ports.ts';

describe('l7 node', () => {
  let origin: Server;
  let node: NodeProcess;
  let tlsPort = 0;
  let dir = '';

  beforeAll(async () => {
    origin = createServer((req, res) => res.end(`origin saw ${req.headers.host} ${req.url} via ${req.headers['x-forwarded-proto']}`));
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    const originPort = (origin.address() as { port: number }).port;
    dir = mkdtempSync(join(tmpdir(), 'secbeat-l7-'));
    const files = (name: string, names: string[]): { cert: string; key: string } => {
      const pem = testCert(names);
      writeFileSync(join(dir, `${name}.pem`), pem.cert);
      writeFileSync(join(dir, `${name}.key`), pem.key);
      return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
    };
    const fallback = files('default', ['default.example']);
    const shop = files('shop', ['shop.example', '*.shop.example']);
    writeFileSync(join(dir, 'ca.pem'), testCa());
    tlsPort = await freePort();
    node = await startNode({
      mode: 'l7',
      backendPort: 1, // unmatched hosts go here: nothing listens, so they get 502
      extraToml: `
[tls]
enabled = true
cert_path = "${fallback.cert}"
key_path = "${fallback.key}"

[l7]
tls_bind_address = "127.0.0.1:${tlsPort}"

[[l7.routes]]
hosts = ["shop.example", "*.shop.example"]
origins = ["http://127.0.0.1:${originPort}"]
cert_path = "${shop.cert}"
key_path = "${shop.key}"
`,
    });
  }, 60_000);

  afterAll(async () => {
    await node?.[Symbol.asyncDispose]();
    await new Promise<void>((r) => origin.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('routes plain HTTP/1.1 by Host', async () => {
    const r = await curl(['-H', 'Host: www.shop.example', `http://127.0.0.1:${node.port}/cart?x=1`]);
    expect(r).toMatchObject({ status: 200, version: '1.1', body: 'origin saw www.shop.example /cart?x=1 via http' });
  });

  it('serves HTTP/2 over TLS with the route certificate chosen by SNI', async () => {
    const r = await curl(['--http2', '--cacert', join(dir, 'ca.pem'), '--resolve', `shop.example:${tlsPort}:127.0.0.1`, `https://shop.example:${tlsPort}/h2`]);
    expect(r).toMatchObject({ status: 200, version: '2', body: `origin saw shop.example:${tlsPort} /h2 via https` });
  });

  it('answers an unroutable origin with 502 and an error id, never internals', async () => {
    const r = await curl(['-H', 'Host: unknown.example', `http://127.0.0.1:${node.port}/`]);
    expect(r.status).toBe(502);
    expect(r.body).toMatch(/^502 bad_gateway\nerror id: [0-9a-f]{12}\n$/);
    const id = /error id: (\w+)/.exec(r.body)![1]!;
    // The same id is in the log line, with the reason the client does not see.
    await expect.poll(() => node.output().includes(id), { timeout: 5_000 }).toBe(true);
  });

  it('ctl lists a running L7 listener on each worker thread', async () => {
    const { code, stdout } = await node.ctl('actors', '--json');
    expect(code).toBe(0);
    const actors = (JSON.parse(stdout) as { actors: { address: string; status: string }[] }).actors;
    const listeners = actors.filter((a) => a.address.endsWith('/listener'));
    expect(listeners.map((a) => a.status)).toEqual(['running', 'running']);
  });
});
