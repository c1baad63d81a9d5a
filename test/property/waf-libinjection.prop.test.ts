// libinjection's detectors (src/waf/libinjection/) on generated input: arbitrary bytes, and text weighted towards
// what steers the SQL and HTML tokenizers, never make them throw or spin; every token lies inside the input and
// the tokenizers always advance; a reported fingerprint is one of the table's; and inputs built to make a naive
// scanner quadratic (long escapes, unclosed quotes and comments, repeated tags) finish in linear time.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { H5_CONTEXT, Html5Tokenizer, type H5Context } from '../../src/waf/libinjection/html5.ts';
import { SQLI_FINGERPRINTS, SQLI_KEYWORDS } from '../../src/waf/libinjection/sqli-data.ts';
import { detectSqli, isAlphanumericRun, SQLI_FLAGS, SqliState } from '../../src/waf/libinjection/sqli.ts';
import { detectXss } from '../../src/waf/libinjection/xss.ts';
import { fcParams } from '../helpers/fc.ts';

const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('latin1');

const piece = fc.oneof(
  fc.uint8Array({ maxLength: 16 }).map(latin1),
  fc.constantFrom(
    "'", '"', '`', '\\', '--', '-- ', '#', '/*', '*/', '/*!', ' ', '\n', '\0', '\xa0', '\xff', '1', '0x1f', '1e', '.5',
    'union', 'select', 'or', 'and', '||', '=', '<=>', '!', '(', ')', '{', '}', '[', ']', ',', ';', ':', '::', '@@',
    '$$', '$a$', "q'[", "N'", "U&'", "X'", 'user', 'in', 'like', 'collate', 'if', '.', 'sp_password',
    '<', '>', '</', '/>', '<!--', '-->', '<?', '<%', '%>', '<![CDATA[', ']]>', '<!DOCTYPE', 'script', 'svg', 'src',
    'href', ' onerror', 'style', 'javascript:', '&#', '&#x6a;', 'attributeName', 'xmlns', '[if',
  ),
);
const input = fc.oneof(fc.uint8Array({ maxLength: 2000 }).map(latin1), fc.array(piece, { maxLength: 60 }).map((p) => p.join('')));

const SQLI_CONTEXTS = [
  SQLI_FLAGS.QuoteNone | SQLI_FLAGS.SqlAnsi,
  SQLI_FLAGS.QuoteNone | SQLI_FLAGS.SqlMysql,
  SQLI_FLAGS.QuoteSingle | SQLI_FLAGS.SqlAnsi,
  SQLI_FLAGS.QuoteSingle | SQLI_FLAGS.SqlMysql,
  SQLI_FLAGS.QuoteDouble | SQLI_FLAGS.SqlMysql,
];
const H5_CONTEXTS = Object.values(H5_CONTEXT) as H5Context[];

/** Every token the SQL tokenizer yields in `flags`, checked to lie in the input and to come after the last. */
function checkSqlTokens(s: string, flags: number): void {
  const state = new SqliState(s);
  state.reset(flags);
  let count = 0;
  let previousEnd = 0;
  while (state.tokenize()) {
    const t = state.current;
    expect(t.type).not.toBe('');
    expect(t.len).toBeLessThanOrEqual(31);
    expect(t.pos).toBeGreaterThanOrEqual(0);
    expect(t.pos + t.len).toBeLessThanOrEqual(s.length);
    expect(state.pos).toBeGreaterThan(previousEnd - 1);
    expect(state.pos).toBeLessThanOrEqual(s.length);
    previousEnd = state.pos;
    count++;
    expect(count).toBeLessThanOrEqual(s.length);
  }
  state.reset(flags);
  const folded = state.fold();
  expect(folded).toBeGreaterThanOrEqual(0);
  expect(folded).toBeLessThanOrEqual(5);
}

function checkHtmlTokens(s: string, context: H5Context): void {
  const tokenizer = new Html5Tokenizer(s, context);
  let count = 0;
  while (tokenizer.next()) {
    expect(tokenizer.tokenStart).toBeGreaterThanOrEqual(0);
    expect(tokenizer.tokenStart + tokenizer.tokenLength).toBeLessThanOrEqual(s.length);
    count++;
    // Each token but a final '>' or "/>" consumes at least one byte.
    expect(count).toBeLessThanOrEqual(s.length + 1);
  }
}

describe('libinjection on generated input', () => {
  it('detectSqli never throws, and reports only fingerprints from the table', () => {
    fc.assert(
      fc.property(input, (s) => {
        const fingerprint = detectSqli(s);
        if (fingerprint !== null) expect(SQLI_FINGERPRINTS.has(fingerprint.toUpperCase())).toBe(true);
        // detectSqli's shortcut for lone tokens gives the tokenizer's answer.
        expect(fingerprint !== null).toBe(new SqliState(s).isSqli());
        for (const flags of SQLI_CONTEXTS) checkSqlTokens(s, flags);
      }),
      fcParams(300),
    );
  });

  it('a run of letters, digits and _, which detectSqli passes without tokenizing, is never an injection to the tokenizer', () => {
    const tokenizerSaysSqli = (s: string): boolean => new SqliState(s).isSqli();
    // Every keyword that is one word, in the table's case, lower case and mixed case, alone and after the
    // number forms the tokenizer reads (hex, binary, exponent, Oracle's d/f suffixes): the words that get a type.
    const words = [...SQLI_KEYWORDS.keys()].filter(isAlphanumericRun);
    expect(words.length).toBeGreaterThan(100);
    const numbers = ['', '0', '1', '12', '0x', '0x1f', '0b', '0b01', '1e', '1e5', '1E9', '1d', '1f', '1_'];
    for (const word of words) {
      const mixed = [...word].map((ch, i) => (i % 2 === 0 ? ch.toLowerCase() : ch)).join('');
      for (const form of [word, word.toLowerCase(), mixed]) {
        for (const number of numbers) expect(tokenizerSaysSqli(number + form), number + form).toBe(false);
      }
    }
    const runChar = fc.constantFrom(...'abdefnquxABDEFNQUX0123456789_');
    const run = fc.oneof(
      fc.array(runChar, { minLength: 1, maxLength: 40 }).map((chars) => chars.join('')),
      fc.tuple(fc.constantFrom(...numbers), fc.constantFrom(...words), fc.array(runChar, { maxLength: 3 })).map(([n, w, rest]) => n + w + rest.join('')),
    );
    fc.assert(
      fc.property(run, fc.constantFrom('', '.', '-', ' ', "'", '(', '@', '$', '#', '/*', '1'), fc.nat(), (s, extra, at) => {
        expect(isAlphanumericRun(s)).toBe(true);
        expect(tokenizerSaysSqli(s)).toBe(false);
        // With one more char anywhere, the shortcut still agrees with the tokenizer when it takes the text.
        const spliced = s.slice(0, at % (s.length + 1)) + extra + s.slice(at % (s.length + 1));
        expect(detectSqli(spliced) !== null).toBe(tokenizerSaysSqli(spliced));
      }),
      fcParams(3000),
    );
    // What the shortcut must not take: a quote, a space, an operator, a dot, a non-ASCII byte, nothing.
    for (const s of ['a b', "a'", 'a-1', 'a.b', '', '1.5', 'é', 'a$']) expect(isAlphanumericRun(s), s).toBe(false);
  });

  it('detectXss never throws, and every HTML token lies inside the input', () => {
    fc.assert(
      fc.property(input, (s) => {
        expect(typeof detectXss(s)).toBe('boolean');
        for (const context of H5_CONTEXTS) checkHtmlTokens(s, context);
      }),
      fcParams(300),
    );
  });

  it('detectXss finds nothing without a "<" or an "=" (the required literals @detectXSS gives the engine)', () => {
    const strip = (text: string): string => text.replace(/[<=]/g, '');
    fc.assert(
      fc.property(input, (text) => {
        expect(detectXss(strip(text))).toBe(false);
        // The same text with an attribute name in front, as an attacker would try without `=`.
        expect(detectXss(strip(` onerror ${text} style x`))).toBe(false);
      }),
      fcParams(3000),
    );
  });

  it('finishes in linear time on inputs that would make a naive scanner quadratic', () => {
    const size = 256 * 1024;
    const repeat = (unit: string): string => unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
    const adversarial = [
      repeat("\\'"),
      `'${repeat('\\')}`,
      repeat("''"),
      `$${'a'.repeat(size)}$`,
      repeat('$a$ '),
      repeat('/*'),
      repeat('/**/'),
      repeat('-'),
      repeat('a.'),
      repeat('`'),
      repeat('@@'),
      repeat("q'("),
      repeat('1,-'),
      repeat('(('),
      `<!--${repeat('-\0')}`,
      `<a ${repeat('x=')}`,
      repeat('<a '),
      `<a href="${repeat('&#')}">`,
      `<a href=${repeat('&#x6a')}>`,
      repeat('<%'),
      `<![CDATA[${repeat(']')}`,
    ];
    for (const s of adversarial) {
      const started = performance.now();
      detectSqli(s);
      detectXss(s);
      // A quarter megabyte takes a few milliseconds; quadratic work would take minutes.
      expect(performance.now() - started, JSON.stringify(s.slice(0, 12))).toBeLessThan(2_000);
    }
  });
});
