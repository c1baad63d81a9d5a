// The main thread's side of the fleet's rate limit (src/ratelimit/fleet-limiter.ts), two nodes wired by hand
// instead of NATS: each node's threads count in their own shared memory; a tick brings the counts into the
// global state, publishes them, and writes the other node's counts back for the threads; a client over the
// limit on the fleet's total is blocked on both, decided once and learnt by the other.
import { describe, expect, it } from 'vitest';
import { FleetRateLimiter } from '../../../src/ratelimit/fleet-limiter.ts';
import { createRateCountersState, RateCounter } from '../../../src/ratelimit/shared-counters.ts';

const WINDOW_MS = 10_000;

function node(name: string, clock: { now: number }, outbox: string[], blocks: [string, string, number, string][]) {
  const state = createRateCountersState({ threads: 1, slotsPerRegion: 256 });
  const limiter = new FleetRateLimiter({
    state,
    replica: `${name}/1`,
    requests: 100,
    windowMs: WINDOW_MS,
    blockMs: 60_000,
    intervalMs: 100,
    maxAgeMs: 60_000,
    publish: (text) => outbox.push(text),
    block: (client, untilMs, origin) => blocks.push([name, client, untilMs, origin]),
    now: () => clock.now,
  });
  return { limiter, thread: new RateCounter(state, 0, WINDOW_MS) };
}

describe('FleetRateLimiter', () => {
  it('gives each node the fleet total and blocks the client everywhere once it is over', () => {
    const clock = { now: Date.UTC(2026, 11, 2, 12, 0, 0) };
    const toB: string[] = [];
    const toA: string[] = [];
    const blocks: [string, string, number, string][] = [];
    const a = node('a', clock, toB, blocks);
    const b = node('b', clock, toA, blocks);
    let last = 0;
    for (let i = 0; i < 60; i++) last = a.thread.hit('203.0.113.7', clock.now);
    for (let i = 0; i < 60; i++) b.thread.hit('203.0.113.7', clock.now);
    expect(last).toBe(60);
    a.limiter.tick();
    b.limiter.tick();
    expect(blocks).toEqual([]);
    // Deliveries: b gets a's snapshot twice (duplicates change nothing), a gets b's.
    for (const text of [...toB, ...toB]) expect(b.limiter.receive(text)).toBe(true);
    for (const text of toA) expect(a.limiter.receive(text)).toBe(true);
    clock.now += 100;
    a.limiter.tick();
    // a now knows 120 > 100: it decides the block, and its threads see the fleet's count.
    expect(blocks).toEqual([['a', '203.0.113.7', clock.now + 60_000, 'local']]);
    expect(a.thread.hit('203.0.113.7', clock.now)).toBe(121);
    // b learns the decision from a's next snapshot rather than deciding its own.
    b.limiter.receive(toB.at(-1)!);
    expect(blocks.at(-1)).toEqual(['b', '203.0.113.7', clock.now + 60_000, 'fleet']);
    b.limiter.tick();
    expect(blocks).toHaveLength(2);
    // b knows a's 60 (a's 61st hit came after its snapshot) and its own 60.
    expect(b.thread.hit('203.0.113.7', clock.now)).toBe(121);
    // Another client is untouched.
    expect(a.thread.hit('198.51.100.1', clock.now)).toBe(1);
  });

  it('counts malformed snapshots and ignores them', () => {
    const clock = { now: Date.UTC(2026, 11, 2, 12, 0, 0) };
    const { limiter } = node('a', clock, [], []);
    for (const junk of ['', 'null', '{"replica":"x","windows":[{"start":1,"counts":[["k",-1]]}]}', '{"replica":"x","windows":[],"blocks":[["k","soon"]]}']) {
      expect(limiter.receive(junk)).toBe(false);
    }
    expect(limiter.malformed).toBe(4);
  });
});
