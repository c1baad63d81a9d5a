// The main thread's side of rate limiting: every sync interval it reads what the node's data-plane threads
// counted in shared memory (./shared-counters.ts), records it as this node's counts in the fleet's global state
// (../crdt/rate-windows.ts), publishes that and every block decision (../crdt/block-decisions.ts) through
// RateSync, and writes back into shared memory what the rest of the fleet counted, so the next request on any
// thread sees the fleet's total. A client whose fleet total passes the limit is blocked until now +
// block_seconds: the decision goes to this node's blocklist and to every other node with the next snapshot.
//
// Without NATS the same runs with nothing published: the node limits alone, across its threads. Cut off from
// the fleet (a partition), it goes on with what it knows; the counts merge when snapshots flow again, each
// replica's count taken once (the merge keeps maxima per replica, never sums of deliveries).
import { BlockDecisions } from '../crdt/block-decisions.ts';
import { RateSync } from '../crdt/rate-sync.ts';
import { RateWindows } from '../crdt/rate-windows.ts';
import { RateCountersReader, windowIndex, windowStartMs } from './shared-counters.ts';

export interface FleetLimiterOptions {
  state: SharedArrayBuffer;
  /** This node's incarnation: region, node id and start time (./rate-windows.ts explains why). */
  replica: string;
  requests: number;
  windowMs: number;
  /** 0: refuse what is over the limit, decide no block. */
  blockMs: number;
  intervalMs: number;
  maxAgeMs: number;
  /** Sends a snapshot to the fleet; absent without NATS. */
  publish?: (text: string) => void;
  /** Applies a block to this node (its blocklist); `origin` says whether this node decided it or learnt it. */
  block: (client: string, untilMs: number, origin: 'local' | 'fleet') => void;
  now?: () => number;
}

/** Decisions a node keeps at most (its blocklist is bounded too). */
const MAX_DECISIONS = 100_000;

export class FleetRateLimiter {
  readonly windows: RateWindows;
  readonly decisions: BlockDecisions;
  readonly #o: FleetLimiterOptions;
  readonly #reader: RateCountersReader;
  readonly #sync: RateSync;
  readonly #now: () => number;

  constructor(options: FleetLimiterOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#reader = new RateCountersReader(options.state);
    this.windows = new RateWindows({ replica: options.replica, windowMs: options.windowMs, maxAgeMs: options.maxAgeMs });
    this.decisions = new BlockDecisions({ capacity: MAX_DECISIONS });
    this.#sync = new RateSync({
      windows: this.windows,
      decisions: this.decisions,
      publish: options.publish ?? (() => {}),
      intervalMs: options.intervalMs,
      now: this.#now,
      beforePublish: () => this.#exchange(),
      onDecision: (client, until) => options.block(client, until, 'fleet'),
    });
  }

  start(): void {
    this.#sync.start();
  }

  stop(): void {
    this.#sync.stop();
  }

  /** A snapshot from another node (untrusted text); false when malformed. Its counts reach the threads at the next tick. */
  receive(text: string): boolean {
    return this.#sync.receive(text);
  }

  /** Snapshots refused as malformed since start. */
  get malformed(): number {
    return this.#sync.malformed;
  }

  /** Hits the threads could not count for want of a slot. */
  get overflow(): number {
    return this.#reader.overflow;
  }

  /** One sync step now (the timer calls it every interval; tests call it directly). */
  tick(): void {
    this.#sync.tick();
  }

  /** Own counts in, fleet counts out, decisions made: runs at each tick before the snapshot is published. */
  #exchange(): void {
    const now = this.#now();
    const { windowMs } = this.#o;
    const current = windowIndex(now, windowMs);
    // The window just ended too: its last hits arrived after the previous tick.
    for (const window of [current - 1, current]) {
      const start = windowStartMs(window, windowMs);
      for (const [client, count] of this.#reader.nodeCounts(window)) this.windows.record(client, start, count);
    }
    for (const client of this.windows.keys(now)) {
      const total = this.windows.total(client, now);
      this.#reader.setFleetCount(client, current, total - this.windows.own(client, now));
      if (this.#o.blockMs > 0 && total > this.#o.requests) {
        const until = now + this.#o.blockMs;
        // A block already running is not extended by every tick: only a new one is decided and applied.
        if (this.decisions.until(client) === undefined && this.decisions.decide(client, until)) this.#o.block(client, until, 'local');
      }
    }
  }
}
