// The WAF engine alone, in this process: CPU per request and bytes allocated per request for bench/waf's two
// benign workloads (CRS 3.3.4 at paranoia level 1 with SecBeat's supplement, blocking), without a proxy around
// it. bench/waf/run.ts measures what an operator gets; this measures what the engine itself costs, and one
// condition docs/bench.md found to raise it in the proxy:
//
//   --live N   N transactions alive at once (phase 1 of one request, then phase 2 of the one begun N − 1
//              requests before), as N connections can keep them: their caches outlive the young generation
//
//   node bench/waf/engine.ts [--only get,post] [--requests N] [--live N]
//
// Timing runs in a child with the young generation of an L7 data-plane thread with the WAF on (16 MiB
// semi-spaces, src/node/node.ts); each figure is the best of five rounds of `--requests` requests (the child's
// CPU time). Bytes allocated come from a child whose young generation is too large to collect during the count.
// Not part of the test suite; every request must pass (a false positive throws).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createWaf, type RuleSet } from '../../src/waf/engine.ts';
import { SECBEAT_RULES_DIR } from '../../src/waf/load.ts';
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
    'timing-child': { type: 'boolean', default: false },
    'allocation-child': { type: 'string' },
  },
});

/** The rule set, compiled in the children that run requests only (the parent just reports). */
function loadRuleSet(): RuleSet {
  const { ruleSet, errors } = createWaf({ crs: { paranoiaLevel: 1, supplementDir: SECBEAT_RULES_DIR }, mode: 'On' });
  if (errors.length > 0) throw new Error(`the CRS did not load cleanly: ${errors[0]!.message}`);
  return ruleSet;
}

function wafRequest(name: WorkloadName): { request: WafRequest; body: string | null } {
  const exchange = WORKLOADS[name];
  const headers: [string, string][] = Object.entries(exchange.headers);
  if (exchange.body !== '') headers.push(['Content-Length', String(exchange.body.length)]);
  const request = { method: exchange.method, uri: exchange.path, protocol: 'HTTP/1.1', headers, remoteAddr: '192.0.2.1', remotePort: 40000, serverAddr: '192.0.2.2', serverPort: 80 };
  return { request, body: exchange.body === '' ? null : exchange.body };
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
function driver(name: WorkloadName, live: number): () => void {
  const ruleSet = loadRuleSet();
  const { request, body } = wafRequest(name);
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

function main(): void {
  const names = values.only.split(',').filter((n): n is WorkloadName => n === 'get' || n === 'post');
  const requests = Number(values.requests);
  const live = Number(values.live);
  if (values['allocation-child'] !== undefined) return allocationChild(values['allocation-child'] as WorkloadName);
  if (values['timing-child']) return timingChild(names, requests, live);
  console.log(`CRS 3.3.4 PL1 + supplement; ${live} transaction(s) alive at once`);
  const timing = child(TIMING_FLAGS, ['--timing-child', '--only', names.join(','), '--requests', String(requests), '--live', String(live)]);
  for (const line of timing.trim().split('\n')) {
    const [name, micros] = line.split(' ') as [WorkloadName, string];
    const kilobytes = Number(child(ALLOCATION_FLAGS, ['--allocation-child', name])) / 1024;
    console.log(`${name}: ${Number(micros).toFixed(1)} µs of CPU per request, ${kilobytes.toFixed(1)} KB allocated per request`);
  }
}

main();
