import { afterEach, describe, expect, it } from 'vitest';
import type { Behavior } from '../../../src/runtime/actor.ts';
import { SimulatedClock } from '../../../src/runtime/clock.ts';
import { Supervisor } from '../../../src/runtime/supervisor.ts';
import { ActorSystem } from '../../../src/runtime/system.ts';
import { ChaosFilter } from '../../../src/runtime/chaos.ts';
import { settle } from '../../helpers/fake-child.ts';

// Test behaviours reuse catalogued message types (the runtime is generic over them): listener.stats as
// "record / answer", listener.drain as "throw".
type TestMsg = { type: 'listener.stats' } | { type: 'listener.drain'; timeoutMs: number };

interface Recorder {
  seen: string[];
  inits: number;
  stops: number;
}

function recorder(shared: Recorder): Behavior<number, TestMsg, void> {
  return {
    name: 'recorder',
    init() {
      shared.inits++;
      return 0;
    },
    receive(count, msg, ctx) {
      if (msg.type === 'listener.drain') throw new Error(`boom after ${count}`);
      shared.seen.push(`${msg.type}#${count}`);
      ctx.reply(count);
      return count + 1;
    },
    stop() {
      shared.stops++;
    },
  };
}

function makeSystem(opts: { mailboxCapacity?: number; chaos?: boolean } = {}) {
  const clock = new SimulatedClock(1_000_000);
  const system = new ActorSystem({
    region: 'r',
    node: 'n',
    thread: 'main',
    clock,
    mailboxCapacity: opts.mailboxCapacity ?? 16,
    askTimeoutMs: 100,
    deadLetterCapacity: 10,
    chaosEnabled: opts.chaos ?? false,
  });
  return { clock, system };
}

async function startRecorder(system: ActorSystem, clock: SimulatedClock, shared: Recorder, mailboxCapacity?: number) {
  const sup = new Supervisor(
    { name: 'root', strategy: 'one_for_one', maxRestarts: 3, periodMs: 1000, backoffInitialMs: 0, backoffMaxMs: 0, clock },
    [system.actorChild({ name: 'rec', behavior: recorder(shared), ...(mailboxCapacity ? { mailbox: { capacity: mailboxCapacity } } : {}) })],
  );
  system.registerSupervisor(sup);
  await sup.start();
  return sup;
}

let stopAll: (() => Promise<void>) | null = null;
afterEach(async () => {
  await stopAll?.();
  stopAll = null;
});

/** A system with a supervised recorder actor "rec", stopped after the test. */
async function withRecorder(opts: { mailboxCapacity?: number; chaos?: boolean } = {}) {
  const { clock, system } = makeSystem({ ...(opts.chaos ? { chaos: true } : {}) });
  const shared: Recorder = { seen: [], inits: 0, stops: 0 };
  const sup = await startRecorder(system, clock, shared, opts.mailboxCapacity);
  stopAll = () => sup.stop();
  return { clock, system, shared, to: system.address('rec') };
}

describe('ActorSystem', () => {
  it('delivers tells in order and answers asks', async () => {
    const { clock, system, shared, to } = await withRecorder();
    system.tell(to, { type: 'listener.stats' });
    system.tell(to, { type: 'listener.stats' });
    await expect(system.ask(to, { type: 'listener.stats' })).resolves.toBe(2);
    expect(shared.seen).toEqual(['listener.stats#0', 'listener.stats#1', 'listener.stats#2']);
    await expect(system.ask(to, { type: 'sys.ping' })).resolves.toBe('pong');
  });

  it('serves back-to-back asks from a caller resumed by the previous reply', async () => {
    const { clock, system, shared, to } = await withRecorder();
    // No timers run on the simulated clock: a stranded message would hang here, not time out.
    const answers: unknown[] = [];
    for (let i = 0; i < 20; i++) answers.push(await system.ask(to, { type: 'listener.stats' }));
    expect(answers).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('an ask to a missing actor fails at once and leaves a dead letter', async () => {
    const { system } = makeSystem();
    await expect(system.ask(system.address('ghost'), { type: 'sys.ping' })).rejects.toMatchObject({ code: 'SECBEAT_ERR_ACTOR_NOT_FOUND' });
    expect(system.deadLetters.list(10)).toMatchObject([{ reason: 'no_such_actor', to: 'r/n/main/ghost', type: 'sys.ping' }]);
  });

  it('an ask times out on the clock when nobody answers', async () => {
    const { clock, system } = makeSystem();
    system.setThreadTransport(() => true); // swallowed by a "thread" that never answers
    const pending = system.ask(system.address('x', 'w9'), { type: 'sys.ping' }, 50);
    clock.advance(50);
    await expect(pending).rejects.toMatchObject({ code: 'SECBEAT_ERR_ASK_TIMEOUT' });
  });

  it('a crash restarts the actor with fresh state, keeps queued messages, and fails the ask', async () => {
    const { clock, system, shared, to } = await withRecorder();
    system.tell(to, { type: 'listener.stats' });
    const failing = system.ask(to, { type: 'listener.drain', timeoutMs: 0 });
    system.tell(to, { type: 'listener.stats' }); // queued behind the crash
    await expect(failing).rejects.toMatchObject({ code: 'SECBEAT_ERR_INTERNAL', message: 'boom after 1' });
    await settle();
    clock.advance(0);
    await settle();
    expect(shared.inits).toBe(2);
    expect(shared.stops).toBe(1); // the crashed instance's stop hook released its resources
    expect(shared.seen).toEqual(['listener.stats#0', 'listener.stats#0']);
    const info = system.actors()[0]!;
    expect(info).toMatchObject({ status: 'running', restarts: 1, lastError: { message: 'boom after 1' } });
  });

  it('a full mailbox rejects, counts and dead-letters', async () => {
    const { clock, system, shared, to } = await withRecorder({ mailboxCapacity: 2 });
    for (let i = 0; i < 5; i++) system.tell(to, { type: 'listener.stats' }); // synchronous burst: no processing in between
    await settle();
    expect(shared.seen).toHaveLength(2);
    expect(system.actors()[0]).toMatchObject({ dropped: 3, processed: 2 });
    expect(system.deadLetters.list(10).map((d) => d.reason)).toEqual(['mailbox_full', 'mailbox_full', 'mailbox_full']);
  });

  it('suspend queues messages, resume processes them; stop dead-letters further messages', async () => {
    const { clock, system, shared, to } = await withRecorder();
    system.suspendActor('rec');
    system.tell(to, { type: 'listener.stats' });
    await settle();
    expect(shared.seen).toEqual([]);
    expect(system.actors()[0]).toMatchObject({ status: 'suspended', mailboxDepth: 1 });
    system.resumeActor('rec');
    await settle();
    expect(shared.seen).toHaveLength(1);
    await system.stopActor('rec');
    system.tell(to, { type: 'listener.stats' });
    expect(system.deadLetters.list(1)[0]).toMatchObject({ reason: 'actor_stopped' });
    await system.restartActor('rec');
    await expect(system.ask(to, { type: 'listener.stats' })).resolves.toBe(0);
  });

  it('a chaos crash rule crashes the receiver, which its supervisor restarts', async () => {
    const { clock, system, shared, to } = await withRecorder({ chaos: true });
    system.setChaosRules(
      [ChaosFilter.ruleFromSpec({ id: 'c', match: { to: '*/rec' }, action: { kind: 'crash', probability: 1 }, seed: 1, ttlMs: 10 }, clock.now())],
      true,
    );
    system.tell(system.address('rec'), { type: 'listener.stats' });
    await settle();
    expect(system.actors()[0]).toMatchObject({ status: 'failed', lastError: { code: 'SECBEAT_ERR_CHAOS_CRASH' } });
    clock.advance(10); // restart fires and the rule expires
    await settle();
    await expect(system.ask(system.address('rec'), { type: 'listener.stats' })).resolves.toBe(0);
    expect(system.actors()[0]!.restarts).toBe(1);
  });

  it('routes deliveries for other threads and nodes to their transports', () => {
    const { system } = makeSystem();
    const sent: string[] = [];
    system.setThreadTransport((thread, d) => {
      sent.push(`${thread}:${d.kind}`);
      return thread === 'w0';
    });
    system.tell(system.address('listener', 'w0'), { type: 'sys.ping' });
    system.tell(system.address('listener', 'w1'), { type: 'sys.ping' });
    system.tell({ region: 'other', node: 'n2', thread: 'main', actor: 'x' }, { type: 'sys.ping' });
    expect(sent).toEqual(['w0:msg', 'w1:msg']);
    expect(system.deadLetters.list(10).map((d) => d.reason)).toEqual(['thread_unavailable', 'no_transport']);
  });
});
