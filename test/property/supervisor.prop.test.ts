// Model-based test of the supervisor under a simulated clock: for random strategies, restart types, limits
// and sequences of crashes, normal exits and clock advances, the real supervisor's children (running or not,
// restart counts, presence) and its escalation match a small reference model of OTP's rules.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SimulatedClock } from '../../src/runtime/clock.ts';
import { RESTART_STRATEGIES, RESTART_TYPES, Supervisor, type RestartStrategy, type RestartType } from '../../src/runtime/supervisor.ts';
import { fakeChild, settle, type FakeChild } from '../helpers/fake-child.ts';
import { fcParams } from '../helpers/fc.ts';

type Cmd = { kind: 'crash' | 'finish'; child: number } | { kind: 'advance'; ms: number };

interface ModelChild {
  id: string;
  type: RestartType;
  running: boolean;
  restarts: number;
  /** Clock time of a scheduled restart, if any. */
  pendingAt: number | null;
}

interface Limits {
  strategy: RestartStrategy;
  maxRestarts: number;
  periodMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
}

class Model {
  now = 0;
  times: number[] = [];
  escalated = false;
  children: ModelChild[];
  readonly l: Limits;

  constructor(types: RestartType[], limits: Limits) {
    this.l = limits;
    this.children = types.map((type, i) => ({ id: `c${i}`, type, running: true, restarts: 0, pendingAt: null }));
  }

  exit(id: string, crash: boolean): void {
    const c = this.children.find((x) => x.id === id);
    if (this.escalated || !c || !c.running) return;
    c.running = false;
    const restart = c.type === 'permanent' || (c.type === 'transient' && crash);
    if (!restart) {
      if (c.type === 'temporary') this.children.splice(this.children.indexOf(c), 1);
      return;
    }
    this.times = this.times.filter((t) => this.now - t < this.l.periodMs);
    this.times.push(this.now);
    if (this.times.length > this.l.maxRestarts) {
      this.escalated = true;
      for (const x of this.children) {
        x.running = false;
        x.pendingAt = null;
      }
      return;
    }
    const i = this.children.indexOf(c);
    const affected = this.l.strategy === 'one_for_one' ? [c] : this.l.strategy === 'one_for_all' ? this.children : this.children.slice(i);
    const delay = Math.min(this.l.backoffMaxMs, this.l.backoffInitialMs * 2 ** (this.times.length - 1));
    for (const x of affected) {
      x.running = false;
      x.pendingAt = this.now + delay;
    }
  }

  advance(ms: number): void {
    const target = this.now + ms;
    for (;;) {
      const due = this.children.filter((c) => c.pendingAt !== null && c.pendingAt <= target);
      if (due.length === 0) break;
      const at = Math.min(...due.map((c) => c.pendingAt!));
      this.now = Math.max(this.now, at);
      for (const c of this.children) {
        if (c.pendingAt === at) {
          c.pendingAt = null;
          c.running = true;
          c.restarts++;
        }
      }
    }
    this.now = target;
  }
}

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ kind: fc.constantFrom('crash' as const, 'finish' as const), child: fc.nat({ max: 3 }) }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 300 }) }),
);

describe('Supervisor (model-based, simulated clock)', () => {
  it('matches the OTP model for every strategy, restart type and intensity', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...RESTART_TYPES), { minLength: 1, maxLength: 4 }),
        fc.record({
          strategy: fc.constantFrom(...RESTART_STRATEGIES),
          maxRestarts: fc.integer({ min: 0, max: 4 }),
          periodMs: fc.integer({ min: 1, max: 500 }),
          backoffInitialMs: fc.integer({ min: 0, max: 50 }),
          backoffMaxMs: fc.integer({ min: 50, max: 200 }),
        }),
        fc.array(cmd, { maxLength: 40 }),
        async (types, limits, cmds) => {
          const clock = new SimulatedClock(0);
          const events: string[] = [];
          const fakes: FakeChild[] = types.map((t, i) => fakeChild(`c${i}`, t, events));
          let escalations = 0;
          const sup = new Supervisor({ name: 'p', ...limits, clock }, fakes.map((f) => f.spec));
          await sup.start(() => escalations++);
          const model = new Model(types, limits);
          for (const c of cmds) {
            if (c.kind === 'advance') {
              clock.advance(c.ms);
              model.advance(c.ms);
            } else {
              const fake = fakes[c.child % fakes.length]!;
              if (c.kind === 'crash') fake.crash();
              else fake.finish();
              model.exit(fake.spec.id, c.kind === 'crash');
            }
            await settle();
            expect(escalations).toBe(model.escalated ? 1 : 0);
            expect(sup.children().map((x) => x.id)).toEqual(model.children.map((x) => x.id));
            for (const m of model.children) {
              const real = fakes.find((f) => f.spec.id === m.id)!;
              expect({ id: m.id, running: real.running, restarts: real.starts - 1 }).toEqual({ id: m.id, running: m.running, restarts: m.restarts });
            }
          }
        },
      ),
      fcParams(200),
    );
  });
});
