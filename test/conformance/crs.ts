// `npm run conformance:crs`: replays the CRS 3.3.4 regression suite and prints the pass rate, a table per rule
// file and every failure with its cause. In-process by default, at the paranoia level CRS's CI uses (4);
// `--pl all` runs levels 1-4 in turn. `--node` starts an L7 node (./node-target.ts) and sends the stages to it
// over sockets, judged by the node's own rule-match log; `--target host:port` sends them to a node already
// running, with no log (status and response expectations only).
//
//   node test/conformance/crs.ts [--pl 1|2|3|4|all] [--filter REGEX] [--node | --target HOST:PORT] [--verbose]
//
// Exits 1 when the run at PL4 (in-process, or through a node with --node) differs from its known failures
// (known-failures.json, node-known-failures.json: a new failure, or a known one that now passes) or passes
// fewer than 98% of the stages.
import { parseArgs } from 'node:util';
import { CI_PARANOIA_LEVEL, PARANOIA_LEVELS, type ParanoiaLevel, ruleParanoiaLevels } from './crs-setup.ts';
import { engineTarget } from './engine-target.ts';
import { nodeTarget } from './node-target.ts';
import { loadCorpus, type Stage } from './ftw.ts';
import { compareWithKnown, formatFailures, formatSummary, loadKnownFailures, passRate, REQUIRED_PASS_RATE, summarize } from './report.ts';
import { runStages } from './runner.ts';
import { socketTarget } from './socket-target.ts';
import type { Target } from './target.ts';

const { values } = parseArgs({
  options: {
    pl: { type: 'string', default: String(CI_PARANOIA_LEVEL) },
    filter: { type: 'string' },
    target: { type: 'string' },
    node: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
});

const levels: ParanoiaLevel[] =
  values.pl === 'all' ? [...PARANOIA_LEVELS] : PARANOIA_LEVELS.filter((level) => String(level) === values.pl);
if (levels.length === 0) {
  console.error(`--pl must be 1, 2, 3, 4 or all, not ${values.pl}`);
  process.exit(2);
}

const corpus = loadCorpus();
if (corpus.issues.length > 0) {
  for (const issue of corpus.issues) console.error(`${issue.where}: ${issue.message}`);
  process.exit(2);
}
const filter = values.filter === undefined ? null : new RegExp(values.filter);
const stages: Stage[] = corpus.stages.filter((s) => filter === null || filter.test(s.id));
const ruleLevels = ruleParanoiaLevels();
const rates: string[] = [];
let exitCode = 0;

for (const level of levels) {
  const target = await openTarget(level);
  const started = performance.now();
  const results = await runStages(stages, target);
  await target.close();
  const seconds = (performance.now() - started) / 1000;
  const summary = summarize(results, level, ruleLevels);
  const title = `CRS 3.3.4 regression suite, ${target.name}: ${stages.length} stages (${corpus.disabledTests} disabled by the suite), ${seconds.toFixed(1)} s`;
  console.log(`\n${formatSummary(title, summary)}\n\n${formatFailures(summary, values.verbose)}`);
  const rate = passRate(summary);
  rates.push(`PL${level}: ${summary.passed}/${summary.total} = ${(100 * rate).toFixed(2)}%`);
  if (values.target === undefined && level === CI_PARANOIA_LEVEL && filter === null) {
    const known = loadKnownFailures(values.node ? 'node' : 'engine');
    const { unexpected, fixed } = compareWithKnown(results, known);
    console.log(`\nagainst ${values.node ? 'node-known-failures.json' : 'known-failures.json'}: ${unexpected.length} unexpected failures, ${fixed.length} known failures now pass`);
    for (const id of unexpected) console.log(`  new failure: ${id}`);
    for (const id of fixed) console.log(`  now passes: ${id} (known: ${known.stages[id]})`);
    if (unexpected.length > 0 || fixed.length > 0 || rate < REQUIRED_PASS_RATE) exitCode = 1;
  }
  console.log(`\n${summary.passed} passed, ${summary.total - summary.passed} failed`);
}
if (rates.length > 1) console.log(`\npass rate by paranoia level\n${rates.join('\n')}`);
process.exit(exitCode);

async function openTarget(level: ParanoiaLevel): Promise<Target> {
  if (values.node) return nodeTarget(level);
  if (values.target === undefined) {
    const { target, errors } = engineTarget(level);
    for (const error of errors) console.error(`rule set: ${error}`);
    return target;
  }
  const colon = values.target.lastIndexOf(':');
  return socketTarget({ host: values.target.slice(0, colon), port: Number(values.target.slice(colon + 1)) });
}
