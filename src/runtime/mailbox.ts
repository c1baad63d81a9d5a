// A bounded FIFO ring buffer used as an actor's mailbox. Overflow is an outcome the caller counts and
// dead-letters, never unbounded growth (Effect's MailboxFull; xstate's Mailbox without the growth).

export const OVERFLOW_POLICIES = ['drop_newest', 'drop_oldest'] as const;
export type OverflowPolicy = (typeof OVERFLOW_POLICIES)[number];

export type PushOutcome<T> = { kind: 'queued' } | { kind: 'rejected' } | { kind: 'evicted'; evicted: T };

export class Mailbox<T> {
  readonly capacity: number;
  readonly policy: OverflowPolicy;
  #items: (T | undefined)[];
  #head = 0;
  #size = 0;

  constructor(capacity: number, policy: OverflowPolicy) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`mailbox capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.policy = policy;
    this.#items = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.#size;
  }

  push(item: T): PushOutcome<T> {
    if (this.#size < this.capacity) {
      this.#items[(this.#head + this.#size) % this.capacity] = item;
      this.#size++;
      return { kind: 'queued' };
    }
    if (this.policy === 'drop_newest') return { kind: 'rejected' };
    const evicted = this.#items[this.#head] as T;
    this.#items[this.#head] = item;
    this.#head = (this.#head + 1) % this.capacity;
    return { kind: 'evicted', evicted };
  }

  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.capacity;
    this.#size--;
    return item;
  }

  /** Removes and returns everything queued, oldest first. */
  drain(): T[] {
    const out: T[] = [];
    for (let item = this.shift(); item !== undefined; item = this.shift()) out.push(item);
    return out;
  }
}
