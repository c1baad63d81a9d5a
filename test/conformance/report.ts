// Turns stage results into what a person reads (./crs.ts prints it) and what CI compares: the pass rate, a
// table per rule file, failures grouped by cause with their evidence, and the difference from the stages
// known to fail (known-failures.json).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FAILURE_CAUSES, type FailureCause, loggedRuleIds, type StageResult } from './runner.ts';

/** The acceptance bar of issue 4 (Coraza's level): the share of stages that must pass in-process at PL4. */
export const REQUIRED_PASS_RATE = 0.98;

/** Per target kind: the in-process engine, or an L7 node over sockets (./node-target.ts). */
export const KNOWN_FAILURES_FILES = {
  engine: fileURLToPath(new URL('./known-failures.json', import.meta.url)),
  node: fileURLToPath(new URL('./node-known-failures.json', import.meta.url)),
} as const;

/** The stages expected to fail in one configuration, each with the reason. */
export interface KnownFailures {
  target: string;
  paranoiaLevel: number;
  stages: Record<string, string>;
}

export function loadKnownFailures(kind: keyof typeof KNOWN_FAILURES_FILES = 'engine'): KnownFailures {
  return JSON.parse(readFileSync(KNOWN_FAILURES_FILES[kind], 'utf8')) as KnownFailures;
}

/** A failure's cause as reported: a missed detection of a rule above the run's paranoia level is out of scope. */
export type ReportedCause = FailureCause | 'paranoia-scope';

export interface Tally {
  total: number;
  passed: number;
}

export interface RunSummary {
  total: number;
  passed: number;
  byRuleFile: Map<string, Tally>;
  byCause: Map<ReportedCause, StageResult[]>;
}

/**
 * `ruleLevels` maps rule ids to paranoia levels (./crs-setup.ts); with it, a `log_contains` for a rule
 * above `paranoiaLevel` that found nothing counts as `paranoia-scope`.
 */
export function summarize(results: readonly StageResult[], paranoiaLevel?: number, ruleLevels?: ReadonlyMap<number, number>): RunSummary {
  const summary: RunSummary = { total: 0, passed: 0, byRuleFile: new Map(), byCause: new Map() };
  for (const result of results) {
    const passed = result.failures.length === 0;
    summary.total++;
    if (passed) summary.passed++;
    const tally = summary.byRuleFile.get(result.stage.ruleFile) ?? { total: 0, passed: 0 };
    tally.total++;
    if (passed) tally.passed++;
    summary.byRuleFile.set(result.stage.ruleFile, tally);
    if (!passed) {
      const cause = reportedCause(result, paranoiaLevel, ruleLevels);
      summary.byCause.set(cause, [...(summary.byCause.get(cause) ?? []), result]);
    }
  }
  return summary;
}

function reportedCause(result: StageResult, paranoiaLevel?: number, ruleLevels?: ReadonlyMap<number, number>): ReportedCause {
  const cause = result.failures[0]!.cause;
  if (cause !== 'missed-detection' || paranoiaLevel === undefined || ruleLevels === undefined) return cause;
  const id = /\d{6}/.exec(result.stage.output.logContains ?? '')?.[0];
  const level = id === undefined ? undefined : ruleLevels.get(Number(id));
  return level !== undefined && level > paranoiaLevel ? 'paranoia-scope' : cause;
}

export function passRate(summary: Pick<RunSummary, 'total' | 'passed'>): number {
  return summary.total === 0 ? 0 : summary.passed / summary.total;
}

/** Stage ids that fail now but are not known to, and known ones that pass now (or no longer exist). */
export function compareWithKnown(results: readonly StageResult[], known: KnownFailures): { unexpected: string[]; fixed: string[] } {
  const failing = new Set(results.filter((r) => r.failures.length > 0).map((r) => r.stage.id));
  return {
    unexpected: [...failing].filter((id) => !(id in known.stages)),
    fixed: Object.keys(known.stages).filter((id) => !failing.has(id)),
  };
}

const percent = (tally: Tally): string => `${(100 * passRate(tally)).toFixed(2)}%`;

export function formatSummary(title: string, summary: RunSummary): string {
  const rows = [...summary.byRuleFile].sort(([a], [b]) => a.localeCompare(b));
  const width = Math.max(9, ...rows.map(([file]) => file.length));
  const line = (name: string, t: Tally): string =>
    `${name.padEnd(width)} ${String(t.total).padStart(6)} ${String(t.passed).padStart(6)} ${String(t.total - t.passed).padStart(6)} ${percent(t).padStart(8)}`;
  const out = [title, `${'rule file'.padEnd(width)} ${'stages'.padStart(6)} ${'passed'.padStart(6)} ${'failed'.padStart(6)} ${'pass'.padStart(8)}`];
  for (const [file, tally] of rows) out.push(line(file, tally));
  out.push(line('total', summary));
  return out.join('\n');
}

/** Failures grouped by cause, most frequent first; each line names the stage, what was expected and what the WAF logged. */
export function formatFailures(summary: RunSummary, verbose: boolean): string {
  const order: readonly ReportedCause[] = [...FAILURE_CAUSES, 'paranoia-scope'];
  const groups = [...summary.byCause].sort(([a, x], [b, y]) => y.length - x.length || order.indexOf(a) - order.indexOf(b));
  const out: string[] = [];
  for (const [cause, results] of groups) {
    out.push(`${cause}: ${results.length}`);
    for (const r of results) {
      const log = r.outcome?.log;
      const logged = log === null || log === undefined ? 'no log' : `logged: ${loggedRuleIds(log).join(' ') || 'nothing'}`;
      const status = r.outcome?.kind === 'response' ? `status ${r.outcome.status}` : r.outcome?.kind === 'error' ? 'ftw error' : 'not sent';
      out.push(`  ${r.stage.id} [${r.stage.ruleFile}] ${r.failures.map((f) => f.detail).join('; ')} (${status}; ${logged})`);
      if (verbose && log) for (const l of log) out.push(`      ${l}`);
    }
  }
  return out.join('\n');
}
