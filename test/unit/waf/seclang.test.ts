// The SecLang parser (src/waf/seclang/parser.ts): the whole OWASP CRS 3.3.4 as Debian installs it parses
// without an error and to the rules its files hold, each tricky piece of syntax reads as ModSecurity reads it,
// and bad directives are reported at their line while the rest still parses.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ActionSpec, Directive, ParseResult, VariableSelector } from '../../../src/waf/seclang/ast.ts';
import { parseActions, parseIdRanges, parseOperator, parseSecLang, parseVariables } from '../../../src/waf/seclang/parser.ts';

// scripts/setup.sh installs Debian's modsecurity-crs; without it these tests must fail, not pass vacuously.
const CRS_RULES = '/usr/share/modsecurity-crs/rules';
const CRS_SETUP = '/etc/modsecurity/crs/crs-setup.conf';

function crsFiles(): string[] {
  expect(existsSync(CRS_RULES), `${CRS_RULES} is missing: run scripts/setup.sh (package modsecurity-crs)`).toBe(true);
  expect(existsSync(CRS_SETUP), `${CRS_SETUP} is missing: run scripts/setup.sh (package modsecurity-crs)`).toBe(true);
  const rules = readdirSync(CRS_RULES)
    .filter((name) => name.endsWith('.conf'))
    .sort()
    .map((name) => join(CRS_RULES, name));
  return [CRS_SETUP, ...rules];
}

/** Configuration files are bytes; the WAF reads every value as a one-char-per-byte string. */
const readConfig = (file: string): string => readFileSync(file, 'latin1');

describe('parseSecLang on the CRS 3.3.4', () => {
  const files = crsFiles();
  const parsed = new Map(files.map((file) => [file, parseSecLang(readConfig(file), file)]));
  const directives = [...parsed.values()].flatMap((result) => result.directives);

  /** The rule (or SecAction) carrying `id:<id>`, and the directives after it. */
  function byId(id: string): { rule: Directive; next: Directive[] } {
    const at = directives.findIndex((d) => 'actions' in d && d.actions.some((a) => a.name === 'id' && a.value === id));
    expect(at, `no directive with id:${id}`).toBeGreaterThanOrEqual(0);
    return { rule: directives[at]!, next: directives.slice(at + 1) };
  }

  it('reads all 32 rule files and crs-setup.conf', () => {
    expect(files.length).toBe(33);
  });

  it.each(files)('%s parses without an error', (file) => {
    expect(parsed.get(file)!.errors).toEqual([]);
  });

  it('finds every SecRule, SecAction and SecMarker the files hold (counted line by line, as grep would)', () => {
    const count = (pattern: RegExp): number =>
      files.reduce((sum, file) => sum + readConfig(file).split('\n').filter((line) => pattern.test(line)).length, 0);
    const rules = count(/^\s*SecRule\s/);
    const actions = count(/^\s*SecAction\b/);
    const markers = count(/^\s*SecMarker\s/);
    expect(directives.filter((d) => d.kind === 'rule').length).toBe(rules);
    expect(directives.filter((d) => d.kind === 'action').length).toBe(actions);
    expect(directives.filter((d) => d.kind === 'marker').length).toBe(markers);
    // The numbers of CRS 3.3.4 itself, so a change of package shows here first.
    expect([rules, actions, markers]).toEqual([790, 10, 40]);
  });

  it('reads 942100: libinjection over a target list with regex exclusions and an XPath', () => {
    const { rule } = byId('942100');
    expect(rule).toMatchObject({ kind: 'rule', file: join(CRS_RULES, 'REQUEST-942-APPLICATION-ATTACK-SQLI.conf'), line: 46 });
    if (rule.kind !== 'rule') return;
    const selectors: VariableSelector[] = [
      { collection: 'REQUEST_COOKIES', count: false, exclude: false },
      { collection: 'REQUEST_COOKIES', key: { kind: 'regex', pattern: '__utm' }, count: false, exclude: true },
      { collection: 'REQUEST_COOKIES_NAMES', count: false, exclude: false },
      { collection: 'REQUEST_HEADERS', key: { kind: 'name', value: 'User-Agent' }, count: false, exclude: false },
      { collection: 'REQUEST_HEADERS', key: { kind: 'name', value: 'Referer' }, count: false, exclude: false },
      { collection: 'ARGS_NAMES', count: false, exclude: false },
      { collection: 'ARGS', count: false, exclude: false },
      { collection: 'XML', key: { kind: 'name', value: '/*' }, count: false, exclude: false },
    ];
    expect(rule.variables).toEqual(selectors);
    expect(rule.operator).toEqual({ name: 'detectSQLi', argument: '', negated: false });
    expect(rule.actions.filter((a) => a.name === 't').map((a) => a.value)).toEqual(['none', 'utf8toUnicode', 'urlDecodeUni', 'removeNulls']);
    expect(rule.actions).toContainEqual({ name: 'logdata', value: 'Matched Data: %{TX.0} found within %{MATCHED_VAR_NAME}: %{MATCHED_VAR}' });
    expect(rule.actions).toContainEqual({ name: 'ver', value: 'OWASP_CRS/3.3.4' });
    expect(rule.actions).toContainEqual({ name: 'multimatch' });
    expect(rule.actions.at(-1)).toEqual({ name: 'setvar', value: 'tx.sql_injection_score=+%{tx.critical_anomaly_score}' });
  });

  it('reads 920280: a count selector and a skipAfter to a marker', () => {
    const { rule } = byId('920280');
    expect(rule).toMatchObject({
      kind: 'rule',
      variables: [{ collection: 'REQUEST_HEADERS', key: { kind: 'name', value: 'Host' }, count: true, exclude: false }],
      operator: { name: 'eq', argument: '0', negated: false },
    });
    if (rule.kind !== 'rule') return;
    expect(rule.actions.at(-1)).toEqual({ name: 'skipafter', value: 'END-HOST-CHECK' });
    expect(directives).toContainEqual(expect.objectContaining({ kind: 'marker', name: 'END-HOST-CHECK' }));
  });

  it('reads 920350: regex escapes stay as written', () => {
    const { rule } = byId('920350');
    expect(rule).toMatchObject({ kind: 'rule', operator: { name: 'rx', argument: '^[\\d.:]+$', negated: false } });
  });

  it('reads the chain of 920340 as two rules, the second without phase or id', () => {
    const { rule, next } = byId('920340');
    expect(rule.kind === 'rule' && rule.actions.at(-1)).toEqual({ name: 'chain' });
    expect(next[0]).toMatchObject({
      kind: 'rule',
      variables: [{ collection: 'REQUEST_HEADERS', key: { kind: 'name', value: 'Content-Type' }, count: true }],
      operator: { name: 'eq', argument: '0' },
      actions: [{ name: 't', value: 'none' }, { name: 'setvar', value: 'tx.anomaly_score_pl1=+%{tx.notice_anomaly_score}' }],
    });
  });

  it('reads the 901 SecActions: setvar with and without quotes, initcol with macros', () => {
    const { rule: scores } = byId('901200');
    expect(scores.kind).toBe('action');
    if (scores.kind !== 'action') return;
    const setvars = scores.actions.filter((a) => a.name === 'setvar').map((a) => a.value);
    expect(setvars).toContain('tx.anomaly_score_pl1=0');
    expect(setvars).toHaveLength(20);
    const { rule: collections } = byId('901321');
    expect(collections.kind === 'action' && collections.actions.slice(-3)).toEqual([
      { name: 'initcol', value: 'global=global' },
      { name: 'initcol', value: 'ip=%{remote_addr}_%{tx.ua_hash}' },
      { name: 'setvar', value: 'tx.real_ip=%{remote_addr}' },
    ]);
  });

  it('reads 949110, the blocking evaluation', () => {
    const { rule } = byId('949110');
    expect(rule).toMatchObject({
      kind: 'rule',
      variables: [{ collection: 'TX', key: { kind: 'name', value: 'ANOMALY_SCORE' } }],
      operator: { name: 'ge', argument: '%{tx.inbound_anomaly_score_threshold}', negated: false },
    });
    if (rule.kind !== 'rule') return;
    expect(rule.actions).toContainEqual({ name: 'msg', value: 'Inbound Anomaly Score Exceeded (Total Score: %{TX.ANOMALY_SCORE})' });
  });

  it('resolves \\" and \\\\ in regex arguments and keeps every other backslash (920120, 932110)', () => {
    const { rule } = byId('920120');
    expect(rule.kind === 'rule' && rule.operator.argument.endsWith(`;|['"=]`)).toBe(true);
    const { rule: rce } = byId('932110');
    // `[\\\\'\"\^]` in the file: each `\\` and the `\"` resolved, so PCRE gets `[\\'"\^]` (a backslash, the
    // quotes, a caret), while `\^` stays as written.
    expect(rce.kind === 'rule' && rce.operator.argument).toContain(`[\\\\'"\\^]`);
  });

  it('reads 920460\'s `\\\\\\\\` as a regex\'s escaped backslash, as ModSecurity 2 did', () => {
    const { rule } = byId('920460');
    // `(?:^|[^\\\\])\\\\[cde…]` in the file: a backslash after a non-backslash, then an unknown escape letter.
    expect(rule.kind === 'rule' && rule.operator.argument).toBe(String.raw`(?:^|[^\\])\\[cdeghijklmpqwxyz123456789]`);
  });

  it('resolves \\\' and \\" inside single-quoted messages', () => {
    const msg = (id: string): string | undefined => {
      const { rule } = byId(id);
      return 'actions' in rule ? rule.actions.find((a) => a.name === 'msg')?.value : undefined;
    };
    expect(msg('920490')).toBe("Request header x-up-devcap-post-charset detected in combination with prefix 'UP' to User-Agent");
    expect(msg('942220')).toContain('is the "magic number" crash');
  });

  it('reads quoted regex keys with escaped slashes (980 correlation)', () => {
    const leakage = directives.find(
      (d) => d.kind === 'rule' && d.variables[0]?.key?.kind === 'regex' && d.variables[0].key.pattern.startsWith('LEAKAGE'),
    );
    expect(leakage).toMatchObject({ variables: [{ collection: 'TX', count: true, key: { kind: 'regex', pattern: 'LEAKAGE\\\\/ERRORS' } }] });
  });

  it('reads the settings of crs-setup.conf and the component signature', () => {
    expect(parsed.get(CRS_SETUP)!.directives.filter((d) => d.kind !== 'action')).toEqual([
      { kind: 'default_action', actions: actions('phase:1', 'log', 'auditlog', 'pass'), file: CRS_SETUP, line: expect.any(Number) },
      { kind: 'default_action', actions: actions('phase:2', 'log', 'auditlog', 'pass'), file: CRS_SETUP, line: expect.any(Number) },
      { kind: 'setting', name: 'SecCollectionTimeout', args: ['600'], file: CRS_SETUP, line: expect.any(Number) },
    ]);
    expect(directives).toContainEqual(expect.objectContaining({ kind: 'setting', name: 'SecComponentSignature', args: ['OWASP_CRS/3.3.4'] }));
  });
});

/** `name:value` strings as ActionSpecs, for short expectations. */
function actions(...specs: string[]): ActionSpec[] {
  return specs.map((spec) => {
    const colon = spec.indexOf(':');
    return colon === -1 ? { name: spec } : { name: spec.slice(0, colon), value: spec.slice(colon + 1) };
  });
}

const sel = (collection: string, extra: Partial<VariableSelector> = {}): VariableSelector => ({ collection, count: false, exclude: false, ...extra });
const named = (value: string) => ({ kind: 'name' as const, value });
const regex = (pattern: string) => ({ kind: 'regex' as const, pattern });

/** Parses `text` as t.conf, expecting no error and exactly one directive. */
function single(text: string): Directive {
  const result = parseSecLang(text, 't.conf');
  expect(result.errors).toEqual([]);
  expect(result.directives).toHaveLength(1);
  return result.directives[0]!;
}

describe('directive structure', () => {
  it.each<[string, string, Directive[]]>([
    ['a comment line', '# SecRule ARGS "@rx x" "id:1"', []],
    ['an indented comment', ' \t# SecAction "id:1"', []],
    ['blank and whitespace-only lines', '\n   \n\t\n', []],
    [
      'a # inside an argument is text',
      'SecRule ARGS "@rx #x" "id:1"',
      [{ kind: 'rule', variables: [sel('ARGS')], operator: { name: 'rx', argument: '#x', negated: false }, actions: actions('id:1'), file: 't.conf', line: 1 }],
    ],
    [
      'a rule over continuation lines, placed at its first line',
      '\n# c\nSecRule ARGS \\\n    "@rx a" \\\n    "id:2,\\\n    deny"\nSecMarker END',
      [
        { kind: 'rule', variables: [sel('ARGS')], operator: { name: 'rx', argument: 'a', negated: false }, actions: actions('id:2', 'deny'), file: 't.conf', line: 3 },
        { kind: 'marker', name: 'END', file: 't.conf', line: 7 },
      ],
    ],
    [
      'a commented-out rule swallows its continuation lines',
      '#SecRule ARGS "@rx a" \\\n    "id:3,\\\n    deny"\nSecMarker M',
      [{ kind: 'marker', name: 'M', file: 't.conf', line: 4 }],
    ],
    [
      'blanks after the continuation backslash and CRLF line ends',
      'SecAction \\  \r\n  "id:4,pass"\r\nSecMarker M\r\n',
      [
        { kind: 'action', actions: actions('id:4', 'pass'), file: 't.conf', line: 1 },
        { kind: 'marker', name: 'M', file: 't.conf', line: 3 },
      ],
    ],
    [
      'a continuation inside quotes joins the text as written',
      'SecRule ARGS "@pm foo \\\n  bar" "id:5"',
      [{ kind: 'rule', variables: [sel('ARGS')], operator: { name: 'pm', argument: 'foo   bar', negated: false }, actions: actions('id:5'), file: 't.conf', line: 1 }],
    ],
    [
      'a directive after blank continuation lines starts where its text does',
      '\\\n  \\\nSecMarker M',
      [{ kind: 'marker', name: 'M', file: 't.conf', line: 3 }],
    ],
    ['a UTF-8 byte order mark read as bytes', '\xef\xbb\xbfSecMarker M', [{ kind: 'marker', name: 'M', file: 't.conf', line: 1 }]],
    ['a UTF-8 byte order mark read as UTF-8', '\ufeffSecMarker M', [{ kind: 'marker', name: 'M', file: 't.conf', line: 1 }]],
    ['a backslash on the last line', 'SecMarker M \\', [{ kind: 'marker', name: 'M', file: 't.conf', line: 1 }]],
  ])('%s', (_, text, expected) => {
    expect(parseSecLang(text, 't.conf')).toEqual({ directives: expected, errors: [] });
  });

  it.each(['SecRule', 'secrule', 'SECRULE', 'secRule'])('directive names are case-insensitive: %s', (name) => {
    expect(single(`${name} ARGS "@rx a" "id:1"`).kind).toBe('rule');
  });

  it.each<[string, Directive]>([
    ['SecAction "id:1,pass"', { kind: 'action', actions: actions('id:1', 'pass'), file: 't.conf', line: 1 }],
    ['secaction id:1', { kind: 'action', actions: actions('id:1'), file: 't.conf', line: 1 }],
    ['SecDefaultAction "phase:2,log,auditlog,pass"', { kind: 'default_action', actions: actions('phase:2', 'log', 'auditlog', 'pass'), file: 't.conf', line: 1 }],
    ['SecMarker "END-REQUEST-910-IP-REPUTATION"', { kind: 'marker', name: 'END-REQUEST-910-IP-REPUTATION', file: 't.conf', line: 1 }],
    ['SecMarker BEGIN', { kind: 'marker', name: 'BEGIN', file: 't.conf', line: 1 }],
    [
      'SecRuleRemoveById 1 2-5 "10,11 12" 920000-920999',
      {
        kind: 'remove_by_id',
        ranges: [{ from: 1, to: 1 }, { from: 2, to: 5 }, { from: 10, to: 10 }, { from: 11, to: 11 }, { from: 12, to: 12 }, { from: 920000, to: 920999 }],
        file: 't.conf',
        line: 1,
      },
    ],
    ['SecRuleRemoveByTag "attack-sqli"', { kind: 'remove_by_tag', pattern: 'attack-sqli', file: 't.conf', line: 1 }],
    ['SecRuleRemoveByTag ^language-', { kind: 'remove_by_tag', pattern: '^language-', file: 't.conf', line: 1 }],
    ['SecRuleRemoveByMsg "SQL Injection Attack"', { kind: 'remove_by_msg', pattern: 'SQL Injection Attack', file: 't.conf', line: 1 }],
    [
      'SecRuleUpdateTargetById 942100 "!ARGS:foo|!REQUEST_COOKIES:/^sess/"',
      {
        kind: 'update_target_by_id',
        ranges: [{ from: 942100, to: 942100 }],
        variables: [sel('ARGS', { key: named('foo'), exclude: true }), sel('REQUEST_COOKIES', { key: regex('^sess'), exclude: true })],
        file: 't.conf',
        line: 1,
      },
    ],
    [
      'SecRuleUpdateTargetById 958000-958999 REQUEST_HEADERS:X-Foo REQUEST_HEADERS',
      {
        kind: 'update_target_by_id',
        ranges: [{ from: 958000, to: 958999 }],
        variables: [sel('REQUEST_HEADERS', { key: named('X-Foo') })],
        replaced: [sel('REQUEST_HEADERS')],
        file: 't.conf',
        line: 1,
      },
    ],
    [
      'SecRuleUpdateTargetByTag "attack-xss" !ARGS:comment',
      { kind: 'update_target_by_tag', pattern: 'attack-xss', variables: [sel('ARGS', { key: named('comment'), exclude: true })], file: 't.conf', line: 1 },
    ],
    [
      'SecRuleUpdateActionById 901450 "nolog,pass"',
      { kind: 'update_action_by_id', id: 901450, actions: actions('nolog', 'pass'), file: 't.conf', line: 1 },
    ],
    ['Include /etc/modsecurity/crs/*.conf', { kind: 'include', path: '/etc/modsecurity/crs/*.conf', file: 't.conf', line: 1 }],
    ['include "rules dir/a.conf"', { kind: 'include', path: 'rules dir/a.conf', file: 't.conf', line: 1 }],
    ['SecRuleEngine On', { kind: 'setting', name: 'SecRuleEngine', args: ['On'], file: 't.conf', line: 1 }],
    ['SecRequestBodyLimit 13107200', { kind: 'setting', name: 'SecRequestBodyLimit', args: ['13107200'], file: 't.conf', line: 1 }],
    [
      'SecComponentSignature "OWASP_CRS/3.3.4"',
      { kind: 'setting', name: 'SecComponentSignature', args: ['OWASP_CRS/3.3.4'], file: 't.conf', line: 1 },
    ],
    [
      "SecAuditLogRelevantStatus '^(?:5|4(?!04))'",
      { kind: 'setting', name: 'SecAuditLogRelevantStatus', args: ['^(?:5|4(?!04))'], file: 't.conf', line: 1 },
    ],
    ['SecRuleUpdateTargetByMsg "x" ARGS', { kind: 'setting', name: 'SecRuleUpdateTargetByMsg', args: ['x', 'ARGS'], file: 't.conf', line: 1 }],
    [
      'SecRule REQUEST_HEADERS:Host "@eq 0"',
      { kind: 'rule', variables: [sel('REQUEST_HEADERS', { key: named('Host') })], operator: { name: 'eq', argument: '0', negated: false }, actions: [], file: 't.conf', line: 1 },
    ],
  ])('%s', (text, expected) => {
    expect(single(text)).toEqual(expected);
  });
});

describe('quoted arguments', () => {
  const operatorOf = (quoted: string): string => {
    const rule = single(`SecRule ARGS ${quoted} "id:1"`);
    return rule.kind === 'rule' ? rule.operator.argument : '';
  };

  it.each([
    ['an escaped double quote is resolved', String.raw`"@rx a\"b"`, 'a"b'],
    ['regex escapes stay as written', String.raw`"@rx ^\d+\s\w$"`, String.raw`^\d+\s\w$`],
    ['an escaped backslash is one backslash', String.raw`"@rx a\\b"`, String.raw`a\b`],
    ['four backslashes are two (a regex\'s escaped backslash)', String.raw`"@rx a\\\\b"`, String.raw`a\\b`],
    ['an escaped backslash before the closing quote ends the string', String.raw`"@rx a\\"`, 'a\\'],
    ['three backslashes and a quote: a backslash, then a quote', String.raw`"@rx a\\\"b"`, String.raw`a\"b`],
    ['a backslash before the other quote stays', String.raw`"@rx a\'b"`, String.raw`a\'b`],
    ['an escaped backslash in single quotes is one backslash', String.raw`'@rx a\\b'`, String.raw`a\b`],
    ['single quotes inside double quotes are text', `"@rx it's"`, "it's"],
    ['a single-quoted argument', String.raw`'@rx a"b\'c'`, `a"b'c`],
    ['an unquoted argument', '@rx', ''],
    ['an unquoted implicit regex', '^POST$', '^POST$'],
    ['a trailing space is kept', '"@rx a "', 'a '],
  ])('%s: %s', (_, quoted, argument) => {
    expect(operatorOf(quoted)).toBe(argument);
  });
});

describe('parseVariables', () => {
  it.each<[string, VariableSelector[]]>([
    ['ARGS', [sel('ARGS')]],
    ['args|Request_Headers', [sel('ARGS'), sel('REQUEST_HEADERS')]],
    ['ARGS:foo', [sel('ARGS', { key: named('foo') })]],
    ['REQUEST_HEADERS:User-Agent', [sel('REQUEST_HEADERS', { key: named('User-Agent') })]],
    ['ARGS:account[pass][pass1]', [sel('ARGS', { key: named('account[pass][pass1]') })]],
    ['!ARGS:foo', [sel('ARGS', { key: named('foo'), exclude: true })]],
    ['&ARGS', [sel('ARGS', { count: true })]],
    ['&TX:foo', [sel('TX', { key: named('foo'), count: true })]],
    ['REQUEST_COOKIES:/__utm/', [sel('REQUEST_COOKIES', { key: regex('__utm') })]],
    ['ARGS_NAMES:/^(?:a|b)$/|ARGS', [sel('ARGS_NAMES', { key: regex('^(?:a|b)$') }), sel('ARGS')]],
    ['ARGS:/a\\/b/', [sel('ARGS', { key: regex('a\\/b') })]],
    ['ARGS:/a\\\\/|ARGS', [sel('ARGS', { key: regex('a\\\\') }), sel('ARGS')]],
    ['ARGS:/path/to', [sel('ARGS', { key: named('/path/to') })]],
    ['ARGS:/path|ARGS:x', [sel('ARGS', { key: named('/path') }), sel('ARGS', { key: named('x') })]],
    ['ARGS:/', [sel('ARGS', { key: named('/') })]],
    ["ARGS:'foo bar'", [sel('ARGS', { key: named('foo bar') })]],
    ["ARGS:'it\\'s'", [sel('ARGS', { key: named("it's") })]],
    // Quoted: `\\` is one backslash, `\/` stays; unquoted (above), every backslash stays.
    ["TX:'/LEAKAGE\\\\\\/ERRORS/'", [sel('TX', { key: regex('LEAKAGE\\\\/ERRORS') })]],
    ["ARGS:'/a|b/'|ARGS:c", [sel('ARGS', { key: regex('a|b') }), sel('ARGS', { key: named('c') })]],
    ['XML:/*', [sel('XML', { key: named('/*') })]],
    ['XML://book/title/', [sel('XML', { key: named('//book/title/') })]],
    ['XML:/a/b|ARGS', [sel('XML', { key: named('/a/b') }), sel('ARGS')]],
    ['xml:/*', [sel('XML', { key: named('/*') })]],
    ['TX:/MULTIPART_HEADERS_CONTENT_TYPES_*/', [sel('TX', { key: regex('MULTIPART_HEADERS_CONTENT_TYPES_*') })]],
  ])('%s', (text, expected) => {
    expect(parseVariables(text)).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['', /empty variable list/],
    ['ARGS|', /ends with "\|"/],
    ['|ARGS', /expected a variable name/],
    ['ARGS||ARGS', /expected a variable name/],
    ['ARGS:', /empty key/],
    ['ARGS:|TX', /empty key/],
    ["ARGS:''", /empty key/],
    ["ARGS:'foo", /unterminated quoted key/],
    ["ARGS:'foo'bar", /unexpected text after the quoted key/],
    ['ARGS FOO', /unexpected " " after variable ARGS/],
    ['!&ARGS', /expected a variable name/],
    ['AR-GS', /unexpected "-" after variable AR/],
  ])('%j is refused', (text, reason) => {
    const parsed = parseVariables(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });
});

describe('parseOperator', () => {
  it.each([
    ['@rx ^a', { name: 'rx', argument: '^a', negated: false }],
    ['!@rx ^a', { name: 'rx', argument: '^a', negated: true }],
    ['@pm  a b c', { name: 'pm', argument: 'a b c', negated: false }],
    ['@unconditionalMatch', { name: 'unconditionalMatch', argument: '', negated: false }],
    ['@detectSQLi', { name: 'detectSQLi', argument: '', negated: false }],
    ['!@eq 0', { name: 'eq', argument: '0', negated: true }],
    ['@ge %{tx.inbound_anomaly_score_threshold}', { name: 'ge', argument: '%{tx.inbound_anomaly_score_threshold}', negated: false }],
    ['^(?:GET|HEAD)$', { name: 'rx', argument: '^(?:GET|HEAD)$', negated: false }],
    ['!^\\d+$', { name: 'rx', argument: '^\\d+$', negated: true }],
    ['', { name: 'rx', argument: '', negated: false }],
    ['!', { name: 'rx', argument: '', negated: true }],
    ['a@rx', { name: 'rx', argument: 'a@rx', negated: false }],
  ])('%j', (text, expected) => {
    expect(parseOperator(text)).toEqual({ ok: true, value: expected });
  });

  it.each([['@'], ['@ foo'], ['!@'], ['@r-x foo'], ['@rx\u00e9 foo']])('%j is refused', (text) => {
    const parsed = parseOperator(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(/invalid operator name/);
  });
});

describe('parseActions', () => {
  it.each<[string, ActionSpec[]]>([
    ['', []],
    ['  ', []],
    ['id:1,pass', actions('id:1', 'pass')],
    ['t:none,t:lowercase', actions('t:none', 't:lowercase')],
    ['Phase:2, SkipAfter:END-REQUEST-910-IP-REPUTATION', actions('phase:2', 'skipafter:END-REQUEST-910-IP-REPUTATION')],
    ["msg:'a, b and c'", [{ name: 'msg', value: 'a, b and c' }]],
    ["msg:'it\\'s'", [{ name: 'msg', value: "it's" }]],
    ["msg:it's", [{ name: 'msg', value: "it's" }]],
    ["setvar:'tx.x=+%{tx.y}'", [{ name: 'setvar', value: 'tx.x=+%{tx.y}' }]],
    ['setvar:tx.a=1', [{ name: 'setvar', value: 'tx.a=1' }]],
    ['setvar:!tx.a', [{ name: 'setvar', value: '!tx.a' }]],
    ['ctl:ruleRemoveTargetById=942100;ARGS:foo', [{ name: 'ctl', value: 'ruleRemoveTargetById=942100;ARGS:foo' }]],
    ["tag:'a/b'", [{ name: 'tag', value: 'a/b' }]],
    ["ver:'OWASP_CRS/3.3.4'", [{ name: 'ver', value: 'OWASP_CRS/3.3.4' }]],
    [
      "logdata:'Matched Data: %{TX.0} found within %{MATCHED_VAR_NAME}: %{MATCHED_VAR}'",
      [{ name: 'logdata', value: 'Matched Data: %{TX.0} found within %{MATCHED_VAR_NAME}: %{MATCHED_VAR}' }],
    ],
    ['status:403,redirect:http://example.com/x?a=b', actions('status:403', 'redirect:http://example.com/x?a=b')],
    ["msg:''", [{ name: 'msg', value: '' }]],
    ['msg:', [{ name: 'msg', value: '' }]],
    ["id:1,\t    msg:'x' ,\tdeny", actions('id:1', 'msg:x', 'deny')],
    ["msg: 'spaced'", [{ name: 'msg', value: 'spaced' }]],
    ["msg:'a\\\\'", [{ name: 'msg', value: 'a\\' }]],
    ['msg:a\\\\', [{ name: 'msg', value: 'a\\\\' }]],
    ["tag:'a',tag:'b'", actions('tag:a', 'tag:b')],
  ])('%j', (text, expected) => {
    expect(parseActions(text)).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['id:1,', /ends with ","/],
    ['id:1,,deny', /empty action/],
    [',id:1', /empty action/],
    ["msg:'abc", /unterminated quoted value of action msg/],
    ["msg:'a'b", /unexpected text after the quoted value of action msg/],
    ['bad name:1', /invalid action name "bad name"/],
    ["'msg':x", /invalid action name/],
  ])('%j is refused', (text, reason) => {
    const parsed = parseActions(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });
});

describe('parseIdRanges', () => {
  it('reads ids and ranges separated by blanks and commas', () => {
    expect(parseIdRanges(' 1, 3-4\t7 ')).toEqual({ ok: true, value: [{ from: 1, to: 1 }, { from: 3, to: 4 }, { from: 7, to: 7 }] });
  });

  it.each([
    ['', /no rule ids/],
    ['abc', /neither a rule id nor an id range/],
    ['5-1', /runs backwards/],
    ['1-', /neither/],
    ['-1', /neither/],
    ['1-2-3', /neither/],
    ['1234567890123456', /neither/],
  ])('%j is refused', (text, reason) => {
    const parsed = parseIdRanges(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });
});

describe('errors', () => {
  it.each<[string, string, { line: number; message: RegExp }[], Directive['kind'][]]>([
    ['an unterminated quote', 'SecMarker A\nSecRule ARGS "@rx a \n  \nSecMarker B', [{ line: 2, message: /unterminated "-quoted argument/ }], ['marker', 'marker']],
    ['text glued to a closing quote', 'SecRule ARGS "@rx a"b "id:1"', [{ line: 1, message: /unexpected text after a closing quote: "b \\"id:1\\""/ }], []],
    ['too few rule arguments', 'SecRule ARGS\nSecMarker B', [{ line: 1, message: /^SecRule: expected variables, an operator and optional actions, got 1 argument$/ }], ['marker']],
    ['too many rule arguments', 'SecRule ARGS "@rx a" "id:1" extra', [{ line: 1, message: /got 4 arguments/ }], []],
    ['a bad variable in a continued rule, at the rule line', '\nSecRule ARGS:|TX \\\n  "@rx a" \\\n  "id:1"', [{ line: 2, message: /^SecRule: variable ARGS has an empty key/ }], []],
    ['a bad operator', 'SecRule ARGS "@ a" "id:1"', [{ line: 1, message: /SecRule: invalid operator name "@"/ }], []],
    ['a bad action list', "SecAction \"id:1,msg:'x\"", [{ line: 1, message: /SecAction: unterminated quoted value of action msg/ }], []],
    ['a marker without a name', 'SecMarker', [{ line: 1, message: /SecMarker: expected one marker name, got 0 arguments/ }], []],
    ['an empty marker name', 'SecMarker ""', [{ line: 1, message: /^SecMarker: empty marker name$/ }], []],
    ['a SecAction with two arguments', 'SecAction "id:1" "id:2"', [{ line: 1, message: /expected one action list, got 2/ }], []],
    ['a bad id range', 'SecRuleRemoveById 10-1', [{ line: 1, message: /SecRuleRemoveById: id range "10-1" runs backwards/ }], []],
    ['no ids', 'SecRuleRemoveById', [{ line: 1, message: /expected rule ids or ranges/ }], []],
    ['a tag pattern in two words', 'SecRuleRemoveByTag a b', [{ line: 1, message: /one pattern/ }], []],
    ['a non-numeric action update id', 'SecRuleUpdateActionById 9001:2 "nolog"', [{ line: 1, message: /rule id "9001:2" is not a number/ }], []],
    ['a target update without targets', 'SecRuleUpdateTargetById 1', [{ line: 1, message: /expected rule ids, variables/ }], []],
    ['a bad replaced target', 'SecRuleUpdateTargetByTag x ARGS "|"', [{ line: 1, message: /expected a variable name/ }], []],
    ['an Apache container', '<IfModule security2_module>\nSecMarker A\n</IfModule>', [{ line: 1, message: /"<IfModule" is not a directive name/ }, { line: 3, message: /not a directive name/ }], ['marker']],
    ['a line starting with a quoted operator', '"@rx a" "id:1"', [{ line: 1, message: /"@rx a" is not a directive name/ }], []],
    ['an Include without a path', 'Include', [{ line: 1, message: /one path/ }], []],
    ['an Include of an empty path', "include ''", [{ line: 1, message: /^include: empty path$/ }], []],
  ])('%s', (_, text, errors, kinds) => {
    const result: ParseResult = parseSecLang(text, 'bad.conf');
    expect(result.errors).toEqual(errors.map(({ line, message }) => ({ file: 'bad.conf', line, message: expect.stringMatching(message) })));
    expect(result.directives.map((d) => d.kind)).toEqual(kinds);
  });

  it('keeps error messages short whatever the input', () => {
    const huge = 'A'.repeat(100_000);
    const { errors } = parseSecLang(`SecRule ${huge}: "@rx a" "id:1"\n${huge} "x\nSecRule "${huge}`, 'big.conf');
    expect(errors).toHaveLength(3);
    for (const error of errors) expect(error.message.length).toBeLessThan(200);
  });
});

describe('work stays linear on hostile input', () => {
  // Each text is about a megabyte; a quadratic pass over any of them would not finish within the test timeout.
  const MB = 1 << 20;
  const repeat = (unit: string): string => unit.repeat(Math.ceil(MB / unit.length));
  it.each([
    ['unclosed regex keys', `SecRule ${repeat('ARGS:/a|')}ARGS "@rx a" "id:1"`],
    ['regex keys closing only at the end', `SecRule ${repeat('ARGS:/a\\/|')}ARGS:/x/ "@rx a" "id:1"`],
    ['backslash runs', `SecRule ARGS "@rx ${repeat('\\\\')}" "id:1"`],
    ['quote after quote', `SecAction "${repeat("msg:'a',")}id:1"`],
    ['an unterminated quote', `SecAction "${repeat("msg:'a\\'")}`],
    ['continuation lines', `SecAction "id:1,${repeat('pass,\\\n')}pass"`],
    ['empty continuation lines', `${repeat('\\\n')}SecMarker M`],
    ['many directives', repeat('SecMarker M\n')],
    ['many ids', `SecRuleRemoveById ${repeat('1-2 ')}`],
  ])('%s', (_, text) => {
    const result = parseSecLang(text, 'big.conf');
    expect(result.directives.length + result.errors.length).toBeGreaterThan(0);
  });
});
