// The SecLang operators (src/waf/operators/), looked up by name as the rule compiler does, each against a
// table of arguments and inputs with libmodsecurity's answers (src/operators/*.cc). Strings are byte strings.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lookupOperator, OPERATORS } from '../../../src/waf/operators/index.ts';
import { inertReason } from '../../../src/waf/operators/misc.ts';
import type { LengthBoundedOperator } from '../../../src/waf/operators/rx.ts';
import type { Captures, CompiledOperator, OperatorContext } from '../../../src/waf/operators/types.ts';
import { BACKTRACKING_INPUT_LIMIT } from '../../../src/waf/regex.ts';

const DATA_FILES: Record<string, string> = {
  'words.data': '# comment\nfoo\n\n  # indented comment\nBar baz \r\n   \n',
  'more.data': 'qux\n',
  'ips.data': '# blocklist\n10.0.0.0/8\n192.168.1.1, 172.16.0.0/12 # lan\n\n2001:db8::/32\n',
  'bad-ips.data': '10.0.0.0/8\nnot-an-address\n',
};

const CONTEXT: OperatorContext = {
  readDataFile(name) {
    const text = DATA_FILES[name];
    if (text === undefined) throw new Error(`ENOENT: ${name}`);
    return text;
  },
};

function build(name: string, argument: string): CompiledOperator {
  const factory = lookupOperator(name);
  if (factory === undefined) throw new Error(`no operator ${name}`);
  const built = factory(argument, CONTEXT);
  if ('error' in built) throw new Error(built.error);
  return built;
}

/** [argument, input, matches, captures written (for operators that capture)] */
type Row = readonly [argument: string, input: string, matches: boolean, captures?: readonly string[]];

const CASES: Record<string, readonly Row[]> = {
  rx: [
    ['', 'anything', true, []],
    ['abc', '', false],
    ['^$', '', true, ['']],
    // Taken whole without a regex (rx.ts WHOLE_INPUT), as PCRE takes it.
    ['^.*$', 'a\nb\n', true, ['a\nb\n']],
    ['^.*$', '', true, ['']],
    ['(?i)union\\s+select', 'x UNION  SELECT 1', true, ['UNION  SELECT']],
    ['^(a)(b)?(c)', 'ac', true, ['ac', 'a', '', 'c']],
    ['(a)|(b)', 'b', true, ['b', '', 'b']],
    ['(a)|(b)', 'a', true, ['a', 'a']],
    ['(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)', 'abcdefghijk', true, ['abcdefghijk', ...'abcdefghi']],
    ['x$', 'x\ny', true, ['x']],
    ['(?>a+)(b)', 'aab', true, ['aab', 'b']],
    ['select', 'SELECT', false],
  ],
  pm: [
    ['foo bar', '', false],
    ['AppleWebKit Android', 'Mozilla (Linux; Android 10) applewebkit', true, ['Android']],
    ['document.cookie <!--', 'x=DOCUMENT.COOKIE', true, ['document.cookie']],
    ['<!-- -->', 'x<!--y', true, ['<!--']],
    ['\\;x', 'a;x', true, [';x']],
    ['|41 42|c', 'xabc', true, ['ABc']],
    ['"quoted words"', 'some words', true, ['words']],
    ['', 'anything', false],
    ['   ', 'a b', false],
  ],
  pmFromFile: [
    ['words.data', 'xFOOx', true, ['foo']],
    ['words.data', 'bar baz', false],
    ['words.data', 'BAR BAZ x', true, ['Bar baz ']],
    ['words.data', '# comment', false],
    ['words.data', '', false],
    ['words.data more.data', 'QUX', true, ['qux']],
  ],
  eq: [
    ['0', '', true],
    ['5', ' 5abc', true],
    ['5', '+5', true],
    ['-3', '\t-3', true],
    ['1', '2147483648', false],
    ['0', '2147483648', true],
    ['abc', '0', true],
    ['2147483647', '2147483647', true],
  ],
  gt: [
    ['0', '1', true],
    ['10', '9', false],
    ['1', '', false],
    ['-1', '', true],
    ['9223372036854775806', '99999999999999999999', true],
    ['9223372036854775807', '99999999999999999999', false],
    ['9007199254740992', '9007199254740993', true],
  ],
  ge: [
    ['1', '1', true],
    ['1', '0', false],
    ['0', 'x', true],
    ['9223372036854775807', '99999999999999999999', true],
    ['5', '  6  ', true],
  ],
  lt: [
    ['5', '4', true],
    ['5', ' \t\n4x', true],
    ['2', '2', false],
    ['0', '-0', false],
    ['1', '', true],
    ['-9223372036854775808', '-99999999999999999999', false],
  ],
  le: [
    ['3', '3', true],
    ['3', '4', false],
    ['0', '', true],
    ['9007199254740993', '9007199254740992', true],
    ['9007199254740992', '9007199254740993', false],
  ],
  streq: [
    ['abc', 'abc', true],
    ['abc', 'ABC', false],
    ['', '', true],
    ['', 'a', false],
    ['a', '', false],
    ['a\0b', 'a\0b', true],
  ],
  contains: [
    ['ab', 'xaby', true],
    ['ab', '', false],
    ['', '', true],
    ['AB', 'ab', false],
    ['', 'x', true],
  ],
  strmatch: [
    ['ab', 'xaby', true],
    ['ab', '', false],
    ['abc', 'ab', false],
    ['b\xff', 'ab\xff', true],
    ['B', 'b', false],
  ],
  containsWord: [
    ['select', 'select', true],
    ['select', 'xselect', false],
    ['select', '1select 2', true],
    ['select', 'select_x', true],
    ['select', 'selects', false],
    ['select', '', false],
    ['', '', true],
    ['select', 'selectx select', true],
    ['a', 'ba a', true],
  ],
  beginsWith: [
    ['ab', 'abc', true],
    ['ab', 'a', false],
    ['', '', true],
    ['ab', '', false],
    ['AB', 'ab', false],
  ],
  endsWith: [
    ['bc', 'abc', true],
    ['bc', 'b', false],
    ['', 'x', true],
    ['x', '', false],
    ['C', 'abc', false],
  ],
  within: [
    ['GET POST HEAD', 'POST', true],
    ['GET POST', 'PUT', false],
    ['abc', '', true],
    ['', 'a', false],
    ['get', 'GET', false],
    ['GET POST', 'T P', true],
  ],
  ipMatch: [
    ['127.0.0.1,::1', '127.0.0.1', true],
    ['127.0.0.1,::1', '::1', true],
    ['10.0.0.0/8', '10.255.1.2', true],
    ['10.1.2.3/8', '10.9.9.9', true],
    ['192.168.0.0/16', '192.169.0.1', false],
    ['2001:db8::/32', '2001:db8:1::5', true],
    ['2001:db8::/32', '2001:db9::', false],
    ['10.0.0.0/8', 'not-an-ip', false],
    ['10.0.0.0/8', '', false],
    ['0.0.0.0/0', '8.8.8.8', true],
    [' 1.2.3.4 , 5.6.7.8', '5.6.7.8', true],
  ],
  ipMatchFromFile: [
    ['ips.data', '10.1.1.1', true],
    ['ips.data', '192.168.1.1', true],
    ['ips.data', '192.168.1.2', false],
    ['ips.data', '172.31.255.255', true],
    ['ips.data', '2001:db8::1', true],
    ['ips.data', '', false],
  ],
  validateByteRange: [
    ['32-126', 'hello', false],
    ['32-126', 'hello\n', true],
    ['9,10,13,32-126', 'a\tb\r\n', false],
    ['0-255', '\x00\xff', false],
    ['32-126', '', false],
    ['65', 'A', false],
    ['65', 'AB', true],
    ['1-255', 'a\0', true],
  ],
  validateUrlEncoding: [
    ['', '', false],
    ['', 'abc', false],
    ['', '%41', false],
    ['', '%4', true],
    ['', '%', true],
    ['', '%zz', true],
    ['', 'a%2fb%2F', false],
    ['', '100%', true],
    ['', '%41%', true],
    ['', '%%41', true],
    ['', 'a=%41%42&b=%2', true],
    ['', 'a=%41%42&b=c', false],
  ],
  validateUtf8Encoding: [
    ['', '', false],
    ['', 'abc', false],
    ['', '\xc3\xa9', false],
    ['', '\xc3', true],
    ['', '\xc0\xaf', true],
    ['', '\xed\xa0\x80', true],
    ['', '\xf0\x9f\x98\x80', false],
    ['', '\xf5\x80\x80\x80', true],
    ['', '\xe2\x82', true],
    ['', '\x80', true],
    ['', '\xf4\x90\x80\x80', false],
  ],
  detectSQLi: [
    ['', "1' OR '1'='1", true],
    ['', '1 UNION SELECT password FROM users', true],
    ['', 'hello world', false],
    ['', '', false],
    ['', 'john.doe@example.com', false],
  ],
  detectXSS: [
    ['', '<script>alert(1)</script>', true],
    ['', '<img src=x onerror=alert(1)>', true],
    ['', 'hello world', false],
    ['', '', false],
    ['', 'a < b and c > d', false],
  ],
  unconditionalMatch: [
    ['', '', true],
    ['', 'x', true],
    ['anything', '', true],
    ['', '\0', true],
    ['', 'a'.repeat(10_000), true],
  ],
  noMatch: [
    ['', '', false],
    ['', 'x', false],
    ['anything', '', false],
    ['', '\0', false],
    ['', 'a'.repeat(10_000), false],
  ],
};

/** Operators whose captures the table checks: the others leave the array alone. */
const CAPTURING = new Set(['rx', 'pm', 'pmFromFile']);

describe('operators', () => {
  for (const [name, rows] of Object.entries(CASES)) {
    it(`@${name}`, () => {
      expect(rows.length).toBeGreaterThanOrEqual(5);
      for (const [argument, input, matches, written] of rows) {
        const operator = build(name, argument);
        const label = `@${name} ${JSON.stringify(argument)} on ${JSON.stringify(input)}`;
        expect(operator.match(input, null), label).toBe(matches);
        const captures: Captures = { values: [], count: 0 };
        expect(operator.match(input, captures), label).toBe(matches);
        if (CAPTURING.has(name) && matches) expect(captures.values.slice(0, captures.count), label).toEqual(written ?? []);
        if (!CAPTURING.has(name) && name !== 'detectSQLi' && name !== 'detectXSS') expect(captures, label).toEqual({ values: [], count: 0 });
        // On an input holding every literal clause, as the engine calls it, matchChecked answers as match does.
        const holdsClauses = (operator.literals ?? []).every((clause) => clause.some((literal) => input.toLowerCase().includes(literal)));
        if (operator.matchChecked !== undefined && holdsClauses) {
          const checked: Captures = { values: [], count: 0 };
          expect(operator.matchChecked(input, checked), `${label} (checked)`).toBe(matches);
          expect(checked.values.slice(0, checked.count), `${label} (checked)`).toEqual(captures.values.slice(0, captures.count));
        }
      }
    });
  }

  it('looks names up without case, aliases included', () => {
    for (const name of ['RX', 'pmFromFile', 'pmf', 'PMF', 'ipMatchF', 'detectSQLi', 'validateUtf8Encoding']) {
      expect(lookupOperator(name), name).toBeDefined();
    }
    expect(lookupOperator('pmf')).toBe(lookupOperator('pmFromFile'));
    expect(lookupOperator('nosuch')).toBeUndefined();
    for (const key of OPERATORS.keys()) expect(key).toBe(key.toLowerCase());
  });

  it('reports bad arguments as errors, without throwing', () => {
    const bad: ReadonlyArray<readonly [string, string]> = [
      ['rx', '(unclosed'],
      ['rx', 'a\\K'],
      ['pmFromFile', 'missing.data'],
      ['pmFromFile', 'https://example.com/list.data'],
      ['ipMatch', '1.2.3.4/33'],
      ['ipMatch', 'foo'],
      ['ipMatch', '::1/129'],
      ['ipMatchFromFile', 'bad-ips.data'],
      ['ipMatchFromFile', 'missing.data'],
      ['validateByteRange', '256'],
      ['validateByteRange', '10-5'],
      ['validateByteRange', 'x'],
      ['validateByteRange', ''],
    ];
    for (const [name, argument] of bad) {
      const built = lookupOperator(name)!(argument, CONTEXT);
      expect('error' in built, `@${name} ${argument}`).toBe(true);
    }
  });

  it('leaves operators it cannot run inert, with a reason', () => {
    for (const name of ['rbl', 'geoLookup', 'validateDTD', 'validateSchema']) {
      const operator = build(name, 'argument');
      expect(operator.match('1.2.3.4', null)).toBe(false);
      expect(inertReason(operator)).toMatch(new RegExp(`@${name}`));
    }
    expect(inertReason(build('rx', 'a'))).toBeNull();
  });

  it('tells how long an input a backtracking @rx pattern is run on', () => {
    const bounded = build('rx', '(\\w+)=\\1') as LengthBoundedOperator;
    expect(bounded.maxInputLength).toBe(BACKTRACKING_INPUT_LIMIT);
    expect(bounded.match(`${'a'.repeat(BACKTRACKING_INPUT_LIMIT)}=a`, null)).toBe(false);
    expect((build('rx', '(\\w+)=') as LengthBoundedOperator).maxInputLength).toBe(Infinity);
  });

  it('@pmFromFile takes CRS data files whole, trailing spaces included', () => {
    const context: OperatorContext = {
      readDataFile: (name) => readFileSync(`/usr/share/modsecurity-crs/rules/${name}`, 'latin1'),
    };
    const built = lookupOperator('pmFromFile')!('php-errors.data', context);
    if ('error' in built) throw new Error(built.error);
    expect(built.match('PHP: Call to privatex', null)).toBe(false);
    const captures: Captures = { values: [], count: 0 };
    expect(built.match('PHP: Call to private x::y()', captures)).toBe(true);
    expect(captures.values.slice(0, captures.count)).toEqual(['Call to private ']);
  });
});
