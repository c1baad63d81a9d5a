// The allocation-free IP parser agrees with Node's own validator on arbitrary text, and parse ∘ format is the
// identity on arbitrary 128-bit addresses (IPv6 text compared with the WHATWG URL serializer's canonical form).
import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatIp, parseIp } from '../../src/net/ip.ts';
import { fcParams } from '../helpers/fc.ts';

const ipLike = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF:.'.split('')), maxLength: 45 }),
  fc.ipV4(),
  fc.ipV6(),
  fc.string(),
);

describe('parseIp (property)', () => {
  it('accepts exactly what net.isIP accepts (zone ids aside)', () => {
    fc.assert(
      fc.property(ipLike, (text) => {
        fc.pre(!text.includes('%'));
        expect(parseIp(text, new Uint32Array(4))).toBe(isIP(text) !== 0);
      }),
      fcParams(2000),
    );
  });

  it('round-trips arbitrary addresses and formats IPv6 canonically', () => {
    fc.assert(
      fc.property(fc.uint32Array({ minLength: 4, maxLength: 4 }), (words) => {
        const text = formatIp(words);
        const back = new Uint32Array(4);
        expect(parseIp(text, back)).toBe(true);
        expect([...back]).toEqual([...words]);
        if (!text.includes('.')) expect(text).toBe(new URL(`http://[${text}]/`).hostname.slice(1, -1));
      }),
      fcParams(1000),
    );
  });
});
