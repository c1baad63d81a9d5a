// Model-based test of the mailbox: any sequence of pushes and shifts keeps FIFO order and the bound, and the
// overflow outcome matches the policy.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Mailbox, OVERFLOW_POLICIES, type OverflowPolicy } from '../../src/runtime/mailbox.ts';
import { fcParams } from '../helpers/fc.ts';

interface Model {
  items: number[];
  capacity: number;
  policy: OverflowPolicy;
}

class Push implements fc.Command<Model, Mailbox<number>> {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
  check = () => true;
  run(m: Model, real: Mailbox<number>): void {
    const outcome = real.push(this.value);
    if (m.items.length < m.capacity) {
      expect(outcome).toEqual({ kind: 'queued' });
      m.items.push(this.value);
    } else if (m.policy === 'drop_newest') {
      expect(outcome).toEqual({ kind: 'rejected' });
    } else {
      expect(outcome).toEqual({ kind: 'evicted', evicted: m.items.shift() });
      m.items.push(this.value);
    }
    expect(real.size).toBe(m.items.length);
    expect(real.size).toBeLessThanOrEqual(m.capacity);
  }
  toString = () => `push(${this.value})`;
}

class Shift implements fc.Command<Model, Mailbox<number>> {
  check = () => true;
  run(m: Model, real: Mailbox<number>): void {
    expect(real.shift()).toBe(m.items.shift());
    expect(real.size).toBe(m.items.length);
  }
  toString = () => 'shift';
}

describe('Mailbox (model-based)', () => {
  it('is a bounded FIFO with the configured overflow policy', () => {
    const commands = [fc.integer().map((v) => new Push(v)), fc.constant(new Shift())];
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.constantFrom(...OVERFLOW_POLICIES), fc.commands(commands, { size: '+1' }), (capacity, policy, cmds) => {
        fc.modelRun(() => ({ model: { items: [], capacity, policy }, real: new Mailbox<number>(capacity, policy) }), cmds);
      }),
      fcParams(300),
    );
  });
});
