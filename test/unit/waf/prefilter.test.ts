// Required literals of a pattern (src/waf/prefilter.ts), which the regex and the engine's literal groups use to
// skip evaluations: the sets chosen for typical shapes, patterns that must get none, and the one property that
// matters for safety — every match of a CRS pattern on the CRS regression corpus contains one of its literals
// (a pattern skipped on an input where it would have matched is a missed attack).
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LiteralSets } from '../../../src/waf/aho-corasick.ts';
import { RX_FLAGS } from '../../../src/waf/operators/rx.ts';
import { phraseFactors } from '../../../src/waf/prefilter.ts';
import { compilePcre, type PcreFlags } from '../../../src/waf/regex.ts';
import { parseSecLang } from '../../../src/waf/seclang/parser.ts';
import { loadCorpus } from '../../conformance/ftw.ts';

const CRS_RULES = '/usr/share/modsecurity-crs/rules';

function literalsOf(pattern: string, flags: PcreFlags = RX_FLAGS): readonly (readonly string[])[] | null {
  const compiled = compilePcre(pattern, flags);
  if (!compiled.ok) throw new Error(compiled.error);
  return compiled.regex.literals;
}

const sorted = (clauses: readonly (readonly string[])[] | null): string[][] | null => (clauses === null ? null : clauses.map((c) => [...c].sort()));

describe('required literals', () => {
  it.each([
    // A word, folded; the rarest part of a sequence; alternations united; case-insensitive groups folded.
    ['select', [['select']]],
    ['(?i)SeLeCt', [['select']]],
    // No second clause as common as a letter or `=`: prose holds one every few bytes, and each costs the scan.
    ['a+<b', [['<b']]],
    ['(?:union|select)\\s+all', [['select', 'union'], ['all']]],
    ['[Jj][Aa][Vv][Aa]', [['java']]],
    ['colou?r', [['color', 'colour']]],
    ['\\bon\\w+=', [['on']]],
    ['x{3}', [['xxx']]],
    // A longer literal that holds a shorter one adds nothing.
    ['(?:\\.\\.|\\.\\./)', [['..']]],
    // Two clauses where a sequence has two rare parts, and where every branch of an alternation has two.
    [';\\s*(?:declare|open)\\s+\\w', [['declare', 'open'], [';']]],
    ['(?:;\\s*open|exec\\s*\\()', [['exec', 'open'], ['(', ';']]],
  ])('%s → %j', (pattern, expected) => {
    expect(sorted(literalsOf(pattern))).toEqual(expected);
  });

  it.each([
    // Patterns that can match without any particular text get none.
    '^.*$',
    '^$',
    '.',
    '\\W{4}',
    'a*',
    '(?:abc|)',
    '(\\w)\\1',
    '[^a-z]+',
  ])('%s has none', (pattern) => {
    expect(literalsOf(pattern)).toBeNull();
  });

  it('skips no input the pattern matches: the regex answers the same with and without them', () => {
    const cases: Array<[string, string, boolean]> = [
      ['(?i)<script', '<SCRIPT>', true],
      ['(?i)<script', 'a script', false],
      ['\\$\\{', 'x${y}', true],
      ['\\$\\{', 'x$ {y}', false],
      // Both clauses must be there.
      [';\\s*open\\s', 'a; open b', true],
      [';\\s*open\\s', 'usually open today', false],
    ];
    for (const [pattern, input, expected] of cases) {
      const compiled = compilePcre(pattern, RX_FLAGS);
      expect(compiled.ok && compiled.regex.test(input), `${pattern} on ${input}`).toBe(expected);
    }
  });
});

describe('phrase factors', () => {
  it('give every phrase of a long CRS list a substring of it, in far fewer strings', () => {
    const phrases = readFileSync(`${CRS_RULES}/lfi-os-files.data`, 'latin1')
      .split('\n')
      .filter((line) => !/^\s*(?:#|$)/.test(line));
    const factors = phraseFactors(phrases, 4);
    expect(phrases.length).toBeGreaterThan(1000);
    expect(factors.length).toBeLessThan(300);
    for (const phrase of phrases) expect(factors.some((factor) => phrase.toLowerCase().includes(factor)), phrase).toBe(true);
  });

  it('keeps a phrase no longer than the length whole, folded, and takes one with rare bytes from a longer one', () => {
    const [short, long] = phraseFactors(['ABC', 'x/etc/passwd'], 4);
    expect(short).toBe('abc');
    expect(long).toHaveLength(4);
    expect('x/etc/passwd'.includes(long!)).toBe(true);
    expect(long).toContain('/');
  });
});

describe('minimum match length', () => {
  it.each([
    ['select', 'selec', 'select'],
    ['^(?:[A-Za-z0-9+/]{4}){4,}$', 'QUJDRA', 'QUJDREVGR0hJSktMTU5P'],
    ['a(?:bc|d)e', 'ae', 'ade'],
    ['(a)\\1x', 'ax', 'aax'],
    ['(?=abc)a', '', 'abc'],
  ])('%s does not try %j and still matches %j', (pattern, shorter, matching) => {
    const compiled = compilePcre(pattern, RX_FLAGS);
    if (!compiled.ok) throw new Error(compiled.error);
    expect(compiled.regex.test(shorter)).toBe(false);
    expect(compiled.regex.test(matching)).toBe(true);
  });
});

describe('LiteralSets', () => {
  it('marks each set one of whose phrases occurs, across overlapping phrases, case-insensitively', () => {
    const sets = new LiteralSets([['<'], ['select', 'union'], ['lect'], ['nothing']]);
    const marks = new Uint32Array(2);
    sets.scan('SELECT a<b', marks, 1);
    expect(marks[0]).toBe(0);
    expect(marks[1]).toBe(0b0111);
  });

  it('uses as many words as there are sets', () => {
    const phrases = Array.from({ length: 40 }, (_, i) => [`p${i}q`]);
    const sets = new LiteralSets(phrases);
    expect(sets.words).toBe(2);
    const marks = new Uint32Array(2);
    sets.scan('xx p35q p2q', marks, 0);
    expect(marks[0]).toBe(1 << 2);
    expect(marks[1]).toBe(1 << (35 - 32));
  });
});

describe('required literals of the CRS patterns', () => {
  const patterns = readdirSync(CRS_RULES)
    .filter((name) => name.endsWith('.conf'))
    .flatMap((name) => parseSecLang(readFileSync(`${CRS_RULES}/${name}`, 'latin1'), name).directives)
    .flatMap((d) => (d.kind === 'rule' && d.operator.name.toLowerCase() === 'rx' ? [d.operator.argument.replace(/%\{[^}]*\}/g, 'x')] : []));

  /** Every request text of the regression corpus, as sent and %-decoded once (most rules decode first). */
  function corpusInputs(): string[] {
    const inputs = new Set<string>();
    const add = (text: string) => {
      if (text.length === 0 || text.length > 4096) return;
      inputs.add(text);
      inputs.add(text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))));
    };
    for (const stage of loadCorpus().stages) {
      const { uri, data, headers, rawRequest } = stage.input;
      add(uri);
      add(data);
      for (const [, value] of headers) add(value);
      if (rawRequest !== null) add(rawRequest);
    }
    return [...inputs];
  }

  it('most patterns have literals', () => {
    const withLiterals = patterns.filter((pattern) => literalsOf(pattern) !== null);
    expect(patterns.length).toBeGreaterThan(250);
    expect(withLiterals.length / patterns.length).toBeGreaterThan(0.85);
  });

  it('every match a pattern finds in the regression corpus holds a literal of each of its clauses', () => {
    const inputs = corpusInputs();
    expect(inputs.length).toBeGreaterThan(2000);
    let checked = 0;
    const misses: string[] = [];
    for (const pattern of patterns) {
      const compiled = compilePcre(pattern, RX_FLAGS);
      if (!compiled.ok || compiled.regex.literals === null) continue;
      const literals = compiled.regex.literals;
      // The translated pattern without the literal test in front of it.
      const bare = new RegExp(compiled.regex.source);
      for (const input of inputs) {
        if (input.length > compiled.regex.maxInputLength) continue;
        const match = bare.exec(input);
        if (match === null) continue;
        checked++;
        const text = match[0].replace(/[A-Z]+/g, (run) => run.toLowerCase());
        if (!literals.every((clause) => clause.some((literal) => text.includes(literal)))) {
          misses.push(`/${pattern.slice(0, 60)}/ on ${JSON.stringify(match[0].slice(0, 60))}`);
        }
      }
    }
    expect(misses).toEqual([]);
    // The corpus is made to trigger these rules: many matches are checked, not a handful.
    expect(checked).toBeGreaterThan(2000);
  }, 120_000);
});
