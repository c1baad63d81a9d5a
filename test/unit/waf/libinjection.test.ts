// @detectSQLi / @detectXSS (src/waf/libinjection/, src/waf/operators/libinjection.ts): upstream libinjection's own
// test files (third_party/libinjection/tests: tokens, folding, fingerprints, HTML5 tokens) replayed as its
// testdriver.c does, classic payloads and benign text, the CRS 3.3.4 regression stages of the rules that use the
// operators, and the generated keyword/fingerprint module checked against its generator.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LIBINJECTION_DATA_PATH, renderSqliData, SQLI_DATA_MODULE_PATH } from '../../../scripts/gen-libinjection-data.ts';
import { H5_CONTEXT, H5_TOKEN, Html5Tokenizer, type H5TokenType } from '../../../src/waf/libinjection/html5.ts';
import { detectSqli, SQLI_FLAGS, SqliState, type SqliToken } from '../../../src/waf/libinjection/sqli.ts';
import { detectXss } from '../../../src/waf/libinjection/xss.ts';
import { detectSqliOperator, detectXssOperator } from '../../../src/waf/operators/libinjection.ts';
import type { Captures, CompiledOperator } from '../../../src/waf/operators/types.ts';
import { type Corpus, DEFAULT_CORPUS_DIR, decodeFile, type Stage } from '../../conformance/ftw.ts';

const UPSTREAM_TESTS = new URL('../../../third_party/libinjection/tests/', import.meta.url);

/** An upstream test file: --TEST-- name, --INPUT-- text, --EXPECTED-- output; input and output right-trimmed. */
interface UpstreamCase {
  file: string;
  name: string;
  input: string;
  expected: string;
}

/** testdriver.c's modp_rtrim. */
const rtrim = (s: string): string => s.replace(/[ \n\t\r]+$/, '');

function readUpstreamCases(prefix: string): UpstreamCase[] {
  return readdirSync(UPSTREAM_TESTS)
    .filter((file) => file.startsWith(prefix))
    .sort()
    .map((file) => {
      // Bytes, as the C reads them: i18n cases hold UTF-8.
      const text = readFileSync(new URL(file, UPSTREAM_TESTS), 'latin1');
      const match = /^--TEST--\n([\s\S]*?)--INPUT--\n([\s\S]*?)--EXPECTED--\n([\s\S]*)$/.exec(text);
      if (!match) throw new Error(`${file}: not a libinjection test file`);
      return { file, name: match[1]!.trim(), input: rtrim(match[2]!), expected: rtrim(match[3]!) };
    });
}

/** printf("%s") of a token value stops at its first NUL. */
const cString = (s: string): string => s.split('\0', 1)[0]!;

/** testdriver.c's print_token. */
function printToken(t: SqliToken): string {
  let text = cString(t.val);
  if (t.type === 's' || t.type === 'v') text = t.strOpen + text + t.strClose;
  if (t.type === 'v') text = '@'.repeat(Math.min(t.count, 2)) + text;
  return `${t.type} ${text}\n`;
}

const H5_TYPE_NAMES: Record<H5TokenType, string> = {
  [H5_TOKEN.DataText]: 'DATA_TEXT',
  [H5_TOKEN.TagNameOpen]: 'TAG_NAME_OPEN',
  [H5_TOKEN.TagNameClose]: 'TAG_NAME_CLOSE',
  [H5_TOKEN.TagNameSelfClose]: 'TAG_NAME_SELFCLOSE',
  [H5_TOKEN.TagData]: 'TAG_DATA',
  [H5_TOKEN.TagClose]: 'TAG_CLOSE',
  [H5_TOKEN.AttrName]: 'ATTR_NAME',
  [H5_TOKEN.AttrValue]: 'ATTR_VALUE',
  [H5_TOKEN.TagComment]: 'TAG_COMMENT',
  [H5_TOKEN.Doctype]: 'DOCTYPE',
};

const ANSI = SQLI_FLAGS.QuoteNone | SQLI_FLAGS.SqlAnsi;

describe('libinjection upstream tests (third_party/libinjection/tests)', () => {
  it.each(readUpstreamCases('test-tokens-'))('tokens $file: $name', ({ input, expected }) => {
    const state = new SqliState(input);
    state.reset(ANSI);
    let printed = '';
    while (state.tokenize()) printed += printToken(state.current);
    expect(rtrim(printed)).toBe(expected);
  });

  it.each(readUpstreamCases('test-folding-'))('folding $file: $name', ({ input, expected }) => {
    const state = new SqliState(input);
    state.reset(ANSI);
    const count = state.fold();
    expect(rtrim(state.tokens.slice(0, count).map(printToken).join(''))).toBe(expected);
  });

  it.each(readUpstreamCases('test-sqli-'))('fingerprint $file: $name', ({ input, expected }) => {
    expect(detectSqli(input) ?? '').toBe(expected);
  });

  it.each(readUpstreamCases('test-html5-'))('html5 $file: $name', ({ input, expected }) => {
    const tokenizer = new Html5Tokenizer(input, H5_CONTEXT.Data);
    let printed = '';
    while (tokenizer.next()) {
      printed += `${H5_TYPE_NAMES[tokenizer.tokenType]},${tokenizer.tokenLength},${cString(tokenizer.token())}\n`;
    }
    expect(rtrim(printed)).toBe(expected);
  });
});

describe('detectSqli', () => {
  // Fingerprints as libinjection in Debian's libmodsecurity3 3.0.9 reports them.
  it.each([
    ["1' or '1'='1", 's&sos'],
    ['1 union select 1,2', '1UE1'],
    ['1234 OR 1=1', '1&1'],
    ["foo') UNION ALL select NULL --", 's)UEv'],
    ['sleep(20)', 'f(1)'],
    ['1; DROP TABLE users--', '1;Tnn'],
    ['admin\'--', 'sc'],
    ['1/*!50000union*/select', 'X'],
    ["' or sp_password --", 's&nc'],
  ])('%j is SQLi with fingerprint %s', (input, fingerprint) => {
    expect(detectSqli(input)).toBe(fingerprint);
  });

  it.each([
    'hello world',
    "O'Reilly",
    'john.doe@example.com',
    '{"name":"O\'Reilly","tags":["a","b"],"n":1}',
    '2010-01-01',
    'Please select an option from the menu and union them',
    '1 union',
    '',
  ])('%j is not SQLi', (input) => {
    expect(detectSqli(input)).toBeNull();
  });

  it('reads bytes as upstream reads signed chars: a byte >= 0x80 after the number of "1--" counts as <= 32', () => {
    expect(detectSqli('1\xa0--')).toBe('1c');
  });

  it('upper-cases ASCII only when looking up keywords ("ß" is not "SS")', () => {
    expect(new SqliState('pa\xdfword').fingerprintAs(ANSI)).toBe('n');
  });
});

describe('detectXss', () => {
  it.each([
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="&#x6A;avascript:alert(1)">',
    '" onmouseover="alert(1)',
    "' style='x:expression(alert(1))",
    '<svg/onload=alert(1)>',
    '<!DOCTYPE html>',
    '<!--[if IE]><script>x</script><![endif]-->',
    '<scr\0ipt>',
  ])('%j is XSS', (input) => {
    expect(detectXss(input)).toBe(true);
  });

  it.each([
    'hello world',
    "O'Reilly",
    'john.doe@example.com',
    '{"html":"<b>bold</b>"}',
    'a < b and c > d',
    '<p class="x">text</p>',
    // libinjection only judges a URL inside a URL-taking attribute; CRS has other rules for bare ones.
    'javascript:alert(1)',
  ])('%j is not XSS', (input) => {
    expect(detectXss(input)).toBe(false);
  });

  it('reads 0xFF where white space may end as the end of input, as upstream does (a signed char -1 is EOF)', () => {
    expect(detectXss('<a \xff onclick=alert(1)>')).toBe(false);
    expect(detectXss('<a \xfe onclick=alert(1)>')).toBe(true);
  });
});

describe('CRS 3.3.4 regression stages of the libinjection rules', () => {
  /** What each rule inspects, through the rule's urlDecodeUni and removeNulls (the decoding that matters here). */
  const isSqli = (s: string): boolean => detectSqli(s) !== null;
  const RULES = [
    { id: '942100', file: 'REQUEST-942-APPLICATION-ATTACK-SQLI/942100.yaml', detect: isSqli, targets: argsAnd(['user-agent', 'referer']) },
    { id: '942101', file: 'REQUEST-942-APPLICATION-ATTACK-SQLI/942101.yaml', detect: isSqli, targets: basename },
    { id: '941100', file: 'REQUEST-941-APPLICATION-ATTACK-XSS/941100.yaml', detect: detectXss, targets: argsAnd(['user-agent']) },
    { id: '941101', file: 'REQUEST-941-APPLICATION-ATTACK-XSS/941101.yaml', detect: detectXss, targets: headers(['referer']) },
  ];

  const cases = RULES.flatMap((rule) => {
    const corpus: Corpus = { stages: [], issues: [], disabledTests: 0 };
    decodeFile(readFileSync(`${DEFAULT_CORPUS_DIR}/${rule.file}`, 'latin1'), rule.file, corpus);
    return corpus.stages.map((stage) => ({ ...rule, stage, title: stage.id }));
  });

  it('covers every stage of those rules', () => {
    expect(cases.length).toBe(26);
  });

  it.each(cases)('$title', ({ id, stage, detect, targets }) => {
    const expected = stage.output.logContains?.includes(`"${id}"`) === true;
    if (!expected) expect(stage.output.noLogContains).toContain(`"${id}"`);
    expect(targets(stage).some(detect)).toBe(expected);
  });
});

/** urlDecodeUni then removeNulls, for the ASCII-only values of these stages. */
function decode(s: string): string {
  const bytes = s.replace(/\+/g, ' ').replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  return bytes.replace(/\0/g, '');
}

function headers(names: readonly string[]): (stage: Stage) => string[] {
  return (stage) => stage.input.headers.filter(([name]) => names.includes(name.toLowerCase())).map(([, value]) => decode(value));
}

/** "a=1&b" → a, 1, b: the names and values of a form. */
function nameValues(form: string, separator: RegExp): string[] {
  return form
    .split(separator)
    .filter((pair) => pair !== '')
    .flatMap((pair) => pair.split(/=(.*)/s, 2));
}

/** ARGS and ARGS_NAMES (query string and urlencoded body), REQUEST_COOKIES(_NAMES), and the named headers. */
function argsAnd(headerNames: readonly string[]): (stage: Stage) => string[] {
  return (stage) => {
    const { uri, data } = stage.input;
    const query = uri.includes('?') ? uri.slice(uri.indexOf('?') + 1) : '';
    const args = [...nameValues(query, /&/), ...nameValues(data, /&/)].map(decode);
    const cookies = headers(['cookie'])(stage).flatMap((value) => nameValues(value, /;\s*/));
    return [...args, ...cookies, ...headers(headerNames)(stage)];
  };
}

/** REQUEST_BASENAME: the last segment of the decoded path. */
function basename(stage: Stage): string[] {
  const path = decode(stage.input.uri.split('?', 1)[0]!);
  return [path.slice(path.lastIndexOf('/') + 1)];
}

describe('operators', () => {
  const context = { readDataFile: () => '' };
  const compile = (factory: typeof detectSqliOperator): CompiledOperator => {
    const compiled = factory('', context);
    if ('error' in compiled) throw new Error(compiled.error);
    return compiled;
  };

  it('@detectSQLi captures the fingerprint as TX.0 when asked to', () => {
    const op = compile(detectSqliOperator);
    const captures: Captures = { values: ['stale', 'stale'], count: 2 };
    expect(op.match("1' or '1'='1", captures)).toBe(true);
    expect(captures.values.slice(0, captures.count)).toEqual(['s&sos']);
    expect(op.match('hello', null)).toBe(false);
  });

  it('@detectXSS captures the whole input as TX.0 when asked to, as ModSecurity does', () => {
    const op = compile(detectXssOperator);
    const captures: Captures = { values: [], count: 0 };
    expect(op.match('<script>', captures)).toBe(true);
    expect(captures.values.slice(0, captures.count)).toEqual(['<script>']);
    expect(op.match('hello', captures)).toBe(false);
  });
});

describe('src/waf/libinjection/sqli-data.ts', () => {
  it('is what the generator makes of third_party/libinjection/sqlparse_data.json (regenerate: node scripts/gen-libinjection-data.ts)', () => {
    expect(readFileSync(SQLI_DATA_MODULE_PATH, 'utf8')).toBe(renderSqliData(readFileSync(LIBINJECTION_DATA_PATH, 'utf8')));
  });
});
