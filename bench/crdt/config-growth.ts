// How the tenant document's size and the process's memory grow over a long run of edits, with the fleet's
// compaction (src/crdt/config-replica.ts) and without it, side by side in one run: two replicas synced in
// memory each way, `--domains` domains uploaded, then `--rounds` rounds that each rewrite `--percent` of them
// (a day of operators and automation editing domains, compressed). Prints, every `--every` rounds, the
// history operations, the saved size and the heap and RSS (Automerge's memory lives in WebAssembly, which RSS
// counts and the JS heap does not).
//
//   node bench/crdt/config-growth.ts [--domains 10000] [--rounds 200] [--percent 5] [--every 20]
//
// The two variants run one after the other in separate child processes, so one's memory does not sit in
// the other's RSS.
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { ConfigDoc } from '../../src/crdt/config-doc.ts';
import { ConfigReplica, DEFAULT_COMPACTION, WARMUP_TICKS } from '../../src/crdt/config-replica.ts';

const { values } = parseArgs({
  options: {
    domains: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '200' },
    percent: { type: 'string', default: '5' },
    every: { type: 'string', default: '20' },
    variant: { type: 'string' },
  },
});
const domains = Number(values.domains);
const rounds = Number(values.rounds);
const perRound = Math.max(1, Math.round((domains * Number(values.percent)) / 100));
const every = Number(values.every);

interface Row {
  round: number;
  edits: number;
  generation: number;
  historyOps: number;
  savedKB: number;
  heapMB: number;
  rssMB: number;
}

async function variant(compaction: boolean): Promise<Row[]> {
  const replicas: ConfigReplica[] = [];
  const queue: (() => void)[] = [];
  for (const name of ['a', 'b']) {
    const i = replicas.length;
    replicas.push(
      new ConfigReplica({
        name,
        doc: ConfigDoc.create(),
        state: { actors: [], roster: { a: Date.now(), b: Date.now() } },
        send: (generation, _peer, envelope) => queue.push(() => replicas[1 - i]!.receive(name, generation, envelope)),
        announce: (generation, heads) => queue.push(() => replicas[1 - i]!.hello(name, generation, heads)),
        onRemoteChange: () => {},
        onGeneration: () => {},
        compaction: compaction ? DEFAULT_COMPACTION : null,
      }),
    );
  }
  const settle = async (ticks: number): Promise<void> => {
    for (let t = 0; t < ticks; t++) {
      for (const r of replicas) r.tick();
      for (let n = 0; n < 10_000 && queue.length > 0; n++) queue.shift()!();
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  const settings = (i: number, round: number): string => JSON.stringify({ host: `d${i}.example`, origins: [`http://10.${round & 255}.${i >> 8 & 255}.${i & 255}:8080`] });
  const writer = replicas[0]!;
  for (let i = 0; i < domains; i += 1_000) {
    writer.doc.put('domain', Array.from({ length: Math.min(1_000, domains - i) }, (_, k) => [`d${i + k}.example`, settings(i + k, 0)] as const));
  }
  writer.changed();
  await settle(WARMUP_TICKS);
  const rows: Row[] = [];
  const sample = (round: number): void => {
    globalThis.gc?.();
    const doc = replicas[1]!.doc;
    const mem = process.memoryUsage();
    rows.push({
      round,
      edits: round * perRound,
      generation: doc.generation(),
      historyOps: doc.historyOps(),
      savedKB: Math.round(doc.save().length / 1024),
      heapMB: Math.round(mem.heapUsed / 2 ** 20),
      rssMB: Math.round(mem.rss / 2 ** 20),
    });
  };
  sample(0);
  for (let round = 1; round <= rounds; round++) {
    const start = (round * perRound) % domains;
    writer.doc.put('domain', Array.from({ length: perRound }, (_, k) => [`d${(start + k) % domains}.example`, settings((start + k) % domains, round)] as const));
    writer.changed();
    await settle(3);
    if (round % every === 0) sample(round);
  }
  return rows;
}

if (values.variant !== undefined) {
  process.stdout.write(JSON.stringify(await variant(values.variant === 'compaction')));
} else {
  const run = (name: string): Row[] =>
    JSON.parse(execFileSync(process.execPath, ['--expose-gc', import.meta.filename, ...process.argv.slice(2), '--variant', name], { encoding: 'utf8', maxBuffer: 2 ** 26 })) as Row[];
  const without = run('none');
  const withCompaction = run('compaction');
  console.log(`${domains} domains, ${rounds} rounds of ${perRound} edits; the second replica's document (synced), per ${every} rounds`);
  console.log('round   edits | no compaction: ops  saved KB  heap MB  RSS MB | compaction: gen  ops  saved KB  heap MB  RSS MB');
  without.forEach((a, i) => {
    const b = withCompaction[i]!;
    console.log(
      `${String(a.round).padStart(5)} ${String(a.edits).padStart(7)} | ${String(a.historyOps).padStart(18)} ${String(a.savedKB).padStart(9)} ${String(a.heapMB).padStart(8)} ${String(a.rssMB).padStart(7)} | ${String(b.generation).padStart(15)} ${String(b.historyOps).padStart(5)} ${String(b.savedKB).padStart(9)} ${String(b.heapMB).padStart(8)} ${String(b.rssMB).padStart(7)}`,
    );
  });
  const last = without.length - 1;
  console.log(`after ${without[last]!.edits} edits: RSS ${without[last]!.rssMB} MB without compaction, ${withCompaction[last]!.rssMB} MB with it (ratio ${(withCompaction[last]!.rssMB / without[last]!.rssMB).toFixed(2)})`);
}
