// Block decisions (src/crdt/block-decisions.ts) carried by RateSync: whatever replicas decide, and in whatever
// order fast-check's scheduler delivers their snapshots (the real sync steps, duplicates included), every
// replica ends up with the same decisions, each the latest end any replica decided; learnt decisions are
// reported once per change. Merging decisions is commutative, associative and idempotent.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockDecisions } from '../../src/crdt/block-decisions.ts';
import { RateSync } from '../../src/crdt/rate-sync.ts';
import { RateWindows } from '../../src/crdt/rate-windows.ts';
import { fcParams } from '../helpers/fc.ts';

const NOW = 10_000;
const decisionArb = fc.record({ replica: fc.nat({ max: 2 }), key: fc.constantFrom('a', 'b', 'c'), until: fc.integer({ min: NOW, max: NOW + 1_000 }) });

/** The decisions known after taking in each set in turn, sorted. */
function merged(...sets: [string, number][][]): [string, number][] {
  const d = new BlockDecisions({ capacity: 100 });
  for (const set of sets) for (const [key, until] of set) d.decide(key, until);
  return d.entries().sort();
}

describe('BlockDecisions (property)', () => {
  const setArb = fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 100 })), { maxLength: 8 });

  it('merges commutatively, associatively and idempotently', () => {
    fc.assert(
      fc.property(setArb, setArb, setArb, (x, y, z) => {
        expect(merged(x, y)).toEqual(merged(y, x));
        expect(merged(merged(x, y), z)).toEqual(merged(x, merged(y, z)));
        expect(merged(x, x)).toEqual(merged(x));
      }),
      fcParams(300),
    );
  });

  it('spreads every decision to every replica, the latest end winning, in any delivery order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(decisionArb, { maxLength: 20 }), async (s, decided) => {
        const learnt: string[][] = [[], [], []];
        const replicas = [0, 1, 2].map((i) => {
          const windows = new RateWindows({ replica: `r${i}`, windowMs: 1_000, maxAgeMs: 60_000 });
          const decisions = new BlockDecisions({ capacity: 100 });
          const sync = new RateSync({
            windows,
            decisions,
            now: () => NOW,
            publish: (payload) => {
              for (let j = 0; j < 3; j++) {
                if (j === i) continue;
                // Each snapshot may arrive twice, in any order.
                for (const copy of ['', ' again']) void s.schedule(Promise.resolve(payload), `r${i}→r${j}${copy}`).then((p) => replicas[j]!.sync.receive(p));
              }
            },
            onDecision: (key, until) => learnt[i]!.push(`${key}@${until}`),
          });
          return { decisions, sync };
        });
        const truth = new Map<string, number>();
        for (const d of decided) {
          replicas[d.replica]!.decisions.decide(d.key, d.until);
          truth.set(d.key, Math.max(truth.get(d.key) ?? 0, d.until));
          replicas[d.replica]!.sync.tick();
          if (s.count() > 0) await s.waitOne();
        }
        for (const r of replicas) r.sync.tick();
        await s.waitAll();
        for (const [i, r] of replicas.entries()) {
          expect(Object.fromEntries(r.decisions.entries().sort())).toEqual(Object.fromEntries([...truth].sort()));
          // Reported only when it changed what the replica knew: never the same decision twice.
          expect(new Set(learnt[i]).size).toBe(learnt[i]!.length);
        }
      }),
      fcParams(200),
    );
  });
});
