// Model-based test of in-thread delivery: arbitrary interleavings of tells, awaited asks, unawaited asks,
// suspend/resume and scheduler turns. Every message is processed exactly once, in send order, and every
// ask is answered with the count of messages processed before it — nothing is stranded in a mailbox.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Behavior } from '../../src/runtime/actor.ts';
import { SimulatedClock } from '../../src/runtime/clock.ts';
import { Supervisor } from '../../src/runtime/supervisor.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { fcParams } from '../helpers/fc.ts';

type Msg = { type: 'listener.stats' };

interface Real {
  system: ActorSystem;
  seen: number;
  pending: Promise<unknown>[];
}
interface Model {
  sent: number;
  suspended: boolean;
}

const counter: Behavior<number, Msg, { onMsg: () => void }> = {
  name: 'counter',
  init: () => 0,
  receive(n, _msg, ctx) {
    ctx.reply(n);
    return n + 1;
  },
};

const to = (s: ActorSystem) => s.address('counter');

class Tell implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real) {
    r.system.tell(to(r.system), { type: 'listener.stats' });
    m.sent++;
  }
  toString = () => 'tell';
}
class AskAwait implements fc.AsyncCommand<Model, Real> {
  check = (m: Readonly<Model>) => !m.suspended;
  async run(m: Model, r: Real) {
    const expected = m.sent;
    m.sent += 2;
    expect(await r.system.ask(to(r.system), { type: 'listener.stats' })).toBe(expected);
    // Sent by the continuation the reply resumed, before the actor's processing loop has settled.
    r.system.tell(to(r.system), { type: 'listener.stats' });
  }
  toString = () => 'ask+await+tell';
}
class AskLater implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real) {
    const expected = m.sent;
    m.sent++;
    r.pending.push(r.system.ask(to(r.system), { type: 'listener.stats' }).then((v) => expect(v).toBe(expected)));
  }
  toString = () => 'ask';
}
class Suspend implements fc.AsyncCommand<Model, Real> {
  check = (m: Readonly<Model>) => !m.suspended;
  async run(m: Model, r: Real) {
    r.system.suspendActor('counter');
    m.suspended = true;
  }
  toString = () => 'suspend';
}
class Resume implements fc.AsyncCommand<Model, Real> {
  check = (m: Readonly<Model>) => m.suspended;
  async run(m: Model, r: Real) {
    r.system.resumeActor('counter');
    m.suspended = false;
  }
  toString = () => 'resume';
}
/** After a few scheduler turns an actor that is not suspended has an empty mailbox: nothing is stranded. */
class Quiesce implements fc.AsyncCommand<Model, Real> {
  check = () => true;
  async run(m: Model, r: Real) {
    for (let i = 0; i < 10; i++) await new Promise<void>((res) => setImmediate(res));
    if (!m.suspended) expect(r.system.actors()[0]!.mailboxDepth).toBe(0);
  }
  toString = () => 'quiesce';
}
class Turn implements fc.AsyncCommand<Model, Real> {
  readonly ticks: number;
  constructor(ticks: number) {
    this.ticks = ticks;
  }
  check = () => true;
  async run() {
    for (let i = 0; i < this.ticks; i++) await Promise.resolve();
  }
  toString = () => `turn(${this.ticks})`;
}

describe('ActorSystem delivery (model-based)', () => {
  it('processes every message once, in order, and answers every ask', async () => {
    const commands = [
      fc.constant(new Tell()),
      fc.constant(new AskAwait()),
      fc.constant(new AskLater()),
      fc.constant(new Suspend()),
      fc.constant(new Resume()),
      fc.integer({ min: 0, max: 5 }).map((t) => new Turn(t)),
      fc.constant(new Quiesce()),
    ];
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { size: '+1' }), async (cmds) => {
        const clock = new SimulatedClock(0);
        const system = new ActorSystem({ region: 'r', node: 'n', thread: 'main', clock, mailboxCapacity: 10_000, askTimeoutMs: 1_000, deadLetterCapacity: 10, chaosEnabled: false });
        const sup = new Supervisor({ name: 'root', strategy: 'one_for_one', maxRestarts: 0, periodMs: 1, backoffInitialMs: 0, backoffMaxMs: 0, clock }, [
          system.actorChild({ name: 'counter', behavior: counter }),
        ]);
        await sup.start();
        const real: Real = { system, seen: 0, pending: [] };
        const model: Model = { sent: 0, suspended: false };
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        system.resumeActor('counter');
        // Everything sent so far is answered by a final ask (FIFO puts it last).
        expect(await system.ask(to(system), { type: 'listener.stats' })).toBe(model.sent);
        await Promise.all(real.pending);
        expect(system.actors()[0]).toMatchObject({ processed: model.sent + 1, dropped: 0 });
        expect(system.deadLetters.total).toBe(0);
        await sup.stop();
      }),
      fcParams(200),
    );
  });
});
