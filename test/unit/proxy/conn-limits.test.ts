// ConnLimits across real worker threads sharing one SharedArrayBuffer, as the node's data-plane threads do:
// each thread sees the others' counts, a restarted thread's counts are released, and concurrent admissions
// never pass the caps.
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnLimits, createConnLimitsState } from '../../../src/proxy/conn-limits.ts';
import type { WorkerRequest } from './fixtures/conn-limits-worker.ts';

const ENTRY = new URL('./fixtures/conn-limits-worker.ts', import.meta.url);
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

interface LimitsThread {
  ask<T>(req: WorkerRequest): Promise<T>;
  worker: Worker;
}

function startThread(state: SharedArrayBuffer, threadIndex: number): LimitsThread {
  const worker = new Worker(ENTRY, { workerData: { state, threadIndex } });
  workers.push(worker);
  return {
    worker,
    ask: <T>(req: WorkerRequest) =>
      new Promise<T>((resolve, reject) => {
        const onMessage = (value: T): void => {
          worker.off('error', onError);
          resolve(value);
        };
        const onError = (err: Error): void => {
          worker.off('message', onMessage);
          reject(err);
        };
        worker.once('message', onMessage);
        worker.once('error', onError);
        worker.postMessage(req);
      }),
  };
}

describe('ConnLimits across worker threads', () => {
  it('each thread sees the others’ counts, and resetThread releases a dead thread’s share', async () => {
    const state = createConnLimitsState({ threads: 2, maxConnections: 3, perIpMaxConnections: 2 });
    const a = startThread(state, 0);
    const b = startThread(state, 1);
    expect(await a.ask({ op: 'acquire', ip: '192.0.2.1' })).toBe('ok');
    expect(await b.ask({ op: 'acquire', ip: '192.0.2.1' })).toBe('ok');
    // The third from the same source is refused on either thread: the cap is node-wide.
    expect(await b.ask({ op: 'acquire', ip: '192.0.2.1' })).toBe('per_ip_limit');
    expect(await a.ask({ op: 'acquire', ip: '192.0.2.1' })).toBe('per_ip_limit');
    expect(await a.ask({ op: 'acquire', ip: '2001:db8::7' })).toBe('ok');
    expect(await b.ask({ op: 'acquire', ip: '198.51.100.9' })).toBe('max_connections');
    expect(await b.ask({ op: 'total' })).toBe(3);
    expect(await b.ask({ op: 'estimate', ip: '192.0.2.1' })).toBeGreaterThanOrEqual(2);

    // Thread 0 dies holding two connections; the main thread resets its column before restarting it.
    await a.worker.terminate();
    new ConnLimits(state, 0).resetThread(0);
    expect(await b.ask({ op: 'total' })).toBe(1);
    expect(await b.ask({ op: 'acquire', ip: '192.0.2.1' })).toBe('ok');
    expect(await b.ask({ op: 'acquire', ip: '192.0.2.1' })).toBe('per_ip_limit');
    await b.ask({ op: 'release', ip: '192.0.2.1' });
    await b.ask({ op: 'release', ip: '192.0.2.1' });
    expect(await b.ask({ op: 'total' })).toBe(0);
    expect(await b.ask({ op: 'estimate', ip: '192.0.2.1' })).toBe(0);
  });

  it('never admits past the per-IP or global cap when threads race on one source', async () => {
    for (const settings of [
      { threads: 2, maxConnections: 1_000, perIpMaxConnections: 1 },
      { threads: 2, maxConnections: 1, perIpMaxConnections: 0 },
    ]) {
      const state = createConnLimitsState(settings);
      const held = new SharedArrayBuffer(12);
      const threads = [startThread(state, 0), startThread(state, 1)];
      const results = await Promise.all(
        threads.map((t) => t.ask<{ admitted: number; violations: number }>({ op: 'hammer', ip: '203.0.113.5', rounds: 100_000, cap: 1, parties: 2, held })),
      );
      expect(results.map((r) => r.violations)).toEqual([0, 0]);
      expect(results.every((r) => r.admitted > 0)).toBe(true);
      expect(new ConnLimits(state, 0).activeTotal()).toBe(0);
      await Promise.all(threads.map((t) => t.worker.terminate()));
    }
  });

  it('rejects settings and buffers it cannot use', () => {
    expect(() => createConnLimitsState({ threads: 0, maxConnections: 1, perIpMaxConnections: 0 })).toThrow(RangeError);
    expect(() => createConnLimitsState({ threads: 1, maxConnections: 1, perIpMaxConnections: -1 })).toThrow(RangeError);
    const state = createConnLimitsState({ threads: 2, maxConnections: 1, perIpMaxConnections: 0 });
    expect(() => new ConnLimits(state, 2)).toThrow(RangeError);
    expect(() => new ConnLimits(new SharedArrayBuffer(64), 0)).toThrow(RangeError);
  });
});
