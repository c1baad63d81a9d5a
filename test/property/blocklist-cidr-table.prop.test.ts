// The shared range table as a state machine (fc.commands) against a plain model: random add (with no, past or
// future expiry) / remove / check / purge / list sequences over IPv4 and IPv6 networks of every prefix length,
// on a small table so "full" and slot reuse happen. Whether an address is blocked is judged by an independent
// oracle (128-bit BigInt prefix comparison), not by the code under test; checks go through both the writer
// and a separate reader on the same SharedArrayBuffer.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCidrTableState, SharedCidrTable, SharedCidrTableWriter } from '../../src/blocklist/shared-cidr-table.ts';
import { fcParams } from '../helpers/fc.ts';

const V4_MAPPED = 0xffff_0000_0000n;
const ALL = (1n << 128n) - 1n;

/** An address or network in the 128-bit form ../../src/net/ip.ts uses (IPv4 as ::ffff:a.b.c.d). */
interface Net {
  text: string;
  value: bigint;
  /** Prefix in the 128-bit form (IPv4 /n is 96 + n). */
  prefix: number;
}

const v4Text = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
const v6Text = (value: bigint): string => Array.from({ length: 8 }, (_, i) => ((value >> BigInt(112 - i * 16)) & 0xffffn).toString(16)).join(':');
const maskOf = (prefix: number): bigint => (prefix === 0 ? 0n : (ALL << BigInt(128 - prefix)) & ALL);

/** The oracle's reading of canonical text as the table prints it: a.b.c.d/n or compressed IPv6/n. */
function parseOracle(text: string): { value: bigint; prefix: number } {
  const [address, bits] = text.split('/') as [string, string];
  if (!address.includes(':')) {
    const v = address.split('.').reduce((acc, o) => acc * 256n + BigInt(o), 0n);
    return { value: V4_MAPPED | v, prefix: 96 + Number(bits) };
  }
  const [head, tail] = address.includes('::') ? (address.split('::') as [string, string]) : [address, null];
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = tail === null ? [] : groups(tail);
  const all = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return { value: all.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n), prefix: Number(bits) };
}

const keyOf = (value: bigint, prefix: number): string => `${value}/${prefix}`;
const inside = (address: bigint, net: { value: bigint; prefix: number }): boolean => (address & maskOf(net.prefix)) === net.value;

const v4Base = fc.oneof(fc.constantFrom(0x0a00_0000, 0xc000_0200, 0xcb00_7100, 0, 0xffff_ffff), fc.integer({ min: 0, max: 0xffff_ffff }));
const v6Base = fc.oneof(
  fc.constantFrom(0x2001_0db8n << 96n, 0n, 0xfe80n << 112n, V4_MAPPED << 32n, ALL),
  fc.bigInt({ min: 0n, max: ALL }),
);

const network: fc.Arbitrary<Net> = fc.oneof(
  fc.record({ base: v4Base, bits: fc.integer({ min: 0, max: 32 }) }).map(({ base, bits }) => {
    const masked = bits === 0 ? 0 : (base & (0xffff_ffff << (32 - bits))) >>> 0;
    return { text: `${v4Text(masked)}/${bits}`, value: V4_MAPPED | BigInt(masked), prefix: 96 + bits };
  }),
  fc.record({ base: v6Base, bits: fc.integer({ min: 0, max: 128 }) }).map(({ base, bits }) => {
    const masked = base & maskOf(bits);
    return { text: `${v6Text(masked)}/${bits}`, value: masked, prefix: bits };
  }),
);

/** Addresses: random ones, and the first and last address of each network so that hits happen. */
function addressesFor(nets: readonly Net[]): fc.Arbitrary<{ text: string; value: bigint }> {
  const edges = nets.flatMap((n) => [n.value, n.value | (~maskOf(n.prefix) & ALL)]);
  const text = (value: bigint): string =>
    value >> 32n === 0xffffn ? (Number(value & 0xffffn) % 2 === 0 ? v4Text(Number(value & 0xffff_ffffn)) : `::ffff:${v4Text(Number(value & 0xffff_ffffn))}`) : v6Text(value);
  return fc
    .oneof(fc.constantFrom(...edges), v4Base.map((v) => V4_MAPPED | BigInt(v)), v6Base)
    .map((value) => ({ text: text(value), value }));
}

type Expiry = 'none' | 'past' | 'future';

interface Model {
  capacity: number;
  entries: Map<string, { value: bigint; prefix: number; expiresAt: number | null }>;
}
interface Real {
  writer: SharedCidrTableWriter;
  reader: SharedCidrTable;
}

const nowSec = (): number => Date.now() / 1000;
const expiryAt = (e: Expiry): number | null => (e === 'none' ? null : e === 'past' ? Math.floor(nowSec()) - 100 : Math.floor(nowSec()) + 1_000_000);
const live = (expiresAt: number | null): boolean => expiresAt === null || expiresAt > nowSec();

class Add implements fc.Command<Model, Real> {
  readonly net: Net;
  readonly expiry: Expiry;
  constructor(net: Net, expiry: Expiry) {
    this.net = net;
    this.expiry = expiry;
  }
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    const key = keyOf(this.net.value, this.net.prefix);
    const expiresAt = expiryAt(this.expiry);
    const expected = m.entries.has(key) ? 'updated' : m.entries.size >= m.capacity ? 'full' : 'added';
    const got = r.writer.add(this.net.text, expiresAt);
    expect(got.outcome).toBe(expected);
    if (got.outcome === 'invalid') return;
    const canonical = parseOracle(got.cidr);
    expect(keyOf(canonical.value, canonical.prefix)).toBe(key);
    if (expected !== 'full') m.entries.set(key, { value: this.net.value, prefix: this.net.prefix, expiresAt });
    expect(r.writer.size).toBe(m.entries.size);
  }
  toString(): string {
    return `add(${this.net.text}, ${this.expiry})`;
  }
}

class Remove implements fc.Command<Model, Real> {
  readonly net: Net;
  constructor(net: Net) {
    this.net = net;
  }
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    const key = keyOf(this.net.value, this.net.prefix);
    expect(r.writer.remove(this.net.text).outcome).toBe(m.entries.delete(key) ? 'removed' : 'absent');
    expect(r.writer.size).toBe(m.entries.size);
  }
  toString(): string {
    return `remove(${this.net.text})`;
  }
}

class Check implements fc.Command<Model, Real> {
  readonly address: { text: string; value: bigint };
  constructor(address: { text: string; value: bigint }) {
    this.address = address;
  }
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    const expected = [...m.entries.values()].some((e) => live(e.expiresAt) && inside(this.address.value, e));
    expect(r.reader.check(this.address.text)).toBe(expected);
    expect(r.writer.check(this.address.text)).toBe(expected);
  }
  toString(): string {
    return `check(${this.address.text})`;
  }
}

class Purge implements fc.Command<Model, Real> {
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    const expired = [...m.entries].filter(([, e]) => !live(e.expiresAt)).map(([k]) => k);
    const purged = r.writer.purgeExpired(nowSec()).map((text) => {
      const p = parseOracle(text);
      return keyOf(p.value, p.prefix);
    });
    expect(purged.sort()).toEqual(expired.sort());
    for (const k of expired) m.entries.delete(k);
  }
  toString(): string {
    return 'purge';
  }
}

class List implements fc.Command<Model, Real> {
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    const listed = r.writer.list().map((e) => {
      const p = parseOracle(e.cidr);
      return [keyOf(p.value, p.prefix), e.expiresAt] as const;
    });
    const expected = [...m.entries].map(([k, e]) => [k, e.expiresAt] as const);
    expect(listed.sort()).toEqual(expected.sort());
  }
  toString(): string {
    return 'list';
  }
}

describe('SharedCidrTable (fc.commands model)', () => {
  it('blocks exactly what the model says, through the writer and a separate reader', () => {
    fc.assert(
      fc.property(
        fc
          .record({ capacity: fc.integer({ min: 1, max: 6 }), nets: fc.uniqueArray(network, { minLength: 1, maxLength: 10, selector: (n) => n.text }) })
          .chain(({ capacity, nets }) =>
            fc.record({
              capacity: fc.constant(capacity),
              commands: fc.commands(
                [
                  fc.record({ net: fc.constantFrom(...nets), expiry: fc.constantFrom<Expiry>('none', 'past', 'future') }).map(({ net, expiry }) => new Add(net, expiry)),
                  fc.constantFrom(...nets).map((net) => new Remove(net)),
                  addressesFor(nets).map((a) => new Check(a)),
                  addressesFor(nets).map((a) => new Check(a)),
                  fc.constant(new Purge()),
                  fc.constant(new List()),
                ],
                { maxCommands: 100, size: 'max' },
              ),
            }),
          ),
        ({ capacity, commands }) => {
          const writer = new SharedCidrTableWriter(createCidrTableState(capacity));
          const real: Real = { writer, reader: new SharedCidrTable(writer.state) };
          fc.modelRun(() => ({ model: { capacity, entries: new Map() }, real }), commands);
        },
      ),
      fcParams(200),
    );
  });
});
