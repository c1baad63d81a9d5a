// Keeps replicas' RateWindows (./rate-windows.ts) and, when given, their BlockDecisions (./block-decisions.ts)
// in step: every `intervalMs` (100 ms by default, the sync interval) a replica drops expired windows
// and ended blocks and publishes its own counters and every decision it knows, whole; whatever arrives is
// checked and merged. Publishing absolute counts on a timer is what makes loss harmless: the next snapshot
// carries everything the lost one did. Transport-free: `publish` sends the text (over NATS in a node), and
// `receive` takes what came in, from anyone, as untrusted input.
import type { BlockDecisions } from './block-decisions.ts';
import type { RateSnapshot, RateWindows } from './rate-windows.ts';

export interface RateSyncOptions {
  windows: RateWindows;
  /** Block decisions carried with the counts; none when absent. */
  decisions?: BlockDecisions | null;
  /** Runs at each tick before publishing (a node brings its shared-memory counts in here). */
  beforePublish?: () => void;
  /** Called with each decision a received snapshot added or extended: [key, until]. */
  onDecision?: (key: string, untilMs: number) => void;
  /** Sends this replica's snapshot, as JSON text, to every other replica. */
  publish: (payload: string) => void;
  intervalMs?: number;
  now?: () => number;
}

export const DEFAULT_SYNC_INTERVAL_MS = 100;

/** Bounds on what a received snapshot may hold: more is malformed (and would cost memory to keep). */
const MAX_WINDOWS = 1_000;
const MAX_COUNTS = 100_000;
const MAX_KEY_LENGTH = 256;
const MAX_REPLICA_LENGTH = 256;

export class RateSync {
  readonly #o: Required<RateSyncOptions>;
  #timer: ReturnType<typeof setInterval> | null = null;
  #malformed = 0;

  constructor(options: RateSyncOptions) {
    this.#o = { intervalMs: DEFAULT_SYNC_INTERVAL_MS, now: Date.now, decisions: null, beforePublish: () => {}, onDecision: () => {}, ...options };
  }

  /** Snapshots refused since start (not a snapshot, or past the bounds). */
  get malformed(): number {
    return this.#malformed;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.tick(), this.#o.intervalMs);
    this.#timer.unref?.();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One sync step: drop expired windows and ended blocks, publish this replica's counters and the decisions. */
  tick(): void {
    const now = this.#o.now();
    this.#o.windows.prune(now);
    this.#o.decisions?.prune(now);
    this.#o.beforePublish();
    const snapshot: RateSnapshot = this.#o.windows.ownSnapshot();
    const decisions = this.#o.decisions;
    this.#o.publish(JSON.stringify(decisions === null ? snapshot : { ...snapshot, blocks: decisions.entries() }));
  }

  /** Merges a received snapshot (JSON text); false, and counted, when it is not a valid one. Never throws. */
  receive(payload: string): boolean {
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload);
    } catch {
      this.#malformed++;
      return false;
    }
    const snapshot = asSnapshot(parsed);
    if (snapshot === null) {
      this.#malformed++;
      return false;
    }
    // A transport that echoes brings our own counters back: nothing to learn from them.
    if (snapshot.replica === this.#o.windows.replica) return true;
    this.#o.windows.merge(snapshot);
    const decisions = this.#o.decisions;
    if (decisions !== null) {
      for (const [key, until] of snapshot.blocks ?? []) if (decisions.decide(key, until)) this.#o.onDecision(key, until);
    }
    return true;
  }
}

/** The snapshot `value` is, or null: checked by hand, so that data-plane threads need no schema library. */
export function asSnapshot(value: unknown): (RateSnapshot & { blocks?: [string, number][] }) | null {
  if (typeof value !== 'object' || value === null) return null;
  const { replica, windows, blocks } = value as Record<string, unknown>;
  if (blocks !== undefined && !isBlockList(blocks)) return null;
  if (typeof replica !== 'string' || replica.length === 0 || replica.length > MAX_REPLICA_LENGTH) return null;
  if (!Array.isArray(windows) || windows.length > MAX_WINDOWS) return null;
  let total = 0;
  for (const window of windows as unknown[]) {
    if (typeof window !== 'object' || window === null) return null;
    const { start, counts } = window as Record<string, unknown>;
    if (!Number.isSafeInteger(start) || !Array.isArray(counts)) return null;
    total += counts.length;
    if (total > MAX_COUNTS) return null;
    for (const entry of counts as unknown[]) {
      if (!Array.isArray(entry) || entry.length !== 2) return null;
      const [key, count] = entry as unknown[];
      if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) return null;
      if (!Number.isSafeInteger(count) || (count as number) < 0) return null;
    }
  }
  return value as RateSnapshot & { blocks?: [string, number][] };
}

function isBlockList(value: unknown): value is [string, number][] {
  if (!Array.isArray(value) || value.length > MAX_COUNTS) return false;
  for (const entry of value as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2) return false;
    const [key, until] = entry as unknown[];
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH || !Number.isSafeInteger(until)) return false;
  }
  return true;
}
