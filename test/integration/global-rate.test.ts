// The seed scenario for global rate limits, over real NATS: three regions (a nats-server each, joined by
// gateways, scripts/lib/regions.ts), an attacker sending 100 requests to each region against a limit of 100. Each
// region counts its own (src/crdt/rate-windows.ts) and syncs every 100 ms (src/crdt/rate-sync.ts) on the rates
// subject: every region comes to see all 300, over the limit, though none saw more than 100 itself.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { regionPorts, startRegionServers } from '../../scripts/lib/regions.ts';
import { RateSync } from '../../src/crdt/rate-sync.ts';
import { RateWindows } from '../../src/crdt/rate-windows.ts';
import { rateSubject } from '../../src/runtime/subjects.ts';

const ATTACKER = '203.0.113.7';
const LIMIT = 100;
/** One window for the whole test, so that every hit lands in it. */
const WINDOW_MS = 10 * 60_000;

describe('global rate limit across three regions', () => {
  it('every region sees the attacker’s 300 requests, over the limit of 100, after sync', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'secbeat-rates-'));
    const regions = ['us-east', 'eu-west', 'apac'];
    const servers = await startRegionServers(await regionPorts(regions), dir);
    const connections: NatsConnection[] = [];
    const syncs: RateSync[] = [];
    try {
      const replicas = await Promise.all(
        servers.map(async (server) => {
          const nc = await connect({ servers: server.url, noEcho: true });
          connections.push(nc);
          const windows = new RateWindows({ replica: `${server.region}/node-1#0`, windowMs: WINDOW_MS, maxAgeMs: 2 * WINDOW_MS });
          const sync = new RateSync({ windows, publish: (payload) => nc.publish(rateSubject(), payload) });
          nc.subscribe(rateSubject(), {
            callback: (error, msg) => {
              if (error === null) sync.receive(msg.string());
            },
          });
          syncs.push(sync);
          return { region: server.region, windows, sync };
        }),
      );
      for (const r of replicas) r.sync.start();
      const now = Date.now();
      for (const r of replicas) for (let i = 0; i < 100; i++) r.windows.hit(ATTACKER, now);
      // Locally, no region is over the limit.
      for (const r of replicas) expect(r.windows.total(ATTACKER, now)).toBe(100);

      const deadline = Date.now() + 15_000;
      while (replicas.some((r) => r.windows.total(ATTACKER, now) < 300) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      for (const r of replicas) {
        expect({ region: r.region, total: r.windows.total(ATTACKER, now) }).toEqual({ region: r.region, total: 300 });
        expect(r.windows.total(ATTACKER, now)).toBeGreaterThan(LIMIT);
        expect(r.sync.malformed).toBe(0);
      }
    } finally {
      for (const sync of syncs) sync.stop();
      await Promise.all(connections.map((nc) => nc.close()));
      await Promise.all(servers.map((s) => s.stop()));
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
