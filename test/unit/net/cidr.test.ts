import { describe, expect, it } from 'vitest';
import { CidrSet, parseCidr } from '../../../src/net/cidr.ts';

describe('parseCidr', () => {
  it.each([
    ['10.0.0.0/8', 104],
    ['192.168.1.7', 128],
    ['0.0.0.0/0', 96],
    ['2001:db8::/32', 32],
    ['::/0', 0],
    ['::1', 128],
  ])('%s has prefix %i in the four-word form', (text, prefix) => {
    const parsed = parseCidr(text);
    expect(parsed.ok && parsed.prefix).toBe(prefix);
  });

  it.each([
    ['10.0.0.1/8', /host bits set \(the network is 10\.0\.0\.0\/8\)/],
    ['10.0.0.0/33', /prefix length "33" is not 0–32/],
    ['2001:db8::/129', /not 0–128/],
    ['10.0.0.0/08', /prefix length/],
    ['10.0.0.0/', /prefix length/],
    ['example.com/8', /not an IPv4 or IPv6 address/],
  ])('%s is refused', (text, reason) => {
    const parsed = parseCidr(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });
});

describe('CidrSet', () => {
  const set = new CidrSet(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32', '172.16.0.0/12']);

  it.each([
    ['10.255.1.2', true],
    ['11.0.0.0', false],
    ['192.168.1.7', true],
    ['192.168.1.8', false],
    ['::ffff:10.1.2.3', true],
    ['2001:db8:ffff::1', true],
    ['2001:db9::1', false],
    ['172.31.255.255', true],
    ['172.32.0.0', false],
    ['not-an-ip', false],
  ])('%s → %s', (ip, inside) => {
    expect(set.containsText(ip)).toBe(inside);
  });

  it('matches everything with /0 and nothing when empty', () => {
    expect(new CidrSet(['0.0.0.0/0']).containsText('203.0.113.9')).toBe(true);
    expect(new CidrSet(['0.0.0.0/0']).containsText('2001:db8::1')).toBe(false);
    expect(new CidrSet(['::/0']).containsText('2001:db8::1')).toBe(true);
    expect(new CidrSet([]).containsText('10.0.0.1')).toBe(false);
  });

  it('names the bad range', () => {
    expect(() => new CidrSet(['10.0.0.0/8', 'x/1'])).toThrow(/invalid CIDR "x\/1"/);
  });
});
