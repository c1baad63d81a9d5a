// Time as a dependency: the runtime, supervisors and chaos rules read time and set timers only through a
// Clock, so tests drive them with SimulatedClock instead of sleeping (xstate's SimulatedClock idea).

export interface TimerHandle {
  readonly id: number;
}

export interface Clock {
  /** Milliseconds; monotonic for realClock's timers, wall-clock epoch for `now()` so logs and expiries agree. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

const realTimers = new Map<number, NodeJS.Timeout>();
let nextRealId = 1;

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const id = nextRealId++;
    const t = setTimeout(() => {
      realTimers.delete(id);
      fn();
    }, ms);
    t.unref();
    realTimers.set(id, t);
    return { id };
  },
  clearTimeout(handle) {
    const t = realTimers.get(handle.id);
    if (t !== undefined) {
      clearTimeout(t);
      realTimers.delete(handle.id);
    }
  },
};

interface SimTimer {
  id: number;
  at: number;
  seq: number;
  fn: () => void;
}

/** A clock that only moves when told to; timers fire in (time, creation) order during `advance`. */
export class SimulatedClock implements Clock {
  #now: number;
  #timers: SimTimer[] = [];
  #nextId = 1;
  #seq = 0;

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { id: this.#nextId++, at: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.push(timer);
    return { id: timer.id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle.id);
  }

  pendingTimers(): number {
    return this.#timers.length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, including timers set by fired timers. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let next: SimTimer | undefined;
      for (const t of this.#timers) {
        if (t.at <= target && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (next === undefined) break;
      this.#timers.splice(this.#timers.indexOf(next), 1);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = target;
  }
}
