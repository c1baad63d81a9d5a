// The tenant document across generations (src/crdt/config-replica.ts) over a transport that loses,
// duplicates and reorders (fast-check's scheduler decides every delivery), with partitions, node restarts
// (the saved document and replica state reloaded, a new incarnation), crashes (back to the last save) and
// automatic compaction whenever a replica's history outgrows its entries and it is level with every peer:
// once healed, every replica is on the same generation with the same domains; a domain written by one
// replica only, which never crashed, holds that replica's last write, whichever generation it was written
// in; and a domain written by a replica that crashed holds a value somebody wrote (or nothing).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigDoc } from '../../src/crdt/config-doc.ts';
import { ConfigReplica, WARMUP_TICKS, type ReplicaState } from '../../src/crdt/config-replica.ts';
import { fcParams } from '../helpers/fc.ts';

const HOSTS = ['a.example', 'b.example', 'c.example', 'd.example', 'e.example'];
const MAX_DELIVERIES = 20_000;
/** Ticks after the heal: a generation to fetch and a pair to level take a few intervals each. */
const HEAL_ROUNDS = 40;

type Step =
  | { kind: 'edit'; replica: number; host: string; value: number | null }
  | { kind: 'tick'; deliver: number }
  | { kind: 'restart'; replica: number }
  | { kind: 'crash'; replica: number }
  | { kind: 'partition'; cut: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('edit' as const), replica: fc.nat({ max: 4 }), host: fc.constantFrom(...HOSTS), value: fc.option(fc.nat({ max: 99 }), { freq: 4 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('tick' as const), deliver: fc.nat({ max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), replica: fc.nat({ max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('crash' as const), replica: fc.nat({ max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('partition' as const), cut: fc.nat({ max: 31 }) }) },
);

describe('ConfigReplica (property)', () => {
  it('converges across compactions, partitions, restarts and crashes, keeping every single writer\'s last write', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.integer({ min: 2, max: 5 }),
        fc.array(step, { maxLength: 40, size: "medium" }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 32 }),
        fc.integer({ min: 1, max: 12 }),
        async (s, count, steps, dropPattern, quietRounds) => {
          const names = Array.from({ length: count }, (_, i) => `r${i}`);
          let healed = false;
          let cut = 0;
          let sent = 0;
          let incarnations = 0;
          const cutOff = (i: number): boolean => (cut & (1 << i)) !== 0;
          const deliver = (from: number, to: number, what: string, run: () => void): void => {
            const n = sent++;
            if (n > MAX_DELIVERIES || (!healed && (cutOff(from) !== cutOff(to) || dropPattern[n % dropPattern.length]))) return;
            void s.schedule(Promise.resolve(), what).then(run);
            if (!healed && n % 3 === 0) void s.schedule(Promise.resolve(), `${what} (again)`).then(run);
          };
          const replicas: ConfigReplica[] = [];
          /** Each replica's live incarnation: one that was replaced (a compaction of its may still finish) sends nothing. */
          const live: number[] = [];
          const open = (i: number, doc: ConfigDoc, state: ReplicaState = { actors: [], roster: Object.fromEntries(names.map((n) => [n, 0])) }): ConfigReplica => {
            const incarnation = ++incarnations;
            live[i] = incarnation;
            return new ConfigReplica({
              name: names[i]!,
              doc,
              state,
              send: (generation, peer, envelope) => {
                const j = Number(peer.slice(1));
                if (live[i] === incarnation) deliver(i, j, `r${i}→${peer} g${generation}`, () => replicas[j]!.receive(names[i]!, generation, envelope));
              },
              announce: (generation, heads) => {
                if (live[i] !== incarnation) return;
                for (let j = 0; j < count; j++) if (j !== i) deliver(i, j, `r${i} hello→r${j}`, () => replicas[j]!.hello(names[i]!, generation, heads));
              },
              onRemoteChange: () => {},
              onGeneration: () => {},
              // Compaction whenever the history holds more than one operation per entry plus 1, so runs compact often.
              compaction: { minOps: 1, factor: 1 },
              rosterMs: Number.MAX_SAFE_INTEGER,
              now: () => 0,
              pause: () => Promise.resolve(),
              epoch: incarnation,
            });
          };
          for (let i = 0; i < count; i++) replicas.push(open(i, ConfigDoc.create()));
          for (let round = 0; round < WARMUP_TICKS; round++) for (const r of replicas) r.tick();
          // What each replica last saved (at every tick step, as a node saves shortly after a change): a crash
          // goes back to it, losing what it wrote since unless a peer has it.
          const saved = replicas.map((r) => ({ bytes: r.doc.save(), state: r.state() }));
          const crashed = new Set<number>();

          const writes = new Map<string, { replica: number; value: string | null }[]>();
          const run = async (part: readonly Step[]): Promise<void> => {
            for (const st of part) {
              if (st.kind === 'edit') {
                const i = st.replica % count;
                const r = replicas[i]!;
                const value = st.value === null ? null : JSON.stringify({ origins: [`http://10.0.0.${st.value}:80`] });
                if (value === null) r.doc.remove('domain', [st.host]);
                else r.doc.put('domain', [[st.host, value]]);
                writes.set(st.host, [...(writes.get(st.host) ?? []), { replica: i, value }]);
                r.changed();
              } else if (st.kind === 'tick') {
                for (const r of replicas) r.tick();
                for (let k = 0; k < st.deliver && s.count() > 0; k++) await s.waitOne();
                replicas.forEach((r, i) => (saved[i] = { bytes: r.doc.save(), state: r.state() }));
              } else if (st.kind === 'restart') {
                // A graceful restart: the document and the replica's state saved, loaded by a new incarnation.
                const i = st.replica % count;
                const old = replicas[i]!;
                replicas[i] = open(i, ConfigDoc.load(old.doc.save()), old.state());
                for (let round = 0; round < WARMUP_TICKS; round++) replicas[i]!.tick();
              } else if (st.kind === 'crash') {
                const i = st.replica % count;
                crashed.add(i);
                replicas[i] = open(i, ConfigDoc.load(saved[i]!.bytes), saved[i]!.state);
                for (let round = 0; round < WARMUP_TICKS; round++) replicas[i]!.tick();
              } else {
                cut = st.cut;
              }
            }
          };
          /** Every message delivered for `rounds` ticks (the fleet compacts when its history has grown). */
          const heal = async (rounds: number): Promise<void> => {
            await s.waitAll();
            healed = true;
            for (let round = 0; round < rounds; round++) {
              for (const r of replicas) r.tick();
              await s.waitAll();
            }
          };
          // Two halves with a quiet spell between them, so runs see more than one generation; a short spell ends
          // with a compaction under way (edits and restarts then meet replicas between two generations).
          const half = Math.ceil(steps.length / 2);
          await run(steps.slice(0, half));
          await heal(quietRounds);
          healed = false;
          await run(steps.slice(half));
          await heal(HEAL_ROUNDS);

          const generation = replicas[0]!.generation;
          const expected = Object.fromEntries([...replicas[0]!.doc.entries('domain')].sort());
          for (const r of replicas) {
            expect(r.generation).toBe(generation);
            expect(Object.fromEntries([...r.doc.entries('domain')].sort())).toEqual(expected);
          }
          for (const [host, hostWrites] of writes) {
            const writers = new Set(hostWrites.map((w) => w.replica));
            const value = expected[host] ?? null;
            // A replica that crashed may have lost its last writes: what is left is one it wrote, or nothing.
            if ([...writers].some((w) => crashed.has(w))) expect([null, ...hostWrites.map((w) => w.value)]).toContain(value);
            else if (writers.size === 1) expect(value).toBe(hostWrites.at(-1)!.value);
          }
        },
      ),
      fcParams(60),
    );
  }, 180_000);
});
