// TCP-mode macro benchmark: SecBeat (the native engine, plus JS forwarding as an extra column) and HAProxy
// `mode tcp`, one after another in one run, on loopback, against the same backends. Each proxy is pinned to
// core 1; backends and load generators to core 0. Prints a ratio table against the issue's targets and,
// last, the same as one JSON line prefixed "RESULT ". docs/bench.md explains every row and the caveats.
//
//   node bench/tcp/run.ts [--quick] [--only rss,idle,connrate,latency,bulk]
//                                 [--proxies secbeat,secbeat-js,haproxy] [--secbeat-ref REF] [--cpu-prof DIR]
//
// Not part of the test suite. Helpers: ./proc.ts (processes, /proc), ./proxies.ts (starting the proxies),
// ./load.ts (echo backend and load generator children), and, shared with the HTTP benches, ../l7/harness.ts (the
// run's life: pinning, temp dir, children, watchdog) and ../l7/meter.ts (CPU accounting of a phase).
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildReply, GenCommand, LatencyResult } from './load.ts';
import { freePort, procAffinity, procFdCount, procRssBytes, otherBenchProcesses, runPinned, sleep, sysctl, waitForListen, waitMessage } from './proc.ts';
import {
  buildStrippedTree,
  extractRef,
  haproxyMaxconn,
  proxyComplaints,
  startProxy,
  WANTED_MAXCONN,
  type ProxyEnv,
  type ProxyKind,
  type ProxySpec,
  type RunningProxy,
} from './proxies.ts';
import { parseBenchArgs } from '../cli.ts';
import { startRun, toolsPresent, toolVersion } from '../l7/harness.ts';
import { CpuMeter, disturbance, disturbanceNote, type PhaseCpu } from '../l7/meter.ts';

const PHASES = ['rss', 'idle', 'connrate', 'latency', 'bulk'] as const;
type Phase = (typeof PHASES)[number];
const PROXIES = ['secbeat', 'secbeat-js', 'haproxy'] as const satisfies readonly ProxyKind[];

const LABELS: Record<ProxyKind, string> = { secbeat: 'SecBeat', 'secbeat-js': 'SecBeat(js)', haproxy: 'HAProxy' };

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const LOAD_SCRIPT = join(HERE, 'load.ts');
const GEN_CORE = 0;

/**
 * Client source addresses of the generator. The whole of 127/8 is loopback; 64 sources give 64 × ~28k
 * ephemeral ports, so connections the client closed (TIME_WAIT on the client side) never exhaust its ports.
 */
const SOURCES = Array.from({ length: 64 }, (_, i) => `127.0.1.${i + 1}`);

interface Settings {
  /** Proxy started, no connection yet: time for startup garbage to be collected before RSS is read. */
  rssSettleMs: number;
  idleConnections: number;
  idleSettleMs: number;
  connConcurrency: number;
  /** Not measured: lets the proxy's JIT and allocator warm up. */
  connWarmupMs: number;
  /** ≥ 5 s: CPU times come in 10 ms ticks, so 5 s of a busy proxy keeps the rounding error under 0.5 %. */
  connDurationMs: number;
  latencyConnections: number;
  latencyRatePerS: number;
  latencyPayloadBytes: number;
  latencyWarmupMs: number;
  latencyDurationMs: number;
  bulkSeconds: number;
  /** The whole run is abandoned (children killed, temp files removed) after this long. */
  watchdogMs: number;
}

const FULL: Settings = {
  rssSettleMs: 2_000,
  idleConnections: 2_000,
  idleSettleMs: 1_000,
  connConcurrency: 32,
  connWarmupMs: 1_000,
  connDurationMs: 6_000,
  latencyConnections: 50,
  latencyRatePerS: 2_000,
  latencyPayloadBytes: 64,
  latencyWarmupMs: 500,
  latencyDurationMs: 5_000,
  bulkSeconds: 6,
  watchdogMs: 6 * 60_000,
};

const QUICK: Settings = {
  ...FULL,
  rssSettleMs: 1_000,
  idleConnections: 500,
  idleSettleMs: 500,
  connWarmupMs: 300,
  connDurationMs: 1_500,
  latencyWarmupMs: 200,
  latencyDurationMs: 1_500,
  bulkSeconds: 2,
  watchdogMs: 2 * 60_000,
};

// ------------------------------------------------------------------------------------------ results

interface IdleResult {
  opened: number;
  failed: number;
  bytesPerConn: number;
  fdsPerConn: number;
}

interface ConnRateResult {
  connsPerS: number;
  connsPerCpuS: number;
  cpu: PhaseCpu;
  errors: number;
}

interface BulkResult {
  gbitPerS: number;
  gbitPerCpuS: number;
  cpu: PhaseCpu;
}

interface ProxyResults {
  idleRss1?: number;
  idleRss2?: number;
  idle?: IdleResult;
  connrate?: ConnRateResult;
  latency?: LatencyResult & { cpu: PhaseCpu };
  bulk?: BulkResult;
  affinity?: string;
  complaints: string[];
}

type Results = Record<ProxyKind, ProxyResults>;

// ------------------------------------------------------------------------------------------ load children

interface LoadChild {
  child: ChildProcess;
  pid: number;
  port: number;
}

async function startLoadChild(env: ProxyEnv, role: 'echo' | 'gen'): Promise<LoadChild> {
  const child = env.procs.spawnPinned(GEN_CORE, env.nodeBin, [LOAD_SCRIPT, '--role', role], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = await waitReply(child, 'ready', 15_000);
  return { child, pid: child.pid ?? -1, port: ready.port };
}

function waitReply<T extends ChildReply['type']>(child: ChildProcess, type: T, timeoutMs: number): Promise<Extract<ChildReply, { type: T }>> {
  return waitMessage<ChildReply, T>(child, type, timeoutMs);
}

function ask<T extends ChildReply['type']>(load: LoadChild, command: GenCommand, type: T, timeoutMs: number): Promise<Extract<ChildReply, { type: T }>> {
  const reply = waitReply(load.child, type, timeoutMs);
  load.child.send(command);
  return reply;
}

// ------------------------------------------------------------------------------------------ phases

interface Bench {
  env: ProxyEnv;
  settings: Settings;
  phases: ReadonlySet<Phase>;
  echo: LoadChild;
  gen: LoadChild;
}

async function measureIdle(b: Bench, proxy: RunningProxy): Promise<IdleResult> {
  const rssBefore = procRssBytes(proxy.pid);
  const fdsBefore = procFdCount(proxy.pid);
  const opened = await ask(b.gen, { type: 'idle.open', port: proxy.port, count: b.settings.idleConnections, sources: SOURCES }, 'idle.opened', 60_000);
  if (opened.firstError !== null) process.stderr.write(`  idle: ${opened.failed} failed, first: ${opened.firstError}\n`);
  // Let the proxy finish its per-connection work (engine batches, buffers released) before reading RSS.
  await sleep(b.settings.idleSettleMs);
  const rssAfter = procRssBytes(proxy.pid);
  const fdsAfter = procFdCount(proxy.pid);
  await ask(b.gen, { type: 'idle.close' }, 'idle.closed', 30_000);
  const n = Math.max(1, opened.opened);
  return { opened: opened.opened, failed: opened.failed, bytesPerConn: (rssAfter - rssBefore) / n, fdsPerConn: (fdsAfter - fdsBefore) / n };
}

async function measureConnRate(b: Bench, proxy: RunningProxy): Promise<ConnRateResult> {
  const s = b.settings;
  b.gen.child.send({ type: 'connrate.start', port: proxy.port, concurrency: s.connConcurrency, sources: SOURCES } satisfies GenCommand);
  try {
    await sleep(s.connWarmupMs);
    const g0 = await ask(b.gen, { type: 'snapshot' }, 'snapshot', 10_000);
    const meter = new CpuMeter([proxy.pid], [b.gen.pid, b.echo.pid]);
    await sleep(s.connDurationMs);
    const g1 = await ask(b.gen, { type: 'snapshot' }, 'snapshot', 10_000);
    const cpu = meter.stop();
    const conns = g1.completed - g0.completed;
    return { connsPerS: conns / ((g1.atMs - g0.atMs) / 1000), connsPerCpuS: conns / cpu.proxyCpuS, cpu, errors: g1.errors - g0.errors };
  } finally {
    const stopped = await ask(b.gen, { type: 'connrate.stop' }, 'connrate.stopped', 15_000);
    if (stopped.firstError !== null) process.stderr.write(`  connrate: ${stopped.errors} failed connections, first: ${stopped.firstError}\n`);
  }
}

async function measureLatency(b: Bench, port: number, proxyPids: readonly number[]): Promise<LatencyResult & { cpu: PhaseCpu }> {
  const s = b.settings;
  const meter = new CpuMeter(proxyPids, [b.gen.pid, b.echo.pid]);
  const command: GenCommand = {
    type: 'latency',
    port,
    connections: s.latencyConnections,
    ratePerS: s.latencyRatePerS,
    payloadBytes: s.latencyPayloadBytes,
    warmupMs: s.latencyWarmupMs,
    durationMs: s.latencyDurationMs,
  };
  const { result } = await ask(b.gen, command, 'latency.result', s.latencyWarmupMs + s.latencyDurationMs + 20_000);
  return { ...result, cpu: meter.stop() };
}

interface IperfReport {
  error?: string;
  end?: {
    sum_received?: { bytes: number; seconds: number };
    /** Percent of one core over the test, client (host) and server (remote). */
    cpu_utilization_percent?: { host_total: number; remote_total: number };
  };
}

async function measureBulk(b: Bench, spec: ProxySpec, r: ProxyResults): Promise<BulkResult> {
  const iperfPort = await freePort();
  // The proxy starts (and is probed) while nothing listens on iperfPort: iperf3 -s -1 would take a probe
  // that reached it for its one test and exit.
  const proxy = await startProxy(b.env, spec, iperfPort);
  try {
    const server = b.env.procs.spawnPinned(GEN_CORE, 'iperf3', ['-s', '-1', '-B', '127.0.0.1', '-p', String(iperfPort)], { stdio: 'ignore' });
    try {
      await waitForListen(iperfPort, 5_000);
      const meter = new CpuMeter([proxy.pid], []);
      const run = await runPinned(
        b.env.procs,
        GEN_CORE,
        'iperf3',
        ['-c', '127.0.0.1', '-p', String(proxy.port), '-t', String(b.settings.bulkSeconds), '-J'],
        (b.settings.bulkSeconds + 20) * 1000,
      );
      const report = JSON.parse(run.stdout || '{}') as IperfReport;
      const received = report.end?.sum_received;
      if (report.error !== undefined || received === undefined) throw new Error(`iperf3 through ${spec.kind} failed: ${report.error ?? run.stderr}`);
      const util = report.end?.cpu_utilization_percent;
      const cpu = meter.stop(util === undefined ? 0 : ((util.host_total + util.remote_total) / 100) * received.seconds);
      const gbit = (received.bytes * 8) / 1e9;
      return { gbitPerS: gbit / received.seconds, gbitPerCpuS: gbit / cpu.proxyCpuS, cpu };
    } finally {
      await b.env.procs.stop(server);
    }
  } finally {
    r.complaints.push(...proxyComplaints(proxy.logFile));
    await proxy.stop();
  }
}

/** Idle RSS only: start, wait, read VmRSS, stop. */
async function idleRss(b: Bench, spec: ProxySpec, r: ProxyResults): Promise<number> {
  const proxy = await startProxy(b.env, spec, b.echo.port);
  try {
    await sleep(b.settings.rssSettleMs);
    return procRssBytes(proxy.pid);
  } finally {
    r.complaints.push(...proxyComplaints(proxy.logFile));
    await proxy.stop();
  }
}

async function measureProxy(b: Bench, kind: ProxyKind): Promise<ProxyResults> {
  const r: ProxyResults = { complaints: [] };
  const spec: ProxySpec = { kind, workerThreads: 1 };
  const { phases } = b;
  if (phases.has('rss') || phases.has('idle') || phases.has('connrate') || phases.has('latency')) {
    const proxy = await startProxy(b.env, spec, b.echo.port);
    r.affinity = procAffinity(proxy.pid);
    try {
      await sleep(b.settings.rssSettleMs);
      if (phases.has('rss')) r.idleRss1 = procRssBytes(proxy.pid);
      // Idle connections before the connection-rate phase, whose churn leaves garbage that would blur RSS.
      if (phases.has('idle')) r.idle = await measureIdle(b, proxy);
      if (phases.has('connrate')) r.connrate = await measureConnRate(b, proxy);
      if (phases.has('latency')) r.latency = await measureLatency(b, proxy.port, [proxy.pid]);
    } finally {
      r.complaints.push(...proxyComplaints(proxy.logFile));
      await proxy.stop();
    }
  }
  if (phases.has('bulk')) r.bulk = await measureBulk(b, spec, r);
  if (phases.has('rss')) {
    // The issue's RSS target is for 2 worker threads; HAProxy gets nbthread 2 for the same row.
    r.idleRss2 = await idleRss(b, { kind, workerThreads: 2 }, r);
  }
  return r;
}

// ------------------------------------------------------------------------------------------ report

type Target = { kind: 'ratio-min'; value: number } | { kind: 'max'; value: number };

interface Row {
  metric: string;
  values: Record<ProxyKind, number | null>;
  /** Ratio SecBeat/HAProxy; null when either is missing or the row is informational. */
  ratio: number | null;
  target: string;
  /** Judged on the SecBeat (auto forwarding) column; null = no target or not measured. */
  pass: boolean | null;
  digits: number;
}

interface RowOptions {
  digits: number;
  target?: Target;
  /** false for rows where SecBeat/HAProxy means nothing (differences, counts, load-side CPU). */
  ratio?: boolean;
}

function row(metric: string, results: Partial<Results>, pick: (r: ProxyResults, kind: ProxyKind) => number | undefined, options: RowOptions): Row {
  const values = Object.fromEntries(
    PROXIES.map((k) => {
      const r = results[k];
      return [k, r === undefined ? null : (pick(r, k) ?? null)];
    }),
  ) as Record<ProxyKind, number | null>;
  const sb = values.secbeat;
  const ha = values.haproxy;
  const ratio = options.ratio !== false && sb !== null && ha !== null && ha !== 0 ? sb / ha : null;
  const target = options.target;
  let pass: boolean | null = null;
  let targetText = '';
  if (target?.kind === 'ratio-min') {
    targetText = `≥ ${target.value}× HAProxy`;
    pass = ratio === null ? null : ratio >= target.value;
  } else if (target?.kind === 'max') {
    targetText = `≤ ${target.value.toLocaleString('en-US')}`;
    pass = sb === null ? null : sb <= target.value;
  }
  return { metric, values, ratio, target: targetText, pass, digits: options.digits };
}

const MB = 1024 * 1024;

function buildRows(results: Partial<Results>, direct: LatencyResult | null, s: Settings): Row[] {
  const rows: Row[] = [];
  const has = (pick: (r: ProxyResults) => unknown): boolean => Object.values(results).some((r) => r !== undefined && pick(r) !== undefined);
  const mb = (v: number | undefined): number | undefined => (v === undefined ? undefined : v / MB);
  if (has((r) => r.connrate)) {
    rows.push(row(`new conns/s (${s.connConcurrency} loops, 1 B echo)`, results, (r) => r.connrate?.connsPerS, { digits: 0 }));
    rows.push(row('conns per proxy CPU-second', results, (r) => r.connrate?.connsPerCpuS, { digits: 0, target: { kind: 'ratio-min', value: 0.5 } }));
    rows.push(row('  proxy CPU % (core 1)', results, (r) => r.connrate?.cpu.proxyPct, { digits: 0 }));
    rows.push(row('    of which kernel (sys) %', results, (r) => r.connrate?.cpu.proxySysPct, { digits: 0 }));
    rows.push(row('  generator + echo CPU % (core 0)', results, (r) => r.connrate?.cpu.loadPct, { digits: 0, ratio: false }));
  }
  if (has((r) => r.bulk)) {
    rows.push(row(`bulk Gbit/s (iperf3, 1 stream, ${s.bulkSeconds} s)`, results, (r) => r.bulk?.gbitPerS, { digits: 2 }));
    rows.push(row('Gbit per proxy CPU-second', results, (r) => r.bulk?.gbitPerCpuS, { digits: 2, target: { kind: 'ratio-min', value: 0.5 } }));
    rows.push(row('  proxy CPU % (core 1)', results, (r) => r.bulk?.cpu.proxyPct, { digits: 0 }));
    rows.push(row('    of which kernel (sys) %', results, (r) => r.bulk?.cpu.proxySysPct, { digits: 0 }));
    rows.push(row('  iperf3 client + server CPU % (core 0)', results, (r) => r.bulk?.cpu.loadPct, { digits: 0, ratio: false }));
  }
  if (has((r) => r.latency)) {
    const d = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '?' : v.toFixed(0));
    const at = `${s.latencyRatePerS}/s, ${s.latencyConnections} conns, ${s.latencyPayloadBytes} B`;
    rows.push(row(`latency p50 µs (${at}; direct ${d(direct?.p50Us)})`, results, (r) => r.latency?.p50Us, { digits: 0 }));
    rows.push(row(`latency p99 µs (direct ${d(direct?.p99Us)})`, results, (r) => r.latency?.p99Us, { digits: 0 }));
    if (direct !== null) {
      const added = (pick: (l: LatencyResult) => number) => (r: ProxyResults) => (r.latency === undefined ? undefined : pick(r.latency) - pick(direct));
      rows.push(row('  p50 added over direct µs', results, added((l) => l.p50Us), { digits: 0, ratio: false }));
      rows.push(row('  p99 added over direct µs', results, added((l) => l.p99Us), { digits: 0, ratio: false }));
    }
    rows.push(row('  proxy CPU % at that rate', results, (r) => r.latency?.cpu.proxyPct, { digits: 1 }));
    const slots = Math.round((s.latencyRatePerS * s.latencyDurationMs) / 1000);
    rows.push(row(`  late send slots (of ${slots.toLocaleString('en-US')})`, results, (r) => r.latency?.late, { digits: 0, ratio: false }));
  }
  if (has((r) => r.idleRss1)) {
    rows.push(row('idle RSS MB, 1 worker thread', results, (r) => mb(r.idleRss1), { digits: 1 }));
    rows.push(row('idle RSS MB, 2 worker threads', results, (r) => mb(r.idleRss2), { digits: 1, target: { kind: 'max', value: 100 } }));
  }
  if (has((r) => r.idle)) {
    const n = s.idleConnections.toLocaleString('en-US');
    rows.push(row(`bytes per idle proxied conn (N=${n})`, results, (r) => r.idle?.bytesPerConn, { digits: 0, target: { kind: 'max', value: 4096 } }));
    rows.push(row('  fds per idle proxied conn', results, (r) => r.idle?.fdsPerConn, { digits: 1 }));
  }
  return rows;
}

function formatValue(v: number | null, digits: number): string {
  if (v === null) return '—';
  if (!Number.isFinite(v)) return String(v);
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function renderTable(rows: readonly Row[]): string {
  const header = ['metric', ...PROXIES.map((k) => LABELS[k]), 'SecBeat/HAProxy', 'target', 'pass/fail'];
  const body = rows.map((r) => [
    r.metric,
    ...PROXIES.map((k) => formatValue(r.values[k], r.digits)),
    r.ratio === null ? '' : `${r.ratio.toFixed(2)}×`,
    r.target,
    r.pass === null ? '' : r.pass ? 'pass' : 'FAIL',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => (cells[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 || i >= header.length - 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}

function notesFor(results: Partial<Results>, s: Settings): string[] {
  const notes: string[] = [];
  const disturbed: string[] = [];
  const noise = (label: string, cpu: PhaseCpu | undefined): void => {
    const d = disturbance(label, cpu);
    if (d !== null) disturbed.push(d);
  };
  for (const kind of PROXIES) {
    const r = results[kind];
    if (r === undefined) continue;
    const name = LABELS[kind];
    const c = r.connrate;
    if (c !== undefined) {
      if (c.cpu.loadPct >= 90) {
        notes.push(
          `${name} conns: core 0 (generator + echo) was ${c.cpu.loadPct.toFixed(0)} % busy — the load side, not the proxy, ` +
            'set conns/s; compare conns per CPU-second.',
        );
      }
      if (c.cpu.proxyPct >= 95) notes.push(`${name} conns: the proxy used ${c.cpu.proxyPct.toFixed(0)} % of core 1 — proxy-bound.`);
      if (c.errors > 0) notes.push(`${name} conns: ${c.errors} connections failed.`);
    }
    noise(`${name} conns`, c?.cpu);
    noise(`${name} bulk`, r.bulk?.cpu);
    noise(`${name} latency`, r.latency?.cpu);
    if (r.idle !== undefined && r.idle.failed > 0) notes.push(`${name} idle: ${r.idle.failed} of ${s.idleConnections} connections failed to open.`);
    if (r.latency !== undefined && r.latency.errors > 0) notes.push(`${name} latency: ${r.latency.errors} socket errors.`);
    if (r.affinity !== undefined && r.affinity !== '1') notes.push(`${name} ran on cores ${r.affinity}, not core 1: pinning failed.`);
    const unique = [...new Set(r.complaints)];
    if (unique.length > 0) notes.push(`${name} logged ${unique.length} distinct warning/error line(s), first: ${unique[0]?.slice(0, 240)}`);
  }
  const noisy = disturbanceNote(disturbed);
  if (noisy !== null) notes.push(noisy);
  return notes;
}

// ------------------------------------------------------------------------------------------ main

const USAGE =
  `usage: node bench/tcp/run.ts [--quick] [--only ${PHASES.join(',')}]\n` +
  `         [--proxies ${PROXIES.join(',')}] [--secbeat-ref GIT_REF] [--cpu-prof DIR]\n` +
  '  --quick          short phases (smoke run; numbers are noisy)\n' +
  '  --secbeat-ref    run SecBeat from `git archive REF` instead of the working tree (A/B of src/ changes)\n' +
  '  --cpu-prof DIR   run SecBeat under node --cpu-prof; one .cpuprofile per thread lands in DIR\n';

async function main(): Promise<number> {
  const args = parseBenchArgs(process.argv.slice(2), PHASES, PROXIES, USAGE);
  if ('exitCode' in args) return args.exitCode;
  const { phases, kinds } = args;
  const settings = args.quick ? QUICK : FULL;
  const versions = {
    node: process.version,
    haproxy: toolVersion('haproxy', ['-v']),
    iperf3: toolVersion('iperf3', ['--version']),
    taskset: toolVersion('taskset', ['--version']),
  };
  if (!toolsPresent(versions, 'the bench needs haproxy, iperf3 and taskset (util-linux)')) return 1;

  const others = otherBenchProcesses();
  if (others.length > 0) process.stderr.write(`warning: other benchmark processes are running and will share the cores:\n  ${others.join('\n  ')}\n`);
  const startedAt = performance.now();
  const loadBefore = readFileSync('/proc/loadavg', 'utf8').trim();
  const results: Partial<Results> = {};
  let direct: LatencyResult | null = null;
  const secbeatRef = args.secbeatRef;
  {
    await using run = startRun({ tmpPrefix: 'secbeat-bench-', loadCore: GEN_CORE, watchdogMs: settings.watchdogMs });
    const { tmp, procs } = run;
    let secbeatRoot = ROOT;
    if (secbeatRef !== null) {
      mkdirSync(join(tmp, 'ref'));
      secbeatRoot = extractRef(ROOT, secbeatRef, join(tmp, 'ref'));
    }
    const cpuProf = args.cpuProf;
    mkdirSync(join(tmp, 'stripped'));
    const env: ProxyEnv = {
      root: ROOT,
      nodeBin: process.execPath,
      nodeFlags: cpuProf === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', resolve(cpuProf)],
      tmp,
      procs,
      secbeatLauncher: buildStrippedTree(ROOT, secbeatRoot, join(tmp, 'stripped')),
    };
    const echo = await startLoadChild(env, 'echo');
    const gen = await startLoadChild(env, 'gen');
    const b: Bench = { env, settings, phases, echo, gen };
    if (phases.has('latency')) {
      process.stderr.write('direct (no proxy): latency\n');
      direct = await measureLatency(b, echo.port, []);
    }
    for (const kind of kinds) {
      process.stderr.write(`${LABELS[kind]}: ${[...phases].join(', ')}\n`);
      results[kind] = await measureProxy(b, kind);
    }
  }

  const rows = buildRows(results, direct, settings);
  const notes = notesFor(results, settings);
  if (others.length > 0) notes.push(`other benchmark processes were running at the start: ${others.join('; ')}`);
  if (kinds.includes('haproxy') && haproxyMaxconn() < WANTED_MAXCONN) {
    notes.push(`HAProxy maxconn ${haproxyMaxconn()} instead of ${WANTED_MAXCONN}: the fd hard limit (ulimit -Hn) allows no more; no phase comes near it.`);
  }
  const meta = {
    quick: args.quick,
    phases: [...phases],
    secbeatSource: secbeatRef === null ? 'working tree' : `git archive ${secbeatRef}`,
    seconds: Math.round((performance.now() - startedAt) / 1000),
    versions,
    kernel: toolVersion('uname', ['-r']),
    loadavgBefore: loadBefore,
    loadavgAfter: readFileSync('/proc/loadavg', 'utf8').trim(),
    tcpTwReuse: sysctl('net.ipv4.tcp_tw_reuse'),
    ephemeralPorts: sysctl('net.ipv4.ip_local_port_range'),
    cpuTickMs: 10,
    haproxyMaxconn: haproxyMaxconn(),
    settings,
  };
  const title = `SecBeat TCP mode (${meta.secbeatSource}) vs HAProxy ${versions.haproxy?.split(' ')[2] ?? ''}`;
  process.stdout.write(`\n${title} — loopback, proxy on core 1, load on core 0${args.quick ? ' (--quick: short phases, noisy)' : ''}\n\n`);
  process.stdout.write(`${renderTable(rows)}\n`);
  if (notes.length > 0) process.stdout.write(`\n${notes.map((n) => `note: ${n}`).join('\n')}\n`);
  process.stdout.write(`\nload average before/after: ${meta.loadavgBefore} / ${meta.loadavgAfter}; ${meta.seconds} s\n`);
  const failed = rows.filter((r) => r.pass === false).map((r) => r.metric.trim());
  process.stdout.write(failed.length === 0 ? 'all measured targets met\n' : `targets missed: ${failed.join('; ')}\n`);
  process.stdout.write(`RESULT ${JSON.stringify({ meta, rows, notes, direct, results })}\n`);
  return 0;
}

process.exitCode = await main();
