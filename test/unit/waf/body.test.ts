// The request body processors (src/waf/body/) on tables of inputs. Every expectation that follows
// libmodsecurity was checked against libmodsecurity 3.0.9 (Debian bookworm's, the one the benchmark runs) by
// feeding it the same request through its C++ API; the cases where we differ on purpose say so.
import { describe, expect, it } from 'vitest';
import { parseCookies } from '../../../src/waf/body/cookies.ts';
import {
  bodyTypeFromContentType,
  NO_FILES_LIMIT_MESSAGE,
  processBody,
  resolveBodyProcessor,
  type BodyResult,
} from '../../../src/waf/body/index.ts';
import { parseJson } from '../../../src/waf/body/json.ts';
import { DEFAULT_BODY_LIMITS, type Arg, type BodyLimits } from '../../../src/waf/body/limits.ts';
import { MULTIPART_FLAG_VARIABLES, parseMultipart, type MultipartFlags } from '../../../src/waf/body/multipart.ts';
import { parseUrlEncoded } from '../../../src/waf/body/urlencoded.ts';
import { parseXml } from '../../../src/waf/body/xml.ts';

const limits: BodyLimits = { ...DEFAULT_BODY_LIMITS };
const crlf = (...lines: string[]): string => lines.join('\r\n');
const lf = (...lines: string[]): string => lines.join('\n');

describe('parseUrlEncoded', () => {
  it.each<[string, Arg[], boolean]>([
    ['a=1&b=2', [['a', '1'], ['b', '2']], false],
    // Split on `&` like std::getline: empty pieces are arguments, a trailing `&` is not.
    ['a=1&&b=2', [['a', '1'], ['', ''], ['b', '2']], false],
    ['&a', [['', ''], ['a', '']], false],
    ['a&', [['a', '']], false],
    ['&&', [['', ''], ['', '']], false],
    ['=x', [['', 'x']], false],
    ['a', [['a', '']], false],
    ['a=b=c', [['a', 'b=c']], false],
    // `;` is no separator in libmodsecurity 3.
    ['a;b=1;c', [['a;b', '1;c']], false],
    ['a+b=c+d', [['a b', 'c d']], false],
    // A `+` is a space, a `%2B` a plus, in any mix; bytes above 0x7f pass through.
    ['q=1%2B1+=+2&n+%41=x', [['q', '1+1 = 2'], ['n A', 'x']], false],
    ['m=caf\xe9+au+lait', [['m', 'caf\xe9 au lait']], false],
    ['%41%42=%4a%4B', [['AB', 'JK']], false],
    ['a=%e9', [['a', '\xe9']], false],
    ['x=%00y', [['x', '\0y']], false],
    ['a=1&a=2', [['a', '1'], ['a', '2']], false],
    // A `%` without two hex digits stays as written and raises URLENCODED_ERROR.
    ['%=%4', [['%', '%4']], true],
    ['a=%zz', [['a', '%zz']], true],
    ['q=%2', [['q', '%2']], true],
    ['p=%%41', [['p', '%A']], true],
    ['', [], false],
  ])('%j', (text, args, invalidEncoding) => {
    expect(parseUrlEncoded(text, limits)).toEqual({ args, invalidEncoding, error: null });
  });

  it('keeps the first maxArgs arguments and says it dropped the rest', () => {
    const result = parseUrlEncoded('a=1&b=2&c=3', { maxArgs: 2 });
    expect(result.args).toEqual([['a', '1'], ['b', '2']]);
    expect(result.error).toMatch(/argument limit/);
    expect(parseUrlEncoded('a=1&b=2', { maxArgs: 2 }).error).toBeNull();
  });

  it('parses a 2 KiB form of 20 fields', () => {
    const fields = Array.from({ length: 20 }, (_, i) => `field${i}=${'v'.repeat(90)}%20${i}`);
    const { args } = parseUrlEncoded(fields.join('&'), limits);
    expect(args).toHaveLength(20);
    expect(args[19]).toEqual(['field19', `${'v'.repeat(90)} 19`]);
  });
});

describe('parseCookies', () => {
  it.each<[string, Arg[]]>([
    ['a=1; b=2', [['a', '1'], ['b', '2']]],
    // Only the name's leading whitespace goes, and the last pair's trailing whitespace.
    [' a=1; b = 2 ;c;=d; e=f=g  ', [['a', '1'], ['b ', ' 2 '], ['c', ''], ['e', 'f=g']]],
    ['a=1 ;', [['a', '1']]],
    ['a=1 ;;', [['a', '1 ']]],
    [';;x=1', [['x', '1']]],
    ['a=1;\tb=2', [['a', '1'], ['b', '2']]],
    ['a=\t', [['a', '']]],
    ['a', [['a', '']]],
    ['   ', []],
    // v1 cookies are not special (SecCookieFormat 1 is not implemented by libmodsecurity 3).
    ['$Version=1; s="v"; $Path=/', [['$Version', '1'], ['s', '"v"'], ['$Path', '/']]],
  ])('%j', (header, cookies) => {
    expect(parseCookies([header])).toEqual(cookies);
  });

  it('reads every Cookie header in turn', () => {
    expect(parseCookies(['a=1', 'b=2; c=3'])).toEqual([['a', '1'], ['b', '2'], ['c', '3']]);
  });
});

describe('parseJson', () => {
  it.each<[string, string, Arg[]]>([
    ['a top-level scalar', '"x"', [['json', 'x']]],
    ['object members', '{"foo":{"bar":"baz"},"n":-1.5e3}', [['json.foo.bar', 'baz'], ['json.n', '-1.5e3']]],
    ['arrays by index', '{"a":[1,[2,3],{"b":true}]}', [['json.a.array_0', '1'], ['json.a.array_1.array_0', '2'], ['json.a.array_1.array_1', '3'], ['json.a.array_2.b', 'true']]],
    ['a top-level array', '[null,false]', [['json.array_0', ''], ['json.array_1', 'false']]],
    ['empty keys', '{"":1,"a":[{"":2}]}', [['json.empty-key', '1'], ['json.a.array_0.empty-key', '2']]],
    ['duplicate keys, in order', '{"b":1,"a":2,"b":3,"2":4,"1":5}', [['json.b', '1'], ['json.a', '2'], ['json.b', '3'], ['json.2', '4'], ['json.1', '5']]],
    ['empty containers add nothing', '{"a":{},"b":[],"c":[[],{}],"d":1}', [['json.d', '1']]],
    ['escapes as UTF-8 bytes', '["\\u00e9\\ud83d\\ude00","\\u0000","\\/\\b\\f\\n\\r\\t\\"\\\\"]', [['json.array_0', '\xc3\xa9\xf0\x9f\x98\x80'], ['json.array_1', '\0'], ['json.array_2', '/\b\f\n\r\t"\\']]],
    ['a lone high surrogate is ?', '"\\ud800abc"', [['json', '?abc']]],
    ['raw UTF-8 bytes kept', '{"k":"\xc3\xa9"}', [['json.k', '\xc3\xa9']]],
    ['yajl whitespace', '\v\f [1] \n', [['json.array_0', '1']]],
    // yajl reports no trailing garbage for a token still open at the end.
    ['an unterminated trailing string', '{"a":1}"x', [['json.a', '1']]],
  ])('%s', (_, body, args) => {
    expect(parseJson(body, limits)).toEqual({ args, error: null });
  });

  it.each<[string, RegExp]>([
    ['', /premature EOF/],
    [' ', /premature EOF/],
    ['{"a":1,}', /invalid object key/],
    ['[1,]', /unallowed token/],
    ['{"a" 1}', /colon/],
    ['[01]', /after array element/],
    ['1 2', /trailing garbage/],
    ['{"a":1}{"b":2}', /trailing garbage/],
    ['tru', /premature EOF/],
    ['trux', /invalid string/],
    ['-', /minus sign/],
    ['1.', /decimal point/],
    ['1e', /exponent/],
    ['"\\x"', /escape/],
    ['"\\u12"', /non-hex/],
    ['"a\tb"', /invalid character inside string/],
    ['"\xff"', /UTF8/],
    ['"\xe2\x82"', /UTF8/],
    ['/*c*/1', /comment/],
    ['{1:2}', /invalid object key/],
    ['@', /invalid char/],
  ])('refuses %j', (body, error) => {
    expect(parseJson(body, limits).error).toMatch(error);
  });

  it('keeps the arguments read before an error', () => {
    expect(parseJson('{"a":1,"b":[2,', limits)).toEqual({ args: [['json.a', '1'], ['json.b.array_0', '2']], error: 'parse error: premature EOF' });
  });

  it('stops past maxJsonDepth, as SecRequestBodyJsonDepthLimit does', () => {
    const nested = (depth: number): string => `${'['.repeat(depth)}1${']'.repeat(depth)}`;
    expect(parseJson(nested(3), { maxArgs: 10, maxJsonDepth: 3 }).error).toBeNull();
    expect(parseJson(nested(4), { maxArgs: 10, maxJsonDepth: 3 }).error).toMatch(/depth limit/);
    // Far beyond what JSON.parse survives: refused cleanly, no stack overflow.
    expect(parseJson('['.repeat(1_000_000), limits).error).toMatch(/depth limit/);
  });

  it('stops past maxArgs', () => {
    const result = parseJson('[1,2,3]', { maxArgs: 2, maxJsonDepth: 10 });
    expect(result.args).toHaveLength(2);
    expect(result.error).toMatch(/Argument limit/);
  });
});

/** The flags of a multipart result that are not 0. */
function raised(flags: MultipartFlags): Partial<MultipartFlags> {
  return Object.fromEntries(Object.entries(flags).filter(([, value]) => value !== 0));
}

interface MultipartCase {
  name: string;
  contentType: string;
  body: string;
  args?: Arg[];
  files?: { name: string; filename: string; size: number }[];
  partHeaders?: Arg[];
  flags: Partial<MultipartFlags>;
  error: string | null;
}

const form = (contentType: string, ...lines: string[]): Pick<MultipartCase, 'contentType' | 'body'> => ({ contentType, body: crlf(...lines) });
const B = 'multipart/form-data; boundary=b';
const FIELD_A = ['--b', 'Content-Disposition: form-data; name="a"', '', 'x'];

const MULTIPART_CASES: MultipartCase[] = [
  {
    name: 'CRS 922100-1: _charset_ part, LF lines',
    contentType: 'multipart/form-data; boundary=boundary',
    body: lf(
      '--boundary',
      'Content-disposition: form-data; name="_charset_"',
      '',
      'utf-7',
      '--boundary',
      'Content-disposition: form-data; name="positive"',
      'Content-Type: text/plain',
      '',
      'Let me see if I can use utf-7.',
      '--boundary--',
      '',
    ),
    args: [['_charset_', 'utf-7'], ['positive', 'Let me see if I can use utf-7.']],
    partHeaders: [
      ['_charset_', 'Content-disposition: form-data; name="_charset_"\n'],
      ['positive', 'Content-disposition: form-data; name="positive"\n'],
      ['positive', 'Content-Type: text/plain\n'],
    ],
    flags: { strictError: 1, unmatchedBoundary: 2, lfLine: 1 },
    error: null,
  },
  {
    name: 'CRS 922110-1: a charset in a part header',
    contentType: 'multipart/form-data; boundary=boundary',
    body: lf('--boundary', 'Content-disposition: form-data; name="922110"', 'Content-Type: text/plain; charset=utf-7', '', 'Knock knock.', '--boundary--', ''),
    args: [['922110', 'Knock knock.']],
    partHeaders: [
      ['922110', 'Content-disposition: form-data; name="922110"\n'],
      ['922110', 'Content-Type: text/plain; charset=utf-7\n'],
    ],
    flags: { strictError: 1, unmatchedBoundary: 2, lfLine: 1 },
    error: null,
  },
  {
    name: 'CRS 922120-1: Content-Transfer-Encoding',
    ...form(
      'multipart/form-data; boundary=boundary',
      '--boundary',
      'Content-Disposition: form-data; name="flavors"',
      'Content-Transfer-Encoding: 8bit',
      'Content-Type: text/plain; charset=utf-7',
      '',
      'Pineapple. Pizza.',
      '--boundary--',
      '',
    ),
    args: [['flavors', 'Pineapple. Pizza.']],
    partHeaders: [
      ['flavors', 'Content-Disposition: form-data; name="flavors"\r\n'],
      ['flavors', 'Content-Transfer-Encoding: 8bit\r\n'],
      ['flavors', 'Content-Type: text/plain; charset=utf-7\r\n'],
    ],
    flags: { unmatchedBoundary: 2 },
    error: null,
  },
  {
    name: 'CRS 920120-1: a file name with =',
    ...form(
      'multipart/form-data; boundary=--------397236876',
      '----------397236876',
      'Content-Disposition: form-data; name="fileRap"; filename="file=.txt"',
      'Content-Type: text/plain',
      '',
      '555-555-0199@example.com',
      '----------397236876--',
    ),
    args: [],
    files: [{ name: 'fileRap', filename: 'file=.txt', size: 24 }],
    flags: {},
    error: null,
  },
  {
    name: 'CRS 920120-2: a file part name with =',
    ...form(
      'multipart/form-data; boundary=---------------------------627652292512397580456702590',
      '-----------------------------627652292512397580456702590',
      'Content-Disposition: form-data; name="fi=le"; filename="test"',
      'Content-Type: text/plain',
      '',
      'email: security@modsecurity.org',
      '',
      '-----------------------------627652292512397580456702590',
      'Content-Disposition: form-data; name="note"',
      '',
      'Contact info.',
      '-----------------------------627652292512397580456702590--',
    ),
    args: [['note', 'Contact info.']],
    files: [{ name: 'fi=le', filename: 'test', size: 33 }],
    flags: { unmatchedBoundary: 2 },
    error: null,
  },
  { name: 'MULTIPART_BOUNDARY_QUOTED', ...form('multipart/form-data; boundary="b"', ...FIELD_A, '--b--', ''), args: [['a', 'x']], flags: { strictError: 1, unmatchedBoundary: 2, boundaryQuoted: 1 }, error: null },
  { name: 'MULTIPART_BOUNDARY_WHITESPACE', ...form('multipart/form-data; boundary =b', ...FIELD_A, '--b--', ''), flags: { strictError: 1, unmatchedBoundary: 2, boundaryWhitespace: 1 }, error: null },
  { name: 'MULTIPART_MISSING_SEMICOLON', ...form('multipart/form-data boundary=b', ...FIELD_A, '--b--', ''), flags: { strictError: 1, unmatchedBoundary: 2, missingSemicolon: 1 }, error: null },
  { name: 'MULTIPART_DATA_BEFORE', ...form(B, 'preamble', ...FIELD_A, '--b--', ''), args: [['a', 'x']], flags: { strictError: 1, unmatchedBoundary: 2, dataBefore: 1 }, error: null },
  { name: 'MULTIPART_DATA_AFTER', ...form(B, ...FIELD_A, '--b--', 'epilogue'), args: [['a', 'x']], flags: { strictError: 1, unmatchedBoundary: 2, dataAfter: 1 }, error: null },
  {
    name: 'MULTIPART_HEADER_FOLDING (the folded line is recorded joined)',
    ...form(B, '--b', 'Content-Disposition: form-data;', ' name="a"', '', 'x', '--b--', ''),
    args: [['a', 'x']],
    partHeaders: [['a', 'Content-Disposition: form-data; name="a"']],
    flags: { strictError: 1, unmatchedBoundary: 2, headerFolding: 1 },
    error: null,
  },
  {
    name: 'MULTIPART_INVALID_HEADER_FOLDING',
    ...form(B, '--b', 'Content-Disposition: form-data;', '\vname="a"', '', 'x', '--b--', ''),
    args: [['a', 'x']],
    flags: { strictError: 1, unmatchedBoundary: 2, headerFolding: 1, invalidHeaderFolding: 1 },
    error: null,
  },
  {
    name: 'MULTIPART_INVALID_QUOTING',
    ...form(B, '--b', "Content-Disposition: form-data; name='a'", '', 'x', '--b--', ''),
    args: [['a', 'x']],
    flags: { strictError: 1, unmatchedBoundary: 2, invalidQuoting: 1 },
    error: null,
  },
  {
    name: 'MULTIPART_INVALID_PART: a boundary where the data should start',
    ...form(B, '--b', 'Content-Type: text/plain', ...FIELD_A, '--b--', ''),
    args: [['a', 'x']],
    flags: { strictError: 1, unmatchedBoundary: 2, invalidPart: 1 },
    error: 'Multipart: Invalid part header (colon missing): --b\r\n',
  },
  {
    name: 'MULTIPART_UNMATCHED_BOUNDARY inside a value (2 only marks a later boundary)',
    ...form(B, '--b', 'Content-Disposition: form-data; name="a"', '', 'x--b', '--b--', ''),
    args: [['a', 'x--b']],
    flags: { unmatchedBoundary: 2 },
    error: null,
  },
  { name: 'MULTIPART_UNMATCHED_BOUNDARY before any boundary', ...form(B, 'x--b', ...FIELD_A, ''), flags: { strictError: 1, unmatchedBoundary: 1, dataBefore: 1 }, error: 'Multipart: Final boundary missing.' },
  { name: 'a body with no boundary', ...form(B, 'just some text', ''), args: [], flags: { strictError: 1, dataBefore: 1 }, error: 'Multipart: No boundaries found in payload.' },
  {
    name: 'a missing final boundary (an error, but the parts read are kept)',
    ...form(B, ...FIELD_A, ''),
    args: [['a', 'x']],
    flags: {},
    error: 'Multipart: Final boundary missing.',
  },
  { name: 'a final boundary with no line break', ...form(B, ...FIELD_A, '--b--'), args: [['a', 'x']], flags: {}, error: null },
  { name: 'bad boundary characters', ...form('multipart/form-data; boundary=b{}', '--b{}', ''), args: [], flags: { strictError: 1 }, error: 'Multipart: Invalid boundary in C-T (characters).' },
  { name: 'a Boundary parameter in another case', ...form('multipart/form-data; BOUNDARY=b', '--b', ''), flags: { strictError: 1 }, error: 'Multipart: Invalid boundary in C-T (case sensitivity).' },
  { name: 'two boundary parameters', ...form('multipart/form-data; boundary=b; boundary=c', '--b', ''), flags: { strictError: 1 }, error: 'Multipart: Multiple boundary parameters in C-T.' },
  { name: 'a charset after the boundary is tolerated', ...form('multipart/form-data; boundary=b; charset=utf-8', ...FIELD_A, '--b--', ''), args: [['a', 'x']], flags: { unmatchedBoundary: 2 }, error: null },
  { name: 'an empty boundary (multipart.cc reports nothing)', ...form('multipart/form-data; boundary=', '--', ''), flags: { strictError: 1 }, error: 'Multipart: Invalid boundary in C-T (empty).' },
  {
    name: 'an unknown Content-Disposition parameter',
    ...form(B, '--b', 'Content-Disposition: form-data; name="a"; foo="bar"', '', 'x', '--b--', ''),
    args: [['a', '']],
    flags: { strictError: 1, invalidPart: 1 },
    error: 'Multipart: Final boundary missing.',
  },
  { name: 'a NUL byte in part headers', ...form(B, '--b', 'Content-Disposition: form-data; name="a"\0', '', 'x', '--b--', ''), args: [], flags: { strictError: 1, invalidPart: 1 }, error: 'Multipart: Final boundary missing.' },
  { name: 'a part header line over 4096 bytes', ...form(B, '--b', `X-Long: ${'y'.repeat(4100)}`, '', 'x', '--b--', ''), flags: { strictError: 1 }, error: 'Multipart: Final boundary missing.' },
  {
    name: 'a repeated part header is dropped silently',
    ...form(B, '--b', 'Content-Disposition: form-data; name="a"', 'content-disposition: form-data; name="b"', '', 'x', '--b--', ''),
    args: [['a', 'x']],
    partHeaders: [['a', 'Content-Disposition: form-data; name="a"\r\n']],
    flags: { unmatchedBoundary: 2 },
    error: null,
  },
  {
    name: 'filename* next to filename',
    ...form(B, '--b', "Content-Disposition: form-data; name=\"f\"; filename=\"a.txt\"; filename*=UTF-8''a%20b.txt", '', 'x', '--b--', ''),
    files: [{ name: 'f', filename: 'a.txt', size: 1 }],
    flags: { unmatchedBoundary: 2 },
    error: null,
  },
  {
    name: 'multi-line values keep their line breaks (multipart.cc drops them)',
    ...form(B, '--b', 'Content-Disposition: form-data; name="a"', '', 'line 1', 'line 2', '--b', 'Content-Disposition: form-data; name="f"; filename="a.txt"', '', 'ab', 'cd', '--b--', ''),
    args: [['a', 'line 1\r\nline 2']],
    files: [{ name: 'f', filename: 'a.txt', size: 6 }],
    flags: { unmatchedBoundary: 2 },
    error: null,
  },
  {
    name: 'a value longer than the 4096-byte line buffer',
    ...form(B, '--b', 'Content-Disposition: form-data; name="a"', '', 'v'.repeat(9000), '--b--', ''),
    args: [['a', 'v'.repeat(9000)]],
    flags: { unmatchedBoundary: 2 },
    error: null,
  },
];

describe('parseMultipart', () => {
  it.each(MULTIPART_CASES)('$name', (c) => {
    const result = parseMultipart(c.body, c.contentType, limits);
    expect(raised(result.flags)).toEqual(c.flags);
    expect(result.error).toBe(c.error);
    if (c.args !== undefined) expect(result.args).toEqual(c.args);
    if (c.files !== undefined) {
      expect(result.files).toEqual(c.files);
      expect(result.filesCombinedSize).toBe(c.files.reduce((sum, file) => sum + file.size, 0));
    }
    if (c.partHeaders !== undefined) expect(result.partHeaders).toEqual(c.partHeaders);
  });

  it('collects every name and filename parameter for MULTIPART_NAME / MULTIPART_FILENAME', () => {
    const result = parseMultipart(
      crlf('--b', 'Content-Disposition: form-data; name="a"', '', 'x', '--b', 'Content-Disposition: form-data; name="f"; filename="x.php"', '', 'y', '--b--', ''),
      B,
      limits,
    );
    expect(result.names).toEqual(['a', 'f']);
    expect(result.filenames).toEqual(['x.php']);
  });

  it('raises MULTIPART_FILE_LIMIT_EXCEEDED past maxMultipartFiles', () => {
    const file = (n: number): string[] => ['--b', `Content-Disposition: form-data; name="f${n}"; filename="${n}.txt"`, '', 'x'];
    const result = parseMultipart(crlf(...file(1), ...file(2), '--b--', ''), B, { ...limits, maxMultipartFiles: 1 });
    expect(result.flags.fileLimitExceeded).toBe(1);
    expect(result.flags.strictError).toBe(1);
    expect(result.files).toHaveLength(2);
    expect(result.error).toMatch(/file limit exceeded 1/);
  });

  it('stops past maxMultipartParts', () => {
    const parts = Array.from({ length: 5 }, (_, i) => crlf('--b', `Content-Disposition: form-data; name="p${i}"`, '', 'v')).join('\r\n');
    const result = parseMultipart(`${parts}\r\n--b--\r\n`, B, { ...limits, maxMultipartParts: 3 });
    expect(result.args.map(([name]) => name)).toEqual(['p0', 'p1', 'p2']);
    expect(result.error).toMatch(/more than 3 parts/);
    expect(result.flags.strictError).toBe(1);
  });

  it('counts header and form-field bytes, not files, for SecRequestBodyNoFilesLimit', () => {
    const result = parseMultipart(crlf('--b', 'Content-Disposition: form-data; name="f"; filename="a"', '', 'x'.repeat(1000), '--b--', ''), B, limits);
    expect(result.noFilesLength).toBeLessThan(100);
  });

  it('names every flag after its variable', () => {
    expect(Object.values(MULTIPART_FLAG_VARIABLES).sort()).toEqual(Object.keys(parseMultipart('', B, limits).flags).sort());
  });
});

describe('parseXml', () => {
  it.each<[string, string, string | null, string[]]>([
    [
      'text, CDATA and attributes (CRS 944 shape)',
      '<?xml version="1.0"?><xml><e a="1" b="x&amp;y">t1<![CDATA[cd]]>t2<!--c--><?pi x?></e>tail</xml>',
      't1cdt2tail',
      ['1', 'x&y'],
    ],
    ['namespace declarations are not attributes', '<a xmlns="u" xmlns:p="v" p:x="1">z</a>', 'z', ['1']],
    ['character and predefined references', '<a>&#65;&#x42;&lt;&gt;&quot;&apos;</a>', 'AB<>"\'', []],
    ['character references past ASCII as UTF-8 bytes', '<a>&#xe9;&#x4e2d;</a>', '\xc3\xa9\xe4\xb8\xad', []],
    ['attribute whitespace normalized, character references not', '<a at="x\ty\nz&#10;"/>', '', ['x y z\n']],
    ['line ends normalized', '<a b="x\r\ny">p\r\nq\rr</a>', 'p\nq\nr', ['x y']],
    ['an internal entity', '<!DOCTYPE a [<!ENTITY e "EXP">]><a at="&e;">x&e;y</a>', 'xEXPy', ['EXP']],
    // libxml2 keeps an entity's elements out of the tree XPath walks: their text counts, their attributes do not.
    ['markup inside an entity', '<!DOCTYPE a [<!ENTITY e "<b c=\'d\'>in</b>">]><a>x&e;y</a>', 'xiny', []],
    ['an external entity is never fetched', '<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>x&e;y</a>', 'xy', []],
    ['undeclared entities under an external DTD', '<!DOCTYPE a SYSTEM "x.dtd"><a>x&undef;y</a>', 'xy', []],
    ['ISO-8859-1 converted to UTF-8', '<?xml version="1.0" encoding="ISO-8859-1"?><a>\xe9</a>', '\xc3\xa9', []],
    ['UTF-8 kept', '<a>\xc3\xa9</a>', '\xc3\xa9', []],
    ['a UTF-8 byte-order mark', '\xef\xbb\xbf<a>bom</a>', 'bom', []],
    ['UTF-16 with a byte-order mark', '\xff\xfe<\0a\0>\0\xe9\0<\0/\0a\0>\0', '\xc3\xa9', []],
    ['nested elements', '<a>\n <b>1</b><c>2</c>\n</a>', '\n 12\n', []],
    ['a SOAP envelope', '<soap:Envelope xmlns:soap="s"><soap:Body><m:x xmlns:m="m">v</m:x></soap:Body></soap:Envelope>', 'v', []],
  ])('%s', (_, body, text, attributes) => {
    expect(parseXml(body, limits)).toEqual({ text, attributes, error: null });
  });

  it.each<[string, string | null, string[]]>([
    // libmodsecurity evaluates XPath over whatever libxml2 built before the error.
    ['test', null, []],
    ['', null, []],
    ['<a>foo<b>bar', 'foobar', []],
    ['<a>x</a>junk', 'x', []],
    ['<a><b>x</a></b>', 'x', []],
    ['<a/><b/>', '', []],
    ['<a>abc&undefined;</a>', 'abc', []],
    ['<a>]]></a>', '', []],
    ['<a>\xe9</a>', '', []],
    ['<a>abc\x01def</a>', 'abc', []],
    ['<a b="1" b="2"/>', null, []],
    ['<a b="<"/>', null, []],
    ['<a b="1"c="2">x</a>', null, []],
    ['<a>x<!-- a -- b -->y</a>', 'x', []],
    ['<a><?xml x?></a>', '', []],
    ['<?xml encoding="UTF-8"?><a>x</a>', null, []],
    ['<?xml version="1.0" encoding="UTF-16"?><a>x</a>', null, []],
    ['<a>&#0;</a>', '', []],
    ['<!DOCTYPE a [<!ENTITY a "&b;"><!ENTITY b "&a;">]><a>&a;</a>', '', []],
  ])('refuses %j, keeping what was parsed', (body, text, attributes) => {
    const result = parseXml(body, limits);
    expect(result.error).not.toBeNull();
    expect(result.text).toBe(text);
    expect(result.attributes).toEqual(attributes);
  });

  it('bounds entity expansion (billion laughs)', () => {
    let dtd = '<!ENTITY l0 "lol">';
    for (let i = 1; i <= 9; i++) dtd += `<!ENTITY l${i} "${`&l${i - 1};`.repeat(10)}">`;
    const result = parseXml(`<!DOCTYPE z [${dtd}]><z>&l9;</z>`, limits);
    expect(result.error).toMatch(/entity expansion beyond 65536 characters/);
    expect(result.text!.length).toBeLessThanOrEqual(limits.maxXmlEntityChars);
  });

  it('bounds depth as libxml2 does: 257 elements open at once', () => {
    const nested = (inner: number): string => `<r>${'<b>'.repeat(inner)}x${'</b>'.repeat(inner)}</r>`;
    expect(parseXml(nested(256), limits).error).toBeNull();
    expect(parseXml(nested(257), limits).error).toMatch(/excessive depth/);
  });

  it('bounds the node count', () => {
    expect(parseXml(`<a>${'<b/>'.repeat(20)}</a>`, { ...limits, maxXmlNodes: 10 }).error).toMatch(/more than 10 nodes/);
  });
});

describe('choosing a processor', () => {
  it.each<[string, 'URLENCODED' | 'MULTIPART' | null]>([
    ['multipart/form-data; boundary=x', 'MULTIPART'],
    ['Multipart/Form-Data; boundary=x', 'MULTIPART'],
    ['application/x-www-form-urlencoded', 'URLENCODED'],
    ['application/x-www-form-urlencoded; charset=utf-8', 'URLENCODED'],
    // CRS 921421: what the header says decides, whatever its parameters claim.
    ['application/x-www-form-urlencoded;boundary="application/json"', 'URLENCODED'],
    ['application/json', null],
    ['text/xml', null],
    [' multipart/form-data; boundary=x', null],
    ['multipart/foo; boundary=0000', null],
  ])('%j', (contentType, type) => {
    expect(bodyTypeFromContentType(contentType)).toBe(type);
  });

  it('lets ctl:requestBodyProcessor=JSON/XML win over the Content-Type', () => {
    expect(resolveBodyProcessor('MULTIPART', 'JSON')).toBe('JSON');
    expect(resolveBodyProcessor('URLENCODED', 'XML')).toBe('XML');
    expect(resolveBodyProcessor('MULTIPART', null)).toBe('MULTIPART');
    expect(resolveBodyProcessor(null, null)).toBeNull();
  });
});

describe('processBody', () => {
  const small: BodyLimits = { ...limits, noFilesLimit: 16 };

  it.each<[BodyResult['kind'], string, string, string | null]>([
    ['URLENCODED', 'a=1', '', null],
    ['JSON', '', 'application/json', null],
    ['JSON', ' ', 'application/json', 'JSON parsing error: parse error: premature EOF'],
    ['XML', '', 'text/xml', 'XML parsing error: document is empty: no root element'],
    ['MULTIPART', '', B, null],
    ['MULTIPART', 'x', B, 'Multipart parsing error: Multipart: No boundaries found in payload.'],
  ])('%s %j', (kind, body, contentType, error) => {
    const result = processBody(kind, body, contentType, limits);
    expect(result.kind).toBe(kind);
    expect(result.error).toBe(error);
  });

  it.each(['URLENCODED', 'JSON', 'XML'] as const)('does not parse a %s body past noFilesLimit', (kind) => {
    const result = processBody(kind, `a=${'x'.repeat(20)}`, '', small);
    expect(result.error).toBe(NO_FILES_LIMIT_MESSAGE);
    if (result.kind !== 'XML') expect(result.args).toEqual([]);
  });

  it('counts only headers and fields of a multipart body against noFilesLimit', () => {
    const file = crlf('--b', 'Content-Disposition: form-data; name="f"; filename="a"', '', 'x'.repeat(100), '--b--', '');
    expect(processBody('MULTIPART', file, B, { ...limits, noFilesLimit: 80 }).error).toBeNull();
    const field = crlf('--b', 'Content-Disposition: form-data; name="f"', '', 'x'.repeat(100), '--b--', '');
    const result = processBody('MULTIPART', field, B, { ...limits, noFilesLimit: 80 });
    expect(result.error).toBe(NO_FILES_LIMIT_MESSAGE);
    expect(result.kind === 'MULTIPART' && result.args).toEqual([['f', 'x'.repeat(100)]]);
  });

  it('prefixes urlencoded argument-limit errors', () => {
    expect(processBody('URLENCODED', 'a&b&c', '', { ...limits, maxArgs: 2 }).error).toMatch(/^URLENCODED parsing error: argument limit/);
  });
});
