// RequestTally batches what prom-client would be told per request: after a flush the registry must hold exactly
// what the same inc()/observe() calls would have left, across several flushes (the histogram's series is
// reached through prom-client internals, so this is the test that an upgrade breaking them would fail).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/telemetry/metrics.ts';
import { RequestTally } from '../../../src/telemetry/request-tally.ts';
import { fcParams } from '../../helpers/fc.ts';

const outcome = fc.record({ status: fc.integer({ min: 100, max: 599 }), seconds: fc.oneof(fc.double({ min: 0, max: 20, noNaN: true }), fc.constantFrom(0.0001, 0.01, 10)) });

describe('RequestTally', () => {
  it('leaves the registry as per-request inc() and observe() would, flush after flush', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(outcome, { maxLength: 30 }), { minLength: 1, maxLength: 4 }), async (batches) => {
        const direct = createMetrics();
        const batched = createMetrics();
        const tally = new RequestTally(batched, 'l7');
        for (const batch of batches) {
          for (const { status, seconds } of batch) {
            direct.requests.inc({ mode: 'l7', status_class: `${Math.floor(status / 100)}xx` });
            direct.latency.observe({ mode: 'l7' }, seconds);
            tally.record(status, seconds);
          }
          tally.flush();
        }
        const [want, got] = await Promise.all([direct.registry.getMetricsAsJSON(), batched.registry.getMetricsAsJSON()]);
        // Series order is creation order, which batching changes: compare them sorted.
        const pick = (json: typeof want, name: string) =>
          json
            .find((m) => m.name === name)
            ?.values.map((v) => ({ ...v, value: Math.round(v.value * 1e9) / 1e9 }))
            .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
        expect(pick(got, 'secbeat_requests_total')).toEqual(pick(want, 'secbeat_requests_total'));
        expect(pick(got, 'secbeat_latency_seconds')).toEqual(pick(want, 'secbeat_latency_seconds'));
      }),
      fcParams(),
    );
  });
});
