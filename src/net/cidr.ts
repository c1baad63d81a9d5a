// CIDR ranges over the four-word address form of ./ip.ts (IPv4 as ::ffff:a.b.c.d/96+n), for the small sets
// a node consults per connection or request: trusted proxy hops, PROXY-protocol senders. A linear scan over
// one typed array beats any tree for the handful of ranges such lists hold and allocates nothing.
import { formatIp, parseIp } from './ip.ts';

/** Words 0–3 the masked network, word 4 the prefix length (0–128). */
const STRIDE = 5;
const IPV4_MAPPED_PREFIX = 96;

export type CidrParse = { ok: true; words: Uint32Array; prefix: number } | { ok: false; reason: string };

/** Parses `a.b.c.d/n`, `x::y/n` or a bare address (a /32 or /128). The host bits must be zero. */
export function parseCidr(text: string): CidrParse {
  const slash = text.indexOf('/');
  const addr = slash === -1 ? text : text.slice(0, slash);
  const words = new Uint32Array(4);
  if (!parseIp(addr, words)) return { ok: false, reason: `${JSON.stringify(addr)} is not an IPv4 or IPv6 address` };
  const v4 = addr.indexOf(':') === -1;
  const max = v4 ? 32 : 128;
  let bits = max;
  if (slash !== -1) {
    const digits = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(digits) || Number(digits) > max) {
      return { ok: false, reason: `prefix length ${JSON.stringify(digits)} is not 0–${max}` };
    }
    bits = Number(digits);
  }
  const prefix = v4 ? IPV4_MAPPED_PREFIX + bits : bits;
  const masked = Uint32Array.from(words);
  mask(masked, prefix);
  if (masked.some((w, i) => w !== words[i])) {
    return { ok: false, reason: `${text} has host bits set (the network is ${formatCidr(masked, prefix)})` };
  }
  return { ok: true, words: masked, prefix };
}

function mask(words: Uint32Array, prefix: number): void {
  for (let w = 0; w < 4; w++) {
    const keep = Math.min(32, Math.max(0, prefix - w * 32));
    words[w] = keep === 0 ? 0 : keep === 32 ? words[w]! : (words[w]! & (0xffffffff << (32 - keep))) >>> 0;
  }
}

/** Canonical text of a parsed range (IPv4 networks as a.b.c.d/n), for listings. */
export function formatCidr(words: ArrayLike<number>, prefix: number): string {
  const v4 = words[0] === 0 && words[1] === 0 && words[2] === 0xffff && prefix >= IPV4_MAPPED_PREFIX;
  return `${formatIp(words)}/${v4 ? prefix - IPV4_MAPPED_PREFIX : prefix}`;
}

/** The canonical text of a range or address (`192.0.2.7` → `192.0.2.7/32`), or null when `text` is neither. */
export function canonicalCidr(text: string): string | null {
  const parsed = parseCidr(text);
  return parsed.ok ? formatCidr(parsed.words, parsed.prefix) : null;
}

/**
 * Whether `words` lies in the network whose masked words are `network[at]`…`network[at + 3]` and whose
 * prefix is `prefix` bits (four-word form). Shared by CidrSet and the shared range table in src/blocklist/.
 */
export function inNetwork(words: Uint32Array, network: ArrayLike<number>, at: number, prefix: number): boolean {
  for (let w = 0; w < 4; w++) {
    const keep = prefix - w * 32;
    if (keep <= 0) return true;
    const m = keep >= 32 ? 0xffffffff : (0xffffffff << (32 - keep)) >>> 0;
    if (((words[w]! & m) >>> 0) !== network[at + w]! >>> 0) return false;
  }
  return true;
}

/** An immutable set of ranges; build once from config, query per connection. */
export class CidrSet {
  readonly #ranges: Uint32Array;
  readonly size: number;
  /** Scratch for containsText: one parse per call, no allocation. */
  readonly #scratch = new Uint32Array(4);

  /** Throws on the first malformed range; config validation reports the same reasons earlier. */
  constructor(cidrs: readonly string[]) {
    this.#ranges = new Uint32Array(cidrs.length * STRIDE);
    cidrs.forEach((text, i) => {
      const parsed = parseCidr(text);
      if (!parsed.ok) throw new RangeError(`invalid CIDR ${JSON.stringify(text)}: ${parsed.reason}`);
      this.#ranges.set(parsed.words, i * STRIDE);
      this.#ranges[i * STRIDE + 4] = parsed.prefix;
    });
    this.size = cidrs.length;
  }

  /** Whether an address in the four-word form lies in any range. */
  contains(words: Uint32Array): boolean {
    const r = this.#ranges;
    for (let i = 0; i < r.length; i += STRIDE) {
      if (inNetwork(words, r, i, r[i + 4]!)) return true;
    }
    return false;
  }

  /** contains() for address text; false for text that is not an address. */
  containsText(text: string): boolean {
    return this.size > 0 && parseIp(text, this.#scratch) && this.contains(this.#scratch);
  }
}
