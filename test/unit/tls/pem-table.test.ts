// The shared PEM table: bytes come back exactly as appended, across chunk boundaries; the index lives in
// shared memory too; names expire-first ordering for `certs.list`.
import { describe, expect, it } from 'vitest';
import { expiringFirst, pairCount, pairDigest, PemTableBuilder, pemAt, sameDigest, samePem } from '../../../src/tls/pem-table.ts';

const MIB = 1024 * 1024;

function bytes(length: number, fill: number): Buffer {
  return Buffer.alloc(length, fill);
}

describe('PemTableBuilder', () => {
  it('gives back every pair byte for byte, a pair never spanning two chunks', () => {
    const builder = new PemTableBuilder();
    // 7 + 7 MiB fit the first 16 MiB chunk; the third pair does not, and one of 20 MiB gets a chunk of its own.
    const pairs = [
      { cert: bytes(7 * MIB, 1), key: bytes(100, 2) },
      { cert: bytes(7 * MIB, 3), key: bytes(100, 4) },
      { cert: bytes(7 * MIB, 5), key: bytes(100, 6) },
      { cert: bytes(20 * MIB, 7), key: bytes(100, 8) },
      { cert: Buffer.from('small'), key: Buffer.from('key') },
    ];
    pairs.forEach((p, i) => expect(builder.add(p.cert, p.key, i, pairDigest(p.cert, p.key))).toBe(i));
    const table = builder.build(pairs.map((_, i) => [`n${i}.example`]));
    expect(table.chunks).toHaveLength(3);
    expect(table.chunks.every((c) => c instanceof SharedArrayBuffer)).toBe(true);
    expect(table.slots.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(table.notAfterMs.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(table.digests.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(pairCount(table)).toBe(5);
    pairs.forEach((p, i) => expect(samePem(pemAt(table, i), p)).toBe(true));
    expect(samePem(pemAt(table, 0), pemAt(table, 1))).toBe(false);
  });

  it('tells pairs apart by digest across tables, the split between certificate and key included', () => {
    const a = new PemTableBuilder();
    const b = new PemTableBuilder();
    const add = (builder: PemTableBuilder, cert: string, key: string): number =>
      builder.add(Buffer.from(cert), Buffer.from(key), 0, pairDigest(Buffer.from(cert), Buffer.from(key)));
    add(a, 'cert-1', 'key-1');
    add(a, 'cert-2', 'key-2');
    add(b, 'cert-2', 'key-2');
    add(b, 'cert-', '2key-2');
    const [ta, tb] = [a.build([[], []]), b.build([[], []])];
    expect(sameDigest(ta, 1, tb, 0)).toBe(true);
    expect(sameDigest(ta, 0, tb, 0)).toBe(false);
    expect(sameDigest(ta, 1, tb, 1)).toBe(false);
  });

  it('refuses names for a different number of pairs', () => {
    const builder = new PemTableBuilder();
    builder.add(Buffer.from('c'), Buffer.from('k'), 0, pairDigest(Buffer.from('c'), Buffer.from('k')));
    expect(() => builder.build([])).toThrow(RangeError);
  });

  it('lists names soonest expiry first, then by name, up to the limit', () => {
    const builder = new PemTableBuilder();
    for (const notAfter of [300, 100, 200]) builder.add(Buffer.from('c'), Buffer.from('k'), notAfter, pairDigest(Buffer.from('c'), Buffer.from('k')));
    const table = builder.build([['late.example'], ['b.example', 'a.example'], []]);
    expect(expiringFirst(table, 10)).toEqual([
      { name: 'a.example', notAfterMs: 100 },
      { name: 'b.example', notAfterMs: 100 },
      { name: 'late.example', notAfterMs: 300 },
    ]);
    expect(expiringFirst(table, 1)).toEqual([{ name: 'a.example', notAfterMs: 100 }]);
  });
});
