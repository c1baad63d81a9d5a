// The inspection turn (src/http/inspection-turn.ts): jobs added in one event-loop turn are all inspected
// before any proceeds, in the order they came; a job that throws fails alone; a job added while a turn runs
// waits for the next one.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { InspectionTurn, type TurnJob } from '../../../src/http/inspection-turn.ts';

/** A job that writes what happens to it into `log` as `step:name`. */
function job(log: string[], name: string, throws: 'inspect' | 'proceed' | null = null): TurnJob {
  return {
    inspect: () => {
      log.push(`inspect:${name}`);
      if (throws === 'inspect') throw new Error(`${name} failed`);
    },
    proceed: () => {
      log.push(`proceed:${name}`);
      if (throws === 'proceed') throw new Error(`${name} failed`);
    },
    failed: (error) => log.push(`failed:${name}:${(error as Error).message}`),
  };
}

describe('InspectionTurn', () => {
  it('inspects every job of a turn before any proceeds, in order, and runs nothing synchronously', async () => {
    const turn = new InspectionTurn();
    const log: string[] = [];
    for (const name of ['a', 'b', 'c']) turn.add(job(log, name));
    expect(log).toEqual([]);
    await nextTurn();
    expect(log).toEqual(['inspect:a', 'inspect:b', 'inspect:c', 'proceed:a', 'proceed:b', 'proceed:c']);
  });

  it('fails a throwing job alone: one that failed its inspection does not proceed, the others go on', async () => {
    const turn = new InspectionTurn();
    const log: string[] = [];
    turn.add(job(log, 'a', 'inspect'));
    turn.add(job(log, 'b', 'proceed'));
    turn.add(job(log, 'c'));
    await nextTurn();
    expect(log).toEqual(['inspect:a', 'failed:a:a failed', 'inspect:b', 'inspect:c', 'proceed:b', 'failed:b:b failed', 'proceed:c']);
  });

  it('runs a job added while a turn proceeds in the next turn, and every later turn too', async () => {
    const turn = new InspectionTurn();
    const log: string[] = [];
    turn.add({ ...job(log, 'a'), proceed: () => (log.push('proceed:a'), turn.add(job(log, 'late'))) });
    await nextTurn();
    expect(log).toEqual(['inspect:a', 'proceed:a']);
    await nextTurn();
    expect(log).toEqual(['inspect:a', 'proceed:a', 'inspect:late', 'proceed:late']);
    turn.add(job(log, 'again'));
    await nextTurn();
    expect(log.slice(-2)).toEqual(['inspect:again', 'proceed:again']);
  });
});
