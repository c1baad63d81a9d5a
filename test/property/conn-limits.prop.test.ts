// Connection limits against a reference model: for random sequences of acquire, release and thread resets
// over several threads and source addresses, the global cap is exact, the per-IP cap never over-admits (the
// sketch may only refuse early), and counts return to zero when everything is released.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConnLimits, createConnLimitsState } from '../../src/proxy/conn-limits.ts';
import { fcParams } from '../helpers/fc.ts';

type Op = { kind: 'acquire' | 'release'; thread: number; ip: number } | { kind: 'reset'; thread: number };

const op = (threads: number, ips: number): fc.Arbitrary<Op> =>
  fc.oneof(
    fc.record({ kind: fc.constantFrom('acquire' as const, 'release' as const), thread: fc.nat({ max: threads - 1 }), ip: fc.nat({ max: ips - 1 }) }),
    fc.record({ kind: fc.constant('reset' as const), thread: fc.nat({ max: threads - 1 }) }),
  );

describe('ConnLimits (model-based)', () => {
  it('never over-admits, is exact globally, and releases to zero', () => {
    fc.assert(
      fc.property(
        fc
          .record({
            threads: fc.integer({ min: 1, max: 4 }),
            maxConnections: fc.integer({ min: 1, max: 20 }),
            perIp: fc.integer({ min: 0, max: 5 }),
            ipCount: fc.integer({ min: 1, max: 12 }),
          })
          .chain((p) => fc.record({ p: fc.constant(p), ops: fc.array(op(p.threads, p.ipCount), { maxLength: 200 }) })),
        ({ p: { threads, maxConnections, perIp, ipCount }, ops }) => {
          const state = createConnLimitsState({ threads, maxConnections, perIpMaxConnections: perIp });
          const limits = Array.from({ length: threads }, (_, t) => new ConnLimits(state, t));
          // Model: open connections per (thread, ip).
          const open = new Map<string, number>();
          const key = (t: number, ip: number) => `${t}/${ip}`;
          const total = () => [...open.values()].reduce((a, b) => a + b, 0);
          const perIpCount = (ip: number) => [...open.entries()].filter(([k]) => k.endsWith(`/${ip}`)).reduce((a, [, v]) => a + v, 0);
          for (const o of ops) {
            if (o.kind === 'reset') {
              limits[0]!.resetThread(o.thread);
              for (const k of [...open.keys()]) if (k.startsWith(`${o.thread}/`)) open.delete(k);
            } else if (o.kind === 'acquire') {
              const ip = `10.0.0.${o.ip}`;
              const outcome = limits[o.thread]!.tryAcquire(ip);
              if (total() >= maxConnections) expect(outcome).toBe('max_connections');
              else if (perIp > 0 && perIpCount(o.ip) >= perIp) expect(outcome).toBe('per_ip_limit');
              else expect(['ok', 'per_ip_limit']).toContain(outcome); // the sketch may refuse early, never late
              if (outcome === 'ok') open.set(key(o.thread, o.ip), (open.get(key(o.thread, o.ip)) ?? 0) + 1);
            } else if ((open.get(key(o.thread, o.ip)) ?? 0) > 0) {
              limits[o.thread]!.release(`10.0.0.${o.ip}`);
              open.set(key(o.thread, o.ip), open.get(key(o.thread, o.ip))! - 1);
            }
            expect(limits[0]!.activeTotal()).toBe(total());
            for (let ip = 0; ip < ipCount; ip++) {
              if (perIp > 0) expect(limits[0]!.estimate(`10.0.0.${ip}`)).toBeGreaterThanOrEqual(perIpCount(ip));
            }
          }
          for (const [k, n] of open) {
            const [t, ip] = k.split('/').map(Number) as [number, number];
            for (let i = 0; i < n; i++) limits[t]!.release(`10.0.0.${ip}`);
          }
          expect(limits[0]!.activeTotal()).toBe(0);
          for (let ip = 0; ip < ipCount; ip++) expect(limits[0]!.estimate(`10.0.0.${ip}`)).toBe(0);
        },
      ),
      fcParams(150),
    );
  });
});
