// A set of blocked IP addresses with optional expiry, in a SharedArrayBuffer that every thread of the node
// reads without messages: an address blocked through `ctl` or the API is refused by every data-plane thread
// on its next accept. Node's net.BlockList is shareable too but cannot remove entries, which unblock and
// expiry need. One writer (the main thread) and many lock-free readers.
//
// Layout: two open-addressing tables; the writer compacts into the idle one and flips `active`, so readers
// never see a half-rebuilt table. A slot is [state, expiresAtSec, w0, w1, w2, w3]; the writer fills the key
// before publishing state=LIVE with Atomics.store, and readers load state with Atomics.load.
import { formatIp, parseIp } from '../net/ip.ts';

const SLOT_INTS = 6;
const HEADER_INTS = 4; // [active table, slots per table, live count, tombstones]
const EMPTY = 0;
const LIVE = 1;
const TOMBSTONE = 2;
/** Compact when live + tombstones pass this share of the slots; keeps probe chains short. */
const MAX_LOAD = 0.7;

export interface BlockEntry {
  ip: string;
  /** Unix seconds; null = until removed. */
  expiresAt: number | null;
}

export type AddOutcome = 'added' | 'updated' | 'full' | 'invalid';

/** Creates the shared state on the main thread for up to `capacity` addresses. */
export function createIpSetState(capacity: number): SharedArrayBuffer {
  let slots = 16;
  while (slots * MAX_LOAD < capacity) slots *= 2;
  const sab = new SharedArrayBuffer((HEADER_INTS + 2 * slots * SLOT_INTS) * 4);
  new Int32Array(sab)[1] = slots;
  return sab;
}

/** A 32-bit hash of an address's four words (also the rate counters' slot hash, src/ratelimit/shared-counters.ts). */
export function hashWords(w: Uint32Array): number {
  // murmur3 fmix32 over an FNV-style fold: cheap and well mixed for sequential addresses.
  let h = 0x811c9dc5;
  for (let i = 0; i < 4; i++) h = Math.imul(h ^ w[i]!, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Read side: any thread. `check` has net.BlockList's shape so it can stand in for one. */
export class SharedIpSet {
  protected readonly ints: Int32Array;
  protected readonly slots: number;
  protected readonly key = new Uint32Array(4);

  constructor(state: SharedArrayBuffer) {
    this.ints = new Int32Array(state);
    this.slots = this.ints[1]!;
  }

  get state(): SharedArrayBuffer {
    return this.ints.buffer as SharedArrayBuffer;
  }

  /** True when `address` is blocked now. Unparseable input is not blocked (the socket layer produced it). */
  check(address: string, _family?: string): boolean {
    return parseIp(address, this.key) && this.contains(this.key);
  }

  /** check() for an address already in four-word form (./shared-blocklist.ts parses once for both tables). */
  contains(words: Uint32Array): boolean {
    const slot = this.find(Atomics.load(this.ints, 0), words);
    if (slot < 0) return false;
    const expires = this.ints[slot + 1]! >>> 0;
    return expires === 0 || expires > Date.now() / 1000;
  }

  /** Offset of the LIVE slot holding `key` in `table`, or -1. */
  protected find(table: number, key: Uint32Array): number {
    const mask = this.slots - 1;
    const base = HEADER_INTS + table * this.slots * SLOT_INTS;
    for (let i = hashWords(key) & mask, n = 0; n < this.slots; i = (i + 1) & mask, n++) {
      const off = base + i * SLOT_INTS;
      const state = Atomics.load(this.ints, off);
      if (state === EMPTY) return -1;
      if (
        state === LIVE &&
        this.ints[off + 2]! >>> 0 === key[0] &&
        this.ints[off + 3]! >>> 0 === key[1] &&
        this.ints[off + 4]! >>> 0 === key[2] &&
        this.ints[off + 5]! >>> 0 === key[3]
      )
        return off;
    }
    return -1;
  }
}

/** Write side: the main thread only (single writer). */
export class SharedIpSetWriter extends SharedIpSet {
  get size(): number {
    return this.ints[2]!;
  }

  get capacity(): number {
    return Math.floor(this.slots * MAX_LOAD);
  }

  /** Blocks `ip` until `expiresAtSec` (unix seconds; null = until removed). Re-adding updates the expiry. */
  add(ip: string, expiresAtSec: number | null): AddOutcome {
    if (!parseIp(ip, this.key)) return 'invalid';
    const expires = expiresAtSec === null ? 0 : Math.max(1, Math.ceil(expiresAtSec)) >>> 0;
    const table = this.ints[0]!;
    const existing = this.find(table, this.key);
    if (existing >= 0) {
      Atomics.store(this.ints, existing + 1, expires | 0);
      return 'updated';
    }
    if (this.ints[2]! + 1 > this.capacity) {
      this.purgeExpired(Date.now() / 1000);
      if (this.ints[2]! + 1 > this.capacity) return 'full';
    }
    if (this.ints[2]! + this.ints[3]! + 1 > this.capacity) this.#compact();
    this.#insert(this.ints[0]!, this.key, expires);
    this.ints[2]!++;
    return 'added';
  }

  remove(ip: string): boolean {
    if (!parseIp(ip, this.key)) return false;
    const slot = this.find(this.ints[0]!, this.key);
    if (slot < 0) return false;
    Atomics.store(this.ints, slot, TOMBSTONE);
    this.ints[2]!--;
    this.ints[3]!++;
    return true;
  }

  /** Removes entries whose expiry has passed; returns their addresses. */
  purgeExpired(nowSec: number): string[] {
    const removed: string[] = [];
    // The scan walks every slot (65k with the default capacity); an empty set, the usual case, needs none.
    if (this.ints[2] === 0) return removed;
    this.#forEachLive(this.ints[0]!, (off) => {
      const expires = this.ints[off + 1]! >>> 0;
      if (expires !== 0 && expires <= nowSec) {
        removed.push(formatIp(this.#keyAt(off)));
        Atomics.store(this.ints, off, TOMBSTONE);
        this.ints[2]!--;
        this.ints[3]!++;
      }
    });
    return removed;
  }

  list(): BlockEntry[] {
    const out: BlockEntry[] = [];
    this.#forEachLive(this.ints[0]!, (off) => {
      const expires = this.ints[off + 1]! >>> 0;
      out.push({ ip: formatIp(this.#keyAt(off)), expiresAt: expires === 0 ? null : expires });
    });
    return out;
  }

  #keyAt(off: number): Uint32Array {
    return Uint32Array.of(this.ints[off + 2]!, this.ints[off + 3]!, this.ints[off + 4]!, this.ints[off + 5]!);
  }

  #insert(table: number, key: Uint32Array, expires: number): void {
    const mask = this.slots - 1;
    const base = HEADER_INTS + table * this.slots * SLOT_INTS;
    for (let i = hashWords(key) & mask; ; i = (i + 1) & mask) {
      const off = base + i * SLOT_INTS;
      const state = this.ints[off]!;
      if (state === LIVE) continue;
      if (state === TOMBSTONE) this.ints[3]!--;
      this.ints[off + 1] = expires | 0;
      for (let w = 0; w < 4; w++) this.ints[off + 2 + w] = key[w]! | 0;
      Atomics.store(this.ints, off, LIVE);
      return;
    }
  }

  #forEachLive(table: number, fn: (off: number) => void): void {
    const base = HEADER_INTS + table * this.slots * SLOT_INTS;
    for (let i = 0; i < this.slots; i++) {
      const off = base + i * SLOT_INTS;
      if (Atomics.load(this.ints, off) === LIVE) fn(off);
    }
  }

  /** Rebuilds the live entries into the idle table, then flips readers to it. */
  #compact(): void {
    const from = this.ints[0]!;
    const to = 1 - from;
    const base = HEADER_INTS + to * this.slots * SLOT_INTS;
    this.ints.fill(0, base, base + this.slots * SLOT_INTS);
    const key = new Uint32Array(4);
    this.#forEachLive(from, (off) => {
      for (let w = 0; w < 4; w++) key[w] = this.ints[off + 2 + w]! >>> 0;
      this.#insert(to, key, this.ints[off + 1]!);
    });
    Atomics.store(this.ints, 0, to);
    this.ints[3] = 0;
  }
}
