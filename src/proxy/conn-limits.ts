// Connection limits shared by every data-plane thread of a node without messages: the global
// `max_connections` and the per-source-IP concurrent cap live in one SharedArrayBuffer that the main thread
// creates (src/node/node.ts) and hands to each worker; each TcpProxy (./tcp.ts) admits and releases through
// its thread's ConnLimits. With reusePort one client's connections spread over threads, so only a shared count
// is a real per-IP cap.
//
// Every counter has one column per thread and a thread only writes its own column. Totals are sums over the
// columns, so when a crashed thread is restarted the main thread zeroes its column (`resetThread`) and
// whatever it held — even a half-finished tryAcquire — is released with its sockets; nothing can leak.
//
// Per-IP counts use a count-min sketch (Cormode & Muthukrishnan, "An improved data stream summary", 2005):
// ROWS rows of BUCKETS counters, each row indexed by an independent seeded hash of the address text, and
// the estimate is the minimum over rows of the bucket's sum over threads. Memory is fixed (2 × 65,536 ×
// 4 bytes = 512 KiB per thread) whatever a flood of distinct sources sends. A bucket also holds the
// connections of every other source hashed into it, so the estimate never under-counts: the cap can only
// refuse early, never over-admit. Refusing early needs, in *both* rows, other sources sharing the bucket
// that together hold ≥ cap − (own connections); with N connections open node-wide a row adds N / 65,536 on
// average (0.15 for N = 10,000), so with caps in the tens this practically never happens. The seeds are
// random per node so a client cannot choose addresses that collide with a victim's buckets.
//
// Both caps are exact under concurrency: a thread first adds its increments, then reads the totals and undoes
// them if a cap is exceeded (add-then-check). In the sequentially consistent order of Atomics, the last of k
// concurrently admitted connections read totals that already held all k increments, so k ≤ cap; racing
// threads may both refuse (under-admit by one briefly), never both admit past the cap.

const ROWS = 2;
const BUCKETS = 1 << 16;
/** Header: [threads, maxConnections, perIpMaxConnections, seed row 0, seed row 1]. */
const HEADER_INTS = 3 + ROWS;

export interface ConnLimitsSettings {
  /** Data-plane threads that will each build a ConnLimits with their index. */
  threads: number;
  /** Open client connections across the node. */
  maxConnections: number;
  /** Open connections per client IP across the node; 0 turns the cap off (and skips the sketch). */
  perIpMaxConnections: number;
}

export type AcquireOutcome = 'ok' | 'max_connections' | 'per_ip_limit';

/** Main thread: allocates the shared state, settings in its header (4 × (1 + 2 × 65,536) bytes per thread). */
export function createConnLimitsState(s: ConnLimitsSettings): SharedArrayBuffer {
  if (!Number.isInteger(s.threads) || s.threads < 1) throw new RangeError(`threads must be a positive integer, got ${s.threads}`);
  if (!Number.isInteger(s.maxConnections) || s.maxConnections < 1) throw new RangeError(`maxConnections must be a positive integer, got ${s.maxConnections}`);
  if (!Number.isInteger(s.perIpMaxConnections) || s.perIpMaxConnections < 0) {
    throw new RangeError(`perIpMaxConnections must be a non-negative integer, got ${s.perIpMaxConnections}`);
  }
  const sab = new SharedArrayBuffer(4 * (HEADER_INTS + s.threads * (1 + ROWS * BUCKETS)));
  const view = new Int32Array(sab);
  view[0] = s.threads;
  view[1] = s.maxConnections;
  view[2] = s.perIpMaxConnections;
  crypto.getRandomValues(view.subarray(3, HEADER_INTS));
  return sab;
}

/**
 * murmur3 (x86, 32-bit) over the UTF-16 code units of the address, one unit per block, with the row's seed:
 * the usual choice of independent hashes for a count-min sketch. Addresses are at most 45 characters.
 */
function hash(text: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < text.length; i++) {
    let k = Math.imul(text.charCodeAt(i), 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= text.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class ConnLimits {
  readonly #v: Int32Array;
  readonly #thread: number;
  readonly #threads: number;
  readonly #seeds: readonly number[];
  /** Scratch: start of the current address's bucket (thread 0's counter) in each row. */
  readonly #buckets = new Int32Array(ROWS);

  constructor(state: SharedArrayBuffer, threadIndex: number) {
    this.#v = new Int32Array(state);
    this.#threads = this.#v[0]!;
    if (this.#v.length !== HEADER_INTS + this.#threads * (1 + ROWS * BUCKETS)) throw new RangeError('not a connection-limits state buffer');
    if (!Number.isInteger(threadIndex) || threadIndex < 0 || threadIndex >= this.#threads) {
      throw new RangeError(`thread index ${threadIndex} outside 0..${this.#threads - 1}`);
    }
    this.#thread = threadIndex;
    this.#seeds = Array.from({ length: ROWS }, (_, r) => this.#v[3 + r]!);
  }

  get maxConnections(): number {
    return this.#v[1]!;
  }

  get perIpMaxConnections(): number {
    return this.#v[2]!;
  }

  /** Node-wide open connections. */
  activeTotal(): number {
    let sum = 0;
    for (let t = 0; t < this.#threads; t++) sum += Atomics.load(this.#v, HEADER_INTS + t);
    return sum;
  }

  /** Estimated open connections of `ip` across all threads: never below the true count. 0 when the cap is off. */
  estimate(ip: string): number {
    if (this.#v[2]! === 0) return 0;
    this.#locate(ip);
    return this.#estimateLocated();
  }

  /** Admits one connection from `ip` on this thread, or says which limit refuses it (nothing is held then). */
  tryAcquire(ip: string): AcquireOutcome {
    const column = HEADER_INTS + this.#thread;
    Atomics.add(this.#v, column, 1);
    if (this.activeTotal() > this.#v[1]!) {
      Atomics.sub(this.#v, column, 1);
      return 'max_connections';
    }
    const perIp = this.#v[2]!;
    if (perIp === 0) return 'ok';
    this.#locate(ip);
    this.#addLocated(1);
    if (this.#estimateLocated() > perIp) {
      this.#addLocated(-1);
      Atomics.sub(this.#v, column, 1);
      return 'per_ip_limit';
    }
    return 'ok';
  }

  /** Releases one connection from `ip` that tryAcquire admitted on this thread. */
  release(ip: string): void {
    if (this.#v[2]! > 0) {
      this.#locate(ip);
      this.#addLocated(-1);
    }
    Atomics.sub(this.#v, HEADER_INTS + this.#thread, 1);
  }

  /**
   * Forgets every connection `threadIndex` held (its sockets died with it). The main thread calls it before
   * starting that thread again, so nothing writes the column meanwhile.
   */
  resetThread(threadIndex: number): void {
    if (!Number.isInteger(threadIndex) || threadIndex < 0 || threadIndex >= this.#threads) {
      throw new RangeError(`thread index ${threadIndex} outside 0..${this.#threads - 1}`);
    }
    Atomics.store(this.#v, HEADER_INTS + threadIndex, 0);
    const sketch = HEADER_INTS + this.#threads;
    for (let i = sketch + threadIndex; i < this.#v.length; i += this.#threads) Atomics.store(this.#v, i, 0);
  }

  #locate(ip: string): void {
    const sketch = HEADER_INTS + this.#threads;
    for (let r = 0; r < ROWS; r++) {
      const bucket = hash(ip, this.#seeds[r]!) & (BUCKETS - 1);
      this.#buckets[r] = sketch + (r * BUCKETS + bucket) * this.#threads;
    }
  }

  #addLocated(delta: number): void {
    for (let r = 0; r < ROWS; r++) Atomics.add(this.#v, this.#buckets[r]! + this.#thread, delta);
  }

  #estimateLocated(): number {
    let min = Infinity;
    for (let r = 0; r < ROWS; r++) {
      const base = this.#buckets[r]!;
      let sum = 0;
      for (let t = 0; t < this.#threads; t++) sum += Atomics.load(this.#v, base + t);
      if (sum < min) min = sum;
    }
    return min;
  }
}
