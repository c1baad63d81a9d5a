// The bounded ring of messages that could not be delivered, with a counter per reason. Operators read it
// with `secbeat ctl deadletters`; the counters feed secbeat_dead_letters_total.
import type { DeadLetter, DeadLetterReason } from '../messages.ts';

export class DeadLetters {
  readonly capacity: number;
  #ring: DeadLetter[] = [];
  #next = 0;
  #total = 0;
  readonly onRecord: ((reason: DeadLetterReason) => void) | undefined;

  constructor(capacity: number, onRecord?: (reason: DeadLetterReason) => void) {
    this.capacity = Math.max(1, capacity);
    this.onRecord = onRecord;
  }

  get total(): number {
    return this.#total;
  }

  record(letter: DeadLetter): void {
    this.#total++;
    if (this.#ring.length < this.capacity) this.#ring.push(letter);
    else this.#ring[this.#next] = letter;
    this.#next = (this.#next + 1) % this.capacity;
    this.onRecord?.(letter.reason);
  }

  /** The newest `limit` letters, oldest first. */
  list(limit: number): DeadLetter[] {
    const ordered =
      this.#ring.length < this.capacity ? this.#ring : [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)];
    return ordered.slice(Math.max(0, ordered.length - limit));
  }
}
