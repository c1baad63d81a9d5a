// Worker threads under supervision, for real: actors on two worker threads talk through the main thread, and a
// thread that exits, throws outside any actor, or stalls its event loop (missed heartbeats) is restarted
// with its actors while the other thread keeps answering.
import { afterEach, describe, expect, it } from 'vitest';
import { realClock } from '../../src/runtime/clock.ts';
import { Supervisor } from '../../src/runtime/supervisor.ts';
import { ActorSystem } from '../../src/runtime/system.ts';
import { WorkerThread, type ThreadBoot } from '../../src/runtime/thread.ts';
import { rootLogger } from '../../src/telemetry/log.ts';

const RUNTIME = {
  mailboxCapacity: 64,
  askTimeoutMs: 2_000,
  deadLetterCapacity: 100,
  heartbeatIntervalMs: 100,
  heartbeatTimeoutMs: 500,
  maxRestarts: 10,
  restartPeriodMs: 10_000,
  backoffInitialMs: 10,
  backoffMaxMs: 100,
};

function boot(thread: string, index: number, peer: string): ThreadBoot {
  return {
    region: 'r',
    node: 'n',
    thread,
    index,
    behaviorsModule: new URL('./fixtures/behaviors.ts', import.meta.url).href,
    actors: [
      { name: 'echo', behavior: 'echo', input: {}, restart: 'permanent' },
      { name: 'relay', behavior: 'relay', input: { peerThread: peer }, restart: 'permanent' },
    ],
    runtime: RUNTIME,
    log: { level: 'silent', format: 'json' },
    chaos: { enabled: false, rules: [] },
  };
}

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

function mainSystem(): ActorSystem {
  return new ActorSystem({
    region: 'r',
    node: 'n',
    thread: 'main',
    clock: realClock,
    mailboxCapacity: 64,
    askTimeoutMs: 2_000,
    deadLetterCapacity: 100,
    chaosEnabled: false,
  });
}

async function startTwoThreads() {
  const system = mainSystem();
  const threads = ['w0', 'w1'].map(
    (name, i) =>
      new WorkerThread({
        name,
        boot: () => boot(name, i, i === 0 ? 'w1' : 'w0'),
        system,
        clock: realClock,
        log: rootLogger(),
        startTimeoutMs: 15_000,
        stopTimeoutMs: 5_000,
      }),
  );
  system.setThreadTransport((thread, d) => threads.find((t) => t.name === thread)?.send(d) ?? false);
  const sup = new Supervisor(
    { name: 'threads', strategy: 'one_for_one', maxRestarts: 10, periodMs: 10_000, backoffInitialMs: 10, backoffMaxMs: 100, clock: realClock },
    threads.map((t) => t.child()),
  );
  await sup.start();
  cleanup = () => sup.stop();
  const where = (thread: string) => system.ask(system.address('echo', thread), { type: 'listener.stats' }) as Promise<{ thread: string }>;
  return { system, threads, sup, where };
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('condition not met in time');
}

describe('worker threads', () => {
  it('actors on different threads reach each other through the main thread', async () => {
    const { system, where } = await startTwoThreads();
    await expect(where('w0')).resolves.toEqual({ thread: 'w0' });
    await expect(system.ask(system.address('relay', 'w0'), { type: 'listener.stats' })).resolves.toEqual({ via: 'w0', answer: { thread: 'w1' } });
  });

  it.each([
    ['exits', 1],
    ['throws outside any actor', 3],
    ['stalls its event loop', 2],
  ])('a thread that %s is restarted and the other keeps answering', async (_label, mode) => {
    const { system, threads, where } = await startTwoThreads();
    const w0 = threads[0]!;
    system.tell(system.address('echo', 'w0'), { type: 'listener.drain', timeoutMs: mode });
    await waitFor(() => w0.info().restarts === 1 && w0.info().status === 'running');
    await expect(where('w1')).resolves.toEqual({ thread: 'w1' });
    await expect(where('w0')).resolves.toEqual({ thread: 'w0' });
    expect(threads[1]!.info().restarts).toBe(0);
  });

  it('a main thread held up longer than the heartbeat timeout restarts no healthy thread', async () => {
    const { threads, where } = await startTwoThreads();
    // The heartbeats keep coming meanwhile; they wait in the ports while the main thread is busy.
    const until = Date.now() + 3 * RUNTIME.heartbeatTimeoutMs;
    while (Date.now() < until) {
      // busy: a large sync or bulk upload on the main thread
    }
    await new Promise((r) => setTimeout(r, 4 * RUNTIME.heartbeatIntervalMs));
    expect(threads.map((t) => t.info().restarts)).toEqual([0, 0]);
    await expect(where('w0')).resolves.toEqual({ thread: 'w0' });
  });

  it('a thread runs with the V8 heap limits it is given', async () => {
    const system = mainSystem();
    const thread = new WorkerThread({
      name: 'w0',
      boot: () => ({ ...boot('w0', 0, 'w0'), actors: [{ name: 'heap', behavior: 'heap', input: {}, restart: 'permanent' }] }),
      system,
      clock: realClock,
      log: rootLogger(),
      startTimeoutMs: 15_000,
      stopTimeoutMs: 5_000,
      resourceLimits: { maxYoungGenerationSizeMb: 3 },
    });
    system.setThreadTransport((_thread, d) => thread.send(d));
    const sup = new Supervisor(
      { name: 'threads', strategy: 'one_for_one', maxRestarts: 10, periodMs: 10_000, backoffInitialMs: 10, backoffMaxMs: 100, clock: realClock },
      [thread.child()],
    );
    await sup.start();
    cleanup = () => sup.stop();
    await expect(system.ask(system.address('heap', 'w0'), { type: 'listener.stats' })).resolves.toEqual({ maxYoungGenerationSizeMb: 3 });
  });

  it('control requests list actors and restart one actor on a worker', async () => {
    const { threads } = await startTwoThreads();
    const w1 = threads[1]!;
    await w1.control({ op: 'actor.restart', actor: 'echo' }, 2_000);
    const actors = (await w1.control({ op: 'actors.list' }, 2_000)) as { address: string; restarts: number }[];
    expect(actors.map((a) => [a.address, a.restarts])).toEqual([
      ['r/n/w1/echo', 1],
      ['r/n/w1/relay', 0],
    ]);
  });
});
