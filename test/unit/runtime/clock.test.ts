import { describe, expect, it } from 'vitest';
import { SimulatedClock } from '../../../src/runtime/clock.ts';

describe('SimulatedClock', () => {
  it('fires timers in time then creation order, including timers set while advancing', () => {
    const clock = new SimulatedClock(1000);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b@20'), 20);
    clock.setTimeout(() => {
      fired.push('a@10');
      clock.setTimeout(() => fired.push('c@15'), 5);
    }, 10);
    clock.setTimeout(() => fired.push('d@20'), 20);
    const late = clock.setTimeout(() => fired.push('never'), 50);
    clock.advance(30);
    clock.clearTimeout(late);
    clock.advance(100);
    expect(fired).toEqual(['a@10', 'c@15', 'b@20', 'd@20']);
    expect(clock.now()).toBe(1130);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('reports the time of the timer being fired', () => {
    const clock = new SimulatedClock(0);
    const seen: number[] = [];
    clock.setTimeout(() => seen.push(clock.now()), 7);
    clock.advance(10);
    expect(seen).toEqual([7]);
  });
});
