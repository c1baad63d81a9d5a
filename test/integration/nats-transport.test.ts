// The node transport over a real nats-server (src/runtime/nats-transport.ts): two actor systems standing for
// two nodes in two regions ask each other's actors across NATS (message there, reply back); garbage published
// on a node's subject is counted and dropped, never delivered nor thrown; a node whose server goes away
// gets no answers meanwhile and carries on once the server is back.
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Address } from '../../src/messages.ts';
import type { Behavior } from '../../src/runtime/actor.ts';
import { realClock } from '../../src/runtime/clock.ts';
import { NatsTransport } from '../../src/runtime/nats-transport.ts';
import { deliverySubject } from '../../src/runtime/subjects.ts';
import { Supervisor } from '../../src/runtime/supervisor.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { rootLogger } from '../../src/telemetry/log.ts';
import { metrics } from '../../src/telemetry/metrics.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { regionPorts, startRegionServers, type RegionServer } from '../../scripts/lib/regions.ts';
import { startNatsServer, type NatsServer } from '../helpers/nats-server.ts';
import { startNode } from '../helpers/node-process.ts';
import { freePort } from '../helpers/ports.ts';
import { scrapeMetric, until } from '../helpers/wait.ts';

type CountMsg = { type: 'listener.stats' };

/** Answers each ask with how many it had before. */
const counter: Behavior<number, CountMsg, void> = {
  name: 'counter',
  init: () => 0,
  receive(count, _msg, ctx) {
    ctx.reply(count);
    return count + 1;
  },
};

interface FakeNode {
  system: ActorSystem;
  transport: NatsTransport;
  stop(): Promise<void>;
}

async function startFakeNode(region: string, node: string, server: { url: string }): Promise<FakeNode> {
  const system = new ActorSystem({ region, node, thread: 'main', clock: realClock, mailboxCapacity: 64, askTimeoutMs: 2_000, deadLetterCapacity: 64, chaosEnabled: false });
  const supervisor = new Supervisor(
    { name: 'root', strategy: 'one_for_one', maxRestarts: 3, periodMs: 1000, backoffInitialMs: 0, backoffMaxMs: 0, clock: realClock },
    [system.actorChild({ name: 'counter', behavior: counter })],
  );
  system.registerSupervisor(supervisor);
  await supervisor.start();
  const transport = new NatsTransport({ servers: [server.url], region, node, log: rootLogger() });
  system.setNodeTransport(transport);
  await transport.start((delivery) => system.receive(delivery));
  return {
    system,
    transport,
    async stop() {
      await transport.close();
      await supervisor.stop();
    },
  };
}

async function metricValue(result: string): Promise<number> {
  const data = await metrics().natsDeliveries.get();
  return data.values.find((v) => v.labels['result'] === result)?.value ?? 0;
}

describe('NATS node transport', () => {
  let server: NatsServer;
  let east: FakeNode;
  let west: FakeNode;
  const counterOn = (region: string, node: string): Address => ({ region, node, thread: 'main', actor: 'counter' });

  beforeAll(async () => {
    server = await startNatsServer();
    east = await startFakeNode('us-east', 'node.1', server);
    west = await startFakeNode('eu-west', 'node.1', server);
    await until(() => east.transport.connected && west.transport.connected, 'both connections');
  }, 30_000);

  afterAll(async () => {
    await east?.stop();
    await west?.stop();
    await server?.stop();
  });

  it('carries asks between nodes and their replies back, in order', async () => {
    const there = counterOn('eu-west', 'node.1');
    expect(await east.system.ask(there, { type: 'listener.stats' })).toBe(0);
    expect(await east.system.ask(there, { type: 'listener.stats' })).toBe(1);
    expect(await west.system.ask(counterOn('us-east', 'node.1'), { type: 'listener.stats' })).toBe(0);
    // Tells keep their order: the next ask sees all of them counted.
    for (let i = 0; i < 20; i++) east.system.tell(there, { type: 'listener.stats' });
    expect(await east.system.ask(there, { type: 'listener.stats' })).toBe(22);
  });

  it('drops what is not a delivery for this node, counts it, and keeps serving', async () => {
    const before = await metricValue('malformed');
    const raw = await connect({ servers: server.url });
    const subject = deliverySubject('eu-west', 'node.1');
    raw.publish(subject, 'not json');
    raw.publish(subject, new Uint8Array([0xff, 0xfe, 0x00]));
    raw.publish(subject, JSON.stringify({ kind: 'msg' }));
    raw.publish(subject, JSON.stringify({ kind: 'crash', to: counterOn('us-east', 'node.1'), ruleId: 'x' }));
    raw.publish(subject, JSON.stringify({ kind: 'msg', envelope: { to: counterOn('eu-west', 'node.1'), from: null, msg: { type: 'no.such.message' } } }));
    raw.publish(subject, new Uint8Array(900_000).fill(0x20));
    await raw.flush();
    await raw.close();
    const deadline = Date.now() + 10_000;
    while ((await metricValue('malformed')) - before < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect((await metricValue('malformed')) - before).toBe(6);
    // Still serving, its counter untouched by the garbage.
    expect(await east.system.ask(counterOn('eu-west', 'node.1'), { type: 'listener.stats' })).toBe(23);
  });

  it('carries on once its server is back', async () => {
    await server.stop();
    await until(() => !east.transport.connected, 'the disconnect');
    // No answer while the link is down (what is sent meanwhile waits in the client's bounded buffer).
    await expect(east.system.ask(counterOn('eu-west', 'node.1'), { type: 'listener.stats' }, 500)).rejects.toMatchObject({ code: 'SECBEAT_ERR_ASK_TIMEOUT' });
    await server.start();
    await until(() => east.transport.connected && west.transport.connected, 'both reconnections', 20_000);
    expect(await east.system.ask(counterOn('eu-west', 'node.1'), { type: 'listener.stats' })).toBeGreaterThanOrEqual(24);
  }, 40_000);
});

describe('a node with [nats]', () => {
  const natsToml = (url: string) => `\n[nats]\nenabled = true\nurls = ["${url}"]\n`;

  it('connects to its server', async () => {
    await using server = await startNatsServer();
    await using node = await startNode({ backendPort: 1, threads: 1, extraToml: natsToml(server.url) });
    await until(() => node.output().includes('nats: connected'), 'the connection log line');
    expect(await scrapeMetric(node.metricsPort, 'secbeat_nats_connected')).toBe(1);
  }, 30_000);

  it('starts and serves with its server down, trying in the background, and stops cleanly', async () => {
    const port = await freePort();
    await using node = await startNode({ backendPort: 1, threads: 1, extraToml: natsToml(`nats://127.0.0.1:${port}`) });
    expect(await node.admin({ cmd: 'ping' })).toMatchObject({ ok: true });
    expect(node.output()).not.toContain('nats: connected');
    expect(await scrapeMetric(node.metricsPort, 'secbeat_nats_connected')).toBe(0);
    // And stops cleanly (exit 0; a node stuck waiting for the server would be killed after 10 s, exit null).
    expect(await node.stop()).toBe(0);
  }, 30_000);
});

describe('three regions, one server each, joined by gateways', () => {
  const regions = ['us-east', 'eu-west', 'apac'];
  let dir = '';
  let servers: RegionServer[] = [];
  let nodes: FakeNode[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'secbeat-regions-'));
    servers = await startRegionServers(await regionPorts(regions), dir);
    nodes = await Promise.all(servers.map((server) => startFakeNode(server.region, 'n1', server)));
    await until(() => nodes.every((n) => n.transport.connected), 'every node connected to its region');
  }, 30_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('carries asks between every pair of regions through the gateways', async () => {
    for (const from of nodes) {
      for (const region of regions) {
        if (region === from.system.here.region) continue;
        expect(typeof (await askOnceGatewaysKnow(from.system, counterAddress(region)))).toBe('number');
      }
    }
    // Each node's counter was asked once by each of the two other regions (plus any retried asks).
    for (const node of nodes) expect(await node.system.ask(counterAddress(node.system.here.region), { type: 'listener.stats' })).toBeGreaterThanOrEqual(2);
  }, 60_000);
});

describe('two regions with a one-way delay on the link', () => {
  it('delays every crossing: an ask there and back takes at least twice the delay', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'secbeat-delay-'));
    const delayMs = 150;
    const servers = await startRegionServers(await regionPorts(['near', 'far']), dir, delayMs);
    const nodes = await Promise.all(servers.map((server) => startFakeNode(server.region, 'n1', server)));
    try {
      await until(() => nodes.every((n) => n.transport.connected), 'both connected');
      const near = nodes[0]!;
      await askOnceGatewaysKnow(near.system, counterAddress('far'));
      const started = performance.now();
      await near.system.ask(counterAddress('far'), { type: 'listener.stats' }, 5_000);
      expect(performance.now() - started).toBeGreaterThanOrEqual(2 * delayMs);
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
      await Promise.all(servers.map((s) => s.stop()));
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

/**
 * Asks `to` for its count, again until answered: gateways learn each other's interest in a moment, so the first
 * asks across regions may find none yet. Fails after 15 s.
 */
async function askOnceGatewaysKnow(system: ActorSystem, to: Address): Promise<unknown> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return await system.ask(to, { type: 'listener.stats' as const }, 2_000);
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
  }
}

function counterAddress(region: string): Address {
  return { region, node: 'n1', thread: 'main', actor: 'counter' };
}
