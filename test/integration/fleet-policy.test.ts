// The fleet's policy entries in the tenant document with real nodes (src/node/fleet-entries.ts through
// src/node/tenants.ts): two regions, a nats-server each joined by gateways, an L7 node each with the WAF (CRS
// PL1, blocking) and the rate limit on, behind a trusted proxy (the test, naming clients by X-Forwarded-For).
// A network blocked on one node is refused on the other and served again once removed there; a custom WAF
// rule uploaded on one node refuses matching requests on the other, and an allow entry exempts a path; a
// rule the engine cannot compile is refused whole; a domain's own certificate uploaded on one node is served
// for its host by the other, replaced and removed with no restart; a domain's own rate limit applies on it
// alone.
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { regionPorts, startRegionServers, type RegionServer } from '../../scripts/lib/regions.ts';
import { testCert } from '../helpers/certs.ts';
import { startNode, type NodeProcess } from '../helpers/node-process.ts';
import { freePort } from '../helpers/ports.ts';
import { fingerprintOf, handshakeAndGet } from '../helpers/tls-client.ts';
import { until } from '../helpers/wait.ts';

async function status(port: number, path: string, client: string, host = 'app.example'): Promise<number> {
  const res = await request(`http://127.0.0.1:${port}${path}`, { headers: { host, 'x-forwarded-for': client } });
  await res.body.dump();
  return res.statusCode;
}

describe('fleet policy across two regions', () => {
  let dir = '';
  let origin: Server;
  let servers: RegionServer[] = [];
  const nodes: NodeProcess[] = [];
  const tlsPorts: number[] = [];
  const fallback = testCert(['default.example']);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'secbeat-fleet-policy-'));
    origin = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    const originPort = (origin.address() as { port: number }).port;
    servers = await startRegionServers(await regionPorts(['us-east', 'eu-west']), dir);
    writeFileSync(join(dir, 'default.pem'), fallback.cert);
    writeFileSync(join(dir, 'default.key'), fallback.key);
    for (const [i, server] of servers.entries()) {
      tlsPorts.push(await freePort());
      const toml = `
[tls]
enabled = true
cert_path = "${join(dir, 'default.pem')}"
key_path = "${join(dir, 'default.key')}"

[l7]
trusted_proxies = ["127.0.0.0/8"]
tls_bind_address = "127.0.0.1:${tlsPorts[i]}"

[waf]
enabled = true
mode = "blocking"
paranoia_level = 1

[rate_limit]
enabled = true
requests = 10000
window_seconds = 1

[nats]
enabled = true
urls = ["${server.url}"]
`;
      nodes.push(await startNode({ backendPort: originPort, mode: 'l7', threads: 1, extraToml: toml, region: server.region, nodeId: 'n1', stateDir: join(dir, `state-${i}`) }));
    }
    await until(() => nodes.every((n) => n.output().includes('nats: connected')), 'both nodes connected', 20_000, 200);
  }, 90_000);

  afterAll(async () => {
    for (const node of nodes) await node[Symbol.asyncDispose]();
    await Promise.all(servers.map((s) => s.stop()));
    origin?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('blocks a network on every node from one, and lifts it from the other', async () => {
    const [east, west] = [nodes[0]!, nodes[1]!];
    expect(await status(west.port, '/', '203.0.113.9')).toBe(200);
    const reply = await east.admin({ cmd: 'policy.upsert', kind: 'block', entries: [{ cidr: '203.0.113.0/24', duration_sec: 600, reason: 'test' }] });
    expect(reply).toMatchObject({ ok: true, result: { kind: 'block', upserted: 1, entries: 1 } });
    await until(async () => (await status(west.port, '/', '203.0.113.9')) === 429, 'the block on eu-west', 20_000, 200);
    expect(await status(west.port, '/', '198.51.100.1')).toBe(200);
    expect(await status(east.port, '/', '203.0.113.77')).toBe(429);

    expect(await west.admin({ cmd: 'policy.remove', kind: 'block', names: ['203.0.113.0/24'] })).toMatchObject({ ok: true, result: { removed: 1, entries: 0 } });
    await until(async () => (await status(east.port, '/', '203.0.113.9')) === 200, 'the block lifted on us-east', 20_000, 200);
  }, 60_000);

  it('runs a custom WAF rule uploaded on one node on the other, with an allow entry that wins', async () => {
    const [east, west] = [nodes[0]!, nodes[1]!];
    expect(await status(west.port, '/?q=secbeat-canary-42', '198.51.100.2')).toBe(200);
    const rule = { id: 4242, name: 'canary', pattern: 'secbeat-canary-\\d+', action: 'block', targets: ['args'] };
    expect((await east.admin({ cmd: 'policy.upsert', kind: 'rule', entries: [rule] })).ok).toBe(true);
    await until(async () => (await status(west.port, '/?q=secbeat-canary-42', '198.51.100.2')) === 403, 'the rule on eu-west', 30_000, 250);
    expect(await status(west.port, '/?q=harmless', '198.51.100.2')).toBe(200);

    expect((await west.admin({ cmd: 'policy.upsert', kind: 'allow', entries: [{ name: 'ops', path: '/ops' }] })).ok).toBe(true);
    await until(async () => (await status(east.port, '/ops?q=secbeat-canary-42', '198.51.100.2')) === 200, 'the allow entry on us-east', 30_000, 250);
    expect(await status(east.port, '/?q=secbeat-canary-42', '198.51.100.2')).toBe(403);

    const listed = await west.admin({ cmd: 'policy.list', limit: 5 });
    expect(listed.result).toMatchObject({ rule: { count: 1, first: [{ id: 4242 }] }, allow: { count: 1 }, block: { count: 0 }, exclusion: { count: 0 } });
  }, 90_000);

  it('refuses a rule the engine cannot compile, and the whole upload with it', async () => {
    const good = { id: 4300, name: 'fine', pattern: 'x', action: 'log', targets: ['args'] };
    const bad = { id: 4301, name: 'broken', pattern: '(unclosed', action: 'block', targets: ['args'] };
    const reply = await nodes[0]!.admin({ cmd: 'policy.upsert', kind: 'rule', entries: [good, bad] });
    expect(reply.ok).toBe(false);
    expect(reply.error?.message).toMatch(/entries\[1\]: rule 4301/);
    expect(await nodes[0]!.admin({ cmd: 'policy.list', limit: 5 })).toMatchObject({ result: { rule: { count: 1 } } });
  });

  it('serves a domain\'s own certificate on every node, replaced and removed with no restart', async () => {
    const originPort = (origin.address() as { port: number }).port;
    const [east, west] = [nodes[0]!, nodes[1]!];
    const first = testCert(['secure.example']);
    const second = testCert(['secure.example', 'www.secure.example']);
    const domain = (pem: { cert: Buffer; key: Buffer } | null) => ({
      host: 'secure.example',
      origins: [`http://127.0.0.1:${originPort}`],
      ...(pem === null ? {} : { tls: { cert: pem.cert.toString(), key: pem.key.toString() } }),
    });
    const served = async (i: number) => (await handshakeAndGet(tlsPorts[i]!, 'secure.example', { verifyName: false })).fingerprint;

    expect(await served(1)).toBe(fingerprintOf(fallback));
    expect((await east.admin({ cmd: 'domains.upsert', domains: [domain(first)] })).ok).toBe(true);
    await until(async () => (await served(1)) === fingerprintOf(first), 'the certificate on eu-west', 20_000, 200);
    const answer = await handshakeAndGet(tlsPorts[1]!, 'secure.example');
    expect(answer).toMatchObject({ status: 200, body: 'ok' });

    expect((await west.admin({ cmd: 'domains.upsert', domains: [domain(second)] })).ok).toBe(true);
    await until(async () => (await served(0)) === fingerprintOf(second), 'the replacement on us-east', 20_000, 200);
    expect((await east.admin({ cmd: 'domains.upsert', domains: [domain(null)] })).ok).toBe(true);
    await until(async () => (await served(1)) === fingerprintOf(fallback), 'the default again on eu-west', 20_000, 200);

    const foreign = testCert(['other.example']);
    const refused = await east.admin({ cmd: 'domains.upsert', domains: [domain(foreign)] });
    expect(refused.ok).toBe(false);
    expect(refused.error?.message).toMatch(/tls: certificate does not cover secure\.example \(it names other\.example\)/);
  }, 60_000);

  it('applies a domain\'s own rate limit on that domain only', async () => {
    const originPort = (origin.address() as { port: number }).port;
    const domain = { host: 'limited.example', origins: [`http://127.0.0.1:${originPort}`], rate_limit: { requests: 3 } };
    expect((await nodes[0]!.admin({ cmd: 'domains.upsert', domains: [domain] })).ok).toBe(true);
    const west = nodes[1]!;
    const hosts = async () => ((await west.admin({ cmd: 'domains.list', limit: 10 })).result as { first: { host: string }[] }).first.map((d) => d.host);
    await until(async () => (await hosts()).includes('limited.example'), 'the domain on eu-west', 20_000, 200);
    const limited: number[] = [];
    for (let i = 0; i < 10; i++) limited.push(await status(west.port, '/', '192.0.2.50', 'limited.example'));
    const other: number[] = [];
    for (let i = 0; i < 10; i++) other.push(await status(west.port, '/', '192.0.2.51', 'app.example'));
    // Ten requests span at most two one-second windows: at least four are over a limit of three.
    expect(limited.filter((s) => s === 429).length).toBeGreaterThanOrEqual(4);
    expect(limited.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
    expect(other.every((s) => s === 200)).toBe(true);
  }, 60_000);
});
