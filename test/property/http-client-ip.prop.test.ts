// X-Forwarded-For can be anything a client sends. Whatever it holds, the client address must be the peer
// itself or an entry every hop to whose right is a trusted proxy: never a value an untrusted party wrote
// into a position nobody trusted vouches for.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clientIp, MAX_FORWARDED_HOPS } from '../../src/http/client-ip.ts';
import { CidrSet } from '../../src/net/cidr.ts';
import { fcParams } from '../helpers/fc.ts';

const trusted = new CidrSet(['10.0.0.0/8', '2001:db8::/32']);
const trustedIp = fc.oneof(fc.ipV4().map((ip) => `10.${ip.split('.').slice(1).join('.')}`), fc.constant('2001:db8::7'));
const anyIp = fc.oneof(fc.ipV4(), fc.ipV6(), trustedIp);
const entry = fc.oneof(anyIp, anyIp, fc.constantFrom('unknown', '', ' ', '[', '1.2.3.4:', '::ffff:'), fc.string({ maxLength: 12 }));

describe('clientIp', () => {
  it('only trusted hops vouch for what is to their left', () => {
    fc.assert(
      fc.property(fc.oneof(anyIp, trustedIp), fc.array(entry, { maxLength: 40 }), (peer, entries) => {
        const xff = entries.join(',');
        const { address, hops } = clientIp(peer, xff, trusted);
        if (!trusted.containsText(peer)) {
          expect({ address, hops }).toEqual({ address: peer, hops: 0 });
          return;
        }
        expect(hops).toBeLessThanOrEqual(MAX_FORWARDED_HOPS);
        if (hops === 0) {
          expect(address).toBe(peer);
          return;
        }
        const list = xff.split(',');
        // Every entry right of the chosen one (hops - 1 of them) is a trusted proxy in plain address form.
        for (const right of list.slice(list.length - hops + 1)) expect(trusted.containsText(right.trim())).toBe(true);
        // The chosen one is that entry, give or take brackets and a port.
        expect(list[list.length - hops]!.trim()).toContain(address);
      }),
      fcParams(5000),
    );
  });
});
