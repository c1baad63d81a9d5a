// Global block decisions as a state-based CRDT: client → the time its block ends. Any replica may decide (a
// client over the fleet's limit); the merge keeps the later end, which is commutative, associative and
// idempotent, so decisions spread by the same lossy, reordering snapshots as the counts (./rate-sync.ts) and
// every replica ends up blocking the same clients until the same moment. Ended blocks are dropped by prune(),
// and the set is bounded: past `capacity` a new decision is refused (the blocklist it feeds is bounded too).

export interface BlockDecisionsOptions {
  capacity: number;
}

export class BlockDecisions {
  readonly #capacity: number;
  /** key → until (Unix ms) */
  readonly #until = new Map<string, number>();

  constructor(options: BlockDecisionsOptions) {
    this.#capacity = options.capacity;
  }

  get size(): number {
    return this.#until.size;
  }

  /**
   * Blocks `key` until `untilMs`, or keeps a later end already known. True when this changed what is known
   * (a new block, or a later end): the caller applies it.
   */
  decide(key: string, untilMs: number): boolean {
    const known = this.#until.get(key);
    if (known !== undefined && known >= untilMs) return false;
    if (known === undefined && this.#until.size >= this.#capacity) return false;
    this.#until.set(key, untilMs);
    return true;
  }

  until(key: string): number | undefined {
    return this.#until.get(key);
  }

  /** Every decision, for publishing: [key, until]. */
  entries(): [string, number][] {
    return [...this.#until];
  }

  /** Drops the blocks that ended before `nowMs`. */
  prune(nowMs: number): void {
    for (const [key, until] of this.#until) if (until < nowMs) this.#until.delete(key);
  }
}
