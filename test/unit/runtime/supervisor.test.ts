import { describe, expect, it } from 'vitest';
import { SimulatedClock } from '../../../src/runtime/clock.ts';
import { Supervisor, type ExitReason, type RestartStrategy } from '../../../src/runtime/supervisor.ts';
import { fakeChild, settle } from '../../helpers/fake-child.ts';

function setup(strategy: RestartStrategy, opts: { maxRestarts?: number; periodMs?: number; backoffInitialMs?: number } = {}) {
  const clock = new SimulatedClock(0);
  const events: string[] = [];
  const a = fakeChild('a', 'permanent', events);
  const b = fakeChild('b', 'permanent', events);
  const c = fakeChild('c', 'permanent', events);
  const exits: ExitReason[] = [];
  const sup = new Supervisor(
    {
      name: 'test',
      strategy,
      maxRestarts: opts.maxRestarts ?? 3,
      periodMs: opts.periodMs ?? 1000,
      backoffInitialMs: opts.backoffInitialMs ?? 10,
      backoffMaxMs: 80,
      clock,
    },
    [a.spec, b.spec, c.spec],
  );
  return { clock, events, a, b, c, sup, exits, start: () => sup.start((r) => exits.push(r)) };
}

describe('Supervisor strategies', () => {
  it('one_for_one restarts only the crashed child, after the backoff', async () => {
    const s = setup('one_for_one');
    await s.start();
    s.events.length = 0;
    s.b.crash();
    await settle();
    expect(s.events).toEqual([]);
    s.clock.advance(10);
    await settle();
    expect(s.events).toEqual(['start b']);
    expect(s.sup.children().map((c) => c.restarts)).toEqual([0, 1, 0]);
  });

  it('one_for_all stops the others in reverse order and restarts all in order', async () => {
    const s = setup('one_for_all');
    await s.start();
    s.events.length = 0;
    s.b.crash();
    await settle();
    expect(s.events).toEqual(['stop c', 'stop a']);
    s.clock.advance(10);
    await settle();
    expect(s.events.slice(2)).toEqual(['start a', 'start b', 'start c']);
  });

  it('rest_for_one restarts the crashed child and those started after it', async () => {
    const s = setup('rest_for_one');
    await s.start();
    s.events.length = 0;
    s.b.crash();
    await settle();
    s.clock.advance(10);
    await settle();
    expect(s.events).toEqual(['stop c', 'start b', 'start c']);
    expect(s.a.starts).toBe(1);
  });
});

describe('restart types', () => {
  it('transient restarts on crash only; temporary never and is removed', async () => {
    const clock = new SimulatedClock(0);
    const events: string[] = [];
    const t1 = fakeChild('t1', 'transient', events);
    const t2 = fakeChild('t2', 'transient', events);
    const tmp = fakeChild('tmp', 'temporary', events);
    const sup = new Supervisor(
      { name: 's', strategy: 'one_for_one', maxRestarts: 5, periodMs: 1000, backoffInitialMs: 0, backoffMaxMs: 0, clock },
      [t1.spec, t2.spec, tmp.spec],
    );
    await sup.start();
    t1.finish();
    t2.crash();
    tmp.crash();
    await settle();
    clock.advance(0);
    await settle();
    expect(t1.starts).toBe(1);
    expect(t2.starts).toBe(2);
    expect(tmp.starts).toBe(1);
    expect(sup.children().map((c) => `${c.id}:${c.state}`)).toEqual(['t1:stopped', 't2:running']);
  });
});

describe('restart intensity', () => {
  it('escalates on the (maxRestarts+1)-th restart inside the period and stops every child', async () => {
    const s = setup('one_for_one', { maxRestarts: 2, periodMs: 1000, backoffInitialMs: 0 });
    await s.start();
    for (let i = 0; i < 2; i++) {
      s.a.crash();
      await settle();
      s.clock.advance(1);
      await settle();
    }
    expect(s.exits).toEqual([]);
    s.a.crash();
    await settle();
    expect(s.exits).toHaveLength(1);
    expect(s.exits[0]).toMatchObject({ kind: 'crash', error: { code: 'SECBEAT_ERR_SUPERVISOR_ESCALATED' } });
    expect(s.sup.status).toBe('escalated');
    expect([s.a.running, s.b.running, s.c.running]).toEqual([false, false, false]);
  });

  it('restarts spread wider than the period never escalate', async () => {
    const s = setup('one_for_one', { maxRestarts: 1, periodMs: 100, backoffInitialMs: 0 });
    await s.start();
    for (let i = 0; i < 5; i++) {
      s.a.crash();
      await settle();
      s.clock.advance(150);
      await settle();
    }
    expect(s.exits).toEqual([]);
    expect(s.a.starts).toBe(6);
  });

  it('backs off exponentially up to the maximum', async () => {
    const s = setup('one_for_one', { maxRestarts: 10, periodMs: 100_000, backoffInitialMs: 10 });
    await s.start();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      s.a.crash();
      await settle();
      let waited = 0;
      while (!s.a.running) {
        s.clock.advance(1);
        waited++;
        await settle();
      }
      delays.push(waited);
    }
    expect(delays).toEqual([10, 20, 40, 80, 80]);
  });

  it('a failed restart counts as another crash', async () => {
    const s = setup('one_for_one', { maxRestarts: 5, backoffInitialMs: 0 });
    await s.start();
    s.a.failNextStart = true;
    s.a.crash();
    await settle();
    s.clock.advance(0);
    await settle();
    s.clock.advance(0);
    await settle();
    expect(s.events.filter((e) => e.endsWith(' a'))).toEqual(['start a', 'fail-start a', 'start a']);
  });
});

describe('operator controls', () => {
  it('restartChild and terminateChild act on one child without touching intensity', async () => {
    const s = setup('one_for_all', { maxRestarts: 0 });
    await s.start();
    s.events.length = 0;
    await s.sup.restartChild('b');
    await s.sup.terminateChild('c');
    expect(s.events).toEqual(['stop b', 'start b', 'stop c']);
    expect(s.exits).toEqual([]);
    expect(s.sup.children().find((c) => c.id === 'c')?.state).toBe('stopped');
  });

  it('a start failure during start() stops what started and throws', async () => {
    const s = setup('one_for_one');
    s.c.failNextStart = true;
    await expect(s.start()).rejects.toMatchObject({ code: 'SECBEAT_ERR_SUPERVISOR_ESCALATED' });
    expect([s.a.running, s.b.running]).toEqual([false, false]);
  });

  it('nested supervisors: a child supervisor escalating is restarted by its parent', async () => {
    const clock = new SimulatedClock(0);
    const events: string[] = [];
    const leaf = fakeChild('leaf', 'permanent', events);
    const inner = new Supervisor(
      { name: 'inner', strategy: 'one_for_one', maxRestarts: 0, periodMs: 1000, backoffInitialMs: 0, backoffMaxMs: 0, clock },
      [leaf.spec],
    );
    const outer = new Supervisor(
      { name: 'outer', strategy: 'one_for_one', maxRestarts: 3, periodMs: 1000, backoffInitialMs: 0, backoffMaxMs: 0, clock },
      [inner.asChild()],
    );
    await outer.start();
    leaf.crash();
    await settle();
    clock.advance(0);
    await settle();
    expect(leaf.starts).toBe(2);
    expect(outer.children()[0]).toMatchObject({ id: 'inner', restarts: 1, state: 'running' });
  });
});
