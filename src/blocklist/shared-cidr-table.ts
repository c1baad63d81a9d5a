// Emergency blocks of whole networks (IPv4 and IPv6 CIDRs, optional expiry) in a SharedArrayBuffer that every
// thread reads without messages, beside the exact addresses of ./shared-ip-set.ts: a range blocked through
// `ctl cidr block` or the REST API is refused by every data-plane thread on its next accept. One writer (the
// main thread) and many lock-free readers; ./shared-blocklist.ts is what the data planes consult.
//
// A linear scan rather than a trie: emergency ranges are a handful, the table holds at most
// CIDR_TABLE_CAPACITY (1024) of 8 words each — 32 KiB of contiguous memory, about 10 µs to scan when full —
// and the usual case, an empty table, costs one load per connection. A trie would need multi-word updates
// that readers on other threads could observe half done; here each slot is judged on its own.
//
// Layout: header [used (the scan bound), live count, capacity, unused]; slot [seq, state, expiresAtSec,
// prefix, w0, w1, w2, w3], the network in ../net/ip.ts's four-word form. The writer refills only slots that
// are not LIVE, bracketed by seq going odd then even (a seqlock); removal and a new expiry are single-word
// stores. The scan reads plainly, since V8's Atomics.load costs many plain reads (a full scan took 80 µs with
// it, 9 µs without); a LIVE slot is never rewritten, so plain reads of it are exact, and a slot caught
// mid-refill can only produce a false candidate. Each candidate is confirmed under the seqlock with Atomics
// (skip the slot while seq is odd, re-read it if seq moved), so a reader never blocks on a half-written
// range — a /32 prefix read with an IPv4 network's words would be ::/32, every IPv4 client.
import { formatCidr, inNetwork, parseCidr } from '../net/cidr.ts';
import { parseIp } from '../net/ip.ts';

/** Ranges a node can block at once. */
export const CIDR_TABLE_CAPACITY = 1024;

const HEADER_INTS = 4;
const SLOT_INTS = 8;
const FREE = 0;
const LIVE = 1;
/** Reads of a slot that keeps changing under a reader before it counts the slot as not matching. */
const READ_ATTEMPTS = 4;

export interface CidrBlockEntry {
  /** Canonical network text (203.0.113.0/24, 2001:db8::/32). */
  cidr: string;
  /** Unix seconds; null = until removed. */
  expiresAt: number | null;
}

export type CidrAddOutcome = { outcome: 'added' | 'updated' | 'full'; cidr: string } | { outcome: 'invalid'; reason: string };
export type CidrRemoveOutcome = { outcome: 'removed' | 'absent'; cidr: string } | { outcome: 'invalid'; reason: string };

/** Creates the shared state on the main thread for up to `capacity` ranges. */
export function createCidrTableState(capacity: number = CIDR_TABLE_CAPACITY): SharedArrayBuffer {
  const sab = new SharedArrayBuffer((HEADER_INTS + capacity * SLOT_INTS) * 4);
  new Int32Array(sab)[2] = capacity;
  return sab;
}

/** Read side: any thread. `check` has net.BlockList's shape, like SharedIpSet's. */
export class SharedCidrTable {
  protected readonly ints: Int32Array;
  readonly capacity: number;
  readonly #key = new Uint32Array(4);
  /** A consistent copy of one slot's network, judged after its seq proved the copy whole. */
  readonly #network = new Uint32Array(4);

  constructor(state: SharedArrayBuffer) {
    this.ints = new Int32Array(state);
    this.capacity = this.ints[2]!;
  }

  get state(): SharedArrayBuffer {
    return this.ints.buffer as SharedArrayBuffer;
  }

  /** True when `address` lies in a range blocked now. Unparseable input is not blocked. */
  check(address: string, _family?: string): boolean {
    return parseIp(address, this.#key) && this.contains(this.#key);
  }

  /** check() for an address already in four-word form. */
  contains(words: Uint32Array): boolean {
    const ints = this.ints;
    const used = Atomics.load(ints, 0);
    for (let i = 0; i < used; i++) {
      const off = HEADER_INTS + i * SLOT_INTS;
      if (ints[off + 1] === LIVE && inNetwork(words, ints, off + 4, ints[off + 3]!) && this.#confirm(off, words)) return true;
    }
    return false;
  }

  /** Whether the candidate slot at `off` really holds an unexpired range containing `words`, read whole. */
  #confirm(off: number, words: Uint32Array): boolean {
    const ints = this.ints;
    for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
      const seq = Atomics.load(ints, off);
      // Odd: the writer is filling the slot, and a range is blocked only once its fill is complete.
      if ((seq & 1) === 1) return false;
      // Not LIVE now: nothing to match, whatever the other words hold.
      if (Atomics.load(ints, off + 1) !== LIVE) return false;
      const expires = Atomics.load(ints, off + 2) >>> 0;
      const prefix = Atomics.load(ints, off + 3);
      for (let w = 0; w < 4; w++) this.#network[w] = Atomics.load(ints, off + 4 + w);
      // The slot was refilled while we read it: read the new range.
      if (Atomics.load(ints, off) !== seq) continue;
      return inNetwork(words, this.#network, 0, prefix) && (expires === 0 || expires > Date.now() / 1000);
    }
    return false;
  }
}

/** Write side: the main thread only (single writer). */
export class SharedCidrTableWriter extends SharedCidrTable {
  get size(): number {
    return this.ints[1]!;
  }

  /** Blocks `cidr` until `expiresAtSec` (unix seconds; null = until removed). Re-adding updates the expiry. */
  add(cidr: string, expiresAtSec: number | null): CidrAddOutcome {
    const parsed = parseCidr(cidr);
    if (!parsed.ok) return { outcome: 'invalid', reason: parsed.reason };
    const text = formatCidr(parsed.words, parsed.prefix);
    const expires = expiresAtSec === null ? 0 : Math.max(1, Math.ceil(expiresAtSec)) >>> 0;
    const existing = this.#find(parsed.words, parsed.prefix);
    if (existing >= 0) {
      Atomics.store(this.ints, existing + 2, expires | 0);
      return { outcome: 'updated', cidr: text };
    }
    const off = this.#freeSlot();
    if (off < 0) return { outcome: 'full', cidr: text };
    this.#fill(off, parsed.words, parsed.prefix, expires);
    return { outcome: 'added', cidr: text };
  }

  remove(cidr: string): CidrRemoveOutcome {
    const parsed = parseCidr(cidr);
    if (!parsed.ok) return { outcome: 'invalid', reason: parsed.reason };
    const text = formatCidr(parsed.words, parsed.prefix);
    const off = this.#find(parsed.words, parsed.prefix);
    if (off < 0) return { outcome: 'absent', cidr: text };
    this.#free(off);
    return { outcome: 'removed', cidr: text };
  }

  /** Removes ranges whose expiry has passed; returns them. */
  purgeExpired(nowSec: number): string[] {
    const removed: string[] = [];
    this.#forEachLive((off) => {
      const expires = this.ints[off + 2]! >>> 0;
      if (expires !== 0 && expires <= nowSec) {
        removed.push(this.#entryAt(off).cidr);
        this.#free(off);
      }
    });
    return removed;
  }

  list(): CidrBlockEntry[] {
    const out: CidrBlockEntry[] = [];
    this.#forEachLive((off) => out.push(this.#entryAt(off)));
    return out;
  }

  #entryAt(off: number): CidrBlockEntry {
    const expires = this.ints[off + 2]! >>> 0;
    return { cidr: formatCidr(Uint32Array.from(this.ints.subarray(off + 4, off + 8)), this.ints[off + 3]!), expiresAt: expires === 0 ? null : expires };
  }

  /** Offset of the LIVE slot holding exactly this network, or -1. The writer reads its own writes plainly. */
  #find(words: Uint32Array, prefix: number): number {
    let found = -1;
    this.#forEachLive((off) => {
      if (found < 0 && this.ints[off + 3] === prefix && words.every((w, i) => this.ints[off + 4 + i]! >>> 0 === w)) found = off;
    });
    return found;
  }

  /** The first slot not LIVE below the scan bound, else the next one above it; -1 when the table is full. */
  #freeSlot(): number {
    const used = this.ints[0]!;
    for (let i = 0; i < used; i++) {
      const off = HEADER_INTS + i * SLOT_INTS;
      if (this.ints[off + 1] !== LIVE) return off;
    }
    return used < this.capacity ? HEADER_INTS + used * SLOT_INTS : -1;
  }

  #fill(off: number, words: Uint32Array, prefix: number, expires: number): void {
    const ints = this.ints;
    Atomics.add(ints, off, 1); // odd: readers skip the slot
    Atomics.store(ints, off + 2, expires | 0);
    Atomics.store(ints, off + 3, prefix);
    for (let w = 0; w < 4; w++) Atomics.store(ints, off + 4 + w, words[w]! | 0);
    Atomics.store(ints, off + 1, LIVE);
    Atomics.add(ints, off, 1); // even: published
    const index = (off - HEADER_INTS) / SLOT_INTS;
    // A slot past the scan bound becomes visible only now, complete.
    if (index >= ints[0]!) Atomics.store(ints, 0, index + 1);
    ints[1]!++;
  }

  #free(off: number): void {
    const ints = this.ints;
    Atomics.store(ints, off + 1, FREE);
    ints[1]!--;
    // Trailing free slots leave the scan: an emptied table costs readers one load again.
    let used = ints[0]!;
    while (used > 0 && ints[HEADER_INTS + (used - 1) * SLOT_INTS + 1] !== LIVE) used--;
    Atomics.store(ints, 0, used);
  }

  #forEachLive(fn: (off: number) => void): void {
    const used = this.ints[0]!;
    for (let i = 0; i < used; i++) {
      const off = HEADER_INTS + i * SLOT_INTS;
      if (this.ints[off + 1] === LIVE) fn(off);
    }
  }
}
