// Per-client request counts per fixed window, in one SharedArrayBuffer that every thread of a node reads
// without messages (a cross-thread message per request would cost more than the request). Each data-plane
// thread owns one region and is its only writer, so counting is a hash probe and a plain add, no locks and no
// compare-and-swap; a last region holds what the rest of the fleet counted (written by the main thread from
// the global state, ../crdt/rate-windows.ts). A client's total in a window is the sum over the regions.
//
// A region is an open-addressing table of slots [window, count, w0, w1, w2, w3] (the address as four words,
// ../net/ip.ts). The writer fills the key and count before it publishes the window with Atomics.store, and
// readers load the window with Atomics.load, so a reader never takes a half-written key for a match. Slots
// are never emptied: a slot whose window is older than the previous one is stale and the writer reuses it, so
// a probe can stop at the first slot never used (window 0). Window numbers count from a fixed epoch, so every
// thread and node agrees on them. When a probe finds no slot (the table full of live clients), the hit is not
// counted and the region's overflow counter says so: the limiter then lets that client through rather than
// refusing at random.
import { hashWords } from '../blocklist/shared-ip-set.ts';
import { formatIp, parseIp } from '../net/ip.ts';

const SLOT_INTS = 6;
const HEADER_INTS = 4; // per region: [overflow hits, slots, 0, 0]
/** Longest probe: a full neighbourhood is treated as a full table. */
const MAX_PROBES = 32;

export interface RateCountersLayout {
  /** Writer regions: one per data-plane thread. */
  threads: number;
  /** Slots per region (a power of two is chosen at or above it). */
  slotsPerRegion: number;
}

/** The state for `threads` writers plus the fleet's region, created on the main thread. */
export function createRateCountersState(layout: RateCountersLayout): SharedArrayBuffer {
  let slots = 64;
  while (slots < layout.slotsPerRegion) slots *= 2;
  const regionInts = HEADER_INTS + slots * SLOT_INTS;
  const sab = new SharedArrayBuffer((layout.threads + 1) * regionInts * 4);
  const ints = new Int32Array(sab);
  for (let r = 0; r <= layout.threads; r++) ints[r * regionInts + 1] = slots;
  return sab;
}

/** Windows count from here: a fixed moment every node agrees on, late enough that 1 s windows fit an int32 until 2093. */
const EPOCH_MS = Date.UTC(2025, 0, 1);

/** The window a moment falls in (never 0, which marks an unused slot). */
export function windowIndex(nowMs: number, windowMs: number): number {
  return Math.floor((nowMs - EPOCH_MS) / windowMs) + 1;
}

/** When window `index` starts, in Unix ms (../crdt/rate-windows.ts keys windows by their start). */
export function windowStartMs(index: number, windowMs: number): number {
  return EPOCH_MS + (index - 1) * windowMs;
}

class Region {
  readonly #ints: Int32Array;
  readonly #base: number;
  readonly #mask: number;

  constructor(ints: Int32Array, base: number) {
    this.#ints = ints;
    this.#base = base;
    this.#mask = ints[base + 1]! - 1;
  }

  get overflow(): number {
    return Atomics.load(this.#ints, this.#base);
  }

  /** This region's count of `key` in `window` (any thread). */
  count(key: Uint32Array, window: number, hash: number): number {
    const ints = this.#ints;
    for (let n = 0, i = hash & this.#mask; n < MAX_PROBES; n++, i = (i + 1) & this.#mask) {
      const at = this.#base + HEADER_INTS + i * SLOT_INTS;
      const w = Atomics.load(ints, at);
      if (w === 0) return 0;
      if (w === window && sameKey(ints, at, key)) return ints[at + 1]!;
    }
    return 0;
  }

  /** Adds `n` to `key` in `window` and returns the new count, or -1 when no slot was free (writer only). */
  add(key: Uint32Array, window: number, hash: number, n: number): number {
    const ints = this.#ints;
    let free = -1;
    for (let probe = 0, i = hash & this.#mask; probe < MAX_PROBES; probe++, i = (i + 1) & this.#mask) {
      const at = this.#base + HEADER_INTS + i * SLOT_INTS;
      const w = ints[at]!;
      if (w === window && sameKey(ints, at, key)) {
        const count = ints[at + 1]! + n;
        Atomics.store(ints, at + 1, count);
        return count;
      }
      if (free === -1 && w < window - 1) free = at;
      if (w === 0) break;
    }
    if (free === -1) {
      Atomics.add(ints, this.#base, n);
      return -1;
    }
    ints[free + 1] = n;
    for (let k = 0; k < 4; k++) ints[free + 2 + k] = key[k]! | 0;
    Atomics.store(ints, free, window);
    return n;
  }

  /** Sets `key`'s count in `window` (the fleet's region: the main thread writes totals, not increments). */
  set(key: Uint32Array, window: number, hash: number, count: number): boolean {
    const now = this.count(key, window, hash);
    return now === count || this.add(key, window, hash, count - now) !== -1;
  }

  /** Every live (key, count) of `window`, keys as text. */
  entries(window: number): [string, number][] {
    const out: [string, number][] = [];
    const ints = this.#ints;
    for (let i = 0; i <= this.#mask; i++) {
      const at = this.#base + HEADER_INTS + i * SLOT_INTS;
      if (Atomics.load(ints, at) === window) out.push([formatIp(ints.subarray(at + 2, at + 6)), ints[at + 1]!]);
    }
    return out;
  }
}

function sameKey(ints: Int32Array, at: number, key: Uint32Array): boolean {
  return ints[at + 2] === (key[0]! | 0) && ints[at + 3] === (key[1]! | 0) && ints[at + 4] === (key[2]! | 0) && ints[at + 5] === (key[3]! | 0);
}

function regionsOf(state: SharedArrayBuffer): Region[] {
  const ints = new Int32Array(state);
  const regionInts = HEADER_INTS + ints[1]! * SLOT_INTS;
  const count = ints.length / regionInts;
  return Array.from({ length: count }, (_, r) => new Region(ints, r * regionInts));
}

/** A data-plane thread's view: counts its own hits, reads everyone's. */
export class RateCounter {
  readonly #regions: Region[];
  readonly #own: Region;
  readonly #windowMs: number;
  readonly #key = new Uint32Array(4);

  constructor(state: SharedArrayBuffer, threadIndex: number, windowMs: number) {
    this.#regions = regionsOf(state);
    const own = this.#regions[threadIndex];
    if (own === undefined || threadIndex >= this.#regions.length - 1) throw new RangeError(`no counter region for thread ${threadIndex}`);
    this.#own = own;
    this.#windowMs = windowMs;
  }

  /**
   * Counts one request of `client` at `nowMs` and returns its total in the window across the node's threads
   * and the fleet; -1 when the address does not parse or the table had no room (not counted, let through).
   */
  hit(client: string, nowMs: number): number {
    const key = this.#key;
    if (!parseIp(client, key)) return -1;
    const window = windowIndex(nowMs, this.#windowMs);
    const hash = hashWords(key);
    const own = this.#own.add(key, window, hash, 1);
    if (own === -1) return -1;
    let total = own;
    for (const region of this.#regions) if (region !== this.#own) total += region.count(key, window, hash);
    return total;
  }
}

/** The main thread's view: the node's own counts per window, and the fleet's region to write. */
export class RateCountersReader {
  readonly #regions: Region[];
  readonly #fleet: Region;
  readonly #key = new Uint32Array(4);

  constructor(state: SharedArrayBuffer) {
    this.#regions = regionsOf(state);
    this.#fleet = this.#regions.at(-1)!;
  }

  /** This node's count per client in `window`, summed over its threads (the fleet's region left out). */
  nodeCounts(window: number): Map<string, number> {
    const totals = new Map<string, number>();
    for (const region of this.#regions) {
      if (region === this.#fleet) continue;
      for (const [key, count] of region.entries(window)) totals.set(key, (totals.get(key) ?? 0) + count);
    }
    return totals;
  }

  /** Sets what the rest of the fleet counted for `client` in `window`; false when the address does not parse or there is no room. */
  setFleetCount(client: string, window: number, count: number): boolean {
    const key = this.#key;
    return parseIp(client, key) && this.#fleet.set(key, window, hashWords(key), count);
  }

  /** Hits not counted for want of a free slot, over every writer region. */
  get overflow(): number {
    let sum = 0;
    for (const region of this.#regions) sum += region.overflow;
    return sum;
  }
}
