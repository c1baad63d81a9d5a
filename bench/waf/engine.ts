// The WAF engine alone, in this process: CPU per request and bytes allocated per request for bench/waf's two
// benign workloads (CRS 3.3.4 at paranoia level 1 with SecBeat's supplement, blocking), without a proxy around
// it. bench/waf/run.ts measures what an operator gets; this measures what the engine itself costs, and one
// condition docs/bench.md found to raise it in the proxy:
//
//   --live N   N transactions alive at once (phase 1 of one request, then phase 2 of the one begun N − 1
//              requests before), as N connections can keep them: their caches outlive the young generation
//
//   --against REF   the same requests on the engine at git REF too, in the same process, in alternating rounds
//                   (--rounds of them): the median of the per-round ratios, this tree over REF. Two processes
//                   measured one after the other disagree by ±5 % on this VM, whose speed drifts over tens of
//                   seconds; rounds interleaved in one process see the same drift. The same code ran 1.6 % and
//                   4.8 % faster compiled second than compiled first in two tries (and as fast in a third), so
//                   each comparison runs twice, in two children that compile the rule sets in opposite orders,
//                   and the two ratios are averaged (geometric mean). About ±1.5 % remains.
//
//   --without IDS   what some rules cost (IDS as SecRuleRemoveById takes them: `920450` or `942000-942999`,
//                   comma-separated): the rule set with and without them, interleaved and in both compile orders as
//                   --against runs; the median ratio times the best round without them, in µs. A removed rule's
//                   shared work (a scan, a transformation) moves to the next rule that needs it, so this is the
//                   rules' marginal cost.
//
//   --breakdown   the POST's cost taken apart: the same request with one field (`a=1`), with its nineteen short
//                 fields and no message, with 400 bytes of the message, and whole; then the cost of the request
//                 itself, of each short field and of each byte of the message, by difference
//
//   node bench/waf/engine.ts [--only get,post] [--requests N] [--live N] [--against REF | --without IDS [--rounds N]]
//                            [--breakdown]
//
// Timing runs in a child with the young generation of an L7 data-plane thread with the WAF on (16 MiB
// semi-spaces, src/node/node.ts); each figure is the best of five rounds of `--requests` requests (the child's
// CPU time). Bytes allocated come from a child whose young generation is too large to collect during the count.
// Not part of the test suite; every request must pass (a false positive throws).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createWaf, type RuleSet } from '../../src/waf/engine.ts';
import { SECBEAT_RULES_DIR } from '../../src/waf/load.ts';
import { extractRef } from '../tcp/proxies.ts';
import type { WafRequest } from '../../src/waf/request.ts';
import type { Transaction } from '../../src/waf/transaction.ts';
import { WORKLOADS, type WorkloadName } from './workloads.ts';

const ROUNDS = 5;
const WARMUP_REQUESTS = 3_000;
/** The allocation child's young generation: large enough that counting a thousand requests triggers no scavenge. */
const ALLOCATION_FLAGS = ['--expose-gc', '--max-semi-space-size=1024', '--min-semi-space-size=1024'];
/** The timing child's: what an L7 data-plane thread with the WAF on gets (48 MB young generation). */
const TIMING_FLAGS = ['--max-semi-space-size=16'];
const ALLOCATION_REQUESTS = 1_000;

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: 'get,post' },
    requests: { type: 'string', default: '5000' },
    live: { type: 'string', default: '1' },
    against: { type: 'string' },
    without: { type: 'string' },
    rounds: { type: 'string', default: '20' },
    'timing-child': { type: 'boolean', default: false },
    'allocation-child': { type: 'string' },
    'against-child': { type: 'string' },
    'without-child': { type: 'string' },
    'baseline-first': { type: 'boolean', default: false },
    breakdown: { type: 'boolean', default: false },
    'breakdown-child': { type: 'boolean', default: false },
  },
});

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface EngineModules {
  createWaf: typeof createWaf;
  supplementDir: string;
}

const THIS_TREE: EngineModules = { createWaf, supplementDir: SECBEAT_RULES_DIR };

/** The engine of another tree (--against): its own compiler, rules and supplement. */
async function engineAt(root: string): Promise<EngineModules> {
  const engine = (await import(pathToFileURL(join(root, 'src/waf/engine.ts')).href)) as { createWaf: typeof createWaf };
  const load = (await import(pathToFileURL(join(root, 'src/waf/load.ts')).href)) as { SECBEAT_RULES_DIR: string };
  return { createWaf: engine.createWaf, supplementDir: load.SECBEAT_RULES_DIR };
}

/**
 * The rule set, compiled in the children that run requests only (the parent just reports); `removed`: rule ids
 * to leave out (--without).
 */
function loadRuleSet(modules: EngineModules = THIS_TREE, removed?: string): RuleSet {
  const rules = removed === undefined ? {} : { rules: removed.split(',').map((ids) => `SecRuleRemoveById ${ids}`).join('\n') };
  const { ruleSet, errors } = modules.createWaf({ crs: { paranoiaLevel: 1, supplementDir: modules.supplementDir }, mode: 'On', ...rules });
  if (errors.length > 0) throw new Error(`the CRS did not load cleanly: ${errors[0]!.message}`);
  return ruleSet;
}

/** The workload's request, with `body` instead of its own when given (--breakdown). */
function wafRequest(name: WorkloadName, body = WORKLOADS[name].body): { request: WafRequest; body: string | null } {
  const exchange = WORKLOADS[name];
  const headers: [string, string][] = Object.entries(exchange.headers);
  if (body !== '') headers.push(['Content-Length', String(body.length)]);
  const request = { method: exchange.method, uri: exchange.path, protocol: 'HTTP/1.1', headers, remoteAddr: '192.0.2.1', remotePort: 40000, serverAddr: '192.0.2.2', serverPort: 80 };
  return { request, body: body === '' ? null : body };
}

function finish(tx: Transaction, body: string | null): void {
  const hit = tx.requestBody(body);
  // As the proxy does (src/http/waf-gate.ts): the next transaction takes this one's mark words.
  tx.end();
  if (hit !== null) throw new Error(`a benign request was refused by rule ${hit.ruleId}`);
}

/**
 * One request's worth of work: both phases back to back, or with `live` > 1 the first phase of a request and
 * the second of the one begun `live` − 1 requests before, so that `live` transactions are alive at once.
 */
function driver(name: WorkloadName, live: number, ruleSet: RuleSet = loadRuleSet(), form?: string): () => void {
  const { request, body } = wafRequest(name, form);
  const begin = (): Transaction => {
    const tx = ruleSet.begin(request);
    const hit = tx.requestHeaders();
    if (hit !== null) throw new Error(`a benign request was refused by rule ${hit.ruleId}`);
    return tx;
  };
  if (live <= 1) return () => finish(begin(), body);
  const ring: (Transaction | null)[] = new Array<Transaction | null>(live - 1).fill(null);
  let next = 0;
  return () => {
    const slot = next++ % ring.length;
    const begun = ring[slot];
    if (begun !== null && begun !== undefined) finish(begun, body);
    ring[slot] = begin();
  };
}

/** Best microseconds of CPU per call over ROUNDS rounds. */
function cpuPerCall(run: () => void, count: number): number {
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const started = process.cpuUsage();
    for (let i = 0; i < count; i++) run();
    const used = process.cpuUsage(started);
    best = Math.min(best, (used.user + used.system) / count);
  }
  return best;
}

function allocationChild(name: WorkloadName): void {
  const run = driver(name, 1);
  for (let i = 0; i < WARMUP_REQUESTS; i++) run();
  (globalThis as { gc?: () => void }).gc!();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < ALLOCATION_REQUESTS; i++) run();
  process.stdout.write(String((process.memoryUsage().heapUsed - before) / ALLOCATION_REQUESTS));
}

/** Runs this script in a child with `flags` and the given arguments; its standard output. */
function child(flags: readonly string[], args: readonly string[]): string {
  const run = spawnSync(process.execPath, [...flags, fileURLToPath(import.meta.url), ...args], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`child failed: ${run.stderr.trim().split('\n').at(-1) ?? run.status}`);
  return run.stdout;
}

function timingChild(names: readonly WorkloadName[], requests: number, live: number): void {
  for (const name of names) {
    const run = driver(name, live);
    for (let i = 0; i < WARMUP_REQUESTS; i++) run();
    process.stdout.write(`${name} ${cpuPerCall(run, requests)}\n`);
  }
}

const median = (sorted: readonly number[]): number => sorted[Math.floor(sorted.length / 2)]!;

/** Where the POST's free-text field starts (workloads.ts), and how much of it --breakdown's third form keeps. */
const MESSAGE_FIELD = '&message=';
const BREAKDOWN_MESSAGE_BYTES = 400;

/** The POST's form cut down: one field, the short fields alone, with part of the message, whole. */
function breakdownForms(): { label: string; body: string }[] {
  const whole = WORKLOADS.post.body;
  const fields = whole.slice(0, whole.indexOf(MESSAGE_FIELD));
  const withMessage = (bytes: number) => whole.slice(0, fields.length + MESSAGE_FIELD.length + bytes);
  return [
    { label: 'one field', body: 'a=1' },
    { label: 'short fields', body: fields },
    { label: 'message part', body: withMessage(BREAKDOWN_MESSAGE_BYTES) },
    { label: 'whole', body: whole },
  ];
}

/** Each breakdown form's µs per request, one line each, in breakdownForms' order. */
function breakdownChild(requests: number): void {
  const ruleSet = loadRuleSet();
  for (const { body } of breakdownForms()) {
    const run = driver('post', 1, ruleSet, body);
    for (let i = 0; i < WARMUP_REQUESTS; i++) run();
    // A POST costs about four GETs: a fifth of --requests a round keeps each form's rounds as long as a GET's.
    process.stdout.write(`${cpuPerCall(run, Math.ceil(requests / 5))}\n`);
  }
}

function breakdown(requests: number): void {
  const forms = breakdownForms();
  const micros = child(TIMING_FLAGS, ['--breakdown-child', '--requests', String(requests)]).trim().split('\n').map(Number);
  const [one, fields, part, whole] = micros as [number, number, number, number];
  const shortFields = forms[1]!.body.split('&').length;
  const messageBytes = forms[3]!.body.length - forms[1]!.body.length - MESSAGE_FIELD.length;
  console.log(`CRS 3.3.4 PL1 + supplement; bench/waf's POST taken apart (µs of CPU per request, best of ${ROUNDS} rounds)`);
  forms.forEach(({ label, body }, i) => console.log(`  ${label.padEnd(13)} ${String(body.length).padStart(5)} B  ${micros[i]!.toFixed(1)} µs`));
  console.log(`the request with one field: ${one.toFixed(1)} µs`);
  console.log(`each further short field (name and value): ${((fields - one) / (shortFields - 1)).toFixed(2)} µs (${shortFields} fields)`);
  console.log(`each byte of the message: ${(((whole - fields) / messageBytes) * 1000).toFixed(1)} ns (${messageBytes} B; its first ${BREAKDOWN_MESSAGE_BYTES} B: ${(((part - fields) / BREAKDOWN_MESSAGE_BYTES) * 1000).toFixed(1)} ns a byte)`);
}

/** --without's argument: what SecRuleRemoveById takes, comma-separated. */
const RULE_IDS = /^\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*$/;

/** What a comparison measures this tree's rule set against: another tree's (--against), or itself less some rules. */
type Baseline = { kind: 'tree'; root: string } | { kind: 'without'; ids: string };

/**
 * Both rule sets on each workload, in `rounds` rounds: in each, `count` requests on one then the other (the order
 * alternating), timed by the process's CPU. Prints the best round of each and the median ratio.
 */
async function comparisonChild(baseline: Baseline, names: readonly WorkloadName[], rounds: number, baselineFirst: boolean): Promise<void> {
  const reference = baseline.kind === 'tree' ? await engineAt(baseline.root) : THIS_TREE;
  const removed = baseline.kind === 'without' ? baseline.ids : undefined;
  for (const name of names) {
    // Compiled in the order asked (see --against above); runs[0] is always this tree's.
    const theirs = baselineFirst ? driver(name, 1, loadRuleSet(reference, removed)) : null;
    const mine = driver(name, 1);
    const runs = [mine, theirs ?? driver(name, 1, loadRuleSet(reference, removed))] as const;
    const count = name === 'get' ? 2_000 : 600;
    for (const run of runs) for (let i = 0; i < WARMUP_REQUESTS; i++) run();
    const micros: [number[], number[]] = [[], []];
    for (let round = 0; round < rounds; round++) {
      for (const which of round % 2 === 0 ? [0, 1] : [1, 0]) {
        const run = runs[which]!;
        const started = process.cpuUsage();
        for (let i = 0; i < count; i++) run();
        const used = process.cpuUsage(started);
        micros[which]!.push((used.user + used.system) / count);
      }
    }
    const ratios = micros[0].map((own, i) => own / micros[1][i]!).sort((a, b) => a - b);
    const best = (list: number[]): number => Math.min(...list);
    process.stdout.write(`${name} ${best(micros[0])} ${best(micros[1])} ${median(ratios)}\n`);
  }
}

/** One comparison child's line per workload: best µs of this tree, of the baseline, and the median ratio. */
type Comparison = [WorkloadName, number, number, number];

/** A comparison child run with this tree's rule set compiled first, then one with the baseline's first. */
function compareBothOrders(childArgs: readonly string[]): { thisFirst: Comparison[]; baselineFirst: Comparison[] } {
  const parse = (out: string) => out.trim().split('\n').map((line) => line.split(' ').map((field, i) => (i === 0 ? field : Number(field))) as Comparison);
  return { thisFirst: parse(child(TIMING_FLAGS, childArgs)), baselineFirst: parse(child(TIMING_FLAGS, [...childArgs, '--baseline-first'])) };
}

function compareAgainst(ref: string, names: readonly WorkloadName[], rounds: number): void {
  const dir = mkdtempSync(join(tmpdir(), 'secbeat-engine-'));
  try {
    const refRoot = extractRef(ROOT, ref, dir);
    console.log(`CRS 3.3.4 PL1 + supplement; this tree against ${ref}, ${rounds} alternating rounds in each of two processes`);
    const { thisFirst, baselineFirst } = compareBothOrders(['--against-child', refRoot, '--only', names.join(','), '--rounds', String(rounds)]);
    thisFirst.forEach(([name, mine, theirs, ratio], i) => {
      const [, mine2, theirs2, ratio2] = baselineFirst[i]!;
      const combined = Math.sqrt(ratio * ratio2);
      const change = (combined - 1) * 100;
      console.log(
        `${name}: median ratio ${combined.toFixed(3)} (${change >= 0 ? '+' : ''}${change.toFixed(1)} %; ${ratio.toFixed(3)} with this tree compiled first, ${ratio2.toFixed(3)} second); ` +
          `best rounds ${Math.min(theirs, theirs2).toFixed(1)} → ${Math.min(mine, mine2).toFixed(1)} µs`,
      );
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function compareWithout(ids: string, names: readonly WorkloadName[], rounds: number): void {
  console.log(`CRS 3.3.4 PL1 + supplement; with and without ${ids}, ${rounds} alternating rounds in each of two processes`);
  const { thisFirst, baselineFirst } = compareBothOrders(['--without-child', ids, '--only', names.join(','), '--rounds', String(rounds)]);
  thisFirst.forEach(([name, whole, less, ratio], i) => {
    const [, whole2, less2, ratio2] = baselineFirst[i]!;
    // From the ratios, which a slow phase leaves alone (it stretches both sets of a round), on the best round
    // without the rules: a difference of µs per round grows with the phase.
    const fastest = Math.min(less, less2);
    const cost = (withOverWithout: number): string => ((withOverWithout - 1) * fastest).toFixed(2);
    console.log(
      `${name}: ${ids} cost ${cost(Math.sqrt(ratio * ratio2))} µs a request (${cost(ratio)} with the whole set compiled first, ${cost(ratio2)} second); ` +
        `best rounds ${Math.min(whole, whole2).toFixed(1)} µs with them, ${fastest.toFixed(1)} without`,
    );
  });
}

async function main(): Promise<void> {
  const names = values.only.split(',').filter((n): n is WorkloadName => n === 'get' || n === 'post');
  const requests = Number(values.requests);
  const live = Number(values.live);
  if (values['allocation-child'] !== undefined) return allocationChild(values['allocation-child'] as WorkloadName);
  if (values['timing-child']) return timingChild(names, requests, live);
  const rounds = Number(values.rounds);
  const baselineFirst = values['baseline-first'];
  if (values['against-child'] !== undefined) return comparisonChild({ kind: 'tree', root: values['against-child'] }, names, rounds, baselineFirst);
  if (values['without-child'] !== undefined) return comparisonChild({ kind: 'without', ids: values['without-child'] }, names, rounds, baselineFirst);
  if (values.against !== undefined) return compareAgainst(values.against, names, rounds);
  if (values.without !== undefined) {
    // Spliced into SecLang: ids and ranges only.
    if (!RULE_IDS.test(values.without)) throw new Error(`--without takes rule ids and ranges (920450,942000-942999), not "${values.without}"`);
    return compareWithout(values.without, names, rounds);
  }
  if (values['breakdown-child']) return breakdownChild(requests);
  if (values.breakdown) return breakdown(requests);
  console.log(`CRS 3.3.4 PL1 + supplement; ${live} transaction(s) alive at once`);
  const timing = child(TIMING_FLAGS, ['--timing-child', '--only', names.join(','), '--requests', String(requests), '--live', String(live)]);
  for (const line of timing.trim().split('\n')) {
    const [name, micros] = line.split(' ') as [WorkloadName, string];
    const kilobytes = Number(child(ALLOCATION_FLAGS, ['--allocation-child', name])) / 1024;
    console.log(`${name}: ${Number(micros).toFixed(1)} µs of CPU per request, ${kilobytes.toFixed(1)} KB allocated per request`);
  }
}

await main();
