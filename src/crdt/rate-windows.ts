// Global rate-limit counts as a state-based CRDT: per key (a client IP) and per fixed time window, one grow-only
// counter per replica, which only that replica increments. A replica publishes its own counters (absolute
// values, not deltas) on a sync interval; a receiver keeps, per (key, window, replica), the larger of what it has
// and what it got. That merge is a join — commutative, associative, idempotent — so deliveries may be lost
// (a later snapshot supersedes them), duplicated or reordered, and replicas cut off from each other converge once
// they exchange snapshots again. A key's total in a window is the sum over replicas: every hit counted once.
//
// Why not an Automerge document for the counts (the platform's design card): an Automerge update costs ~100× a
// plain counter increment and its history grows forever, while a limiter counts every request; and a counter
// keyed by IP alone loses hits when two regions create it concurrently. Counting locally in plain memory and
// merging per-replica maxima keeps the per-hit cost to a map update and the state to the live windows.
//
// A replica id names one incarnation of a node (node id and a start epoch): a node that restarts without its
// state counts under a new id, so nothing it counted before is counted again, and nothing the others saw of it
// is lost. Windows older than `maxAgeMs` are dropped (prune), which every replica applies alike.

/** One replica's counters, as published: for each live window, the keys it counted and how many. */
export interface RateSnapshot {
  readonly replica: string;
  readonly windows: readonly { readonly start: number; readonly counts: readonly (readonly [key: string, count: number])[] }[];
}

export interface RateWindowsOptions {
  /** This replica's id (one node incarnation). */
  replica: string;
  windowMs: number;
  /** Windows that started longer ago than this are dropped. */
  maxAgeMs: number;
}

/** window start → key → replica → count */
type Counts = Map<number, Map<string, Map<string, number>>>;

export class RateWindows {
  readonly replica: string;
  readonly #windowMs: number;
  readonly #maxAgeMs: number;
  readonly #counts: Counts = new Map();

  constructor(options: RateWindowsOptions) {
    this.replica = options.replica;
    this.#windowMs = options.windowMs;
    this.#maxAgeMs = options.maxAgeMs;
  }

  /** The start of the window `nowMs` falls in. */
  windowOf(nowMs: number): number {
    return nowMs - (((nowMs % this.#windowMs) + this.#windowMs) % this.#windowMs);
  }

  /** Counts `n` hits of `key` at `nowMs`, under this replica. */
  hit(key: string, nowMs: number, n = 1): void {
    const perReplica = this.#replicas(this.windowOf(nowMs), key);
    perReplica.set(this.replica, (perReplica.get(this.replica) ?? 0) + n);
  }

  /**
   * Sets this replica's count of `key` in the window starting at `windowStart` to `count`, where larger
   * (a node counting in shared memory, ../ratelimit/shared-counters.ts, hands over its running totals).
   */
  record(key: string, windowStart: number, count: number): void {
    const perReplica = this.#replicas(windowStart, key);
    if (count > (perReplica.get(this.replica) ?? 0)) perReplica.set(this.replica, count);
  }

  /** This replica's own count of `key` in the window of `nowMs`. */
  own(key: string, nowMs: number): number {
    return this.#counts.get(this.windowOf(nowMs))?.get(key)?.get(this.replica) ?? 0;
  }

  /** The keys counted in the window of `nowMs`, by any replica. */
  keys(nowMs: number): IterableIterator<string> {
    return (this.#counts.get(this.windowOf(nowMs)) ?? new Map<string, unknown>()).keys();
  }

  /** Hits of `key` in the window of `nowMs`, summed over every replica known here. */
  total(key: string, nowMs: number): number {
    const perReplica = this.#counts.get(this.windowOf(nowMs))?.get(key);
    if (perReplica === undefined) return 0;
    let sum = 0;
    for (const count of perReplica.values()) sum += count;
    return sum;
  }

  /** This replica's own counters, for publishing. */
  ownSnapshot(): RateSnapshot {
    return this.#snapshot((replica) => replica === this.replica)[0] ?? { replica: this.replica, windows: [] };
  }

  /** Everything known here, one snapshot per replica (for persisting, or a peer catching up). */
  allSnapshots(): RateSnapshot[] {
    return this.#snapshot(() => true);
  }

  /** Takes in a snapshot: per (window, key) its replica's count, where larger than what is known here. */
  merge(snapshot: RateSnapshot): void {
    for (const { start, counts } of snapshot.windows) {
      for (const [key, count] of counts) {
        const perReplica = this.#replicas(start, key);
        if (count > (perReplica.get(snapshot.replica) ?? 0)) perReplica.set(snapshot.replica, count);
      }
    }
  }

  /** Drops the windows that started more than maxAgeMs before `nowMs`. */
  prune(nowMs: number): void {
    for (const start of this.#counts.keys()) if (start < nowMs - this.#maxAgeMs) this.#counts.delete(start);
  }

  #replicas(start: number, key: string): Map<string, number> {
    let keys = this.#counts.get(start);
    if (keys === undefined) {
      keys = new Map();
      this.#counts.set(start, keys);
    }
    let perReplica = keys.get(key);
    if (perReplica === undefined) {
      perReplica = new Map();
      keys.set(key, perReplica);
    }
    return perReplica;
  }

  #snapshot(include: (replica: string) => boolean): RateSnapshot[] {
    const byReplica = new Map<string, { start: number; counts: [string, number][] }[]>();
    for (const [start, keys] of [...this.#counts].sort((a, b) => a[0] - b[0])) {
      for (const [key, perReplica] of keys) {
        for (const [replica, count] of perReplica) {
          if (!include(replica)) continue;
          let windows = byReplica.get(replica);
          if (windows === undefined) {
            windows = [];
            byReplica.set(replica, windows);
          }
          let window = windows.at(-1);
          if (window === undefined || window.start !== start) {
            window = { start, counts: [] };
            windows.push(window);
          }
          window.counts.push([key, count]);
        }
      }
    }
    return [...byReplica].map(([replica, windows]) => ({ replica, windows }));
  }
}
