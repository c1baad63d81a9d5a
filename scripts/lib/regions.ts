// The multi-region NATS topology NATS recommends, on loopback: one nats-server per region (a one-server
// cluster), the regions joined by gateways, so a subject's messages cross to another region only where that
// region has a subscriber. Used by scripts/dev-cluster.ts (the dev cluster) and by the tests that need regions.
// Every server is a child process with its own config file in `dir`, stopped by PID. With `delayMs`, each
// region reaches every other through a relay of its own that delays what it sends by that much
// (./delay-relay.ts): a one-way delay on every link, both ways.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDelayRelay, type DelayRelay } from './delay-relay.ts';
import { freePort, freePorts, waitForConnect } from './loopback.ts';

const NATS_SERVER = '/usr/sbin/nats-server';
const READY_TIMEOUT_MS = 10_000;

export interface RegionPorts {
  region: string;
  /** Client port (nats://127.0.0.1:<client>). */
  client: number;
  gateway: number;
}

export interface RegionServer {
  readonly region: string;
  readonly url: string;
  /** The running server's process (the last one, once stopped). */
  readonly pid: number;
  stop(): Promise<void>;
  /** Starts it again after stop(), on the same ports and configuration: a region's link cut, then healed. */
  restart(): Promise<void>;
}

/** A client port and a gateway port for each region, all distinct and free now. */
export async function regionPorts(regions: readonly string[]): Promise<RegionPorts[]> {
  const ports = await freePorts(2 * regions.length);
  return regions.map((region, i) => ({ region, client: ports[2 * i]!, gateway: ports[2 * i + 1]! }));
}

/**
 * The server config of `self`: its client listener and a gateway to every region of `all`, reached on the port
 * `via` gives (the region's own gateway port, or a relay's).
 */
export function regionServerConfig(self: RegionPorts, all: readonly RegionPorts[], via: (to: RegionPorts) => number = (to) => to.gateway): string {
  const gateways = all.map((r) => `    { name: ${JSON.stringify(r.region)}, url: "nats://127.0.0.1:${r === self ? r.gateway : via(r)}" }`).join('\n');
  return [
    `listen: "127.0.0.1:${self.client}"`,
    `server_name: ${JSON.stringify(`${self.region}-0`)}`,
    'gateway {',
    `  name: ${JSON.stringify(self.region)}`,
    `  listen: "127.0.0.1:${self.gateway}"`,
    '  gateways: [',
    gateways,
    '  ]',
    '}',
    '',
  ].join('\n');
}

/**
 * Starts one server per region, each ready (accepting clients) when this resolves; with `delayMs` > 0, the
 * delay relays between them too (stopped with the servers).
 */
export async function startRegionServers(regions: readonly RegionPorts[], dir: string, delayMs = 0): Promise<RegionServer[]> {
  const started: ProcessServer[] = [];
  const restarts: (() => Promise<ProcessServer>)[] = [];
  const relays: DelayRelay[] = [];
  try {
    for (const self of regions) {
      const via = new Map<RegionPorts, number>();
      if (delayMs > 0) {
        for (const to of regions) {
          if (to === self) continue;
          const listenPort = await freePort();
          relays.push(await startDelayRelay({ listenPort, targetPort: to.gateway, delayMs }));
          via.set(to, listenPort);
        }
      }
      started.push(await startRegionServer(self, regions, dir, (to) => via.get(to) ?? to.gateway));
      restarts.push(() => startRegionServer(self, regions, dir, (to) => via.get(to) ?? to.gateway));
    }
  } catch (error) {
    await Promise.all([...started.map((s) => s.stop()), ...relays.map((r) => r.close())]);
    throw error;
  }
  // The relays go when the last server does.
  let left = started.length;
  return started.map((first, i) => {
    let server: ProcessServer | null = first;
    let pid = first.pid;
    return {
      region: first.region,
      url: first.url,
      get pid() {
        return pid;
      },
      stop: async () => {
        if (server === null) return;
        const running = server;
        server = null;
        await running.stop();
        if (--left === 0) await Promise.all(relays.map((r) => r.close()));
      },
      restart: async () => {
        if (server !== null) return;
        server = await restarts[i]!();
        pid = server.pid;
        left++;
      },
    };
  });
}

interface ProcessServer {
  readonly region: string;
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

async function startRegionServer(self: RegionPorts, all: readonly RegionPorts[], dir: string, via: (to: RegionPorts) => number): Promise<ProcessServer> {
  const configFile = join(dir, `nats-${self.region}.conf`);
  writeFileSync(configFile, regionServerConfig(self, all, via));
  const server = await startNatsProcess(['-c', configFile], self.client, `nats-server for ${self.region}`);
  return { region: self.region, url: `nats://127.0.0.1:${self.client}`, pid: server.pid, stop: () => server.stop() };
}

/** A nats-server child process started with `args`, once it accepts clients on `clientPort`; stopped by PID. */
export async function startNatsProcess(args: readonly string[], clientPort: number, label: string): Promise<{ pid: number; stop(signal?: NodeJS.Signals): Promise<void> }> {
  const proc: ChildProcess = spawn(NATS_SERVER, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (b: Buffer): void => {
    output = (output + b.toString()).slice(-8192);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill(signal);
    const killer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killer);
  };
  try {
    await waitForConnect(clientPort, READY_TIMEOUT_MS, () => proc.exitCode === null);
  } catch (error) {
    await stop('SIGKILL');
    throw new Error(`${label}: ${(error as Error).message}\n${output}`);
  }
  return { pid: proc.pid!, stop };
}
