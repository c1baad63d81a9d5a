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
// ./load.ts (the latency and idle-connection child), ../tcp/proc.ts (processes, /proc).
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as h2Connect } from 'node:http2';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import {
  coreTimes,
  otherBenchProcesses,
  procAffinity,
  procCpuS,
  procCpuSplit,
  procFdCount,
  procRssBytes,
  ProcessRegistry,
  sleep,
  sysctl,
  waitMessage,
  type Core,
  type CoreTimes,
} from '../tcp/proc.ts';
import { buildStrippedTree, extractRef, haproxyMaxconn, proxyComplaints } from '../tcp/proxies.ts';
import { runH2load, runWrk, type ClosedLoopResult } from './clients.ts';
import { TLS_SERVER_NAME, type HttpLatencyResult, type L7GenCommand, type L7GenReply } from './load.ts';
import { BODY_BYTES, makeCertificate, startOrigin, startProxy, type L7Env, type L7ProxyKind, type RunningServer, type StopReport } from './proxies.ts';
import { parseBenchArgs } from '../cli.ts';

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

// ------------------------------------------------------------------------------------------ CPU accounting

/** Where the CPU went during one phase, in % of one core over the phase's wall time. */
interface PhaseCpu {
  wallS: number;
  proxyCpuS: number;
  proxyPct: number;
  /** The part of proxyPct spent in the kernel. */
  proxySysPct: number;
  /** Origin, load tool and latency child: everything the bench runs on core 0 but itself. */
  loadPct: number;
  /** Core 0 busy (process and irq time, whoever ran): ≥ 90 % means the load side set the rate. */
  core0BusyPct: number;
  /** irq + softirq time of the proxy's core: loopback packet processing charged to no process. */
  core1IrqPct: number;
  /** Processes outside the bench (other people's builds and tests on a shared box), both cores: noise. */
  foreignPct: number;
  /** The part of it on core 1, the proxy's, where it also takes the proxy's place: noise. */
  core1ForeignPct: number;
  /** Hypervisor steal, both cores: noise. */
  stealPct: number;
}

function cpuOf(pids: readonly number[]): { userS: number; systemS: number } {
  let userS = 0;
  let systemS = 0;
  for (const pid of pids) {
    const t = procCpuSplit(pid);
    userS += t.userS;
    systemS += t.systemS;
  }
  return { userS, systemS };
}

/** Samples the proxy's processes, the load processes and the machine's cores at the edges of a phase. */
class CpuMeter {
  readonly #pids: readonly number[];
  readonly #loadPids: readonly number[];
  readonly #t0 = performance.now();
  readonly #cores0 = coreTimes();
  readonly #proxy0: { userS: number; systemS: number };
  readonly #load0: number;
  readonly #self0 = procCpuS(process.pid);

  constructor(proxyPids: readonly number[], loadPids: readonly number[]) {
    this.#pids = proxyPids;
    this.#loadPids = loadPids;
    this.#proxy0 = cpuOf(proxyPids);
    this.#load0 = this.#loadCpu();
  }

  /** `toolCpuS`: CPU of the load tool (wrk, h2load), which exited before the end, as sampled while it ran. */
  stop(toolCpuS = 0): PhaseCpu {
    const wallS = (performance.now() - this.#t0) / 1000;
    const now = cpuOf(this.#pids);
    const userS = now.userS - this.#proxy0.userS;
    const systemS = now.systemS - this.#proxy0.systemS;
    const proxyCpuS = userS + systemS;
    const loadS = this.#loadCpu() - this.#load0 + toolCpuS;
    const selfS = procCpuS(process.pid) - this.#self0;
    const cores1 = coreTimes();
    const delta = (name: string, key: keyof CoreTimes): number => (cores1.get(name)?.[key] ?? 0) - (this.#cores0.get(name)?.[key] ?? 0);
    const pct = (s: number): number => (100 * s) / wallS;
    return {
      wallS,
      proxyCpuS,
      proxyPct: pct(proxyCpuS),
      proxySysPct: pct(systemS),
      loadPct: pct(loadS),
      core0BusyPct: pct(delta('cpu0', 'processS') + delta('cpu0', 'irqS')),
      core1IrqPct: pct(delta('cpu1', 'irqS')),
      // Process time only (irq time is charged to no process); what the bench's processes did not use is foreign.
      foreignPct: Math.max(0, pct(delta('cpu', 'processS') - proxyCpuS - loadS - selfS)),
      // Only the proxy is pinned to core 1.
      core1ForeignPct: Math.max(0, pct(delta('cpu1', 'processS') - proxyCpuS)),
      stealPct: pct(delta('cpu', 'stealS')),
    };
  }

  #loadCpu(): number {
    let sum = 0;
    for (const pid of this.#loadPids) sum += procCpuS(pid);
    return sum;
  }
}

function rssOf(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + procRssBytes(pid), 0);
}

function fdsOf(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + procFdCount(pid), 0);
}

// ------------------------------------------------------------------------------------------ results

type Protocol = 'h1' | 'tls' | 'h2';

interface ThroughputResult {
  reqPerS: number;
  reqPerCpuS: number;
  errors: number;
  cpu: PhaseCpu;
  client: Omit<ClosedLoopResult, 'raw'>;
}

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

interface ProxyResults {
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
  affinity?: string[];
  /** How each started instance of the proxy ended after SIGTERM. */
  stops: StopReport[];
  complaints: string[];
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
  /** Total time spent in waitForQuiet, for the report. */
  quietWaitedMs: number;
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

/**
 * On a shared machine other people's builds and tests come and go: waits, up to settings.quietWaitMs (and
 * settings.quietBudgetMs over the run), for a second in which processes outside the bench used less than
 * NOISY_FOREIGN_PCT of a core. Returns the ms waited. Work that starts after the wait still shows in the
 * phase's noise figures.
 */
async function waitForQuiet(b: Bench, proxyPids: readonly number[]): Promise<number> {
  const started = Date.now();
  for (;;) {
    const meter = new CpuMeter(proxyPids, b.loadPids);
    await sleep(QUIET_SAMPLE_MS);
    const { foreignPct } = meter.stop();
    const waited = Date.now() - started - QUIET_SAMPLE_MS;
    const spent = waited >= b.settings.quietWaitMs || b.quietWaitedMs + waited >= b.settings.quietBudgetMs;
    if (foreignPct < NOISY_FOREIGN_PCT || spent) {
      b.quietWaitedMs += waited;
      return waited;
    }
  }
}

/** Warm-up run, then the measured run with the proxy's CPU sampled around the tool's whole life. */
async function measureThroughput(b: Bench, server: RunningServer, proxyPids: readonly number[], protocol: Protocol): Promise<ThroughputResult> {
  await waitForQuiet(b, proxyPids);
  await runTool(b, server, protocol, b.settings.throughputWarmupS);
  const meter = new CpuMeter(proxyPids, b.loadPids);
  const result = await runTool(b, server, protocol, b.settings.throughputS);
  const cpu = meter.stop(result.cpuS);
  const { raw: _raw, ...client } = result;
  return { reqPerS: result.reqPerS, reqPerCpuS: result.ok / cpu.proxyCpuS, errors: result.errors, cpu, client };
}

async function measureLatency(b: Bench, port: number, proxyPids: readonly number[]): Promise<HttpLatencyResult & { cpu: PhaseCpu }> {
  const s = b.settings;
  await waitForQuiet(b, proxyPids);
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
  await waitForQuiet(b, proxy.pids);
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

/**
 * One fresh instance of a proxy for `use`: started, probed once per proxy (the first time), stopped, with its
 * affinity, warnings and way of exiting recorded in `r`.
 */
async function withProxy(b: Bench, kind: L7ProxyKind, r: ProxyResults, use: (proxy: RunningServer) => Promise<void>): Promise<void> {
  const proxy = await startProxy(b.env, kind, b.origin.port);
  r.affinity ??= proxy.pids.map(procAffinity);
  try {
    await use(proxy);
  } finally {
    r.complaints.push(...proxyComplaints(proxy.logFile));
    r.stops.push(await proxy.stop());
  }
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

function formatValue(v: number | null, digits: number): string {
  if (v === null) return '—';
  if (Number.isNaN(v)) return 'none';
  if (!Number.isFinite(v)) return String(v);
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function renderTable(rows: readonly Row[]): string {
  const header = ['metric', ...PROXIES.map((k) => LABELS[k]), 'SecBeat/nginx', 'HAProxy/nginx', 'target', 'pass/fail'];
  // Rows judged on a ratio get three decimals, truncated: 0.2496 shown as "0.25×" next to "≥ 0.25×" and FAIL would puzzle.
  const ratioText = (r: number | null, judged: boolean): string =>
    r === null ? '' : judged ? `${(Math.floor(r * 1000) / 1000).toFixed(3)}×` : `${r.toFixed(2)}×`;
  const body = rows.map((r) => [
    r.metric,
    ...PROXIES.map((k) => formatValue(r.values[k], r.digits)),
    ratioText(r.ratio, r.target.endsWith('nginx')),
    ratioText(r.haproxyRatio, r.target.endsWith('nginx')),
    r.target,
    r.pass === null ? '' : r.pass ? 'pass' : 'FAIL',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => (cells[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 || i >= header.length - 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}

/** Thresholds (% of one core) above which a phase is reported as disturbed by work outside the bench. */
const NOISY_FOREIGN_PCT = 10;
const NOISY_STEAL_PCT = 5;
const QUIET_SAMPLE_MS = 1_000;

function notesFor(results: Results, direct: Direct, s: Settings): string[] {
  const notes: string[] = [];
  const disturbed: string[] = [];
  const noise = (label: string, cpu: PhaseCpu | undefined): void => {
    if (cpu !== undefined && (cpu.foreignPct >= NOISY_FOREIGN_PCT || cpu.stealPct >= NOISY_STEAL_PCT)) {
      disturbed.push(`${label} ${cpu.stealPct.toFixed(0)}/${cpu.foreignPct.toFixed(0)}/${cpu.core1ForeignPct.toFixed(0)}`);
    }
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
      if (t.cpu.proxyPct >= 95) notes.push(`${what}: the proxy used ${t.cpu.proxyPct.toFixed(0)} % of core 1 — proxy-bound.`);
      else if (t.cpu.core0BusyPct >= 90) {
        notes.push(
          `${what}: core 0 (load tool + origin) was ${t.cpu.core0BusyPct.toFixed(0)} % busy and the proxy ${t.cpu.proxyPct.toFixed(0)} % — ` +
            'the load side, not the proxy, set req/s; compare requests per CPU-second.',
        );
      }
      if (t.client.ok === 0) notes.push(`${what}: no successful request at all — the proxy stopped answering.`);
      if (t.errors > 0) notes.push(`${what}: ${t.errors} failed or non-2xx requests.`);
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
    const killed = r.stops.filter((x) => x.killed).length;
    if (killed > 0) notes.push(`${name}: ${killed} of ${r.stops.length} instance(s) did not exit within 5 s of SIGTERM and were SIGKILLed.`);
    if (r.probe !== undefined && r.probe.noSni !== 'ok') {
      notes.push(
        `${name}: a TLS client that sends no SNI (one connecting by IP address) fails the handshake (${r.probe.noSni}); ` +
          `every TLS phase here sends SNI "${TLS_SERVER_NAME}".`,
      );
    }
    if (r.affinity !== undefined && r.affinity.some((a) => a !== '1')) {
      notes.push(`${name} ran on cores ${r.affinity.join('/')}, not core 1: pinning failed.`);
    }
    const unique = [...new Set(r.complaints)];
    if (unique.length > 0) notes.push(`${name} logged ${unique.length} distinct warning/error line(s), first: ${unique[0]?.slice(0, 240)}`);
  }
  const tlsSeen = new Set(Object.values(results).flatMap((r) => (r?.probe === undefined ? [] : [`${r.probe.tlsVersion} ${r.probe.cipher}`])));
  if (tlsSeen.size > 0) notes.push(`TLS negotiated: ${[...tlsSeen].join('; ')} (ECDSA P-256 test certificate).`);
  if (disturbed.length > 0) {
    notes.push(
      `noisy phases (hypervisor steal / other processes / of which on core 1, % of one core): ${disturbed.join(', ')}. ` +
        'CPU-second figures hold up (steal is charged to no process); rates and latency tails do not.',
    );
  }
  return notes;
}

// ------------------------------------------------------------------------------------------ main

/** First line a tool prints for its version, on stdout or (nginx -v, wrk -v) stderr; null when it is not installed. */
function toolVersion(command: string, args: readonly string[]): string | null {
  const run = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  if (run.error !== undefined) return null;
  const text = `${run.stdout}${run.stderr}`.trim();
  return text === '' ? null : (text.split('\n')[0]?.trim() ?? null);
}

const USAGE =
  `usage: node bench/l7/run.ts [--quick] [--only ${PHASES.join(',')}]\n` +
  `         [--proxies ${PROXIES.join(',')}] [--secbeat-ref GIT_REF] [--cpu-prof DIR]\n` +
  '  --quick          short phases (smoke run; numbers are noisy)\n' +
  '  --secbeat-ref    run SecBeat from `git archive REF` instead of the working tree\n' +
  '  --cpu-prof DIR   run SecBeat under node --cpu-prof; one .cpuprofile per thread lands in DIR\n';

/** Peers of this bench that, already running, would share the pinned cores. */
const L7_PROGRAMS = /(^|\/)(haproxy|nginx|wrk|h2load|iperf3)\b/;

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
  for (const [tool, version] of Object.entries(versions)) {
    if (version === null) {
      process.stderr.write(
        `${tool} not found: the bench needs nginx, haproxy, wrk, h2load (nghttp2-client), openssl and taskset; scripts/setup.sh installs them\n`,
      );
      return 1;
    }
  }
  // The orchestrator joins the load side so that its own wake-ups never land on the proxy's core.
  execFileSync('taskset', ['-a', '-p', '-c', String(LOAD_CORE), String(process.pid)], { stdio: 'ignore' });

  const tmp = mkdtempSync(join(tmpdir(), 'secbeat-bench-l7-'));
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
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', () => {
    procs.killAllNow();
    rmSync(tmp, { recursive: true, force: true });
  });
  const watchdog = setTimeout(() => {
    process.stderr.write(`watchdog: the run exceeded ${settings.watchdogMs / 1000} s; stopping children\n`);
    void cleanup().finally(() => process.exit(1));
  }, settings.watchdogMs);
  watchdog.unref();

  const others = otherBenchProcesses(L7_PROGRAMS);
  if (others.length > 0) process.stderr.write(`warning: other benchmark processes are running and will share the cores:\n  ${others.join('\n  ')}\n`);
  const startedAt = performance.now();
  const loadBefore = readFileSync('/proc/loadavg', 'utf8').trim();
  const results: Results = {};
  const direct: Direct = {};
  let b: Bench | undefined;
  const secbeatRef = args.secbeatRef;
  try {
    let secbeatRoot = ROOT;
    if (secbeatRef !== null) {
      mkdirSync(join(tmp, 'ref'));
      secbeatRoot = extractRef(ROOT, secbeatRef, join(tmp, 'ref'));
    }
    const cpuProf = args.cpuProf;
    mkdirSync(join(tmp, 'stripped'));
    const env: L7Env = {
      root: ROOT,
      nodeBin: process.execPath,
      nodeFlags: cpuProf === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', resolve(cpuProf)],
      tmp,
      procs,
      secbeatLauncher: kinds.includes('secbeat') ? buildStrippedTree(ROOT, secbeatRoot, join(tmp, 'stripped')) : '',
      tls: makeCertificate(tmp),
    };
    const origin = await startOrigin(env, LOAD_CORE);
    const genChild = procs.spawnPinned(LOAD_CORE, env.nodeBin, [LOAD_SCRIPT, '--role', 'gen'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await waitMessage<L7GenReply, 'ready'>(genChild, 'ready', 15_000);
    const gen: Gen = { child: genChild, pid: genChild.pid ?? -1 };
    b = { env, settings, phases, origin, gen, loadPids: [...origin.pids, gen.pid], quietWaitedMs: 0 };
    await measureAll(b, kinds, results, direct);
  } finally {
    clearTimeout(watchdog);
    await cleanup();
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
    quietWaitedS: Math.round((b?.quietWaitedMs ?? 0) / 1000),
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
