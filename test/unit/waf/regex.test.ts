// The PCRE → JavaScript translation (src/waf/regex.ts): each construct against what libpcre2 answers for it
// (the rows were checked against the system's libpcre2-8 with the options ModSecurity v3 uses), the CRS 3.3.4
// patterns (all compile; which ones V8's linear engine can bound), and bounded work on catastrophic patterns.
// Strings are byte strings: '\xa0' is the byte 0xA0.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RX_FLAGS } from '../../../src/waf/operators/rx.ts';
import {
  BACKTRACKING_INPUT_LIMIT,
  compilePcre,
  LINEAR_ENGINE_ABOVE,
  type PcreFlags,
} from '../../../src/waf/regex.ts';
import { parseSecLang } from '../../../src/waf/seclang/parser.ts';

const CRS_RULES = '/usr/share/modsecurity-crs/rules';
const CRS_SETUP = '/etc/modsecurity/crs/crs-setup.conf';

/** What PCRE reports: groups 0..n (null for a group that took no part), or null for no match. */
function pcreMatch(pattern: string, input: string, flags: PcreFlags = RX_FLAGS): (string | null)[] | null {
  const compiled = compilePcre(pattern, flags);
  if (!compiled.ok) throw new Error(compiled.error);
  const match = compiled.regex.exec(input);
  return match === null ? null : compiled.regex.groups.map((group) => match[group] ?? null);
}

type Row = readonly [pattern: string, input: string, expected: (string | null)[] | null];

const CASES: Record<string, readonly Row[]> = {
  'case folding (A–Z only, as PCRE without locale)': [
    ['(?i)select', 'SeLeCt', ['SeLeCt']],
    ['(?i:a)b', 'Ab', ['Ab']],
    ['(?i:a)b', 'AB', null],
    ['a(?i)b|c', 'C', ['C']],
    ['(a(?i)b|c)', 'aB', ['aB', 'aB']],
    ['(?i)AbC(?-i)d', 'abcD', null],
    ['(?i)\xe9', '\xc9', null],
    ['(?i)[^a-z]', 'A', null],
    ['(?i)(ab)\\1', 'abAB', ['abAB', 'ab']],
  ],
  'escape classes (PCRE byte sets, not JavaScript’s)': [
    ['\\s', '\xa0', null],
    ['\\s+', '\t\n\x0b\f\r ', ['\t\n\x0b\f\r ']],
    ['\\v', '\x85', ['\x85']],
    ['\\V+', 'ab\ncd', ['ab']],
    ['\\h+', ' \t\xa0x', [' \t\xa0']],
    ['\\R', '\r\n', ['\r\n']],
    ['\\N+', 'ab\nc', ['ab']],
    ['\\w+', 'a_1\xe9', ['a_1']],
    ['[[:alpha:]]+', 'ab1', ['ab']],
    ['[[:^digit:][:space:]]+', 'a 1', ['a ']],
    ['[[:punct:]]', 'a;', [';']],
    ['[\\b]', 'a\b', ['\b']],
  ],
  'literals and escapes': [
    ['\\Qa.b*\\E', 'a.b*', ['a.b*']],
    ['\\Qa.b*\\E', 'axbb', null],
    ['\\Qab\\E+', 'abbb', ['abbb']],
    ['\\x{41}\\x42\\x{0a}', 'AB\n', ['AB\n']],
    ['\\101\\0\\012', 'A\0\n', ['A\0\n']],
    ['\\o{101}', 'A', ['A']],
    ['\\e\\a\\f\\cA', '\x1b\x07\f\x01', ['\x1b\x07\f\x01']],
    ['[]a]+', ']a', [']a']],
    ['[^]a]', ']ab', ['b']],
    ['[a-]+', 'a-', ['a-']],
    ['a{,3}', 'a{,3}', ['a{,3}']],
    ['(?x) a b # comment\n c', 'abc', ['abc']],
    ['(?#note)a', 'a', ['a']],
  ],
  'atomic groups and possessive quantifiers': [
    ['a++a', 'aaa', null],
    ['(?>a+)b', 'aab', ['aab']],
    ['(?>ab|a)c', 'ac', ['ac']],
    ['(?>ab|a)c', 'abc', ['abc']],
    ['(?>a|ab)c', 'abc', null],
    ['(a)(?>b|(c))', 'ac', ['ac', 'a', 'c']],
    ['\\d++\\.', '12.5', ['12.']],
    ['[ab]*+b', 'aab', null],
    ['(?:ab)++b', 'ababb', ['ababb']],
  ],
  'anchors (multiline, LF alone ends a line)': [
    ['^a$', 'x\na\ny', ['a']],
    ['^a$', 'a\r', null],
    ['^b', 'a\rb', null],
    ['a$', 'a\n', ['a']],
    ['^$', 'a\n', null],
    ['^$', 'a\n\nb', ['']],
    ['^$', '', ['']],
    ['^\\s*$', 'x\n', null],
    ['^.*$', 'ab\ncd', ['ab\ncd']],
    // No LF in the input: the pattern anchored at the start runs instead (BoundedRegex#singleLine).
    ['^b', 'ab', null],
    ['^(a)(b)?$', 'a', ['a', 'a', null]],
    ['^(?:a|(b))c$', 'bc', ['bc', 'b']],
    ['^(?:[a-z]{4}){2,}$', 'abcdefgh', ['abcdefgh']],
    ['^(?:[a-z]{4}){2,}$', 'abcd efgh', null],
    ['(?:^a|^b)x', 'zax', null],
    ['^(?>a+)b', 'aab', ['aab']],
    ['(?:^|=)b', 'ab', null],
    ['(?:^|=)b', 'a=b', ['=b']],
    ['(?:^|=)b', 'bc', ['b']],
    ['x|^(b)', 'ab', null],
    ['x|^(b)', 'bx', ['b', 'b']],
    ['\\Aa', 'b\na', null],
    ['a\\z', 'a\n', null],
    ['a\\Z', 'a\n', ['a']],
    ['(?-m)^a$', 'b\na\n', null],
    ['(?-m)a$', 'a\n', ['a']],
  ],
  'groups and references': [
    ['(a)|b', 'b', ['b', null]],
    ['(?<n>a)\\k<n>', 'aa', ['aa', 'a']],
    ['(?P<n>a)(?P=n)', 'aa', ['aa', 'a']],
    ["(?'n'a)\\k'n'", 'aa', ['aa', 'a']],
    ['(a)\\g1\\g{1}\\g{-1}', 'aaaa', ['aaaa', 'a']],
    ['(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)\\10', 'abcdefghijj', ['abcdefghijj', ...'abcdefghij']],
    ['(a)\\10', 'a\b', ['a\b', 'a']],
    ['(?:(a)|b)(?:(c)|d)', 'bc', ['bc', null, 'c']],
  ],
  'rewrites that keep the same match': [
    ['x*?y', 'axxy', ['xxy']],
    ['[\\s\'"]*?\\b(\\w+)=', " ' foo=", [" ' foo=", 'foo']],
    ['.*\\.php', 'a.php.php', ['a.php.php']],
    ['.*?\\.php', 'a.php.php', ['a.php']],
    ['(.*)x', 'axbx', ['axbx', 'axb']],
    ['ab{1,20}c', 'a' + 'b'.repeat(20) + 'c', ['a' + 'b'.repeat(20) + 'c']],
    ['ab{1,20}c', 'a' + 'b'.repeat(21) + 'c', null],
    ['.{0,50}?x', 'abx', ['abx']],
    ['(?:a|b){17}', 'ab'.repeat(9), ['ab'.repeat(8) + 'a']],
    ['^(?:\\d-){3}$', '1-2-3-', ['1-2-3-']],
  ],
};

describe('compilePcre: PCRE constructs', () => {
  for (const [name, rows] of Object.entries(CASES)) {
    it(name, () => {
      for (const [pattern, input, expected] of rows) {
        expect(pcreMatch(pattern, input), `/${pattern}/ on ${JSON.stringify(input)}`).toEqual(expected);
      }
    });
  }

  it('applies the flags a caller gives', () => {
    expect(pcreMatch('abc', 'ABC', { caseless: true })).toEqual(['ABC']);
    expect(pcreMatch('a.b', 'a\nb', {})).toBeNull();
    expect(pcreMatch('a.b', 'a\nb', { dotAll: true })).toEqual(['a\nb']);
    // Without multiline, `$` is PCRE_DOLLAR_ENDONLY's (ModSecurity v2): not before a final newline.
    expect(pcreMatch('a$', 'a\n', {})).toBeNull();
    expect(pcreMatch('^b', 'a\nb', {})).toBeNull();
  });

  it('refuses what PCRE refuses and what it cannot translate', () => {
    const refused = [
      '(?|a)',
      '(?R)',
      '(?1)',
      'a\\K',
      '\\p{L}',
      '\\X',
      '(*UTF8)a',
      '(?(1)a|b)',
      '\\x{100}',
      'a**',
      '(a',
      'a)',
      '[a',
      '\\',
      '(?<n>a)(?<n>b)',
      '\\2(a)',
      'a{3,2}',
      '(?C)a',
      '\\u0041',
      '(?z)',
      '\u0100',
      '[[:nope:]]',
    ];
    for (const pattern of refused) {
      const result = compilePcre(pattern, RX_FLAGS);
      expect(result.ok, pattern).toBe(false);
      if (!result.ok) expect(result.error).toMatch(/offset \d+|translated/);
    }
  });
});

describe('compilePcre: bounded work', () => {
  it('classifies patterns by what bounds their work', () => {
    const engine = (pattern: string): string => {
      const result = compilePcre(pattern, RX_FLAGS);
      return result.ok ? result.engine : result.error;
    };
    expect(engine('^(a+)+$')).toBe('linear');
    expect(engine('(?i)union\\s+select')).toBe('linear');
    expect(engine('.{0,100}?x')).toBe('linear');
    expect(engine('<\\?(?!xml)')).toBe('linear');
    expect(engine('(\\w+)=\\1')).toBe('backtracking');
    expect(engine('\\w+(?=x)')).toBe('backtracking');
    expect(engine('\\w++=')).toBe('linear');
    expect(engine('[^x]++[a-z]')).toBe('backtracking');
  });

  it('does not run a backtracking pattern on inputs past its limit', () => {
    const result = compilePcre('(\\w+)=\\1', RX_FLAGS);
    if (!result.ok) throw new Error(result.error);
    const long = 'a'.repeat(BACKTRACKING_INPUT_LIMIT) + '=a';
    expect(result.regex.maxInputLength).toBe(BACKTRACKING_INPUT_LIMIT);
    expect(result.regex.test(long)).toBe(false);
    expect(result.regex.exec(long)).toBeNull();
    expect(result.regex.test('a=a')).toBe(true);
  });

  it('gives the same answers on inputs long enough for the linear engine', () => {
    const result = compilePcre('(?i)(union)\\s+(all\\s+)?select\\b', RX_FLAGS);
    if (!result.ok) throw new Error(result.error);
    expect(result.regex.maxInputLength).toBe(Infinity);
    const padding = 'x'.repeat(LINEAR_ENGINE_ABOVE);
    const match = result.regex.exec(`${padding} UNION select 1`);
    expect(match?.[0]).toBe('UNION select');
    expect(match?.index).toBe(LINEAR_ENGINE_ABOVE + 1);
    expect(result.regex.groups.map((g) => match?.[g])).toEqual(['UNION select', 'UNION', undefined]);
    expect(result.regex.test(`${padding} union selection`)).toBe(false);
  });

  // The catastrophic cases run in a child process: were their work unbounded, only a kill would end them, and
  // the child is started without any V8 flag, so it also shows that the module sets the ones it needs.
  it('finishes catastrophic patterns on hostile inputs', () => {
    const regexModule = fileURLToPath(new URL('../../../src/waf/regex.ts', import.meta.url));
    const script = `
      import { compilePcre } from ${JSON.stringify(regexModule)};
      const cases = [
        ['^(a+)+$', 'a'.repeat(40) + 'b'],
        ['^(\\\\w+\\\\s?)*$', 'word '.repeat(30) + '!'],
        ['(x+x+)+y', 'x'.repeat(5000)],
        ['[a-z]+@', 'a'.repeat(200000)],
        ['(?:a|a)*b', 'a'.repeat(3000)],
        ['.*a.*b.*c', 'a'.repeat(100000)],
      ];
      const results = cases.map(([pattern, input]) => {
        const compiled = compilePcre(pattern, { dotAll: true, multiline: true });
        return compiled.ok && compiled.regex.test(input);
      });
      process.stdout.write(JSON.stringify(results));
    `;
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      // Unbounded, the first case alone would take hours; bounded, all of them take well under a second.
      timeout: 60_000,
    });
    expect(JSON.parse(output)).toEqual([false, false, false, false, false, false]);
  }, 70_000);
});

/** Every rule of the CRS files Debian installs, parsed by the project's own SecLang parser. */
function crsRules() {
  const files = [
    ...readdirSync(CRS_RULES)
      .filter((name) => name.endsWith('.conf'))
      .map((name) => `${CRS_RULES}/${name}`),
    CRS_SETUP,
  ];
  return files.flatMap((file) =>
    parseSecLang(readFileSync(file, 'latin1'), file).directives.flatMap((d) => (d.kind === 'rule' ? [d] : [])),
  );
}

describe('compilePcre: CRS 3.3.4', () => {
  const rules = crsRules();
  /** Each @rx pattern with the id of its rule, or of the rule starting its chain. */
  const patterns: Array<{ id: string; pattern: string }> = [];
  let id = '';
  for (const rule of rules) {
    id = rule.actions.find((action) => action.name === 'id')?.value ?? id;
    if (rule.operator.name.toLowerCase() === 'rx') patterns.push({ id, pattern: rule.operator.argument });
  }

  it('compiles every @rx pattern, all but four for the linear engine', () => {
    expect(patterns.length).toBe(265);
    const backtracking: string[] = [];
    for (const { id, pattern } of patterns) {
      // One CRS pattern holds a macro; the compiler expands it before the operator sees it.
      const result = compilePcre(pattern.replace(/%\{[^}]*\}/g, 'x'), RX_FLAGS);
      expect(result.ok ? '' : result.error, pattern).toBe('');
      if (result.ok && result.engine === 'backtracking') backtracking.push(id);
    }
    // 920510's chained Cache-Control check: a `$` inside a repeat; 920600: possessive quantifiers;
    // 942130: a back reference; 942260: a possessive quantifier.
    expect(backtracking.sort()).toEqual(['920510', '920600', '942130', '942260']);
  });

  it('compiles every regex key (ARGS:/^foo/) as libmodsecurity does: caseless', () => {
    const keys = rules.flatMap((rule) =>
      rule.variables.flatMap((variable) => (variable.key?.kind === 'regex' ? [variable.key.pattern] : [])),
    );
    expect(keys.length).toBeGreaterThan(5);
    for (const key of keys) expect(compilePcre(key, { ...RX_FLAGS, caseless: true }).ok, key).toBe(true);
    const utm = compilePcre('__utm', { ...RX_FLAGS, caseless: true });
    expect(utm.ok && utm.regex.test('__UTMA')).toBe(true);
  });

  it('matches CRS payloads as PCRE does', () => {
    const rule = (id: string): string => {
      const found = rules.find((r) => r.actions.some((a) => a.name === 'id' && a.value === id));
      if (!found) throw new Error(`no rule ${id}`);
      return found.operator.argument;
    };
    const matches = (id: string, input: string): boolean => {
      const result = compilePcre(rule(id), RX_FLAGS);
      return result.ok && result.regex.test(input);
    };
    expect(matches('942130', "1' or 'a'='a")).toBe(true);
    expect(matches('942130', 'a=b')).toBe(false);
    expect(matches('933110', 'shell.php.jpg')).toBe(false);
    expect(matches('933110', 'shell.php')).toBe(true);
    expect(matches('920100', 'GET /index.html HTTP/1.1')).toBe(true);
    expect(matches('920100', 'aaa\rGET / HTTP/1.1')).toBe(false);
    expect(matches('941110', '<script>alert(1)</script>')).toBe(true);
  });
});
