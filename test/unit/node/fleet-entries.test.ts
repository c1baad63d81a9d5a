// Each kind of fleet entry (src/node/fleet-entries.ts): what is accepted, in which stored form and under
// which name, and what is refused with which message.
import { describe, expect, it } from 'vitest';
import { canonicalName, checkEntry } from '../../../src/node/fleet-entries.ts';

const NOW = 1_800_000_000;

describe('checkEntry', () => {
  it.each([
    ['domain', { host: 'Shop.Example', origins: ['http://10.0.0.5:8080'], rate_limit: { requests: 50 } }, 'shop.example', { host: 'shop.example', origins: ['http://10.0.0.5:8080'], rate_limit: { requests: 50 } }],
    ['rule', { id: 77, name: 'canary', pattern: 'x\\d+', action: 'log', targets: ['args'] }, '77', { id: 77, name: 'canary', pattern: 'x\\d+', action: 'log', severity: 'critical', targets: ['args'] }],
    ['exclusion', { name: 'search-q', rule_ids: [942100], parameter: 'q', path: '/search' }, 'search-q', { name: 'search-q', rule_ids: [942100], parameter: 'q', path: '/search' }],
    ['allow', { name: 'office', cidr: '198.51.100.0/24' }, 'office', { name: 'office', cidr: '198.51.100.0/24' }],
    ['block', { cidr: '203.0.113.0/24', duration_sec: 60, reason: 'flood' }, '203.0.113.0/24', { cidr: '203.0.113.0/24', expires_at: NOW + 60, reason: 'flood' }],
    ['block', { cidr: '2001:DB8::/32' }, '2001:db8::/32', { cidr: '2001:db8::/32' }],
    ['block', { cidr: '192.0.2.7', expires_at: NOW + 5 }, '192.0.2.7/32', { cidr: '192.0.2.7/32', expires_at: NOW + 5 }],
  ] as const)('accepts a %s and stores it under its name', (kind, raw, name, value) => {
    expect(checkEntry(kind, raw, NOW)).toEqual({ ok: true, name, value });
  });

  it.each([
    ['domain', { host: 'bad host', origins: ['http://x:1'] }, /host/],
    ['domain', { host: 'a.example', origins: ['http://x:1'], rate_limit: { requests: 0 } }, /rate_limit\.requests/],
    ['domain', { host: 'a.example', origins: ['http://x:1'], tls: { cert: '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n', key: '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n' } }, /^tls: .*does not parse/],
    ['domain', { host: 'a.example', origins: ['http://x:1'], tls: { cert: 'hello', key: 'x' } }, /tls\.cert: expected a PEM certificate chain/],
    ['rule', { id: 5, name: 'broken', pattern: '(unclosed', action: 'block', targets: ['args'] }, /^rule 5: /],
    ['rule', { id: 5, name: 'n', pattern: 'x', action: 'explode', targets: ['args'] }, /action/],
    ['exclusion', { rule_ids: [1] }, /name/],
    ['allow', { name: 'x', cidr: '300.0.0.0/8' }, /cidr: "300\.0\.0\.0\/8" is not a CIDR/],
    ['allow', { name: 'has space' }, /name/],
    ['block', { cidr: '203.0.113.5/24' }, /host bits set/],
    ['block', { cidr: '10.0.0.0/8', duration_sec: 5, expires_at: NOW }, /give one/],
    ['block', { cidr: '10.0.0.0/8', extra: 1 }, /extra/],
    ['block', 'not an object', /object/i],
  ] as const)('refuses a %s: %j', (kind, raw, problem) => {
    const checked = checkEntry(kind, raw, NOW);
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.problem).toMatch(problem);
  });
});

describe('checkEntry messages', () => {
  it('never quote what was received (a private key may be in it)', () => {
    const checked = checkEntry('domain', { host: 'a.example', origins: ['http://x:1'], waf_mode: 'hunter2-secret' }, NOW);
    expect(checked).toMatchObject({ ok: false, problem: expect.stringMatching(/^waf_mode: /) });
    if (!checked.ok) expect(checked.problem).not.toContain('hunter2');
  });
});

describe('canonicalName', () => {
  it.each([
    ['domain', 'Shop.EXAMPLE', 'shop.example'],
    ['block', '2001:DB8:0::/32', '2001:db8::/32'],
    ['block', '192.0.2.7', '192.0.2.7/32'],
    ['block', 'not-a-cidr', 'not-a-cidr'],
    ['rule', '4242', '4242'],
  ] as const)('%s %s → %s', (kind, name, canonical) => {
    expect(canonicalName(kind, name)).toBe(canonical);
  });
});
