// CPU accounting of one measured window for the HTTP benches (bench/l7/run.ts, bench/waf/run.ts): the proxy's
// CPU from /proc/<pid>/stat, the load side's, the cores' busy, irq and steal time from /proc/stat, the wait for
// a quiet machine before a window, and the closed-loop throughput measurement built on them.
import { coreTimes, procCpuS, procCpuSplit, sleep, type CoreTimes } from '../tcp/proc.ts';
import type { ClosedLoopResult } from './clients.ts';

/** Where the CPU went during one phase, in % of one core over the phase's wall time. */
export interface PhaseCpu {
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
export class CpuMeter {
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

/** Thresholds (% of one core) above which a phase is reported as disturbed by work outside the bench. */
const NOISY_FOREIGN_PCT = 10;
const NOISY_STEAL_PCT = 5;
const QUIET_SAMPLE_MS = 1_000;

/** How long a run may wait for other processes to leave the cores: per wait, in total, and what it has spent. */
export interface QuietBudget {
  waitMs: number;
  budgetMs: number;
  waitedMs: number;
}

/**
 * On a shared machine other people's builds and tests come and go: waits, up to quiet.waitMs (and quiet.budgetMs
 * over the run), for a second in which processes outside the bench used less than NOISY_FOREIGN_PCT of a core.
 * Returns the ms waited. Work that starts after the wait still shows in the phase's noise figures.
 */
export async function waitForQuiet(quiet: QuietBudget, proxyPids: readonly number[], loadPids: readonly number[]): Promise<number> {
  const started = Date.now();
  for (;;) {
    const meter = new CpuMeter(proxyPids, loadPids);
    await sleep(QUIET_SAMPLE_MS);
    const { foreignPct } = meter.stop();
    const waited = Date.now() - started - QUIET_SAMPLE_MS;
    const spent = waited >= quiet.waitMs || quiet.waitedMs + waited >= quiet.budgetMs;
    if (foreignPct < NOISY_FOREIGN_PCT || spent) {
      quiet.waitedMs += waited;
      return waited;
    }
  }
}

/** "label steal/other/of which on core 1" when hypervisor steal or other processes disturbed the phase, else null. */
export function disturbance(label: string, cpu: PhaseCpu | undefined): string | null {
  if (cpu === undefined || (cpu.foreignPct < NOISY_FOREIGN_PCT && cpu.stealPct < NOISY_STEAL_PCT)) return null;
  return `${label} ${cpu.stealPct.toFixed(0)}/${cpu.foreignPct.toFixed(0)}/${cpu.core1ForeignPct.toFixed(0)}`;
}

/** The closing note over every disturbance() of a run; null when there was none. */
export function disturbanceNote(disturbed: readonly string[]): string | null {
  if (disturbed.length === 0) return null;
  return (
    `noisy phases (hypervisor steal / other processes / of which on core 1, % of one core): ${disturbed.join(', ')}. ` +
    'CPU-second figures hold up (steal is charged to no process); rates and latency tails do not.'
  );
}

export interface ThroughputResult {
  reqPerS: number;
  reqPerCpuS: number;
  errors: number;
  cpu: PhaseCpu;
  client: Omit<ClosedLoopResult, 'raw'>;
}

export interface ClosedLoopPlan {
  quiet: QuietBudget;
  /** Whose CPU the result is per: the proxy's processes; none for a run straight to the origin. */
  proxyPids: readonly number[];
  /** The load side's long-lived processes (origin, load children). */
  loadPids: readonly number[];
  warmupS: number;
  seconds: number;
  /** Runs the tool for that many seconds. */
  run(seconds: number): Promise<ClosedLoopResult>;
}

/** Warm-up run, then the measured run with the proxy's CPU sampled around the tool's whole life. */
export async function measureClosedLoop(plan: ClosedLoopPlan): Promise<ThroughputResult> {
  await waitForQuiet(plan.quiet, plan.proxyPids, plan.loadPids);
  await plan.run(plan.warmupS);
  const meter = new CpuMeter(plan.proxyPids, plan.loadPids);
  const result = await plan.run(plan.seconds);
  const cpu = meter.stop(result.cpuS);
  const { raw: _raw, ...client } = result;
  return { reqPerS: result.reqPerS, reqPerCpuS: result.ok / cpu.proxyCpuS, errors: result.errors, cpu, client };
}

/**
 * Several windows of one contender and workload as one: counts and CPU seconds add up, so the rates are over the
 * windows together; percentages are weighted by wall time; the latency percentiles are the worst window's (a
 * percentile cannot be pooled from percentiles).
 */
export function pooledThroughput(windows: readonly ThroughputResult[]): ThroughputResult {
  if (windows.length === 1) return windows[0]!;
  const sum = (pick: (t: ThroughputResult) => number): number => windows.reduce((total, t) => total + pick(t), 0);
  const wallS = sum((t) => t.cpu.wallS);
  const weighted = (pick: (c: PhaseCpu) => number): number => sum((t) => pick(t.cpu) * t.cpu.wallS) / wallS;
  const proxyCpuS = sum((t) => t.cpu.proxyCpuS);
  const ok = sum((t) => t.client.ok);
  const seconds = sum((t) => t.client.seconds);
  const worst = (pick: (t: ThroughputResult) => number | null): number | null =>
    windows.some((t) => pick(t) === null) ? null : Math.max(...windows.map((t) => pick(t)!));
  const first = windows[0]!;
  return {
    reqPerS: ok / seconds,
    reqPerCpuS: ok / proxyCpuS,
    errors: sum((t) => t.errors),
    cpu: {
      wallS,
      proxyCpuS,
      proxyPct: weighted((c) => c.proxyPct),
      proxySysPct: weighted((c) => c.proxySysPct),
      loadPct: weighted((c) => c.loadPct),
      core0BusyPct: weighted((c) => c.core0BusyPct),
      core1IrqPct: weighted((c) => c.core1IrqPct),
      foreignPct: weighted((c) => c.foreignPct),
      core1ForeignPct: weighted((c) => c.core1ForeignPct),
      stealPct: weighted((c) => c.stealPct),
    },
    client: {
      tool: first.client.tool,
      ok,
      errors: sum((t) => t.client.errors),
      non2xx: sum((t) => t.client.non2xx),
      seconds,
      reqPerS: ok / seconds,
      p50Us: worst((t) => t.client.p50Us),
      p99Us: worst((t) => t.client.p99Us),
      protocol: first.client.protocol,
      cpuS: sum((t) => t.client.cpuS),
    },
  };
}

/** What limited a closed-loop run and what went wrong in it, as report notes; `what` names the proxy and workload. */
export function throughputNotes(what: string, t: ThroughputResult): string[] {
  const notes: string[] = [];
  if (t.cpu.proxyPct >= 95) notes.push(`${what}: the proxy used ${t.cpu.proxyPct.toFixed(0)} % of core 1 — proxy-bound.`);
  else if (t.cpu.core0BusyPct >= 90) {
    notes.push(
      `${what}: core 0 (load tool + origin) was ${t.cpu.core0BusyPct.toFixed(0)} % busy and the proxy ${t.cpu.proxyPct.toFixed(0)} % — ` +
        'the load side, not the proxy, set req/s; compare requests per CPU-second.',
    );
  }
  if (t.client.ok === 0) notes.push(`${what}: no successful request at all — the proxy stopped answering.`);
  if (t.errors > 0) notes.push(`${what}: ${t.errors} failed or non-2xx requests.`);
  return notes;
}
