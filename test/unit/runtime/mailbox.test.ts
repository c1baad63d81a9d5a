import { describe, expect, it } from 'vitest';
import { Mailbox } from '../../../src/runtime/mailbox.ts';

describe('Mailbox', () => {
  it('keeps FIFO order across wrap-around', () => {
    const m = new Mailbox<number>(3, 'drop_newest');
    m.push(1);
    m.push(2);
    expect(m.shift()).toBe(1);
    m.push(3);
    m.push(4);
    expect(m.drain()).toEqual([2, 3, 4]);
    expect(m.size).toBe(0);
  });

  it('drop_newest rejects when full and keeps what it had', () => {
    const m = new Mailbox<string>(2, 'drop_newest');
    expect(m.push('a').kind).toBe('queued');
    expect(m.push('b').kind).toBe('queued');
    expect(m.push('c')).toEqual({ kind: 'rejected' });
    expect(m.drain()).toEqual(['a', 'b']);
  });

  it('drop_oldest evicts the head and returns it', () => {
    const m = new Mailbox<string>(2, 'drop_oldest');
    m.push('a');
    m.push('b');
    expect(m.push('c')).toEqual({ kind: 'evicted', evicted: 'a' });
    expect(m.drain()).toEqual(['b', 'c']);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new Mailbox(0, 'drop_newest')).toThrow(RangeError);
    expect(() => new Mailbox(1.5, 'drop_newest')).toThrow(RangeError);
  });
});
