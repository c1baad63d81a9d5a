// Certificate pairs in shared memory (the PemTable message type, src/messages.ts): the main thread appends
// every pair it has checked, each worker thread's CertificateStore reads the bytes in place. postMessage
// shares a SharedArrayBuffer instead of copying it, so 100k certificates cost one copy of their PEM per
// node rather than one per thread plus the main thread's. Views over the bytes are made only when a secure
// context is built: a Buffer view costs about 260 bytes, 50 MB per thread for 100k pairs if kept.
import { createHash } from 'node:crypto';
import type { PemTable } from '../messages.ts';

export interface PemBytes {
  /** Leaf first, then intermediates. */
  cert: Buffer;
  key: Buffer;
}

/**
 * Chunk size of the table's bytes. A chunk is zero-filled memory the kernel maps lazily, so the unused tail
 * of the last one costs address space, not RSS. Larger pairs get a chunk of their own size.
 */
const CHUNK_BYTES = 16 * 1024 * 1024;
const SLOT_FIELDS = 4;
const DIGEST_BYTES = 32;
const DIGEST_WORDS = DIGEST_BYTES / Uint32Array.BYTES_PER_ELEMENT;

export class PemTableBuilder {
  readonly #chunks: Uint8Array<SharedArrayBuffer>[] = [];
  /** The chunk pairs are appended to (-1: none yet) and how much of it is used; oversized pairs get their own. */
  #current = -1;
  #used = 0;
  readonly #slots: number[] = [];
  readonly #notAfterMs: number[] = [];
  /** DIGEST_WORDS per pair: a Buffer each would cost ~100 bytes of heap. */
  readonly #digestWords: number[] = [];

  get size(): number {
    return this.#notAfterMs.length;
  }

  /** Appends a checked pair and its `pairDigest`; returns its index, which `build` takes the names by. */
  add(cert: Uint8Array, key: Uint8Array, notAfterMs: number, digest: Buffer): number {
    if (digest.length !== DIGEST_BYTES) throw new RangeError(`a pair digest is ${DIGEST_BYTES} bytes`);
    const bytes = cert.length + key.length;
    let chunk: number;
    let offset = 0;
    if (bytes > CHUNK_BYTES) {
      chunk = this.#allocate(bytes);
    } else {
      if (this.#current === -1 || this.#used + bytes > CHUNK_BYTES) {
        this.#current = this.#allocate(CHUNK_BYTES);
        this.#used = 0;
      }
      chunk = this.#current;
      offset = this.#used;
      this.#used += bytes;
    }
    const view = this.#chunks[chunk]!;
    view.set(cert, offset);
    view.set(key, offset + cert.length);
    this.#slots.push(chunk, offset, cert.length, key.length);
    this.#notAfterMs.push(notAfterMs);
    for (let w = 0; w < DIGEST_WORDS; w++) this.#digestWords.push(digest.readUInt32LE(w * Uint32Array.BYTES_PER_ELEMENT));
    return this.#notAfterMs.length - 1;
  }

  /** `names[i]` are the names pair i is served for (empty: stored but served for nothing). */
  build(names: string[][]): PemTable {
    if (names.length !== this.size) throw new RangeError(`names for ${names.length} pairs, table has ${this.size}`);
    // Shared too, so threads read one copy of the index as well.
    const slots = new Uint32Array(new SharedArrayBuffer(this.#slots.length * Uint32Array.BYTES_PER_ELEMENT));
    slots.set(this.#slots);
    const notAfterMs = new Float64Array(new SharedArrayBuffer(this.size * Float64Array.BYTES_PER_ELEMENT));
    notAfterMs.set(this.#notAfterMs);
    const digests = new Uint32Array(new SharedArrayBuffer(this.size * DIGEST_BYTES));
    digests.set(this.#digestWords);
    return { chunks: this.#chunks.map((c) => c.buffer), slots, notAfterMs, digests, names };
  }

  #allocate(bytes: number): number {
    this.#chunks.push(new Uint8Array(new SharedArrayBuffer(bytes)));
    return this.#chunks.length - 1;
  }
}

export function pairCount(table: PemTable): number {
  return table.notAfterMs.length;
}

/** Pair `index` as Buffers over the shared bytes (no copy). */
export function pemAt(table: PemTable, index: number): PemBytes {
  const at = index * SLOT_FIELDS;
  const [chunk, offset, certLength, keyLength] = [table.slots[at]!, table.slots[at + 1]!, table.slots[at + 2]!, table.slots[at + 3]!];
  const buffer = table.chunks[chunk]!;
  return { cert: Buffer.from(buffer, offset, certLength), key: Buffer.from(buffer, offset + certLength, keyLength) };
}

export function samePem(a: PemBytes, b: PemBytes): boolean {
  return a.cert.equals(b.cert) && a.key.equals(b.key);
}

/** SHA-256 of a pair, the certificate's length first so no other split of the same bytes matches. */
export function pairDigest(cert: Uint8Array, key: Uint8Array): Buffer {
  return createHash('sha256').update(`${cert.length}:`).update(cert).update(key).digest();
}

/** Whether pair `i` of `a` and pair `j` of `b` hold the same bytes, by digest: eight words, no view made. */
export function sameDigest(a: PemTable, i: number, b: PemTable, j: number): boolean {
  for (let w = 0; w < DIGEST_WORDS; w++) if (a.digests[i * DIGEST_WORDS + w] !== b.digests[j * DIGEST_WORDS + w]) return false;
  return true;
}

/** Every (name, notAfter) of the table, soonest expiry first (then by name), the first `limit` of them. */
export function expiringFirst(table: PemTable, limit: number): { name: string; notAfterMs: number }[] {
  const all = table.names.flatMap((names, i) => names.map((name) => ({ name, notAfterMs: table.notAfterMs[i]! })));
  all.sort((a, b) => a.notAfterMs - b.notAfterMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return all.slice(0, limit);
}
