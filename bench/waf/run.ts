// WAF macro benchmark: SecBeat's WAF (OWASP CRS 3.3.4, paranoia level 1, blocking) against nginx + ModSecurity v3
// + the same CRS, in one run, as issue 4 asks. Four proxies side by side on core 1, one worker each, loaded one at a
// time, in front of the same origin (nginx answering 1 KiB bodies, core 0), loaded by wrk (core 0):
//
//   nginx              plain reverse proxy: the baseline
//   nginx+ModSecurity  the same nginx with `load_module …/ngx_http_modsecurity_module.so`, `modsecurity on` and
//                      `modsecurity_rules_file` naming a main configuration written to the temp dir
//                      (contenders.ts writeModsecurityRules): ModSecurity's recommended directives with
//                      SecRuleEngine On, SecRequestBodyAccess On, SecResponseBodyAccess Off, SecAuditEngine Off
//                      (no audit log on disk), SecStatusEngine Off, then Include /etc/modsecurity/crs/crs-setup.conf,
//                      SecAction id:900000 setvar:tx.paranoia_level=1, Include /usr/share/modsecurity-crs/rules/*.conf
//                      (anomaly scoring, inbound threshold 5: a blocked request gets 403)
//   SecBeat            `mode = "l7"`, [waf] enabled = false
//   SecBeat+WAF        the same with [waf] enabled = true, mode = "blocking", paranoia_level = 1,
//                      crs_path = "/usr/share/modsecurity-crs", fail_open = false
//
// Two workloads (--only get,post): a benign GET /?a=1&b=hello&c=world&d=42 and a benign POST of a 2 KiB
// urlencoded form of 20 fields, both with a browser's headers (workloads.ts). A full run measures each proxy on
// each workload in five rounds of 4 s windows taken in turn and pools them (measureAll); --quick, one of 3 s. Every answer must be 200: a WAF
// false positive (403) fails the run loudly. Once per proxy, an attack GET (?q=1' or '1'='1) must get 403 from
// both WAFs. Prints the table with the ratios the issue judges (SecBeat+WAF ≥ 10× ModSecurity's requests per
// CPU-second, ≥ 0.5× SecBeat without WAF) and, last, the whole result as one JSON line prefixed "RESULT ".
//
//   node bench/waf/run.ts [--quick] [--only get,post] [--proxies nginx,modsecurity,secbeat,secbeat-waf]
//                         [--secbeat-ref REF] [--cpu-prof DIR]
//
// Not part of the test suite. docs/bench.md explains the rows and the caveats.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchUsage, parseBenchArgs } from '../cli.ts';
import { runWrk } from '../l7/clients.ts';
import { benchEnv, HTTP_BENCH_PROGRAMS, startRun, toolsPresent, toolVersion } from '../l7/harness.ts';
import { disturbance, disturbanceNote, measureClosedLoop, pooledThroughput, throughputNotes, type QuietBudget, type ThroughputResult } from '../l7/meter.ts';
import { BODY_BYTES, recordNotes, startOrigin, withServer, type L7Env, type ProxyRecord, type RunningServer } from '../l7/proxies.ts';
import { formatValue, ratioText, renderGrid } from '../l7/table.ts';
import { otherBenchProcesses, type Core } from '../tcp/proc.ts';
import { CONTENDERS, LABELS, MODSECURITY_MODULE, startContender, WAF_CONTENDERS, writeModsecurityRules, type Contender } from './contenders.ts';
import { ATTACK, exchange, FORM_BYTES, WORKLOADS, wrkScript, type WorkloadName } from './workloads.ts';

const PHASES = ['get', 'post'] as const satisfies readonly WorkloadName[];
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const LOAD_CORE: Core = 0;

interface Settings {
  /** wrk connections: as bench/l7, 64 requests in flight. */
  connections: number;
  /** Not measured: the same load first, to warm the JIT, the pools and the caches (SecBeat needs ≥ 2 s). */
  warmupS: number;
  /** The same before each later window of a proxy: the caches only (the process is still warm). */
  rewarmS: number;
  /**
   * Measured, per window: CPU times come in 10 ms ticks (1 % of a 1 s window), and ModSecurity's few hundred
   * requests a second want windows of seconds; a full run pools five of 4 s.
   */
  seconds: number;
  /**
   * Rounds of every proxy in turn (see measureAll), pooled: this VM's speed drifts by up to 2× over tens of
   * seconds, which a single window per proxy turned into ratios off by as much.
   */
  rounds: number;
  quietWaitMs: number;
  quietBudgetMs: number;
  watchdogMs: number;
}

const FULL: Settings = { connections: 64, warmupS: 2, rewarmS: 1, seconds: 4, rounds: 5, quietWaitMs: 30_000, quietBudgetMs: 180_000, watchdogMs: 15 * 60_000 };
const QUICK: Settings = { ...FULL, seconds: 3, rounds: 1, quietWaitMs: 3_000, quietBudgetMs: 20_000, watchdogMs: 4 * 60_000 };

/**
 * wrk's timeout per request. ModSecurity answers the POST at about 70 a second, so each of the 64 connections
 * waits about a second for its answer, and other processes on core 1 stretch that past wrk's default 5 s: a
 * timeout there would be counted as an error and cost a reconnect, though the answer was only late.
 */
const WRK_TIMEOUT_S = 30;

/** The issue's targets, on requests per proxy CPU-second. */
const TARGET_VS_MODSECURITY = 10;
const TARGET_VS_NO_WAF = 0.5;
/** What the issue says ModSecurity keeps of plain nginx's throughput, for the note that compares. */
const ISSUE_MODSECURITY_SHARE: Readonly<Record<WorkloadName, string>> = { get: 'about 1.5 %', post: 'under 1 %' };

const WORKLOAD_TITLES: Readonly<Record<WorkloadName, string>> = {
  get: `GET ${WORKLOADS.get.path}`,
  post: `POST ${FORM_BYTES / 1024} KiB form (20 fields)`,
};

// ------------------------------------------------------------------------------------------ measuring

interface WorkloadResult {
  /** The one request sent before the load: it must be 200 with the origin's body, else nothing is measured. */
  probe: { status: number; bodyBytes: number };
  /** The rounds pooled (pooledThroughput). */
  throughput?: ThroughputResult;
  /** Each round's window, in order. */
  rounds: ThroughputResult[];
}

interface ContenderResults extends ProxyRecord {
  /** Status of the attack GET, sent once to an instance started for it. */
  attackStatus?: number;
  workloads: Partial<Record<WorkloadName, WorkloadResult>>;
}

type Results = Partial<Record<Contender, ContenderResults>>;

interface Bench {
  env: L7Env;
  settings: Settings;
  origin: RunningServer;
  modsecurityRules: string;
  /** wrk's Lua script per workload. */
  scripts: Readonly<Record<WorkloadName, string>>;
  quiet: QuietBudget;
}

function isBenign(probe: WorkloadResult['probe']): boolean {
  return probe.status === 200 && probe.bodyBytes === BODY_BYTES;
}

/**
 * Workload by workload, the proxies side by side: all of them started at once, each pinned to core 1 (those not
 * under load idle there), then short windows of each in turn, round after round, and each column pools its
 * windows. This VM's speed drifts by up to 2× over tens of seconds (one vCPU at a time): windows of a few
 * seconds taken in turn spread a slow phase over every column of a ratio, where a proxy measured alone for its
 * whole share could take all of it.
 */
async function measureAll(b: Bench, workloads: ReadonlySet<WorkloadName>, kinds: readonly Contender[], results: Results): Promise<void> {
  for (const kind of kinds) {
    const r: ContenderResults = { stops: [], complaints: [], workloads: {} };
    results[kind] = r;
    process.stderr.write(`${LABELS[kind]}: attack check\n`);
    // An instance of its own, whose log is not kept: a WAF logs the refusal, which is no complaint.
    await withServer(startContender(b.env, kind, b.origin.port, b.modsecurityRules), { stops: r.stops, complaints: [] }, async (proxy) => {
      r.attackStatus = (await exchange(proxy.port, ATTACK)).status;
    });
  }
  for (const workload of PHASES) {
    if (!workloads.has(workload)) continue;
    await withContenders(b, kinds, results, async (proxies) => {
      const measured: [Contender, RunningServer, WorkloadResult][] = [];
      for (const [kind, proxy] of proxies) {
        const w: WorkloadResult = { probe: await exchange(proxy.port, WORKLOADS[workload]), rounds: [] };
        results[kind]!.workloads[workload] = w;
        // A refused benign request is a false positive: measuring how fast the refusals come would mean nothing.
        if (isBenign(w.probe)) measured.push([kind, proxy, w]);
      }
      for (let round = 1; round <= b.settings.rounds; round++) {
        for (const [kind, proxy, w] of measured) {
          process.stderr.write(`${LABELS[kind]}: ${WORKLOAD_TITLES[workload]}, round ${round} of ${b.settings.rounds}\n`);
          // The first window warms the JIT too; later ones only refill the caches the other proxies emptied.
          w.rounds.push(await measureWindow(b, proxy, workload, round === 1 ? b.settings.warmupS : b.settings.rewarmS));
        }
      }
    });
  }
  for (const kind of kinds) {
    for (const w of Object.values(results[kind]?.workloads ?? {})) if (w.rounds.length > 0) w.throughput = pooledThroughput(w.rounds);
  }
}

/** Runs `use` with every contender started (in `kinds` order), then stops them all, as withServer does one. */
async function withContenders(b: Bench, kinds: readonly Contender[], results: Results, use: (proxies: [Contender, RunningServer][]) => Promise<void>): Promise<void> {
  const started: [Contender, RunningServer][] = [];
  const next = async (i: number): Promise<void> => {
    if (i === kinds.length) return use(started);
    const kind = kinds[i]!;
    await withServer(startContender(b.env, kind, b.origin.port, b.modsecurityRules), results[kind]!, async (proxy) => {
      started.push([kind, proxy]);
      await next(i + 1);
    });
  };
  await next(0);
}

/** One measured window of one proxy on one workload, after `warmupS` of the same load. */
function measureWindow(b: Bench, proxy: RunningServer, workload: WorkloadName, warmupS: number): Promise<ThroughputResult> {
  return measureClosedLoop({
    quiet: b.quiet,
    proxyPids: proxy.pids,
    loadPids: b.origin.pids,
    warmupS,
    seconds: b.settings.seconds,
    run: (seconds) =>
      runWrk(b.env.procs, LOAD_CORE, {
        url: `http://127.0.0.1:${proxy.port}/`,
        connections: b.settings.connections,
        seconds,
        script: b.scripts[workload],
        timeoutS: WRK_TIMEOUT_S,
      }),
  });
}

// ------------------------------------------------------------------------------------------ report

/** The three ratios the issue reads, by column: a over b. */
const RATIOS = [
  { title: 'ModSec/nginx', over: 'modsecurity', under: 'nginx' },
  { title: 'WAF/ModSec', over: 'secbeat-waf', under: 'modsecurity', min: TARGET_VS_MODSECURITY },
  { title: 'WAF/no-WAF', over: 'secbeat-waf', under: 'secbeat', min: TARGET_VS_NO_WAF },
] as const satisfies readonly { title: string; over: Contender; under: Contender; min?: number }[];

interface Row {
  metric: string;
  values: Record<Contender, number | null>;
  ratios: (number | null)[];
  /** Ratios are judged against RATIOS' minimums on this row. */
  judged: boolean;
  target: string;
  /** null = no target or nothing to judge. */
  pass: boolean | null;
  /** A wrong answer (benign refused, attack let through), not a speed: failing it fails the run. */
  correctness: boolean;
  digits: number;
}

function valuesOf(results: Results, pick: (r: ContenderResults) => number | undefined): Record<Contender, number | null> {
  return Object.fromEntries(
    CONTENDERS.map((k) => {
      const r = results[k];
      return [k, r === undefined ? null : (pick(r) ?? null)];
    }),
  ) as Record<Contender, number | null>;
}

function ratioOf(values: Record<Contender, number | null>, over: Contender, under: Contender): number | null {
  const a = values[over];
  const b = values[under];
  return a !== null && b !== null && b !== 0 && Number.isFinite(a) && Number.isFinite(b) ? a / b : null;
}

/** A row of figures with the three ratios, for information. */
function infoRow(metric: string, results: Results, pick: (r: ContenderResults) => number | undefined, digits: number, ratios = true): Row {
  const values = valuesOf(results, pick);
  return {
    metric,
    values,
    ratios: RATIOS.map((x) => (ratios ? ratioOf(values, x.over, x.under) : null)),
    judged: false,
    target: '',
    pass: null,
    correctness: false,
    digits,
  };
}

/** Requests per proxy CPU-second, judged on the issue's two ratio targets, each one whose columns were measured. */
function targetRow(metric: string, results: Results, pick: (r: ContenderResults) => number | undefined): Row {
  const row = infoRow(metric, results, pick, 0);
  const measured = RATIOS.flatMap((x, i) => {
    const ratio = row.ratios[i] ?? null;
    return 'min' in x && ratio !== null ? [ratio >= x.min] : [];
  });
  const pass = measured.length === 0 ? null : measured.every((ok) => ok);
  return { ...row, judged: true, target: `WAF ≥ ${TARGET_VS_MODSECURITY}× ModSec, ≥ ${TARGET_VS_NO_WAF}× no-WAF`, pass };
}

/** A count every proxy must keep at zero (answers other than 200 to benign requests). */
function zeroRow(metric: string, results: Results, pick: (r: ContenderResults) => number | undefined): Row {
  const row = infoRow(metric, results, pick, 0, false);
  const counts = Object.values(row.values).filter((v): v is number => v !== null);
  return { ...row, target: '0 for all', pass: counts.length === 0 ? null : counts.every((v) => v === 0), correctness: true };
}

function attackRow(results: Results): Row {
  const row = infoRow(`attack GET ?q=1' or '1'='1 → status`, results, (r) => r.attackStatus, 0, false);
  const statuses = WAF_CONTENDERS.map((k) => row.values[k]).filter((v) => v !== null);
  return { ...row, target: '403 from both WAFs', pass: statuses.length === 0 ? null : statuses.every((s) => s === 403), correctness: true };
}

/** Benign requests not answered 200: a refused probe counts 1 (nothing was measured after it), plus wrk's non-2xx answers. */
function badAnswers(w: WorkloadResult | undefined): number | undefined {
  if (w === undefined) return undefined;
  return isBenign(w.probe) ? (w.throughput?.client.non2xx ?? 0) : 1;
}

function buildRows(results: Results, workloads: ReadonlySet<WorkloadName>, s: Settings): Row[] {
  const rows: Row[] = [];
  for (const workload of PHASES) {
    if (!workloads.has(workload)) continue;
    const t = (r: ContenderResults): ThroughputResult | undefined => r.workloads[workload]?.throughput;
    rows.push(infoRow(`${WORKLOAD_TITLES[workload]} req/s (wrk, ${s.connections} conns)`, results, (r) => t(r)?.reqPerS, 0));
    rows.push(targetRow('  requests per proxy CPU-second', results, (r) => t(r)?.reqPerCpuS));
    rows.push(infoRow('  proxy CPU % (core 1)', results, (r) => t(r)?.cpu.proxyPct, 0));
    rows.push(infoRow('  core 0 busy % (load + origin)', results, (r) => t(r)?.cpu.core0BusyPct, 0, false));
    rows.push(zeroRow('  answers other than 200', results, (r) => badAnswers(r.workloads[workload])));
    const socketErrors = (r: ContenderResults): number | undefined => {
      const client = t(r)?.client;
      return client === undefined ? undefined : client.errors - client.non2xx;
    };
    rows.push(infoRow(`  socket errors and timeouts (${WRK_TIMEOUT_S} s)`, results, socketErrors, 0, false));
  }
  rows.push(attackRow(results));
  return rows;
}

function renderTable(rows: readonly Row[]): string {
  const header = ['metric', ...CONTENDERS.map((k) => LABELS[k]), ...RATIOS.map((x) => x.title), 'target', 'pass/fail'];
  const body = rows.map((r) => [
    r.metric,
    ...CONTENDERS.map((k) => formatValue(r.values[k], r.digits)),
    ...RATIOS.map((x, i) => ratioText(r.ratios[i] ?? null, r.judged && 'min' in x)),
    r.target,
    r.pass === null ? '' : r.pass ? 'pass' : 'FAIL',
  ]);
  return renderGrid(header, body, (i) => i === 0 || i >= header.length - 2);
}

function notesFor(results: Results): string[] {
  const notes: string[] = [];
  const disturbed: string[] = [];
  for (const kind of CONTENDERS) {
    const r = results[kind];
    if (r === undefined) continue;
    const name = LABELS[kind];
    for (const workload of PHASES) {
      const w = r.workloads[workload];
      if (w === undefined) continue;
      const what = `${name} ${workload.toUpperCase()}`;
      if (!isBenign(w.probe)) {
        notes.push(`FAIL: ${what}: the benign request got ${w.probe.status} with ${w.probe.bodyBytes} bytes, not 200 with ${BODY_BYTES}: a false positive; not measured.`);
      }
      if (w.throughput === undefined) continue;
      notes.push(...throughputNotes(what, w.throughput));
      const d = disturbance(what, w.throughput.cpu);
      if (d !== null) disturbed.push(d);
    }
    if (WAF_CONTENDERS.includes(kind) && r.attackStatus !== undefined && r.attackStatus !== 403) {
      notes.push(
        `FAIL: ${name} answered the attack GET with ${r.attackStatus}, not 403` +
          (kind === 'secbeat-waf' ? ': its WAF is not in the request path (or not blocking), so its column measures SecBeat without a WAF.' : '.'),
      );
    }
    notes.push(...recordNotes(name, r));
  }
  for (const workload of PHASES) {
    const modsec = results.modsecurity?.workloads[workload]?.throughput;
    const nginx = results.nginx?.workloads[workload]?.throughput;
    if (modsec === undefined || nginx === undefined) continue;
    const pct = (a: number, b: number): string => `${((100 * a) / b).toFixed(1)} %`;
    notes.push(
      `${workload.toUpperCase()}: nginx+ModSecurity kept ${pct(modsec.reqPerCpuS, nginx.reqPerCpuS)} of plain nginx's requests per ` +
        `CPU-second and ${pct(modsec.reqPerS, nginx.reqPerS)} of its req/s (the issue measured ${ISSUE_MODSECURITY_SHARE[workload]}).`,
    );
  }
  notes.push(...roundNotes(results));
  const noisy = disturbanceNote(disturbed);
  if (noisy !== null) notes.push(noisy);
  return notes;
}

/** The judged ratios round by round (each from windows a minute apart), to show how far the pooled ones may be trusted. */
function roundNotes(results: Results): string[] {
  const notes: string[] = [];
  for (const workload of PHASES) {
    const perRound = (kind: Contender) => results[kind]?.workloads[workload]?.rounds.map((t) => t.reqPerCpuS) ?? [];
    const waf = perRound('secbeat-waf');
    if (waf.length < 2) continue;
    const parts = RATIOS.filter((x) => 'min' in x).flatMap((x) => {
      const under = perRound(x.under);
      if (under.length !== waf.length) return [];
      return [`${x.title} ${waf.map((v, i) => `${(v / under[i]!).toFixed(2)}×`).join(' / ')}`];
    });
    if (parts.length > 0) notes.push(`${workload.toUpperCase()} round by round (requests per proxy CPU-second): ${parts.join('; ')}.`);
  }
  return notes;
}

// ------------------------------------------------------------------------------------------ main

const USAGE = benchUsage('bench/waf/run.ts', PHASES, CONTENDERS);


/** A Debian package's version, null when it is not installed. */
function packageVersion(name: string): string | null {
  return toolVersion('dpkg-query', ['-W', '-f', '${Version}', name]);
}

async function main(): Promise<number> {
  const args = parseBenchArgs(process.argv.slice(2), PHASES, CONTENDERS, USAGE);
  if ('exitCode' in args) return args.exitCode;
  const { phases, kinds } = args;
  const settings = args.quick ? QUICK : FULL;
  const tools = {
    node: process.version,
    nginx: toolVersion('nginx', ['-v']),
    wrk: toolVersion('wrk', ['-v']),
    openssl: toolVersion('openssl', ['version']),
    taskset: toolVersion('taskset', ['--version']),
  };
  // SecBeat's WAF reads the same CRS, so the packages are needed whichever columns run.
  const packages = {
    libmodsecurity3: packageVersion('libmodsecurity3'),
    'libnginx-mod-http-modsecurity': packageVersion('libnginx-mod-http-modsecurity'),
    'modsecurity-crs': packageVersion('modsecurity-crs'),
  };
  const versions = { ...tools, ...packages };
  const hint = `the bench needs nginx, wrk, openssl, taskset, and the Debian packages ${Object.keys(packages).join(', ')} (${MODSECURITY_MODULE}, the CRS); scripts/setup.sh installs them`;
  if (!toolsPresent(versions, hint)) return 1;

  const others = otherBenchProcesses(HTTP_BENCH_PROGRAMS);
  if (others.length > 0) process.stderr.write(`warning: other benchmark processes are running and will share the cores:\n  ${others.join('\n  ')}\n`);
  const startedAt = performance.now();
  const loadBefore = readFileSync('/proc/loadavg', 'utf8').trim();
  const results: Results = {};
  const quiet: QuietBudget = { waitMs: settings.quietWaitMs, budgetMs: settings.quietBudgetMs, waitedMs: 0 };
  {
    await using run = startRun({ tmpPrefix: 'secbeat-bench-waf-', loadCore: LOAD_CORE, watchdogMs: settings.watchdogMs });
    const secbeat = kinds.includes('secbeat') || kinds.includes('secbeat-waf');
    const env = benchEnv(run, { root: ROOT, secbeatRef: args.secbeatRef, cpuProf: args.cpuProf, secbeat });
    const modsecDir = join(run.tmp, 'modsecurity');
    mkdirSync(modsecDir);
    const scripts = Object.fromEntries(
      PHASES.map((w) => {
        const file = join(run.tmp, `${w}.lua`);
        writeFileSync(file, wrkScript(WORKLOADS[w]));
        return [w, file];
      }),
    ) as Record<WorkloadName, string>;
    const origin = await startOrigin(env, LOAD_CORE);
    await measureAll({ env, settings, origin, modsecurityRules: writeModsecurityRules(modsecDir), scripts, quiet }, phases, kinds, results);
  }

  const rows = buildRows(results, phases, settings);
  const notes = notesFor(results);
  if (others.length > 0) notes.push(`other benchmark processes were running at the start: ${others.join('; ')}`);
  const meta = {
    quick: args.quick,
    workloads: [...phases],
    secbeatSource: args.secbeatRef === null ? 'working tree' : `git archive ${args.secbeatRef}`,
    seconds: Math.round((performance.now() - startedAt) / 1000),
    versions,
    kernel: toolVersion('uname', ['-r']),
    loadavgBefore: loadBefore,
    loadavgAfter: readFileSync('/proc/loadavg', 'utf8').trim(),
    quietWaitedS: Math.round(quiet.waitedMs / 1000),
    bodyBytes: BODY_BYTES,
    formBytes: FORM_BYTES,
    settings,
  };
  const quick = args.quick ? ' (--quick: short windows, noisy)' : '';
  process.stdout.write(
    `\nSecBeat WAF (${meta.secbeatSource}; CRS PL1, blocking) vs nginx ${tools.nginx?.split('/')[1] ?? ''} + ModSecurity ` +
      `${packages.libmodsecurity3} + CRS ${packages['modsecurity-crs']} PL1 — loopback, 1 KiB responses, ` +
      `proxy on core 1, origin and wrk on core 0${quick}\n\n`,
  );
  process.stdout.write(`${renderTable(rows)}\n`);
  if (notes.length > 0) process.stdout.write(`\n${notes.map((n) => `note: ${n}`).join('\n')}\n`);
  process.stdout.write(
    `\nload average before/after: ${meta.loadavgBefore} / ${meta.loadavgAfter}; ` +
      `${meta.seconds} s, of which ${meta.quietWaitedS} s waiting for other processes to finish\n`,
  );
  const missed = rows.filter((r) => r.pass === false).map((r) => r.metric.trim());
  process.stdout.write(missed.length === 0 ? 'all measured targets met\n' : `targets missed: ${missed.join('; ')}\n`);
  process.stdout.write(`RESULT ${JSON.stringify({ meta, rows, notes, results })}\n`);
  // Wrong answers (a benign request refused, the attack let through) fail the run; a missed speed target does not.
  return rows.some((r) => r.correctness && r.pass === false) ? 1 : 0;
}

process.exitCode = await main();
