// The issue's seed scenario with real nodes: three regions, each a nats-server (joined by gateways,
// scripts/lib/regions.ts) and a SecBeat L7 node with two data-plane threads and [rate_limit] on, in front of
// one origin. An attacker sends 90 requests a second to every region against a limit of 100 a second per
// client: no region alone ever sees it over the limit (a node without NATS lets the same traffic through,
// checked first), but the fleet's 270 is, so every region refuses it (429) and blocks it, while another client
// keeps getting 200 everywhere. Clients are named by X-Forwarded-For from a trusted proxy (the test is one).
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { regionPorts, startRegionServers, type RegionServer } from '../../scripts/lib/regions.ts';
import { startNode, type NodeProcess } from '../helpers/node-process.ts';
import { scrapeMetric, until } from '../helpers/wait.ts';

const ATTACKER = '203.0.113.7';
const CLIENT = '198.51.100.20';
const LIMIT = 100;
const ATTACK_RATE = 90;

function rateToml(nats: string | null): string {
  return `
[l7]
trusted_proxies = ["127.0.0.0/8"]

[rate_limit]
enabled = true
requests = ${LIMIT}
window_seconds = 1
block_seconds = 30
${nats === null ? '' : `\n[nats]\nenabled = true\nurls = ["${nats}"]\n`}`;
}

interface Tally {
  statuses: Map<number, number>;
  errors: number;
}

/** Sends `rate` requests a second as `client` to `port` for `seconds`, at an even pace; what came back. */
async function send(agent: Agent, port: number, client: string, rate: number, seconds: number): Promise<Tally> {
  const tally: Tally = { statuses: new Map(), errors: 0 };
  const started = Date.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < rate * seconds; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(
      request(`http://127.0.0.1:${port}/`, { headers: { 'x-forwarded-for': client }, dispatcher: agent, headersTimeout: 5_000, bodyTimeout: 5_000 }).then(
        async (res) => {
          await res.body.dump();
          tally.statuses.set(res.statusCode, (tally.statuses.get(res.statusCode) ?? 0) + 1);
        },
        () => void tally.errors++,
      ),
    );
  }
  await Promise.all(pending);
  return tally;
}

describe('global rate limit with real nodes in three regions', () => {
  const regions = ['us-east', 'eu-west', 'apac'];
  let dir = '';
  let origin: Server;
  let originPort = 0;
  let servers: RegionServer[] = [];
  const nodes: NodeProcess[] = [];
  const agent = new Agent({ connections: 16 });

  beforeAll(async () => {
    origin = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    originPort = (origin.address() as { port: number }).port;
    dir = mkdtempSync(join(tmpdir(), 'secbeat-rate-nodes-'));
    servers = await startRegionServers(await regionPorts(regions), dir);
  }, 30_000);

  afterAll(async () => {
    await agent.close();
    for (const node of nodes) await node[Symbol.asyncDispose]();
    await Promise.all(servers.map((s) => s.stop()));
    origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a node alone lets 90 requests a second through against a limit of 100', async () => {
    await using alone = await startNode({ backendPort: originPort, mode: 'l7', threads: 2, extraToml: rateToml(null), region: 'solo', nodeId: 'n1' });
    const tally = await send(agent, alone.port, ATTACKER, ATTACK_RATE, 2);
    expect(Object.fromEntries(tally.statuses)).toEqual({ 200: ATTACK_RATE * 2 });
    expect(tally.errors).toBe(0);
  }, 60_000);

  it('every region refuses and blocks the attacker spread over the three, and serves the other client', async () => {
    for (const server of servers) {
      nodes.push(await startNode({ backendPort: originPort, mode: 'l7', threads: 2, extraToml: rateToml(server.url), region: server.region, nodeId: 'n1' }));
    }
    await until(() => nodes.every((n) => n.output().includes('nats: connected')), 'every node connected to its NATS server', 20_000);
    const [attacks, clients] = await Promise.all([
      Promise.all(nodes.map((n) => send(agent, n.port, ATTACKER, ATTACK_RATE, 4))),
      Promise.all(nodes.map((n) => send(agent, n.port, CLIENT, 5, 4))),
    ]);
    for (const [i, tally] of attacks.entries()) {
      const region = regions[i];
      // Refused on every region, though none had more than 90 a second of its own.
      expect({ region, refused: (tally.statuses.get(429) ?? 0) > 0 }).toEqual({ region, refused: true });
      expect(await scrapeMetric(nodes[i]!.metricsPort, 'secbeat_rate_limit_blocks_total')).toBeGreaterThanOrEqual(1);
      expect(await scrapeMetric(nodes[i]!.metricsPort, 'secbeat_rate_limit_sync_malformed_total')).toBe(0);
    }
    // Across the fleet the attacker got far fewer than its 1,080 requests through: about a second's worth of limit.
    const passed = attacks.reduce((sum, t) => sum + (t.statuses.get(200) ?? 0), 0);
    const per = attacks.map((t, i) => `${regions[i]} ${t.statuses.get(200) ?? 0} passed / ${t.statuses.get(429) ?? 0} refused`).join(', ');
    console.log(`global rate limit: attacker at ${ATTACK_RATE}/s on each of 3 regions for 4 s, limit ${LIMIT}/s: ${per}`);
    expect(passed).toBeLessThan(3 * LIMIT);
    for (const tally of clients) {
      expect(Object.fromEntries(tally.statuses)).toEqual({ 200: 20 });
      expect(tally.errors).toBe(0);
    }
    // The block is in every node's blocklist (the admin socket lists it).
    for (const node of nodes) {
      const listed = await node.admin({ cmd: 'block.list' });
      expect(JSON.stringify(listed)).toContain(ATTACKER);
    }
  }, 120_000);
});
