// Chaos rules are reproducible: the same rule (seed) and the same message sequence give the same decisions
// and the same delivery order, whatever the action; every message is accounted for exactly as the rule says.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ChaosAction, Envelope } from '../../src/messages.ts';
import { ChaosFilter } from '../../src/runtime/chaos.ts';
import { SimulatedClock } from '../../src/runtime/clock.ts';
import { fcParams } from '../helpers/fc.ts';

const action: fc.Arbitrary<ChaosAction> = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), probability: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant('delay' as const), ms: fc.integer({ min: 0, max: 100 }), jitterMs: fc.integer({ min: 0, max: 100 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), probability: fc.double({ min: 0, max: 1, noNaN: true }), copies: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant('reorder' as const), window: fc.integer({ min: 2, max: 10 }), maxHoldMs: fc.integer({ min: 1, max: 100 }) }),
  fc.record({ kind: fc.constant('crash' as const), probability: fc.double({ min: 0, max: 1, noNaN: true }) }),
);

/** Runs `count` messages with gaps through a fresh filter and returns the observable trace. */
function trace(a: ChaosAction, seed: number, gaps: number[]): string[] {
  const clock = new SimulatedClock(0);
  const out: string[] = [];
  const filter = new ChaosFilter(
    clock,
    {
      deliver: (e) => out.push(`d${e.askId}@${clock.now()}`),
      drop: (e) => out.push(`x${e.askId}`),
      crash: (e) => out.push(`c${e.askId}`),
      injected: () => {},
    },
    true,
  );
  filter.setRules([ChaosFilter.ruleFromSpec({ id: 'r', match: {}, action: a, seed, ttlMs: 1_000_000 }, 0)], true);
  gaps.forEach((gap, i) => {
    const e: Envelope = { to: { region: 'r', node: 'n', thread: 'main', actor: 'a' }, from: null, msg: { type: 'sys.ping' }, askId: i };
    filter.apply(e, 'r/n/main/a', null);
    clock.advance(gap);
  });
  clock.advance(10_000);
  return out;
}

describe('chaos (property)', () => {
  it('the same seed and message sequence reproduce the same trace', () => {
    fc.assert(
      fc.property(action, fc.nat(), fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 60 }), (a, seed, gaps) => {
        expect(trace(a, seed, gaps)).toEqual(trace(a, seed, gaps));
      }),
      fcParams(300),
    );
  });

  it('accounts for every message: delivered, dropped or crashed, never lost; duplicates only add copies', () => {
    fc.assert(
      fc.property(action, fc.nat(), fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 60 }), (a, seed, gaps) => {
        const t = trace(a, seed, gaps);
        for (let i = 0; i < gaps.length; i++) {
          const outcomes = t.filter((x) => x.slice(1).split('@')[0] === String(i));
          const delivered = outcomes.filter((x) => x.startsWith('d')).length;
          const other = outcomes.length - delivered;
          if (a.kind === 'duplicate') expect([1, 1 + a.copies]).toContain(delivered);
          else expect(delivered + other).toBe(1);
          if (a.kind === 'delay' || a.kind === 'reorder') expect(delivered).toBe(1);
        }
      }),
      fcParams(300),
    );
  });
});
