// The fleet's tenant configuration with real nodes (src/node/tenants.ts over src/crdt/config-*.ts): three
// regions, a nats-server each joined by gateways, an L7 node each. 10,000 domains uploaded in one call on one
// node reach every node, which routes them to their origin with no restart; a region cut off (its server
// stopped) keeps serving, takes a change of its own, and converges both ways when its server is back; a node
// restarted with its NATS down serves the domains from its saved document; an invalid upload is refused whole;
// a compaction asked of one node moves every node to the next generation of the document, and a region cut
// off meanwhile carries its own change into it when it returns.
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { regionPorts, startRegionServers, type RegionServer } from '../../scripts/lib/regions.ts';
import { startNode, type NodeProcess } from '../helpers/node-process.ts';
import { freePort } from '../helpers/ports.ts';
import { until } from '../helpers/wait.ts';

const DOMAINS = 10_000;

function origin(answer: string): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.end(answer));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port })));
}

/** undici's request, not fetch: fetch drops a Host header (a forbidden header name there). */
async function get(port: number, host: string): Promise<string> {
  const res = await request(`http://127.0.0.1:${port}/`, { headers: { host } });
  return res.body.text();
}

async function domainCount(node: NodeProcess): Promise<number> {
  const reply = await node.admin({ cmd: 'domains.list', limit: 1 });
  return (reply.result as { domains: number }).domains;
}

describe('tenant configuration across three regions', () => {
  const regions = ['us-east', 'eu-west', 'apac'];
  let dir = '';
  let servers: RegionServer[] = [];
  let fallback: { server: Server; port: number };
  let tenant: { server: Server; port: number };
  const nodes: NodeProcess[] = [];
  const stateDirs: string[] = [];

  const toml = (nats: string) => `\n[nats]\nenabled = true\nurls = ["${nats}"]\n`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'secbeat-tenants-'));
    fallback = await origin('default origin');
    tenant = await origin('tenant origin');
    servers = await startRegionServers(await regionPorts(regions), dir);
    for (const [i, server] of servers.entries()) {
      stateDirs.push(join(dir, `state-${i}`));
      nodes.push(await startNode({ backendPort: fallback.port, mode: 'l7', threads: 1, extraToml: toml(server.url), region: server.region, nodeId: 'n1', stateDir: stateDirs[i]! }));
    }
    await until(() => nodes.every((n) => n.output().includes('nats: connected')), 'every node connected', 20_000, 200);
  }, 60_000);

  afterAll(async () => {
    for (const node of nodes) await node[Symbol.asyncDispose]();
    await Promise.all(servers.map((s) => s.stop()));
    fallback.server.close();
    tenant.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses an upload with an invalid domain whole', async () => {
    const reply = await nodes[0]!.admin({ cmd: 'domains.upsert', domains: [{ host: 'ok.example', origins: [`http://127.0.0.1:${tenant.port}`] }, { host: 'bad host', origins: ['ftp://x'] }] });
    expect(reply.ok).toBe(false);
    expect(reply.error?.code).toBe('SECBEAT_ERR_ADMIN_INVALID_ARGS');
    expect(reply.error?.message).toContain('domains[1]');
    expect(await domainCount(nodes[0]!)).toBe(0);
  });

  it('applies 10,000 domains uploaded on one node on every node, routing them with no restart', async () => {
    const domains = Array.from({ length: DOMAINS }, (_, i) => ({ host: `shop${i}.example`, origins: [`http://127.0.0.1:${tenant.port}`], waf_mode: 'off' }));
    const started = Date.now();
    const reply = await nodes[1]!.admin({ cmd: 'domains.upsert', domains }, 60_000);
    expect(reply).toMatchObject({ ok: true, result: { upserted: DOMAINS, domains: DOMAINS } });
    const uploadMs = Date.now() - started;
    await until(async () => (await Promise.all(nodes.map(domainCount))).every((n) => n === DOMAINS), 'every node has every domain', 60_000, 200);
    console.log(`tenants: ${DOMAINS} domains uploaded in ${uploadMs} ms, on all 3 nodes ${Date.now() - started} ms after the upload began`);
    for (const node of nodes) {
      expect(await get(node.port, 'shop9876.example')).toBe('tenant origin');
      expect(await get(node.port, 'unknown.example')).toBe('default origin');
    }
    // A removal travels the same way.
    expect((await nodes[2]!.admin({ cmd: 'domains.remove', hosts: ['shop0.example'] })).ok).toBe(true);
    await until(async () => (await Promise.all(nodes.map(domainCount))).every((n) => n === DOMAINS - 1), 'the removal everywhere', 30_000, 200);
    expect(await get(nodes[0]!.port, 'shop0.example')).toBe('default origin');
  }, 180_000);

  it('a region cut off keeps serving what it has, takes changes of its own, and converges when the link returns', async () => {
    const apac = nodes[2]!;
    await servers[2]!.stop();
    // During the partition: a change on each side.
    expect((await nodes[1]!.admin({ cmd: 'domains.upsert', domains: [{ host: 'during-cut.example', origins: [`http://127.0.0.1:${tenant.port}`] }] })).ok).toBe(true);
    expect((await apac.admin({ cmd: 'domains.upsert', domains: [{ host: 'cut-side.example', origins: [`http://127.0.0.1:${tenant.port}`] }] })).ok).toBe(true);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await get(apac.port, 'shop77.example')).toBe('tenant origin');
    expect(await get(apac.port, 'during-cut.example')).toBe('default origin');
    expect(await get(apac.port, 'cut-side.example')).toBe('tenant origin');
    await servers[2]!.restart();
    await until(async () => (await Promise.all(nodes.map(async (n) => (await get(n.port, 'during-cut.example')) + (await get(n.port, 'cut-side.example'))))).every((t) => t === 'tenant origintenant origin'), 'both sides of the cut everywhere', 30_000, 200);
    expect(new Set(await Promise.all(nodes.map(domainCount)))).toEqual(new Set([DOMAINS + 1]));
  }, 60_000);

  it('compacts the document on every node, carrying what a region cut off wrote meanwhile', async () => {
    const list = async (n: NodeProcess) => (await n.admin({ cmd: 'domains.list', limit: 1 })).result as { domains: number; generation: number; history_ops: number };
    // Half the domains written again: history the compaction drops.
    const again = Array.from({ length: DOMAINS / 2 }, (_, i) => ({ host: `shop${i + 1}.example`, origins: [`http://127.0.0.1:${tenant.port}`] }));
    expect((await nodes[0]!.admin({ cmd: 'domains.upsert', domains: again }, 60_000)).ok).toBe(true);
    await until(async () => (await Promise.all(nodes.map(list))).every((l) => l.history_ops >= DOMAINS * 1.5), 'the rewrite everywhere', 30_000, 200);
    const before = await list(nodes[0]!);
    expect(before.generation).toBe(0);
    await servers[2]!.stop();
    expect((await nodes[2]!.admin({ cmd: 'domains.upsert', domains: [{ host: 'while-compacting.example', origins: [`http://127.0.0.1:${tenant.port}`] }] })).ok).toBe(true);
    expect(await nodes[0]!.admin({ cmd: 'domains.compact' })).toMatchObject({ ok: true, result: { started: true, generation: 1 } });
    await until(async () => (await list(nodes[1]!)).generation === 1, 'eu-west on generation 1', 30_000, 200);
    await servers[2]!.restart();
    await until(async () => (await Promise.all(nodes.map(list))).every((l) => l.generation === 1 && l.domains === DOMAINS + 2), 'every node on generation 1 with every domain', 30_000, 200);
    for (const n of nodes) {
      // One operation per entry and the mark, plus apac's change made again on the new generation.
      expect((await list(n)).history_ops).toBeLessThanOrEqual(DOMAINS + 4);
      expect(await get(n.port, 'while-compacting.example')).toBe('tenant origin');
    }
    expect(before.history_ops).toBeGreaterThan(DOMAINS + 4);
  }, 90_000);

  it('serves the domains from its saved document when restarted with NATS down', async () => {
    // Stopped as an operator stops it (SIGTERM), then its files go; its state directory stays for the restart.
    await nodes[0]!.stop();
    await nodes[0]![Symbol.asyncDispose]();
    const deadPort = await freePort();
    const restarted = await startNode({ backendPort: fallback.port, mode: 'l7', threads: 1, extraToml: toml(`nats://127.0.0.1:${deadPort}`), region: 'us-east', nodeId: 'n1', stateDir: stateDirs[0]! });
    nodes[0] = restarted;
    expect(restarted.output()).not.toContain('nats: connected');
    expect(await domainCount(restarted)).toBe(DOMAINS + 2);
    expect((await restarted.admin({ cmd: 'domains.list', limit: 1 })).result).toMatchObject({ generation: 1 });
    expect(await get(restarted.port, 'shop42.example')).toBe('tenant origin');
  }, 60_000);
});
