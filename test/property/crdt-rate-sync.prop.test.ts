// RateSync (src/crdt/rate-sync.ts): what arrives is never trusted (any text or JSON is refused or merged, never
// thrown on), and the real sync steps, run with their deliveries in every order fast-check's scheduler picks,
// bring every replica to the same totals: the number of hits made everywhere.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RateSync } from '../../src/crdt/rate-sync.ts';
import { RateWindows } from '../../src/crdt/rate-windows.ts';
import { fcParams } from '../helpers/fc.ts';

const NOW = 10_000;

function replica(name: string, publish: (payload: string) => void): { windows: RateWindows; sync: RateSync } {
  const windows = new RateWindows({ replica: name, windowMs: 1_000, maxAgeMs: 60_000 });
  return { windows, sync: new RateSync({ windows, publish, now: () => NOW }) };
}

describe('RateSync (property)', () => {
  it('never throws on what arrives, and merges nothing it refuses', () => {
    const { windows, sync } = replica('me', () => {});
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.jsonValue().map((v) => JSON.stringify(v))), (payload) => {
        const before = JSON.stringify(windows.allSnapshots());
        const accepted = sync.receive(payload);
        if (!accepted) expect(JSON.stringify(windows.allSnapshots())).toBe(before);
      }),
      fcParams(500),
    );
  });

  it('converges to every hit made, whatever order the deliveries take', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(fc.record({ replica: fc.nat({ max: 2 }), key: fc.constantFrom('a', 'b'), tick: fc.boolean() }), { maxLength: 40 }),
        async (s, steps) => {
          const replicas: ReturnType<typeof replica>[] = [];
          for (let i = 0; i < 3; i++) {
            replicas.push(
              replica(`r${i}`, (payload) => {
                // Each other replica gets it whenever the scheduler decides.
                for (let j = 0; j < 3; j++) if (j !== i) void s.schedule(Promise.resolve(payload), `r${i}→r${j}`).then((p) => replicas[j]!.sync.receive(p));
              }),
            );
          }
          const truth = new Map<string, number>();
          for (const step of steps) {
            const r = replicas[step.replica]!;
            r.windows.hit(step.key, NOW);
            truth.set(step.key, (truth.get(step.key) ?? 0) + 1);
            if (step.tick) r.sync.tick();
            // Let the scheduler run some deliveries between steps.
            if (s.count() > 0) await s.waitOne();
          }
          // The next ticks, and everything delivered.
          for (const r of replicas) r.sync.tick();
          await s.waitAll();
          for (const r of replicas) {
            for (const key of ['a', 'b']) expect(r.windows.total(key, NOW)).toBe(truth.get(key) ?? 0);
          }
        },
      ),
      fcParams(200),
    );
  });
});
