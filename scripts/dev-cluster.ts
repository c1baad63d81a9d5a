// `npm run dev:cluster`: a three-region SecBeat cluster on loopback, for development. Each region (us-east,
// eu-west, apac) gets its own nats-server, the three joined by gateways (scripts/lib/regions.ts), and one
// SecBeat node in L7 mode connected to its region's server, all in front of one small origin started here.
// The nodes limit requests per client fleet-wide (docs/ratelimit.md: 200 a second) and share the tenant
// domains (docs/tenants.md): `secbeat ctl --socket <node>.sock domains add shop.example http://…` on one
// node routes shop.example on all three.
// Prints every address, then runs until Ctrl-C (SIGINT) or SIGTERM, and stops everything it started by PID:
// nodes first (SIGTERM, so they drain), then the servers, then the temp dir.
//
//   node scripts/dev-cluster.ts [--nodes-per-region N] [--delay-ms D]
//
// --delay-ms adds D ms of one-way delay on every link between two regions, both ways, through userspace
// relays (scripts/lib/delay-relay.ts): a cross-region ask then takes at least 2·D.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePorts, waitForConnect } from './lib/loopback.ts';
import { regionPorts, startRegionServers, type RegionServer } from './lib/regions.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REGIONS = ['us-east', 'eu-west', 'apac'] as const;
const NODE_STOP_TIMEOUT_MS = 10_000;
const NODE_START_TIMEOUT_MS = 60_000;

const { values } = parseArgs({ options: { 'nodes-per-region': { type: 'string', default: '1' }, 'delay-ms': { type: 'string', default: '0' } } });
const delayMs = Number(values['delay-ms']);
if (!Number.isInteger(delayMs) || delayMs < 0 || delayMs > 10_000) {
  console.error('--delay-ms must be 0 to 10000');
  process.exit(2);
}
const perRegion = Number(values['nodes-per-region']);
if (!Number.isInteger(perRegion) || perRegion < 1 || perRegion > 4) {
  console.error('--nodes-per-region must be 1 to 4');
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'secbeat-dev-cluster-'));
const origin = createServer((req, res) => res.end(`origin saw ${req.method} ${req.url}\n`));
await new Promise<void>((done) => origin.listen(0, '127.0.0.1', done));
const originPort = (origin.address() as { port: number }).port;

let servers: RegionServer[] = [];
const nodes: { name: string; proc: ChildProcess; port: number; metricsPort: number }[] = [];
let stopping: Promise<void> | null = null;

async function stopAll(code: number): Promise<void> {
  stopping ??= (async () => {
    await Promise.all(nodes.map((n) => stopNode(n.proc)));
    await Promise.all(servers.map((s) => s.stop()));
    origin.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(code);
  })();
  return stopping;
}
process.once('SIGINT', () => void stopAll(0));
process.once('SIGTERM', () => void stopAll(0));

try {
  servers = await startRegionServers(await regionPorts(REGIONS), dir, delayMs);
  const ports = await freePorts(2 * REGIONS.length * perRegion);
  const port = (): number => ports.pop()!;
  for (const server of servers) {
    for (let i = 1; i <= perRegion; i++) {
      const name = `${server.region}-${i}`;
      const node = { name, port: port(), metricsPort: port() };
      const configFile = join(dir, `${name}.toml`);
      writeFileSync(configFile, nodeConfig(server, node.name, node.port, node.metricsPort));
      const proc = spawn(join(ROOT, 'bin/secbeat'), ['run', '--config', configFile], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
      proc.once('exit', (code, signal) => {
        if (stopping === null) {
          console.error(`dev-cluster: ${name} exited (${signal ?? code}); stopping the cluster`);
          void stopAll(1);
        }
      });
      nodes.push({ ...node, proc });
    }
  }
  // Ready when every node accepts connections.
  for (const n of nodes) await waitForConnect(n.port, NODE_START_TIMEOUT_MS, () => n.proc.exitCode === null);
  console.log(`\ndev-cluster: origin http://127.0.0.1:${originPort}, state in ${dir}${delayMs > 0 ? `, ${delayMs} ms one-way between regions` : ''}`);
  for (const s of servers) console.log(`  region ${s.region.padEnd(8)} nats ${s.url} (pid ${s.pid})`);
  for (const n of nodes) console.log(`  node   ${n.name.padEnd(10)} http://127.0.0.1:${n.port}  metrics :${n.metricsPort}  (pid ${n.proc.pid})`);
  console.log('Ctrl-C stops it all.\n');
} catch (error) {
  console.error(`dev-cluster: ${error instanceof Error ? error.message : String(error)}`);
  await stopAll(1);
}

function nodeConfig(server: RegionServer, name: string, port: number, metricsPort: number): string {
  return `[platform]
region = "${server.region}"
node_id = "${name}"

[server]
mode = "l7"
bind_address = "127.0.0.1:${port}"
backend_address = "127.0.0.1:${originPort}"
worker_threads = 1

[metrics]
enabled = true
bind_address = "127.0.0.1:${metricsPort}"

[admin]
socket_path = "${join(dir, `${name}.sock`)}"

[state]
dir = "${join(dir, name)}"

[nats]
enabled = true
urls = ["${server.url}"]
name = "${name}"

[rate_limit]
enabled = true
requests = 200
window_seconds = 1
block_seconds = 30
`;
}

async function stopNode(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((done) => proc.once('exit', done));
  proc.kill('SIGTERM');
  const killer = setTimeout(() => proc.kill('SIGKILL'), NODE_STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(killer);
}
