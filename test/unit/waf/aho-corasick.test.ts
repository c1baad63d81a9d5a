// The multi-phrase matcher behind @pm (src/waf/aho-corasick.ts): which phrase it reports, case folding as
// ModSecurity's acmp does it (A–Z only), and CRS's largest phrase file.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PhraseMatcher } from '../../../src/waf/aho-corasick.ts';

type Row = readonly [phrases: readonly string[], input: string, expected: string | null];

const ROWS: readonly Row[] = [
  [['union', 'select'], '', null],
  [['union', 'select'], 'x UNION y', 'union'],
  [['union', 'select'], 'SELECT union', 'select'],
  [['Document.Cookie'], 'x=document.cookie', 'Document.Cookie'],
  [['abc', 'b'], 'abc', 'b'],
  [['bcd', 'abcx'], 'abcd', 'bcd'],
  [['he', 'she', 'hers'], 'ushers', 'she'],
  [['a', 'ab'], 'ab', 'a'],
  [['ab', 'b'], 'ab', 'ab'],
  [['\xe9t\xe9'], '\xc9T\xc9', null],
  [['\xe9t\xe9'], '\xe9T\xe9', '\xe9t\xe9'],
  [['<!--', '-->'], 'a --> b', '-->'],
  [['x'], 'ā x', 'x'],
  [[], 'anything', null],
  [[''], 'anything', null],
  [['dup', 'DUP'], 'dup', 'dup'],
  [['\0'], 'a\0b', '\0'],
];

describe('PhraseMatcher', () => {
  it('reports the phrase ending first, the longest of those', () => {
    for (const [phrases, input, expected] of ROWS) {
      expect(new PhraseMatcher(phrases).find(input), `${JSON.stringify(phrases)} in ${JSON.stringify(input)}`).toBe(
        expected,
      );
    }
  });

  it('counts distinct phrases, ignoring case and empty ones', () => {
    expect(new PhraseMatcher(['a', 'A', '', 'b']).size).toBe(2);
  });

  it('holds CRS lfi-os-files.data and finds its phrases in any case', () => {
    const phrases = readFileSync('/usr/share/modsecurity-crs/rules/lfi-os-files.data', 'latin1')
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'));
    const matcher = new PhraseMatcher(phrases);
    expect(matcher.size).toBeGreaterThan(1000);
    expect(matcher.find('/ETC/PASSWD')).toBe('etc/passwd');
    expect(matcher.find('a=../../boot.ini%00')).toBe('/boot.ini');
    expect(matcher.find('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)')).toBeNull();
    for (const phrase of phrases) expect(matcher.find(`x${phrase.toUpperCase()}x`)).not.toBeNull();
  });
});
