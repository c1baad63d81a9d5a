// The shared per-client counters (src/ratelimit/shared-counters.ts): counts per window summed over the thread
// regions and the fleet's, exact under real concurrent writers (worker threads), stale slots reused, a full
// neighbourhood reported as overflow rather than miscounted.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { createRateCountersState, RateCounter, RateCountersReader, windowIndex, windowStartMs } from '../../../src/ratelimit/shared-counters.ts';

const WINDOW_MS = 1_000;
const T0 = Date.UTC(2026, 11, 2, 12, 0, 0);

describe('shared rate counters', () => {
  it('sums a client over the threads and the fleet, per window', () => {
    const state = createRateCountersState({ threads: 2, slotsPerRegion: 64 });
    const [a, b] = [new RateCounter(state, 0, WINDOW_MS), new RateCounter(state, 1, WINDOW_MS)];
    expect(a.hit('203.0.113.1', T0)).toBe(1);
    expect(b.hit('203.0.113.1', T0 + 10)).toBe(2);
    expect(a.hit('203.0.113.2', T0)).toBe(1);
    const reader = new RateCountersReader(state);
    expect(reader.setFleetCount('203.0.113.1', windowIndex(T0, WINDOW_MS), 40)).toBe(true);
    expect(a.hit('203.0.113.1', T0 + 20)).toBe(43);
    // IPv4 and its IPv6-mapped form are one client.
    expect(b.hit('::ffff:203.0.113.1', T0 + 30)).toBe(44);
    // The next window starts from zero.
    expect(a.hit('203.0.113.1', T0 + WINDOW_MS)).toBe(1);
    expect(Object.fromEntries(reader.nodeCounts(windowIndex(T0, WINDOW_MS)))).toEqual({ '203.0.113.1': 4, '203.0.113.2': 1 });
    expect(windowStartMs(windowIndex(T0 + 999, WINDOW_MS), WINDOW_MS)).toBe(T0);
  });

  it('refuses what is not an address, and a thread index it has no region for', () => {
    const state = createRateCountersState({ threads: 1, slotsPerRegion: 64 });
    expect(new RateCounter(state, 0, WINDOW_MS).hit('not-an-ip', T0)).toBe(-1);
    expect(() => new RateCounter(state, 1, WINDOW_MS)).toThrow(RangeError);
  });

  it('reuses slots of windows gone by, and reports overflow when a neighbourhood is full of live clients', () => {
    const state = createRateCountersState({ threads: 1, slotsPerRegion: 64 });
    const counter = new RateCounter(state, 0, WINDOW_MS);
    const reader = new RateCountersReader(state);
    const counted = (t: number, from: number, n: number) => Array.from({ length: n }, (_, i) => counter.hit(`10.${from}.${i}.1`, t)).filter((c) => c === 1).length;
    expect(counted(T0, 0, 40)).toBe(40);
    // Two windows later those slots are stale: 40 new clients fit again.
    expect(counted(T0 + 2 * WINDOW_MS, 100, 40)).toBe(40);
    expect(reader.overflow).toBe(0);
    // The same window, 64 more clients than the table's 64 slots hold: what finds no slot is reported, not miscounted.
    const more = counted(T0 + 2 * WINDOW_MS, 200, 64);
    expect(more).toBeLessThanOrEqual(24);
    expect(more + reader.overflow).toBe(64);
    expect([...reader.nodeCounts(windowIndex(T0 + 2 * WINDOW_MS, WINDOW_MS)).values()].every((c) => c === 1)).toBe(true);
  });

  it('counts every hit of concurrent writer threads exactly', async () => {
    const threads = 2;
    const hits = 20_000;
    const state = createRateCountersState({ threads, slotsPerRegion: 1024 });
    const now = Date.now();
    const source = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.module).then(({ RateCounter }) => {
        const counter = new RateCounter(workerData.state, workerData.index, ${WINDOW_MS});
        for (let i = 0; i < ${hits}; i++) counter.hit('198.51.100.' + (i % 50), workerData.now);
        parentPort.postMessage('done');
      });`;
    const module = new URL('../../../src/ratelimit/shared-counters.ts', import.meta.url).href;
    await Promise.all(
      Array.from({ length: threads }, (_, index) => {
        const worker = new Worker(source, { eval: true, workerData: { state, index, module, now } });
        return new Promise<void>((resolve, reject) => {
          worker.once('message', () => void worker.terminate().then(() => resolve()));
          worker.once('error', reject);
        });
      }),
    );
    const counts = new RateCountersReader(state).nodeCounts(windowIndex(now, WINDOW_MS));
    expect(counts.size).toBe(50);
    expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(threads * hits);
    expect(counts.get('198.51.100.0')).toBe((threads * hits) / 50);
  });
});
