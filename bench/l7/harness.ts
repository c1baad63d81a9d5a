// The life of one HTTP bench run (bench/l7/run.ts, bench/waf/run.ts): the bench pinned to the load core, a temp
// dir, the registry of every child, and their end by PID and the dir's removal on completion, an exception,
// Ctrl-C, SIGTERM or the watchdog; the environment the proxies start from; the version probe of the tools.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ProcessRegistry, type Core } from '../tcp/proc.ts';
import { buildStrippedTree, extractRef } from '../tcp/proxies.ts';
import { makeCertificate, type L7Env } from './proxies.ts';

/** Peers of the HTTP benches that, already running, would share the pinned cores (see otherBenchProcesses). */
export const HTTP_BENCH_PROGRAMS = /(^|\/)(haproxy|nginx|wrk|h2load|iperf3)\b/;

/** First line a tool prints for its version, on stdout or (nginx -v, wrk -v) stderr; null when it is not installed. */
export function toolVersion(command: string, args: readonly string[]): string | null {
  const run = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  if (run.error !== undefined) return null;
  const text = `${run.stdout}${run.stderr}`.trim();
  return text === '' ? null : (text.split('\n')[0]?.trim() ?? null);
}

/** False, after naming on stderr each tool whose version is null and what installs it (`hint`). */
export function toolsPresent(versions: Readonly<Record<string, string | null>>, hint: string): boolean {
  const missing = Object.entries(versions).filter(([, version]) => version === null);
  for (const [tool] of missing) process.stderr.write(`${tool} not found: ${hint}\n`);
  return missing.length === 0;
}

export interface BenchRun extends AsyncDisposable {
  tmp: string;
  procs: ProcessRegistry;
}

export interface RunOptions {
  /** Prefix of the temp dir's name under the system temp dir. */
  tmpPrefix: string;
  loadCore: Core;
  /** The whole run is abandoned (children killed, temp files removed) after this long. */
  watchdogMs: number;
}

/** Starts a run; disposing it (`await using`) stops every child by PID and removes the temp dir. */
export function startRun(o: RunOptions): BenchRun {
  // The orchestrator joins the load side so that its own wake-ups never land on the proxy's core.
  execFileSync('taskset', ['-a', '-p', '-c', String(o.loadCore), String(process.pid)], { stdio: 'ignore' });
  const tmp = mkdtempSync(join(tmpdir(), o.tmpPrefix));
  const procs = new ProcessRegistry();
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    await procs.stopAll();
    rmSync(tmp, { recursive: true, force: true });
  };
  // Ctrl-C, a kill, the watchdog and an unexpected exit all end every child by PID and remove the temp dir.
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\n${signal}: stopping children\n`);
    void cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  const onExit = (): void => {
    procs.killAllNow();
    rmSync(tmp, { recursive: true, force: true });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', onExit);
  const watchdog = setTimeout(() => {
    process.stderr.write(`watchdog: the run exceeded ${o.watchdogMs / 1000} s; stopping children\n`);
    void cleanup().finally(() => process.exit(1));
  }, o.watchdogMs);
  watchdog.unref();
  return {
    tmp,
    procs,
    async [Symbol.asyncDispose]() {
      clearTimeout(watchdog);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('exit', onExit);
      await cleanup();
    },
  };
}

export interface EnvOptions {
  /** The repository: node_modules, native/, and SecBeat's sources unless secbeatRef names others. */
  root: string;
  /** --secbeat-ref: run SecBeat from `git archive REF`; null = the working tree. */
  secbeatRef: string | null;
  /** --cpu-prof: directory for SecBeat's .cpuprofile files. */
  cpuProf: string | undefined;
  /** False when no SecBeat column is measured: its tree is then not built. */
  secbeat: boolean;
}

/** What the proxies of a run start from: SecBeat's type-stripped tree and Node flags, the test certificate, all in the run's temp dir. */
export function benchEnv(run: BenchRun, o: EnvOptions): L7Env {
  let secbeatRoot = o.root;
  if (o.secbeatRef !== null) {
    mkdirSync(join(run.tmp, 'ref'));
    secbeatRoot = extractRef(o.root, o.secbeatRef, join(run.tmp, 'ref'));
  }
  mkdirSync(join(run.tmp, 'stripped'));
  return {
    root: o.root,
    nodeBin: process.execPath,
    nodeFlags: o.cpuProf === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', resolve(o.cpuProf)],
    tmp: run.tmp,
    procs: run.procs,
    secbeatLauncher: o.secbeat ? buildStrippedTree(o.root, secbeatRoot, join(run.tmp, 'stripped')) : '',
    tls: makeCertificate(run.tmp),
  };
}
