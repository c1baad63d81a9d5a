// WAF detection bench: how many attacks each WAF refuses and how many legitimate requests it lets through,
// nginx + ModSecurity v3 + CRS 3.3.4 against SecBeat's WAF, both at paranoia level 1 in blocking mode, the same
// requests to both (issue 4: "more attacks caught and fewer legitimate requests blocked than ModSecurity + CRS
// at the same paranoia level"). The corpora (./corpus.ts) come from Debian packages and this machine, not from
// this repo; each value is sent in several places a real attacker uses (./placements.ts).
// 403 counts as refused, 200 as passed; anything else is reported apart (nginx's own 400s, for instance).
// The contenders are bench/waf's (./contenders.ts), started the same way on the proxy core.
//
//   node bench/waf/detection.ts [--proxies modsecurity,secbeat-waf] [--misses N] [--out FILE.json]
//
// Not part of the test suite: it takes a few minutes (ModSecurity answers a few hundred requests a second).
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseList } from '../cli.ts';
import { benchEnv, startRun, toolVersion } from '../l7/harness.ts';
import { startOrigin, withServer, type ProxyRecord } from '../l7/proxies.ts';
import { renderGrid } from '../l7/table.ts';
import { buildCorpus, CORPUS_PACKAGES, missingCorpusFiles } from './corpus.ts';
import { casesOf, exchangeOf, type Case } from './placements.ts';
import { exchange } from './workloads.ts';
import { LABELS, startContender, WAF_CONTENDERS, writeModsecurityRules, type Contender } from './contenders.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** Requests in flight per contender: enough to keep one nginx worker or one SecBeat worker busy. */
const IN_FLIGHT = 8;
const REQUEST_TIMEOUT_MS = 30_000;

type Outcome = 'refused' | 'passed' | 'other';

function outcomeOf(status: number): Outcome {
  return status === 403 ? 'refused' : status === 200 ? 'passed' : 'other';
}

/** Sends every case to one contender, IN_FLIGHT at a time; statuses in case order. */
async function runCases(port: number, cases: readonly Case[]): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  const statuses = new Array<number>(cases.length).fill(0);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < cases.length) {
      const i = next++;
      // No answer at all (a refused request's connection closed before its body was read): status 0.
      statuses[i] = await exchange(port, exchangeOf(cases[i] as Case), { agent, timeoutMs: REQUEST_TIMEOUT_MS }).then((r) => r.status, () => 0);
      if (++done % 1000 === 0) process.stderr.write(`  ${done} / ${cases.length}\n`);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  agent.destroy();
  return statuses;
}

// ------------------------------------------------------------------------------------------ report

interface Tally {
  refused: number;
  passed: number;
  other: number;
}

function tally(outcomes: readonly Outcome[]): Tally {
  const t: Tally = { refused: 0, passed: 0, other: 0 };
  for (const o of outcomes) t[o]++;
  return t;
}

function pct(n: number, of: number): string {
  return of === 0 ? '—' : `${((100 * n) / of).toFixed(1)} %`;
}

/** Rows grouped by `key`: per contender, the share refused (attacks) or refused (benign: false positives). */
function groupRows(cases: readonly Case[], outcomes: Readonly<Record<string, Outcome[]>>, kinds: readonly Contender[], key: (c: Case) => string): string[][] {
  const groups = new Map<string, number[]>();
  cases.forEach((c, i) => {
    const k = key(c);
    const list = groups.get(k) ?? [];
    list.push(i);
    groups.set(k, list);
  });
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, indexes]) => [
      k,
      String(indexes.length),
      ...kinds.map((kind) => {
        const t = tally(indexes.map((i) => outcomes[kind]?.[i] ?? 'other'));
        return `${pct(t.refused, indexes.length)}${t.other > 0 ? ` (+${t.other} other)` : ''}`;
      }),
    ]);
}

function table(title: string, rows: string[][], kinds: readonly Contender[]): string {
  return `${title}\n${renderGrid(['group', 'requests', ...kinds.map((k) => `${LABELS[k]} refused`)], rows, (i) => i === 0)}\n`;
}

function topCategory(c: Case): string {
  const [base, encoding] = c.sample.category.split('/');
  return encoding === undefined ? (base ?? '') : `encoded (${encoding})`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      proxies: { type: 'string', default: WAF_CONTENDERS.join(',') },
      misses: { type: 'string', default: '15' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: node bench/waf/detection.ts [--proxies modsecurity,secbeat-waf] [--misses N] [--out FILE.json]\n');
    return 0;
  }
  const kinds = parseList(values.proxies, WAF_CONTENDERS, '--proxies');
  const missing = missingCorpusFiles();
  if (missing.length > 0) {
    process.stderr.write(`missing corpus files ${missing.join(', ')}: install the Debian packages ${CORPUS_PACKAGES.join(', ')} (scripts/setup.sh does)\n`);
    return 1;
  }
  const corpus = buildCorpus();
  const attackCases = corpus.attacks.flatMap(casesOf);
  const benignCases = corpus.benign.flatMap(casesOf);
  const cases = [...attackCases, ...benignCases];
  process.stderr.write(`${corpus.attacks.length} attacks and ${corpus.benign.length} benign values: ${cases.length} requests per WAF\n`);

  const outcomes: Record<string, Outcome[]> = {};
  const statuses: Record<string, number[]> = {};
  const record: ProxyRecord = { stops: [], complaints: [] };
  {
    await using run = startRun({ tmpPrefix: 'secbeat-bench-detect-', loadCore: 0, watchdogMs: 60 * 60_000 });
    const env = benchEnv(run, { root: ROOT, secbeatRef: null, cpuProf: undefined, secbeat: kinds.includes('secbeat-waf') });
    const modsecDir = join(run.tmp, 'modsecurity');
    mkdirSync(modsecDir);
    const rules = writeModsecurityRules(modsecDir);
    const origin = await startOrigin(env, 0);
    for (const kind of kinds) {
      process.stderr.write(`${LABELS[kind]}: ${cases.length} requests\n`);
      await withServer(startContender(env, kind, origin.port, rules), record, async (proxy) => {
        const s = await runCases(proxy.port, cases);
        statuses[kind] = s;
        outcomes[kind] = s.map(outcomeOf);
      });
    }
  }

  const attackOutcomes = Object.fromEntries(kinds.map((k) => [k, outcomes[k]?.slice(0, attackCases.length) ?? []]));
  const benignOutcomes = Object.fromEntries(kinds.map((k) => [k, outcomes[k]?.slice(attackCases.length) ?? []]));
  const out: string[] = [];
  const total = (list: Readonly<Record<string, Outcome[]>>, label: string, n: number): string[] => [
    label,
    String(n),
    ...kinds.map((k) => {
      const t = tally(list[k] ?? []);
      return `${pct(t.refused, n)}${t.other > 0 ? ` (+${t.other} other)` : ''}`;
    }),
  ];
  out.push(
    `\nWAF detection, CRS ${toolVersion('dpkg-query', ['-W', '-f', '${Version}', 'modsecurity-crs']) ?? '?'} at paranoia level 1, blocking; ` +
      `${corpus.attacks.length} attack values and ${corpus.benign.length} benign values, each in several placements\n`,
  );
  out.push(table('Overall (attacks: higher is better; benign: lower is better)', [total(attackOutcomes, 'attacks', attackCases.length), total(benignOutcomes, 'benign (false positives)', benignCases.length)], kinds));
  out.push(table('Attacks by category', groupRows(attackCases, attackOutcomes, kinds, topCategory), kinds));
  out.push(table('Attacks by placement', groupRows(attackCases, attackOutcomes, kinds, (c) => c.placement), kinds));
  out.push(table('Attacks by source', groupRows(attackCases, attackOutcomes, kinds, (c) => c.sample.source.split(',')[0] ?? ''), kinds));
  out.push(table('Benign by kind (false positives)', groupRows(benignCases, benignOutcomes, kinds, (c) => c.sample.category), kinds));
  out.push(table('Benign by placement (false positives)', groupRows(benignCases, benignOutcomes, kinds, (c) => c.placement), kinds));

  const misses = Number(values.misses);
  if (kinds.includes('secbeat-waf') && kinds.includes('modsecurity') && misses > 0) {
    const list = (title: string, pick: (i: number) => boolean): void => {
      const hits = cases.map((c, i) => [c, i] as const).filter(([, i]) => pick(i));
      out.push(`${title}: ${hits.length}`);
      for (const [c, i] of hits.slice(0, misses)) {
        out.push(`  ${c.placement.padEnd(7)} ${c.sample.category.padEnd(14)} ${statuses.modsecurity?.[i]}/${statuses['secbeat-waf']?.[i]} ${JSON.stringify(c.sample.value).slice(0, 120)}`);
      }
    };
    const o = (k: Contender, i: number): Outcome | undefined => outcomes[k]?.[i];
    list('Attacks ModSecurity refused and SecBeat passed (placement, category, statuses ModSec/SecBeat, value)', (i) => i < attackCases.length && o('modsecurity', i) === 'refused' && o('secbeat-waf', i) !== 'refused');
    list('Benign requests SecBeat refused', (i) => i >= attackCases.length && o('secbeat-waf', i) === 'refused');
    list('Benign requests ModSecurity refused', (i) => i >= attackCases.length && o('modsecurity', i) === 'refused');
  }
  if (record.complaints.length > 0) out.push(`\nnote: the contenders logged ${record.complaints.length} warning lines (first: ${record.complaints[0]})`);
  process.stdout.write(`${out.join('\n')}\n`);
  if (values.out !== undefined) {
    writeFileSync(values.out, JSON.stringify({ cases: cases.map((c, i) => ({ ...c, statuses: Object.fromEntries(kinds.map((k) => [k, statuses[k]?.[i]])) })) }, null, 1));
  }
  return 0;
}

process.exitCode = await main();
