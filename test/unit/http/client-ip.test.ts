import { describe, expect, it } from 'vitest';
import { clientIp, MAX_FORWARDED_HOPS } from '../../../src/http/client-ip.ts';
import { CidrSet } from '../../../src/net/cidr.ts';

const trusted = new CidrSet(['10.0.0.0/8', '2001:db8::/32']);

describe('clientIp', () => {
  it.each([
    ['untrusted peer: its header is ignored', '203.0.113.9', '1.2.3.4', '203.0.113.9', 0],
    ['trusted peer, no header', '10.0.0.1', undefined, '10.0.0.1', 0],
    ['one trusted hop', '10.0.0.1', '198.51.100.7', '198.51.100.7', 1],
    ['spoofed left part is never reached', '10.0.0.1', '1.1.1.1, 198.51.100.7', '198.51.100.7', 1],
    ['two trusted hops', '10.0.0.1', '1.1.1.1, 198.51.100.7, 10.9.9.9', '198.51.100.7', 2],
    ['all trusted: the leftmost', '10.0.0.1', '10.1.1.1, 10.2.2.2', '10.1.1.1', 2],
    ['IPv4 with port', '10.0.0.1', '198.51.100.7:4711', '198.51.100.7', 1],
    ['bracketed IPv6 with port', '10.0.0.1', '[2001:db9::5]:443', '2001:db9::5', 1],
    ['bare IPv6', '2001:db8::1', '2001:db9::5', '2001:db9::5', 1],
    ['IPv4-mapped peer', '::ffff:10.0.0.1', '198.51.100.7', '198.51.100.7', 1],
    ['garbage right of a trusted hop: the hop is the client', '10.0.0.1', '198.51.100.7, unknown', '10.0.0.1', 0],
    ['empty entry', '10.0.0.1', '198.51.100.7,', '10.0.0.1', 0],
    ['garbage after a trusted hop', '10.0.0.1', 'evil, 10.2.2.2', '10.2.2.2', 1],
    ['repeated headers in order', '10.0.0.1', ['1.1.1.1', '198.51.100.7'], '198.51.100.7', 1],
    ['whitespace', '10.0.0.1', ' \t198.51.100.7 \t', '198.51.100.7', 1],
    ['bad port', '10.0.0.1', '198.51.100.7:http', '10.0.0.1', 0],
  ] as const)('%s', (_name, peer, xff, address, hops) => {
    expect(clientIp(peer, xff as string | string[] | undefined, trusted)).toEqual({ address, hops });
  });

  it(`stops after ${MAX_FORWARDED_HOPS} hops`, () => {
    const xff = Array.from({ length: 1000 }, () => '10.1.1.1').join(',');
    expect(clientIp('10.0.0.1', xff, trusted)).toEqual({ address: '10.1.1.1', hops: MAX_FORWARDED_HOPS });
  });

  it('with no trusted ranges, the peer is always the client', () => {
    expect(clientIp('10.0.0.1', '198.51.100.7', new CidrSet([]))).toEqual({ address: '10.0.0.1', hops: 0 });
  });
});
