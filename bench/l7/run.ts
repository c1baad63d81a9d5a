// L7-mode macro benchmark: SecBeat (`mode = "l7"`), nginx and HAProxy (`mode http`) one after another in one
// run, on loopback, in front of the same origin (nginx answering 1 KiB bodies). Each proxy is pinned alone to
// core 1 with one worker; the origin, the load tools (wrk, h2load) and the latency generator share core 0.
// Prints a ratio table against nginx with the issue's targets and, last, the same as one JSON line prefixed
// "RESULT ". docs/bench.md explains every row and the caveats.
//
//   node bench/l7/run.ts [--quick] [--only rss,idle,h1,tls,h2,latency] [--proxies secbeat,nginx,haproxy]
//                        [--secbeat-ref REF] [--cpu-prof DIR]
//
// Not part of the test suite. Helpers: ./proxies.ts (origin and proxies), ./clients.ts (wrk, h2load),
// ./load.ts (the latency and idle-connection child), ./meter.ts (CPU accounting), ./harness.ts (the run's
// temp dir and children), ./table.ts, ../tcp/proc.ts (processes, /proc).
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as h2Connect } from 'node:http2';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { otherBenchProcesses, procFdCount, procRssBytes, sleep, sysctl, waitMessage, type Core } from '../tcp/proc.ts';
import { haproxyMaxconn } from '../tcp/proxies.ts';
import { runH2load, runWrk, type ClosedLoopResult } from './clients.ts';
import { benchEnv, HTTP_BENCH_PROGRAMS, startRun, toolsPresent, toolVersion } from './harness.ts';
import { TLS_SERVER_NAME, type HttpLatencyResult, type L7GenCommand, type L7GenReply } from './load.ts';
import {
  CpuMeter,
  disturbance,
  disturbanceNote,
  measureClosedLoop,
  throughputNotes,
  waitForQuiet,
  type PhaseCpu,
  type QuietBudget,
  type ThroughputResult,
} from './meter.ts';
import {
  BODY_BYTES,
  recordNotes,
  startOrigin,
  startProxy,
  withServer,
  type L7Env,
  type L7ProxyKind,
  type ProxyRecord,
  type RunningServer,
} from './proxies.ts';
import { formatValue, ratioText, renderGrid } from './table.ts';
import { benchUsage, parseBenchArgs } from '../cli.ts';

const PHASES = ['rss', 'idle', 'h1', 'tls', 'h2', 'latency'] as const;
type Phase = (typeof PHASES)[number];
const PROXIES = ['secbeat', 'nginx', 'haproxy'] as const satisfies readonly L7ProxyKind[];
const LABELS: Record<L7ProxyKind, string> = { secbeat: 'SecBeat', nginx: 'nginx', haproxy: 'HAProxy' };

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const LOAD_SCRIPT = join(HERE, 'load.ts');
const LOAD_CORE: Core = 0;

interface Settings {
  /** Proxy started, no connection yet: time for startup garbage to be collected before RSS is read. */
  rssSettleMs: number;
  idleConnections: number;
  idleSettleMs: number;
  /** A short wrk run before the idle phase, so first-request costs (JIT, pools) are not charged to idle connections. */
  idleWarmupS: number;
  /** wrk connections, HTTP/1.1 plain and TLS. */
  h1Connections: number;
  /** h2load connections × streams each: the same 64 requests in flight as h1. */
  h2Clients: number;
  h2Streams: number;
  /** Not measured: the same tool against the same proxy first, to warm the JIT, the pools and the caches. */
  throughputWarmupS: number;
  /** ≥ 5 s: CPU times come in 10 ms ticks. */
  throughputS: number;
  latencyConnections: number;
  latencyRatePerS: number;
  latencyWarmupMs: number;
  latencyDurationMs: number;
  /** Before each measured phase, wait up to this long for other processes to leave the cores (see waitForQuiet). */
  quietWaitMs: number;
  /** The whole run waits at most this long in total for quiet; then it measures whatever the machine does. */
  quietBudgetMs: number;
  /** The whole run is abandoned (children killed, temp files removed) after this long. */
  watchdogMs: number;
}

const FULL: Settings = {
  rssSettleMs: 2_000,
  idleConnections: 1_000,
  idleSettleMs: 1_000,
  idleWarmupS: 1,
  h1Connections: 64,
  h2Clients: 8,
  h2Streams: 8,
  throughputWarmupS: 2,
  throughputS: 8,
  latencyConnections: 50,
  latencyRatePerS: 2_000,
  latencyWarmupMs: 1_000,
  latencyDurationMs: 10_000,
  quietWaitMs: 30_000,
  quietBudgetMs: 180_000,
  watchdogMs: 12 * 60_000,
};

const QUICK: Settings = {
  ...FULL,
  rssSettleMs: 1_000,
  idleConnections: 300,
  idleSettleMs: 500,
  // Not shorter: a SecBeat started a second ago is still compiling its hot path.
  throughputWarmupS: 2,
  throughputS: 2,
  latencyWarmupMs: 300,
  latencyDurationMs: 1_500,
  quietWaitMs: 3_000,
  quietBudgetMs: 20_000,
  watchdogMs: 5 * 60_000,
};

function rssOf(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + procRssBytes(pid), 0);
}

function fdsOf(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + procFdCount(pid), 0);
}

// ------------------------------------------------------------------------------------------ results

type Protocol = 'h1' | 'tls' | 'h2';

interface IdleResult {
  opened: number;
  failed: number;
  bytesPerConn: number;
  fdsPerConn: number;
}

interface ProbeResult {
  tlsVersion: string;
  cipher: string;
  h2: boolean;
  /** The handshake of a client that sends no SNI (one connecting by IP address) succeeded; null for the origin. */
  noSni: string | null;
}

interface ProxyResults extends ProxyRecord {
  idleRss?: number;
  idle?: IdleResult;
  idleTls?: IdleResult;
  h1?: ThroughputResult;
  tls?: ThroughputResult;
  h2?: ThroughputResult;
  latency?: HttpLatencyResult & { cpu: PhaseCpu };
  /** The same latency run straight to the origin, just before the proxied one: what "added" is measured against. */
  latencyDirect?: HttpLatencyResult & { cpu: PhaseCpu };
  probe?: ProbeResult;
}

type Results = Partial<Record<L7ProxyKind, ProxyResults>>;

interface Direct {
  h1?: ThroughputResult;
}

// ------------------------------------------------------------------------------------------ phases

interface Gen {
  child: ChildProcess;
  pid: number;
}

interface Bench {
  env: L7Env;
  settings: Settings;
  phases: ReadonlySet<Phase>;
  origin: RunningServer;
  gen: Gen;
  /** The origin's processes and the latency child: the load side's long-lived processes. */
  loadPids: readonly number[];
  quiet: QuietBudget;
}

function ask<T extends L7GenReply['type']>(gen: Gen, command: L7GenCommand, type: T, timeoutMs: number): Promise<Extract<L7GenReply, { type: T }>> {
  const reply = waitMessage<L7GenReply, T>(gen.child, type, timeoutMs);
  gen.child.send(command);
  return reply;
}

/** TLS URLs name the host, so the tools send SNI (wrk connects to the first address that accepts; h2load is told). */
function urlOf(server: RunningServer, protocol: Protocol): string {
  return protocol === 'h1' ? `http://127.0.0.1:${server.port}/` : `https://${TLS_SERVER_NAME}:${server.tlsPort}/`;
}

/** One closed-loop run of the protocol's tool; `seconds` of load. */
function runTool(b: Bench, server: RunningServer, protocol: Protocol, seconds: number): Promise<ClosedLoopResult> {
  const s = b.settings;
  const url = urlOf(server, protocol);
  return protocol === 'h2'
    ? runH2load(b.env.procs, LOAD_CORE, { url, connectTo: `127.0.0.1:${server.tlsPort}`, clients: s.h2Clients, streams: s.h2Streams, seconds })
    : runWrk(b.env.procs, LOAD_CORE, { url, connections: s.h1Connections, seconds });
}

function measureThroughput(b: Bench, server: RunningServer, proxyPids: readonly number[], protocol: Protocol): Promise<ThroughputResult> {
  return measureClosedLoop({
    quiet: b.quiet,
    proxyPids,
    loadPids: b.loadPids,
    warmupS: b.settings.throughputWarmupS,
    seconds: b.settings.throughputS,
    run: (seconds) => runTool(b, server, protocol, seconds),
  });
}

async function measureLatency(b: Bench, port: number, proxyPids: readonly number[]): Promise<HttpLatencyResult & { cpu: PhaseCpu }> {
  const s = b.settings;
  await waitForQuiet(b.quiet, proxyPids, b.loadPids);
  const meter = new CpuMeter(proxyPids, b.loadPids);
  const command: L7GenCommand = {
    type: 'latency',
    port,
    connections: s.latencyConnections,
    ratePerS: s.latencyRatePerS,
    warmupMs: s.latencyWarmupMs,
    durationMs: s.latencyDurationMs,
  };
  const { result } = await ask(b.gen, command, 'latency.result', s.latencyWarmupMs + s.latencyDurationMs + 20_000);
  return { ...result, cpu: meter.stop() };
}

/** RSS and fds before and after `idleConnections` keep-alive connections, each after one request, are opened and left idle. */
async function measureIdle(b: Bench, proxy: RunningServer, tls: boolean): Promise<IdleResult> {
  const s = b.settings;
  await runWrk(b.env.procs, LOAD_CORE, { url: urlOf(proxy, tls ? 'tls' : 'h1'), connections: 8, seconds: s.idleWarmupS });
  await sleep(s.idleSettleMs);
  await waitForQuiet(b.quiet, proxy.pids, b.loadPids);
  const rssBefore = rssOf(proxy.pids);
  const fdsBefore = fdsOf(proxy.pids);
  const port = tls ? proxy.tlsPort : proxy.port;
  const opened = await ask(b.gen, { type: 'idle.open', port, tls, count: s.idleConnections }, 'idle.opened', 90_000);
  if (opened.firstError !== null) process.stderr.write(`  idle: ${opened.failed} failed, first: ${opened.firstError}\n`);
  // Let the proxy finish its per-connection work (buffers released, timers armed) before reading RSS.
  await sleep(s.idleSettleMs);
  const rssAfter = rssOf(proxy.pids);
  const fdsAfter = fdsOf(proxy.pids);
  await ask(b.gen, { type: 'idle.close' }, 'idle.closed', 30_000);
  const n = Math.max(1, opened.opened);
  return { opened: opened.opened, failed: opened.failed, bytesPerConn: (rssAfter - rssBefore) / n, fdsPerConn: (fdsAfter - fdsBefore) / n };
}

function collect(res: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.once('end', () => resolvePromise(Buffer.concat(chunks)));
    res.once('error', reject);
  });
}

function checkAnswer(what: string, status: number | undefined, body: Buffer): void {
  if (status !== 200 || body.length !== BODY_BYTES) throw new Error(`${what}: expected 200 with ${BODY_BYTES} bytes, got ${status} with ${body.length}`);
}

/**
 * One request per listener and protocol before anything is measured: the proxy really forwards to the origin
 * (200, 1 KiB), TLS works with the test certificate, and ALPN gives h2. Also records the TLS version and cipher
 * negotiated, which the report names (they must be the same for all three).
 */
async function probe(server: RunningServer): Promise<ProbeResult> {
  const h1 = await new Promise<{ status: number | undefined; body: Buffer }>((resolvePromise, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, path: '/', agent: false }, (res) => {
      collect(res).then((body) => resolvePromise({ status: res.statusCode, body }), reject);
    });
    req.once('error', reject);
    req.end();
  });
  checkAnswer(`${server.kind} http/1.1`, h1.status, h1.body);
  const tls = await new Promise<{ status: number | undefined; body: Buffer; version: string; cipher: string }>((resolvePromise, reject) => {
    // https.request hands its options to tls.connect, ALPNProtocols included (its type does not list it).
    const options: RequestOptions & { ALPNProtocols: string[] } = {
      host: '127.0.0.1',
      port: server.tlsPort,
      servername: TLS_SERVER_NAME,
      path: '/',
      agent: false,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    };
    const req = httpsRequest(
      options,
      (res) => {
        const socket = res.socket as TLSSocket;
        const version = socket.getProtocol() ?? '?';
        const cipher = socket.getCipher().name;
        collect(res).then((body) => resolvePromise({ status: res.statusCode, body, version, cipher }), reject);
      },
    );
    req.once('error', reject);
    req.end();
  });
  checkAnswer(`${server.kind} https/1.1`, tls.status, tls.body);
  const h2 = await new Promise<{ status: number | undefined; body: Buffer; alpn: string | false | undefined }>((resolvePromise, reject) => {
    const session = h2Connect(`https://127.0.0.1:${server.tlsPort}`, { servername: TLS_SERVER_NAME, rejectUnauthorized: false });
    session.once('error', reject);
    const stream = session.request({ ':path': '/' });
    let status: number | undefined;
    stream.once('response', (headers) => (status = Number(headers[':status'])));
    collect(stream).then(
      (body) => {
        const alpn = session.alpnProtocol;
        session.close();
        resolvePromise({ status, body, alpn });
      },
      (err: unknown) => {
        session.destroy();
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
    stream.end();
  });
  checkAnswer(`${server.kind} h2`, h2.status, h2.body);
  return { tlsVersion: tls.version, cipher: tls.cipher, h2: h2.alpn === 'h2', noSni: await handshakeWithoutSni(server.tlsPort) };
}

/** A TLS handshake without SNI, as a client connecting by IP address makes: 'ok', or the error it ended with. */
function handshakeWithoutSni(port: number): Promise<string> {
  return new Promise((resolvePromise) => {
    // Node sends no SNI when the host is an IP address and no servername is given.
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    const timer = setTimeout(() => finish('timeout'), 5_000);
    const finish = (outcome: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolvePromise(outcome);
    };
    socket.once('secureConnect', () => finish('ok'));
    socket.once('error', (err: Error & { code?: string }) => finish(err.code ?? err.message));
  });
}

/** One fresh instance of a proxy for `use`: started, stopped, with its affinity, warnings and way of exiting recorded in `r`. */
function withProxy(b: Bench, kind: L7ProxyKind, r: ProxyResults, use: (proxy: RunningServer) => Promise<void>): Promise<void> {
  return withServer(startProxy(b.env, kind, b.origin.port), r, use);
}

async function probeOnce(r: ProxyResults, proxy: RunningServer): Promise<void> {
  r.probe ??= await probe(proxy);
}

/**
 * Phase by phase, the proxies one after another, each in a fresh process of its own on core 1 (never two
 * proxies there at once): the three columns of a row are measured within a minute of each other, because the
 * speed of a shared VM drifts over minutes (the same binary, direct to the origin, did 40k and 54k req/s in
 * two runs an hour apart) and a ratio of measurements far apart in time would carry that drift.
 */
async function measureAll(b: Bench, kinds: readonly L7ProxyKind[], results: Results, direct: Direct): Promise<void> {
  const { phases, settings: s } = b;
  const rs = {} as Record<L7ProxyKind, ProxyResults>;
  for (const kind of kinds) rs[kind] = results[kind] = { stops: [], complaints: [] };
  const log = (what: string): void => void process.stderr.write(`${what}\n`);
  if (phases.has('rss') || phases.has('idle')) {
    for (const kind of kinds) {
      log(`${LABELS[kind]}: idle RSS, idle HTTP/1.1 connections`);
      await withProxy(b, kind, rs[kind], async (proxy) => {
        await sleep(s.rssSettleMs);
        // Before the probe: idle RSS is of a proxy that has served nothing.
        if (phases.has('rss')) rs[kind].idleRss = rssOf(proxy.pids);
        await probeOnce(rs[kind], proxy);
        if (phases.has('idle')) rs[kind].idle = await measureIdle(b, proxy, false);
      });
    }
  }
  if (phases.has('idle')) {
    for (const kind of kinds) {
      log(`${LABELS[kind]}: idle TLS connections`);
      // A fresh process: memory the plain connections freed would otherwise be reused and hide the cost.
      await withProxy(b, kind, rs[kind], async (proxy) => {
        await sleep(s.rssSettleMs);
        rs[kind].idleTls = await measureIdle(b, proxy, true);
      });
    }
  }
  for (const protocol of ['h1', 'tls', 'h2'] as const) {
    if (!phases.has(protocol)) continue;
    if (protocol === 'h1') {
      log('direct (no proxy): HTTP/1.1');
      direct.h1 = await measureThroughput(b, b.origin, [], 'h1');
    }
    for (const kind of kinds) {
      log(`${LABELS[kind]}: ${PROTOCOL_LABELS[protocol]}`);
      await withProxy(b, kind, rs[kind], async (proxy) => {
        await probeOnce(rs[kind], proxy);
        rs[kind][protocol] = await measureThroughput(b, proxy, proxy.pids, protocol);
      });
    }
  }
  if (phases.has('latency')) {
    for (const kind of kinds) {
      log(`${LABELS[kind]}: latency at ${s.latencyRatePerS}/s`);
      await withProxy(b, kind, rs[kind], async (proxy) => {
        await probeOnce(rs[kind], proxy);
        // A fresh process has cold JIT and empty pools: a short closed-loop run first, as before the other phases.
        await runTool(b, proxy, 'h1', s.throughputWarmupS);
        // Direct and proxied back to back, so that both see the same machine.
        rs[kind].latencyDirect = await measureLatency(b, b.origin.port, []);
        rs[kind].latency = await measureLatency(b, proxy.port, proxy.pids);
      });
    }
  }
}

// ------------------------------------------------------------------------------------------ report

type Target = { kind: 'ratio-min'; value: number } | { kind: 'max'; value: number };

interface Row {
  metric: string;
  values: Record<L7ProxyKind, number | null>;
  /** SecBeat / nginx and HAProxy / nginx; null when missing or meaningless for the row. */
  ratio: number | null;
  haproxyRatio: number | null;
  target: string;
  /** Judged on the SecBeat column; null = no target or not measured. */
  pass: boolean | null;
  digits: number;
}

interface RowOptions {
  digits: number;
  target?: Target;
  /** false for rows where a ratio means nothing (differences, counts, load-side CPU). */
  ratio?: boolean;
}

function row(metric: string, results: Results, pick: (r: ProxyResults) => number | undefined, options: RowOptions): Row {
  const values = Object.fromEntries(
    PROXIES.map((k) => {
      const r = results[k];
      return [k, r === undefined ? null : (pick(r) ?? null)];
    }),
  ) as Record<L7ProxyKind, number | null>;
  const over = (a: number | null, b: number | null): number | null =>
    options.ratio !== false && a !== null && b !== null && b !== 0 && Number.isFinite(a) && Number.isFinite(b) ? a / b : null;
  const ratio = over(values.secbeat, values.nginx);
  const target = options.target;
  // NaN: the phase ran but produced nothing to measure (no answers), which fails any target.
  const broken = values.secbeat !== null && Number.isNaN(values.secbeat);
  let pass: boolean | null = null;
  let targetText = '';
  if (target?.kind === 'ratio-min') {
    targetText = `≥ ${target.value}× nginx`;
    pass = broken ? false : ratio === null ? null : ratio >= target.value;
  } else if (target?.kind === 'max') {
    targetText = `≤ ${target.value.toLocaleString('en-US')}`;
    pass = broken ? false : values.secbeat === null ? null : values.secbeat <= target.value;
  }
  return { metric, values, ratio, haproxyRatio: over(values.haproxy, values.nginx), target: targetText, pass, digits: options.digits };
}

const MB = 1024 * 1024;
const PROTOCOL_LABELS: Record<Protocol, string> = { h1: 'HTTP/1.1', tls: 'HTTP/1.1 over TLS', h2: 'HTTP/2 over TLS' };
/** The issue's targets: requests per proxy CPU-second against nginx's. */
const PER_CPU_TARGETS: Record<Protocol, number> = { h1: 0.35, tls: 0.35, h2: 0.25 };
/** Overhead at 2,000 req/s over HTTP/1.1, µs added to direct-to-origin. */
const P50_ADDED_MAX_US = 500;
const P99_ADDED_MAX_US = 2_000;
/** Per idle keep-alive connection: 8 KB. */
const IDLE_CONN_MAX_BYTES = 8 * 1024;

function buildRows(results: Results, direct: Direct, s: Settings): Row[] {
  const rows: Row[] = [];
  const has = (pick: (r: ProxyResults) => unknown): boolean => Object.values(results).some((r) => r !== undefined && pick(r) !== undefined);
  const d0 = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '?' : Math.round(v).toLocaleString('en-US'));
  for (const protocol of ['h1', 'tls', 'h2'] as const) {
    if (!has((r) => r[protocol])) continue;
    const load = protocol === 'h2' ? `h2load, ${s.h2Clients} conns × ${s.h2Streams} streams` : `wrk, ${s.h1Connections} conns`;
    const directText = protocol === 'h1' && direct.h1 !== undefined ? `; direct ${d0(direct.h1.reqPerS)}` : '';
    rows.push(row(`${PROTOCOL_LABELS[protocol]} req/s (${load}${directText})`, results, (r) => r[protocol]?.reqPerS, { digits: 0 }));
    rows.push(
      row('  requests per proxy CPU-second', results, (r) => r[protocol]?.reqPerCpuS, {
        digits: 0,
        target: { kind: 'ratio-min', value: PER_CPU_TARGETS[protocol] },
      }),
    );
    rows.push(row('  proxy CPU % (core 1)', results, (r) => r[protocol]?.cpu.proxyPct, { digits: 0 }));
    rows.push(row('    of which kernel (sys) %', results, (r) => r[protocol]?.cpu.proxySysPct, { digits: 0 }));
    rows.push(row('  core 0 busy % (load + origin)', results, (r) => r[protocol]?.cpu.core0BusyPct, { digits: 0, ratio: false }));
  }
  if (has((r) => r.latency)) {
    // Percentiles of a run with no answers cross the IPC channel as null: NaN here, shown as "none".
    const pct = (l: HttpLatencyResult | undefined, p: 'p50Us' | 'p99Us'): number | undefined =>
      l === undefined ? undefined : l.samples > 0 ? l[p] : Number.NaN;
    const at = `${s.latencyRatePerS}/s, ${s.latencyConnections} conns, HTTP/1.1`;
    rows.push(row(`latency p50 µs (${at})`, results, (r) => pct(r.latency, 'p50Us'), { digits: 0 }));
    rows.push(row('latency p99 µs', results, (r) => pct(r.latency, 'p99Us'), { digits: 0 }));
    rows.push(row('  direct to origin p50 µs (run just before)', results, (r) => pct(r.latencyDirect, 'p50Us'), { digits: 0, ratio: false }));
    rows.push(row('  direct to origin p99 µs', results, (r) => pct(r.latencyDirect, 'p99Us'), { digits: 0, ratio: false }));
    const added = (p: 'p50Us' | 'p99Us') => (r: ProxyResults) => {
      const proxied = pct(r.latency, p);
      const direct = pct(r.latencyDirect, p);
      return proxied === undefined || direct === undefined ? undefined : proxied - direct;
    };
    rows.push(row('  p50 added over direct µs', results, added('p50Us'), { digits: 0, ratio: false, target: { kind: 'max', value: P50_ADDED_MAX_US } }));
    rows.push(row('  p99 added over direct µs', results, added('p99Us'), { digits: 0, ratio: false, target: { kind: 'max', value: P99_ADDED_MAX_US } }));
    rows.push(row('  proxy CPU % at that rate', results, (r) => r.latency?.cpu.proxyPct, { digits: 1 }));
    const slots = Math.round((s.latencyRatePerS * s.latencyDurationMs) / 1000);
    rows.push(row(`  late send slots (of ${slots.toLocaleString('en-US')})`, results, (r) => r.latency?.late, { digits: 0, ratio: false }));
  }
  if (has((r) => r.idleRss)) {
    rows.push(row('idle RSS MB (1 worker)', results, (r) => (r.idleRss === undefined ? undefined : r.idleRss / MB), { digits: 1 }));
  }
  if (has((r) => r.idle)) {
    const n = s.idleConnections.toLocaleString('en-US');
    rows.push(
      row(`bytes per idle keep-alive conn, HTTP/1.1 (N=${n})`, results, (r) => r.idle?.bytesPerConn, {
        digits: 0,
        target: { kind: 'max', value: IDLE_CONN_MAX_BYTES },
      }),
    );
    rows.push(row('  fds per idle conn', results, (r) => r.idle?.fdsPerConn, { digits: 1 }));
    rows.push(row(`bytes per idle keep-alive conn, TLS (N=${n})`, results, (r) => r.idleTls?.bytesPerConn, { digits: 0 }));
    rows.push(row('  fds per idle conn', results, (r) => r.idleTls?.fdsPerConn, { digits: 1 }));
  }
  return rows;
}

function renderTable(rows: readonly Row[]): string {
  const header = ['metric', ...PROXIES.map((k) => LABELS[k]), 'SecBeat/nginx', 'HAProxy/nginx', 'target', 'pass/fail'];
  const body = rows.map((r) => [
    r.metric,
    ...PROXIES.map((k) => formatValue(r.values[k], r.digits)),
    ratioText(r.ratio, r.target.endsWith('nginx')),
    ratioText(r.haproxyRatio, r.target.endsWith('nginx')),
    r.target,
    r.pass === null ? '' : r.pass ? 'pass' : 'FAIL',
  ]);
  return renderGrid(header, body, (i) => i === 0 || i >= header.length - 2);
}

function notesFor(results: Results, direct: Direct, s: Settings): string[] {
  const notes: string[] = [];
  const disturbed: string[] = [];
  const noise = (label: string, cpu: PhaseCpu | undefined): void => {
    const d = disturbance(label, cpu);
    if (d !== null) disturbed.push(d);
  };
  if (direct.h1 !== undefined) {
    notes.push(
      `direct to the origin (wrk, ${s.h1Connections} conns): ${Math.round(direct.h1.reqPerS).toLocaleString('en-US')} req/s with core 0 ` +
        `${direct.h1.cpu.core0BusyPct.toFixed(0)} % busy: the most the load side can drive with no proxy in between.`,
    );
  }
  for (const kind of PROXIES) {
    const r = results[kind];
    if (r === undefined) continue;
    const name = LABELS[kind];
    for (const protocol of ['h1', 'tls', 'h2'] as const) {
      const t = r[protocol];
      if (t === undefined) continue;
      const what = `${name} ${PROTOCOL_LABELS[protocol]}`;
      notes.push(...throughputNotes(what, t));
      if (protocol === 'h2' && t.client.protocol !== 'h2') notes.push(`${what}: h2load negotiated ${t.client.protocol ?? '?'}, not h2.`);
      noise(`${name} ${protocol}`, t.cpu);
    }
    noise(`${name} latency (direct)`, r.latencyDirect?.cpu);
    noise(`${name} latency`, r.latency?.cpu);
    if (r.idle !== undefined && r.idle.failed > 0) notes.push(`${name} idle: ${r.idle.failed} of ${s.idleConnections} connections failed to open.`);
    if (r.idleTls !== undefined && r.idleTls.failed > 0) {
      notes.push(`${name} idle TLS: ${r.idleTls.failed} of ${s.idleConnections} connections failed to open.`);
    }
    if (r.latency !== undefined && r.latency.samples === 0) notes.push(`${name} latency: no answer at all (${r.latency.late} late send slots).`);
    if (r.latency !== undefined && r.latency.errors + r.latency.non2xx > 0) {
      notes.push(`${name} latency: ${r.latency.errors} socket errors, ${r.latency.non2xx} non-2xx answers.`);
    }
    if (r.probe !== undefined && !r.probe.h2) notes.push(`${name}: ALPN did not give h2.`);
    notes.push(...recordNotes(name, r));
    if (r.probe !== undefined && r.probe.noSni !== 'ok') {
      notes.push(
        `${name}: a TLS client that sends no SNI (one connecting by IP address) fails the handshake (${r.probe.noSni}); ` +
          `every TLS phase here sends SNI "${TLS_SERVER_NAME}".`,
      );
    }
  }
  const tlsSeen = new Set(Object.values(results).flatMap((r) => (r?.probe === undefined ? [] : [`${r.probe.tlsVersion} ${r.probe.cipher}`])));
  if (tlsSeen.size > 0) notes.push(`TLS negotiated: ${[...tlsSeen].join('; ')} (ECDSA P-256 test certificate).`);
  const noisy = disturbanceNote(disturbed);
  if (noisy !== null) notes.push(noisy);
  return notes;
}

// ------------------------------------------------------------------------------------------ main

const USAGE = benchUsage('bench/l7/run.ts', PHASES, PROXIES);


async function main(): Promise<number> {
  const args = parseBenchArgs(process.argv.slice(2), PHASES, PROXIES, USAGE);
  if ('exitCode' in args) return args.exitCode;
  const { phases, kinds } = args;
  const settings = args.quick ? QUICK : FULL;
  const versions = {
    node: process.version,
    nginx: toolVersion('nginx', ['-v']),
    haproxy: toolVersion('haproxy', ['-v']),
    wrk: toolVersion('wrk', ['-v']),
    h2load: toolVersion('h2load', ['--version']),
    openssl: toolVersion('openssl', ['version']),
    taskset: toolVersion('taskset', ['--version']),
  };
  if (!toolsPresent(versions, 'the bench needs nginx, haproxy, wrk, h2load (nghttp2-client), openssl and taskset; scripts/setup.sh installs them')) {
    return 1;
  }

  const others = otherBenchProcesses(HTTP_BENCH_PROGRAMS);
  if (others.length > 0) process.stderr.write(`warning: other benchmark processes are running and will share the cores:\n  ${others.join('\n  ')}\n`);
  const startedAt = performance.now();
  const loadBefore = readFileSync('/proc/loadavg', 'utf8').trim();
  const results: Results = {};
  const direct: Direct = {};
  const quiet: QuietBudget = { waitMs: settings.quietWaitMs, budgetMs: settings.quietBudgetMs, waitedMs: 0 };
  const secbeatRef = args.secbeatRef;
  {
    await using run = startRun({ tmpPrefix: 'secbeat-bench-l7-', loadCore: LOAD_CORE, watchdogMs: settings.watchdogMs });
    const env = benchEnv(run, { root: ROOT, secbeatRef, cpuProf: args.cpuProf, secbeat: kinds.includes('secbeat') });
    const origin = await startOrigin(env, LOAD_CORE);
    const genChild = run.procs.spawnPinned(LOAD_CORE, env.nodeBin, [LOAD_SCRIPT, '--role', 'gen'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await waitMessage<L7GenReply, 'ready'>(genChild, 'ready', 15_000);
    const gen: Gen = { child: genChild, pid: genChild.pid ?? -1 };
    await measureAll({ env, settings, phases, origin, gen, loadPids: [...origin.pids, gen.pid], quiet }, kinds, results, direct);
  }

  const rows = buildRows(results, direct, settings);
  const notes = notesFor(results, direct, settings);
  if (others.length > 0) notes.push(`other benchmark processes were running at the start: ${others.join('; ')}`);
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
    cpuTickMs: 10,
    quietWaitedS: Math.round(quiet.waitedMs / 1000),
    maxconn: haproxyMaxconn(),
    bodyBytes: BODY_BYTES,
    settings,
  };
  const nginxVersion = versions.nginx?.split('/')[1]?.trim() ?? '';
  const haproxyVersion = versions.haproxy?.split(' ')[2] ?? '';
  const title = `SecBeat L7 mode (${meta.secbeatSource}) vs nginx ${nginxVersion} and HAProxy ${haproxyVersion}`;
  const quick = args.quick ? ' (--quick: short phases, noisy)' : '';
  process.stdout.write(`\n${title} — loopback, 1 KiB responses, proxy on core 1, origin and load on core 0${quick}\n\n`);
  process.stdout.write(`${renderTable(rows)}\n`);
  if (notes.length > 0) process.stdout.write(`\n${notes.map((n) => `note: ${n}`).join('\n')}\n`);
  process.stdout.write(
    `\nload average before/after: ${meta.loadavgBefore} / ${meta.loadavgAfter}; ` +
      `${meta.seconds} s, of which ${meta.quietWaitedS} s waiting for other processes to finish\n`,
  );
  const failed = rows.filter((r) => r.pass === false).map((r) => r.metric.trim());
  process.stdout.write(failed.length === 0 ? 'all measured targets met\n' : `targets missed: ${failed.join('; ')}\n`);
  process.stdout.write(`RESULT ${JSON.stringify({ meta, rows, notes, direct, results })}\n`);
  return 0;
}

process.exitCode = await main();
