// ConnLimits as a state machine (fc.commands) against a plain model of open connections per (thread, address):
// random acquire / release / thread-reset sequences over several threads and IPv4/IPv6 sources. Each command
// checks that the decision is exactly the model's (the sketch may only add refusals when its estimate says the
// cap is reached), that the global total is exact and per-address estimates never under-count, and each run
// ends by releasing everything and finding every counter back at zero.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConnLimits, createConnLimitsState } from '../../src/proxy/conn-limits.ts';
import { fcParams } from '../helpers/fc.ts';

interface Model {
  maxConnections: number;
  perIp: number;
  /** Open connections by thread, then by address. */
  open: Map<string, number>[];
}

interface Real {
  limits: ConnLimits[];
}

const total = (m: Model): number => m.open.reduce((sum, byIp) => sum + [...byIp.values()].reduce((a, b) => a + b, 0), 0);
const ofIp = (m: Model, ip: string): number => m.open.reduce((sum, byIp) => sum + (byIp.get(ip) ?? 0), 0);

function checkInvariants(m: Model, r: Real, ips: readonly string[]): void {
  for (const l of r.limits) expect(l.activeTotal()).toBe(total(m));
  for (const ip of ips) {
    if (m.perIp > 0) expect(r.limits[0]!.estimate(ip)).toBeGreaterThanOrEqual(ofIp(m, ip));
  }
}

class Acquire implements fc.Command<Model, Real> {
  readonly thread: number;
  readonly ip: string;
  readonly ips: readonly string[];
  constructor(thread: number, ip: string, ips: readonly string[]) {
    this.thread = thread;
    this.ip = ip;
    this.ips = ips;
  }
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    const limits = r.limits[this.thread]!;
    const estimate = limits.estimate(this.ip);
    const expected =
      total(m) >= m.maxConnections ? 'max_connections' : m.perIp > 0 && estimate >= m.perIp ? 'per_ip_limit' : 'ok';
    const outcome = limits.tryAcquire(this.ip);
    expect(outcome).toBe(expected);
    // The only refusals beyond the model's own are sketch collisions: never an admission past the cap.
    if (outcome === 'per_ip_limit' && ofIp(m, this.ip) < m.perIp) expect(estimate).toBeGreaterThan(ofIp(m, this.ip));
    if (outcome === 'ok') {
      const byIp = m.open[this.thread]!;
      byIp.set(this.ip, (byIp.get(this.ip) ?? 0) + 1);
    }
    checkInvariants(m, r, this.ips);
  }
  toString(): string {
    return `acquire(t${this.thread}, ${this.ip})`;
  }
}

class Release implements fc.Command<Model, Real> {
  readonly thread: number;
  readonly ip: string;
  readonly ips: readonly string[];
  constructor(thread: number, ip: string, ips: readonly string[]) {
    this.thread = thread;
    this.ip = ip;
    this.ips = ips;
  }
  check(m: Readonly<Model>): boolean {
    return (m.open[this.thread]!.get(this.ip) ?? 0) > 0;
  }
  run(m: Model, r: Real): void {
    r.limits[this.thread]!.release(this.ip);
    const byIp = m.open[this.thread]!;
    byIp.set(this.ip, byIp.get(this.ip)! - 1);
    checkInvariants(m, r, this.ips);
  }
  toString(): string {
    return `release(t${this.thread}, ${this.ip})`;
  }
}

class ResetThread implements fc.Command<Model, Real> {
  readonly thread: number;
  readonly ips: readonly string[];
  constructor(thread: number, ips: readonly string[]) {
    this.thread = thread;
    this.ips = ips;
  }
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    // The main thread's own instance (any index) resets a dead thread's column.
    r.limits[0]!.resetThread(this.thread);
    m.open[this.thread]!.clear();
    checkInvariants(m, r, this.ips);
  }
  toString(): string {
    return `resetThread(${this.thread})`;
  }
}

const setup = fc.record({
  threads: fc.integer({ min: 1, max: 4 }),
  maxConnections: fc.integer({ min: 1, max: 24 }),
  perIp: fc.integer({ min: 0, max: 6 }),
  ips: fc.uniqueArray(fc.oneof(fc.ipV4(), fc.ipV6()), { minLength: 1, maxLength: 10 }),
});

describe('ConnLimits (fc.commands model)', () => {
  it('decides exactly as the model, never over-admits, and returns to zero', () => {
    fc.assert(
      fc.property(
        setup.chain((s) =>
          fc.record({
            s: fc.constant(s),
            commands: fc.commands(
              [
                fc.record({ t: fc.nat({ max: s.threads - 1 }), ip: fc.constantFrom(...s.ips) }).map(({ t, ip }) => new Acquire(t, ip, s.ips)),
                fc.record({ t: fc.nat({ max: s.threads - 1 }), ip: fc.constantFrom(...s.ips) }).map(({ t, ip }) => new Release(t, ip, s.ips)),
                fc.nat({ max: s.threads - 1 }).map((t) => new ResetThread(t, s.ips)),
              ],
              { maxCommands: 150 },
            ),
          }),
        ),
        ({ s, commands }) => {
          const state = createConnLimitsState({ threads: s.threads, maxConnections: s.maxConnections, perIpMaxConnections: s.perIp });
          const real: Real = { limits: Array.from({ length: s.threads }, (_, t) => new ConnLimits(state, t)) };
          const model: Model = { maxConnections: s.maxConnections, perIp: s.perIp, open: Array.from({ length: s.threads }, () => new Map()) };
          fc.modelRun(() => ({ model, real }), commands);
          // Matching releases bring every counter back to zero (no sketch residue).
          for (const [t, byIp] of model.open.entries()) {
            for (const [ip, n] of byIp) for (let i = 0; i < n; i++) real.limits[t]!.release(ip);
          }
          expect(real.limits[0]!.activeTotal()).toBe(0);
          for (const ip of s.ips) expect(real.limits[0]!.estimate(ip)).toBe(0);
        },
      ),
      fcParams(200),
    );
  });
});
