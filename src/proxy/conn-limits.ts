// Connection limits shared by every data-plane thread of a node without messages: the global
// `max_connections` and the per-source-IP concurrent cap live in one SharedArrayBuffer that the main thread
// creates and each worker maps. With reusePort one client's connections spread over threads, so only a
// shared count is a real per-IP cap.
//
// Per-IP counts use a count-min sketch (Cormode & Muthukrishnan 2005): ROWS rows of BUCKETS counters, each
// row hashed independently, and the estimate is the minimum over rows. It never under-counts, so it can only
// refuse early (when every row's bucket is shared with other busy sources), never over-admit; memory is fixed
// whatever a spoofing flood sends. Every counter has one column per thread, so when a crashed thread is
// restarted its column is zeroed (`resetThread`) and the counts it held are released with its sockets.
//
// Checks and increments are separate atomic steps, so threads racing on the same source can exceed the
// per-IP cap by at most (threads − 1); the global cap is exact (add, then check and undo).

const ROWS = 2;
const BUCKETS = 1 << 16;
const HEADER_INTS = 4; // [threads, maxConnections, perIpMaxConnections, global active]

export interface ConnLimitsSettings {
  threads: number;
  maxConnections: number;
  /** 0 turns the per-IP cap off. */
  perIpMaxConnections: number;
}

export type AcquireOutcome = 'ok' | 'max_connections' | 'per_ip_limit';

/** Main thread: allocates the shared state (about 0.5 MiB per thread). */
export function createConnLimitsState(s: ConnLimitsSettings): SharedArrayBuffer {
  const threads = Math.max(1, s.threads);
  const ints = HEADER_INTS + threads + ROWS * BUCKETS * threads;
  const sab = new SharedArrayBuffer(ints * 4);
  const view = new Int32Array(sab);
  view[0] = threads;
  view[1] = s.maxConnections;
  view[2] = s.perIpMaxConnections;
  return sab;
}

/** FNV-1a over the address text with a row-specific offset basis; murmur3's finalizer spreads the bits. */
function hash(text: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return (h ^ (h >>> 16)) >>> 0;
}
const SEEDS = [0x811c9dc5, 0x9e3779b9] as const;

export class ConnLimits {
  readonly #v: Int32Array;
  readonly #thread: number;
  readonly #threads: number;
  readonly #columns: number; // offset of the per-thread active counts
  readonly #sketch: number; // offset of the sketch
  readonly #offsets = new Int32Array(ROWS);

  constructor(state: SharedArrayBuffer, threadIndex: number) {
    this.#v = new Int32Array(state);
    this.#threads = this.#v[0]!;
    if (threadIndex < 0 || threadIndex >= this.#threads) throw new RangeError(`thread index ${threadIndex} outside 0..${this.#threads - 1}`);
    this.#thread = threadIndex;
    this.#columns = HEADER_INTS;
    this.#sketch = HEADER_INTS + this.#threads;
  }

  get maxConnections(): number {
    return this.#v[1]!;
  }

  get perIpMaxConnections(): number {
    return this.#v[2]!;
  }

  /** Node-wide open connections. */
  activeTotal(): number {
    return Atomics.load(this.#v, 3);
  }

  /** Estimated open connections of `ip` across all threads (never below the true count). */
  estimate(ip: string): number {
    this.#locate(ip);
    let min = Infinity;
    for (let r = 0; r < ROWS; r++) {
      let sum = 0;
      const base = this.#offsets[r]!;
      for (let t = 0; t < this.#threads; t++) sum += Atomics.load(this.#v, base + t);
      if (sum < min) min = sum;
    }
    return min;
  }

  /** Admits one connection from `ip` on this thread, or says which limit refuses it. */
  tryAcquire(ip: string): AcquireOutcome {
    if (Atomics.add(this.#v, 3, 1) >= this.#v[1]!) {
      Atomics.sub(this.#v, 3, 1);
      return 'max_connections';
    }
    const perIp = this.#v[2]!;
    if (perIp > 0 && this.estimate(ip) >= perIp) {
      Atomics.sub(this.#v, 3, 1);
      return 'per_ip_limit';
    }
    // estimate() left this ip's bucket offsets in #offsets.
    if (perIp > 0) for (let r = 0; r < ROWS; r++) Atomics.add(this.#v, this.#offsets[r]! + this.#thread, 1);
    Atomics.add(this.#v, this.#columns + this.#thread, 1);
    return 'ok';
  }

  /** Releases one connection from `ip` admitted on this thread. */
  release(ip: string): void {
    if (this.#v[2]! > 0) {
      this.#locate(ip);
      for (let r = 0; r < ROWS; r++) Atomics.sub(this.#v, this.#offsets[r]! + this.#thread, 1);
    }
    Atomics.sub(this.#v, this.#columns + this.#thread, 1);
    Atomics.sub(this.#v, 3, 1);
  }

  /**
   * Forgets every connection `threadIndex` held (its sockets died with it). Called on the main thread before
   * that thread is started again, so nothing else writes its column meanwhile.
   */
  resetThread(threadIndex: number): void {
    const held = Atomics.exchange(this.#v, this.#columns + threadIndex, 0);
    if (held !== 0) Atomics.sub(this.#v, 3, held);
    for (let r = 0; r < ROWS; r++) {
      for (let b = 0; b < BUCKETS; b++) Atomics.store(this.#v, this.#sketch + (r * BUCKETS + b) * this.#threads + threadIndex, 0);
    }
  }

  #locate(ip: string): void {
    for (let r = 0; r < ROWS; r++) {
      const bucket = hash(ip, SEEDS[r]!) & (BUCKETS - 1);
      this.#offsets[r] = this.#sketch + (r * BUCKETS + bucket) * this.#threads;
    }
  }
}
