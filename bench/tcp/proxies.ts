// The proxies bench/tcp/run.ts compares, started the same way: the real SecBeat node (`bin/secbeat run` with a
// generated TOML, from a type-stripped tree, i.e. with the launcher's flags and environment as operators run
// it) and HAProxy (`mode tcp`), each pinned to core 1, listening on 127.0.0.1 and forwarding to one backend port. A handle gives the PID (for /proc sampling), the port, and stop().
import { execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stripTree } from '../../scripts/strip.ts';
import { freePort, waitForConnect, type Core, type ProcessRegistry } from './proc.ts';

export const PROXY_CORE: Core = 1;
const READY_TIMEOUT_MS = 20_000;

export type ProxyKind = 'secbeat' | 'secbeat-js' | 'haproxy';

export interface ProxySpec {
  kind: ProxyKind;
  /** SecBeat: data-plane threads (worker_threads); HAProxy: nbthread. */
  workerThreads: number;
}

export interface RunningProxy {
  spec: ProxySpec;
  pid: number;
  port: number;
  logFile: string;
  stop(): Promise<void>;
}

export interface ProxyEnv {
  /** The repository: node_modules, native/. */
  root: string;
  nodeBin: string;
  /** Extra node flags for SecBeat (--cpu-prof when asked), passed in NODE_OPTIONS. */
  nodeFlags: readonly string[];
  tmp: string;
  procs: ProcessRegistry;
  /** SecBeat's launcher in buildStrippedTree()'s tree: bin/secbeat, running dist/ as after `npm install`. */
  secbeatLauncher: string;
}

let instances = 0;

export async function startProxy(env: ProxyEnv, spec: ProxySpec, backendPort: number): Promise<RunningProxy> {
  const port = await freePort();
  const dir = join(env.tmp, `${spec.kind}-${++instances}`);
  mkdirSync(dir);
  const logFile = join(dir, 'output.log');
  const out = openSync(logFile, 'w');
  let child: ChildProcess;
  try {
    child =
      spec.kind === 'haproxy'
        ? startHaproxy(env, spec, dir, port, backendPort, out)
        : startSecbeat(env, spec, dir, { port, metricsPort: await freePort() }, backendPort, out);
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(out);
  }
  const pid = child.pid ?? -1;
  const stop = (): Promise<void> => env.procs.stop(child);
  try {
    await waitForConnect(port, READY_TIMEOUT_MS, () => child.exitCode === null && child.signalCode === null);
  } catch (err) {
    await stop();
    throw new Error(`${spec.kind} did not start: ${err instanceof Error ? err.message : String(err)}\n${tail(logFile)}`, { cause: err });
  }
  return { spec, pid, port, logFile, stop };
}

function startSecbeat(
  env: ProxyEnv,
  spec: ProxySpec,
  dir: string,
  { port, metricsPort }: { port: number; metricsPort: number },
  backendPort: number,
  out: number,
): ChildProcess {
  const config = join(dir, 'secbeat.toml');
  writeFileSync(
    config,
    [
      '[platform]',
      'region = "bench"',
      'node_id = "bench-1"',
      '[server]',
      'mode = "tcp"',
      `bind_address = "127.0.0.1:${port}"`,
      `backend_address = "127.0.0.1:${backendPort}"`,
      `worker_threads = ${spec.workerThreads}`,
      'max_connections = 100000',
      'per_ip_max_connections = 0',
      `forwarding = "${spec.kind === 'secbeat-js' ? 'js' : 'auto'}"`,
      // SIGTERM drains; the bench has nothing worth waiting 30 s (the default) for.
      'drain_timeout_ms = 500',
      // Metrics on, as in the embedded default: their listener and registries are part of what an operator runs.
      '[metrics]',
      `bind_address = "127.0.0.1:${metricsPort}"`,
      '[admin]',
      `socket_path = "${join(dir, 'a.sock')}"`,
      '[logging]',
      'level = "warn"',
      '[state]',
      `dir = "${join(dir, 'state')}"`,
      '',
    ].join('\n'),
  );
  return spawnSecbeat(env, dir, config, out);
}

/**
 * `bin/secbeat run --config <config>` of buildStrippedTree()'s tree on the proxy core, with env.nodeFlags in
 * NODE_OPTIONS, output to the fd `out`. The launcher execs node in place, so the PID is the node's (taskset
 * and sh exec too).
 */
export function spawnSecbeat(env: ProxyEnv, dir: string, config: string, out: number): ChildProcess {
  const nodeOptions = [process.env['NODE_OPTIONS'] ?? '', ...env.nodeFlags].join(' ').trim();
  return env.procs.spawnPinned(PROXY_CORE, 'sh', [env.secbeatLauncher, 'run', '--config', config], {
    cwd: dir,
    stdio: ['ignore', out, out],
    env: { ...process.env, NODE_OPTIONS: nodeOptions },
  });
}

function startHaproxy(env: ProxyEnv, spec: ProxySpec, dir: string, port: number, backendPort: number, out: number): ChildProcess {
  const config = join(dir, 'haproxy.cfg');
  writeFileSync(
    config,
    [
      'global',
      `  nbthread ${spec.workerThreads}`,
      `  maxconn ${haproxyMaxconn()}`,
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 60s',
      '  timeout server 60s',
      'listen fwd',
      `  bind 127.0.0.1:${port}`,
      `  server backend 127.0.0.1:${backendPort}`,
      '',
    ].join('\n'),
  );
  return env.procs.spawnPinned(PROXY_CORE, 'haproxy', ['-f', config, '-db'], { cwd: dir, stdio: ['ignore', out, out] });
}

/** The maxconn the task asks for (100,000), unless the fd limit is lower. */
export const WANTED_MAXCONN = 100_000;

/**
 * HAProxy needs two fds per connection for maxconn and refuses to start when it cannot raise RLIMIT_NOFILE
 * that far (an unprivileged container caps the hard limit, 20,000 here). SecBeat has the same ceiling (Node
 * raises its soft limit to the hard one), so both get what the limit allows; the bench never opens more
 * than a few thousand connections at once anyway.
 */
export function haproxyMaxconn(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const hard = Number(/^Max open files\s+\S+\s+(\S+)/m.exec(limits)?.[1]);
  // HAProxy reserves a few fds of its own (listeners, pollers, logs) on top of 2 per connection.
  return Number.isFinite(hard) ? Math.min(WANTED_MAXCONN, Math.floor((hard - 200) / 2)) : WANTED_MAXCONN;
}

/**
 * What `npm install` leaves for bin/secbeat, but under `outDir` and from `sourceRoot`: dist/ as `npm run
 * build:js` writes it (scripts/strip.ts) with its freshness stamp, the launcher, and links to src/ (so the
 * launcher finds dist/ current) and node_modules. The repository's own dist/ may be stale while src/ is
 * being edited, and the bench writes nothing outside its temp dir. Returns the launcher.
 */
export function buildStrippedTree(root: string, sourceRoot: string, outDir: string): string {
  const dist = join(outDir, 'dist');
  stripTree({ sourceRoot, outDir: dist, links: { config: join(sourceRoot, 'config'), native: join(root, 'native') } });
  symlinkSync(join(root, 'node_modules'), join(outDir, 'node_modules'));
  symlinkSync(join(sourceRoot, 'src'), join(outDir, 'src'));
  mkdirSync(join(outDir, 'bin'));
  copyFileSync(join(sourceRoot, 'bin/secbeat'), join(outDir, 'bin/secbeat'));
  // Written last, as scripts/build.ts does: the launcher runs dist/ only when nothing in src/ is newer.
  writeFileSync(join(dist, '.built'), `${new Date().toISOString()}\n`);
  return join(outDir, 'bin/secbeat');
}

/**
 * SecBeat's sources at a git ref, for A/B runs while src/ is being changed: `git archive` (read-only for the
 * repository) of src/, config/ and bin/ into `outDir`, with links to the working tree's node_modules and built
 * native addon. Returns the new root.
 */
export function extractRef(root: string, ref: string, outDir: string): string {
  const tar = execFileSync('git', ['-C', root, 'archive', '--format=tar', ref, 'src', 'config', 'bin'], { maxBuffer: 256 * 1024 * 1024 });
  execFileSync('tar', ['-x', '-C', outDir], { input: tar });
  symlinkSync(join(root, 'node_modules'), join(outDir, 'node_modules'));
  symlinkSync(join(root, 'native'), join(outDir, 'native'));
  return outDir;
}

/** Warnings and errors a proxy wrote (pino level ≥ 40, HAProxy [WARNING]/[ALERT], nginx [warn] and up), for the report. */
export function proxyComplaints(logFile: string): string[] {
  if (!existsSync(logFile)) return [];
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((line) => /"level":\s*(4|5|6)0/.test(line) || /\[(WARNING|ALERT)\]/.test(line) || /\[(warn|error|crit|alert|emerg)\]/.test(line));
}

/** The last 20 lines of a proxy's output, for a start failure's message. */
export function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}
