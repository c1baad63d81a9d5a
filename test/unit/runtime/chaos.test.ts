import { describe, expect, it } from 'vitest';
import type { ChaosRuleSpec, Envelope } from '../../../src/messages.ts';
import { ChaosFilter, compileGlob, seededRandom } from '../../../src/runtime/chaos.ts';
import { SimulatedClock } from '../../../src/runtime/clock.ts';

const addr = (actor: string) => ({ region: 'r', node: 'n', thread: 'main', actor });
const env = (i: number): Envelope => ({ to: addr('a'), from: null, msg: { type: 'sys.ping' }, askId: i });

function harness(spec: Partial<ChaosRuleSpec> & Pick<ChaosRuleSpec, 'action'>) {
  const clock = new SimulatedClock(0);
  const log: string[] = [];
  const filter = new ChaosFilter(
    clock,
    {
      deliver: (e) => log.push(`deliver ${e.askId}`),
      drop: (e) => log.push(`drop ${e.askId}`),
      crash: (e) => log.push(`crash ${e.askId}`),
      injected: () => {},
    },
    true,
  );
  const rule = ChaosFilter.ruleFromSpec({ id: 'r1', match: {}, seed: 7, ttlMs: 1000, ...spec }, clock.now());
  filter.setRules([rule], true);
  return { clock, log, filter, send: (i: number) => filter.apply(env(i), 'r/n/main/a', null) };
}

describe('chaos rules', () => {
  it('globs match whole address strings', () => {
    expect(compileGlob('r/n/*/listener').test('r/n/w0/listener')).toBe(true);
    expect(compileGlob('r/n/*/listener').test('r/n/w0/listener2')).toBe(false);
    expect(compileGlob('listener.*').test('listener.drain')).toBe(true);
    expect(() => compileGlob('*a*a*a*a*a*a*a*a*a*')).toThrow(RangeError);
  });

  it('the same seed gives the same sequence', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const c = seededRandom(43);
    const xs = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(xs);
    expect(Array.from({ length: 5 }, c)).not.toEqual(xs);
  });

  it('drop with probability 1 drops everything, 0 nothing', () => {
    const all = harness({ action: { kind: 'drop', probability: 1 } });
    all.send(1);
    all.send(2);
    expect(all.log).toEqual(['drop 1', 'drop 2']);
    const none = harness({ action: { kind: 'drop', probability: 0 } });
    none.send(1);
    expect(none.log).toEqual(['deliver 1']);
  });

  it('delay holds a message for its time on the clock', () => {
    const h = harness({ action: { kind: 'delay', ms: 100, jitterMs: 0 } });
    h.send(1);
    h.clock.advance(99);
    expect(h.log).toEqual([]);
    h.clock.advance(1);
    expect(h.log).toEqual(['deliver 1']);
  });

  it('duplicate delivers the original plus copies', () => {
    const h = harness({ action: { kind: 'duplicate', probability: 1, copies: 2 } });
    h.send(1);
    expect(h.log).toEqual(['deliver 1', 'deliver 1', 'deliver 1']);
  });

  it('reorder releases a full window as a permutation, and a partial one after maxHoldMs', () => {
    const h = harness({ action: { kind: 'reorder', window: 4, maxHoldMs: 50 } });
    for (let i = 1; i <= 4; i++) h.send(i);
    expect([...h.log].sort()).toEqual(['deliver 1', 'deliver 2', 'deliver 3', 'deliver 4']);
    h.log.length = 0;
    h.send(5);
    h.send(6);
    expect(h.log).toEqual([]);
    h.clock.advance(50);
    expect([...h.log].sort()).toEqual(['deliver 5', 'deliver 6']);
  });

  it('crash replaces the message with a crash of the receiver', () => {
    const h = harness({ action: { kind: 'crash', probability: 1 } });
    h.send(1);
    expect(h.log).toEqual(['crash 1']);
  });

  it('rules expire on their own and held messages are released', () => {
    const h = harness({ action: { kind: 'reorder', window: 10, maxHoldMs: 60_000 }, ttlMs: 100 });
    h.send(1);
    h.clock.advance(100);
    h.send(2);
    expect(h.log).toEqual(['deliver 1', 'deliver 2']);
    expect(h.filter.rules()).toEqual([]);
  });

  it('only matching messages are affected', () => {
    const h = harness({ action: { kind: 'drop', probability: 1 }, match: { type: 'listener.*' } });
    h.send(1);
    expect(h.log).toEqual(['deliver 1']);
  });
});
