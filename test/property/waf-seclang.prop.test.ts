// The SecLang parser (src/waf/seclang/parser.ts) on generated input: arbitrary text and mutated CRS rules never
// make it throw or take long, every problem it reports names a line of the text, and every well-formed
// configuration printed from a generated AST — with comments, blank lines and line continuations anywhere in
// its directives — parses back to that AST at the lines it was printed on.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ActionSpec, Directive, IdRange, OperatorSpec, ParseResult, VariableSelector } from '../../src/waf/seclang/ast.ts';
import { parseSecLang } from '../../src/waf/seclang/parser.ts';
import { fcParams } from '../helpers/fc.ts';

/** What every parse must satisfy, whatever the text: positions inside it, short messages, bounded work. */
function parseChecked(text: string): ParseResult {
  const started = performance.now();
  const result = parseSecLang(text, 'f.conf');
  // Linear work: a few kilobytes parse in well under this.
  expect(performance.now() - started).toBeLessThan(1_000);
  const lines = text.split('\n').length;
  for (const at of [...result.directives, ...result.errors]) {
    expect(at.file).toBe('f.conf');
    expect(at.line).toBeGreaterThanOrEqual(1);
    expect(at.line).toBeLessThanOrEqual(lines);
  }
  for (const error of result.errors) {
    expect(error.message).not.toBe('');
    expect(error.message.length).toBeLessThan(300);
  }
  return result;
}

const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('latin1');

// Arbitrary text, weighted towards the characters and words that steer the parser.
const piece = fc.oneof(
  fc.uint8Array({ maxLength: 24 }).map(latin1),
  fc.constantFrom(
    'SecRule ',
    'SecAction ',
    'SecMarker ',
    'SecDefaultAction ',
    'SecRuleRemoveById ',
    'SecRuleUpdateTargetById ',
    'SecRuleUpdateActionById ',
    'Include ',
    'ARGS',
    'XML:/*',
    ':',
    '|',
    '!',
    '&',
    '/',
    "'",
    '"',
    '\\',
    '\\\n',
    '\n',
    '\r\n',
    ' ',
    '\t',
    '#',
    ',',
    '@rx ',
    '@pm ',
    'id:1',
    "msg:'",
    '1-5',
  ),
);
const arbitraryText = fc.array(piece, { maxLength: 60 }).map((parts) => parts.join(''));

/** The CRS as lines, for mutation; read eagerly so a missing package fails the test rather than skips it. */
function crsLines(): string[] {
  const dir = '/usr/share/modsecurity-crs/rules';
  const files = [...readdirSync(dir).filter((name) => name.endsWith('.conf')).map((name) => join(dir, name)), '/etc/modsecurity/crs/crs-setup.conf'];
  return files.flatMap((file) => readFileSync(file, 'latin1').split('\n'));
}

type Mutation = { at: number; kind: 'insert'; text: string } | { at: number; kind: 'delete'; length: number };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ at: fc.nat(), kind: fc.constant('insert' as const), text: piece }),
  fc.record({ at: fc.nat(), kind: fc.constant('delete' as const), length: fc.integer({ min: 1, max: 20 }) }),
);

function mutate(text: string, mutations: readonly Mutation[]): string {
  let out = text;
  for (const m of mutations) {
    const at = m.at % (out.length + 1);
    out = m.kind === 'insert' ? out.slice(0, at) + m.text + out.slice(at) : out.slice(0, at) + out.slice(at + m.length);
  }
  return out;
}

describe('parseSecLang (fuzz)', () => {
  it('never throws or takes long on arbitrary text, and places everything on one of its lines', () => {
    fc.assert(
      fc.property(arbitraryText, (text) => {
        parseChecked(text);
      }),
      fcParams(1_000),
    );
  });

  const lines = crsLines();
  it('never throws on mutated CRS rules', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 40 }), fc.array(mutation, { minLength: 1, maxLength: 8 }), (start, count, mutations) => {
        const from = start % lines.length;
        parseChecked(mutate(lines.slice(from, from + count).join('\n'), mutations));
      }),
      fcParams(500),
    );
  });
});

// ---- Well-formed configurations and the AST they are printed from -----------------------------------------

const chars = (alphabet: string) => fc.constantFrom(...alphabet);
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = LOWER.toUpperCase();
const DIGITS = '0123456789';
const word = (first: string, rest: string, maxLength: number) =>
  fc.tuple(chars(first), fc.string({ unit: chars(rest), maxLength })).map(([head, tail]) => head + tail);

/**
 * Values as rules hold them: printable bytes, quotes of both kinds, and backslashes anywhere — alone, in runs,
 * before a letter or punctuation (a regex escape), last. Each has a written form in quotes, where `\\` is one
 * backslash (the printer below writes every backslash so).
 */
const valueUnit = fc.oneof(
  { weight: 10, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.integer({ min: 0xa0, max: 0xff }).map((c) => String.fromCharCode(c)) },
  { weight: 3, arbitrary: fc.constantFrom('\\', '\\\\', '\\d', '\\w', '\\/', '\\.', "\\'", '\\"', "'", '"', '|', ',', ':', '/', '%{tx.a}', ' ') },
);
const value = (maxLength: number) => fc.array(valueUnit, { maxLength }).map((units) => units.join(''));
const nonEmptyValue = (maxLength: number) => fc.array(valueUnit, { minLength: 1, maxLength }).map((units) => units.join(''));

/** Key names: header- and argument-like text; never a backslash, never a leading `/` (that would be a regex). */
const keyName = word(`${LOWER}${UPPER}${DIGITS}_-[]."' |`, `${LOWER}${UPPER}${DIGITS}_-[]."' |/`, 12);
const xpath = fc.constantFrom('/*', '//a', '/a/b/@c', '//book[1]/title', '/');

const selector: fc.Arbitrary<VariableSelector> = fc
  .record({
    collection: fc.oneof(word(UPPER, `${UPPER}${DIGITS}_`, 14), fc.constant('XML')),
    key: fc.oneof(
      fc.constant(undefined),
      keyName.map((name) => ({ kind: 'name' as const, value: name })),
      value(16).map((pattern) => ({ kind: 'regex' as const, pattern })),
    ),
    mark: fc.constantFrom('none', 'count', 'exclude'),
    xpath,
  })
  .map(({ collection, key, mark, xpath }): VariableSelector => {
    const base = { collection, count: mark === 'count', exclude: mark === 'exclude' };
    if (collection === 'XML') return key === undefined ? base : { ...base, key: { kind: 'name', value: xpath } };
    return key === undefined ? base : { ...base, key };
  });
const variables = fc.array(selector, { minLength: 1, maxLength: 5 });

const operator: fc.Arbitrary<OperatorSpec & { implicit: boolean }> = fc
  .record({
    name: fc.oneof(fc.constant('rx'), word(`${LOWER}${UPPER}`, `${LOWER}${UPPER}${DIGITS}_`, 10)),
    // Blanks between an operator's name and its argument separate them, so an argument cannot start with one.
    argument: value(30).map((a) => a.replace(/^ +/, '')),
    negated: fc.boolean(),
    implicit: fc.boolean(),
  });

const action: fc.Arbitrary<ActionSpec> = fc
  .tuple(word(LOWER, `${LOWER}${DIGITS}_`, 10), fc.option(value(30), { nil: undefined }))
  .map(([name, v]) => (v === undefined ? { name } : { name, value: v }));
const actions = fc.array(action, { maxLength: 6 });

const idRange: fc.Arbitrary<IdRange> = fc
  .tuple(fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 0, max: 1000 }))
  .map(([from, width]) => ({ from, to: from + width }));
const ranges = fc.array(idRange, { minLength: 1, maxLength: 4 });

const KNOWN = new Set(['secrule', 'secaction', 'secdefaultaction', 'secmarker', 'secruleremovebyid', 'secruleremovebytag', 'secruleremovebymsg', 'secruleupdatetargetbyid', 'secruleupdatetargetbytag', 'secruleupdateactionbyid', 'include']);

/** A directive without its position, as the generator makes it; `implicit` asks for `"^a"` rather than `"@rx ^a"`. */
/** Directives with a SecLang spelling (shadow_by_id is built from the JSON policy only). */
type Written = Exclude<Directive, { kind: 'shadow_by_id' }>;
type Model = (Written extends infer D ? (D extends unknown ? Omit<D, 'file' | 'line'> : never) : never) & { implicit?: boolean };

const directive: fc.Arbitrary<Model> = fc.oneof(
  fc.record({ variables, operator, actions }).map(({ variables, operator: { implicit, ...op }, actions }) => ({ kind: 'rule' as const, variables, operator: op, actions, implicit })),
  actions.map((actions) => ({ kind: 'action' as const, actions })),
  actions.map((actions) => ({ kind: 'default_action' as const, actions })),
  nonEmptyValue(20).map((name) => ({ kind: 'marker' as const, name })),
  ranges.map((ranges) => ({ kind: 'remove_by_id' as const, ranges })),
  value(20).map((pattern) => ({ kind: 'remove_by_tag' as const, pattern })),
  value(20).map((pattern) => ({ kind: 'remove_by_msg' as const, pattern })),
  fc.tuple(ranges, variables, fc.option(variables, { nil: undefined })).map(([ranges, variables, replaced]) =>
    replaced === undefined ? { kind: 'update_target_by_id' as const, ranges, variables } : { kind: 'update_target_by_id' as const, ranges, variables, replaced },
  ),
  fc.tuple(value(20), variables, fc.option(variables, { nil: undefined })).map(([pattern, variables, replaced]) =>
    replaced === undefined ? { kind: 'update_target_by_tag' as const, pattern, variables } : { kind: 'update_target_by_tag' as const, pattern, variables, replaced },
  ),
  fc.tuple(fc.integer({ min: 0, max: 2 ** 31 }), actions).map(([id, actions]) => ({ kind: 'update_action_by_id' as const, id, actions })),
  nonEmptyValue(30).map((path) => ({ kind: 'include' as const, path })),
  fc
    .tuple(word(`${LOWER}${UPPER}`, `${LOWER}${UPPER}${DIGITS}_`, 20), fc.array(value(20), { maxLength: 4 }))
    .filter(([name]) => !KNOWN.has(name.toLowerCase()))
    .map(([name, args]) => ({ kind: 'setting' as const, name, args })),
);

// The printer: the inverse of the parser on what the generators make. In quotes, `\\` is a backslash and `\"`
// (or `\'`) the quote, so escaping every backslash first writes any text, a trailing backslash included.
const quotedWith =
  (quote: string) =>
  (text: string): string =>
    `${quote}${text.replaceAll('\\', '\\\\').replaceAll(quote, `\\${quote}`)}${quote}`;
const doubleQuoted = quotedWith('"');
const singleQuoted = quotedWith("'");
const BARE_KEY = /^[^'/|][^|]*$/;
const BARE_VALUE = /^[\w.=+%{}/-]*$/;
const BARE_WORD = /^[\w./:-]+$/;

function printSelector(v: VariableSelector): string {
  const mark = v.exclude ? '!' : v.count ? '&' : '';
  if (v.key === undefined) return `${mark}${v.collection}`;
  if (v.key.kind === 'regex') {
    // Bare, a backslash hides the next character from the search for the closing slash, so a pattern with a
    // slash or ending in a backslash needs the quotes.
    const { pattern } = v.key;
    const regex = `/${pattern}/`;
    return `${mark}${v.collection}:${pattern.includes('/') || pattern.endsWith('\\') ? singleQuoted(regex) : regex}`;
  }
  const name = v.key.value;
  return `${mark}${v.collection}:${v.collection === 'XML' || BARE_KEY.test(name) ? name : singleQuoted(name)}`;
}

const printVariables = (vs: readonly VariableSelector[]): string => doubleQuoted(vs.map(printSelector).join('|'));

function printOperator(op: OperatorSpec, implicit: boolean): string {
  const not = op.negated ? '!' : '';
  if (implicit && op.name === 'rx' && !op.argument.startsWith('@') && (op.negated || !op.argument.startsWith('!'))) return doubleQuoted(not + op.argument);
  return doubleQuoted(`${not}@${op.name}${op.argument === '' ? '' : ` ${op.argument}`}`);
}

const printActions = (as: readonly ActionSpec[]): string =>
  doubleQuoted(as.map((a) => (a.value === undefined ? a.name : `${a.name}:${BARE_VALUE.test(a.value) ? a.value : singleQuoted(a.value)}`)).join(','));

const printRanges = (rs: readonly IdRange[]): string => rs.map((r) => (r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`)).join(',');

function print(d: Model): string {
  switch (d.kind) {
    case 'rule':
      return `SecRule ${printVariables(d.variables)} ${printOperator(d.operator, d.implicit ?? false)}${d.actions.length === 0 ? '' : ` ${printActions(d.actions)}`}`;
    case 'action':
      return `SecAction ${printActions(d.actions)}`;
    case 'default_action':
      return `SecDefaultAction ${printActions(d.actions)}`;
    case 'marker':
      return `SecMarker ${doubleQuoted(d.name)}`;
    case 'remove_by_id':
      return `SecRuleRemoveById ${d.ranges.map((r) => printRanges([r])).join(' ')}`;
    case 'remove_by_tag':
      return `SecRuleRemoveByTag ${doubleQuoted(d.pattern)}`;
    case 'remove_by_msg':
      return `SecRuleRemoveByMsg ${doubleQuoted(d.pattern)}`;
    case 'update_target_by_id':
      return `SecRuleUpdateTargetById ${printRanges(d.ranges)} ${printVariables(d.variables)}${d.replaced ? ` ${printVariables(d.replaced)}` : ''}`;
    case 'update_target_by_tag':
      return `SecRuleUpdateTargetByTag ${doubleQuoted(d.pattern)} ${printVariables(d.variables)}${d.replaced ? ` ${printVariables(d.replaced)}` : ''}`;
    case 'update_action_by_id':
      return `SecRuleUpdateActionById ${d.id} ${printActions(d.actions)}`;
    case 'include':
      return `Include ${doubleQuoted(d.path)}`;
    case 'setting':
      return [d.name, ...d.args.map((a) => (BARE_WORD.test(a) ? a : doubleQuoted(a)))].join(' ');
  }
}

/** What may stand between directives: nothing, blank lines, or a comment (never ending in a continuation). */
const filler = fc.oneof(
  fc.constant([] as string[]),
  fc.constantFrom([''], ['   '], ['\t']),
  value(30).map((text) => [`# ${text}.`]),
);

const entry = fc.record({ directive, before: filler, breaks: fc.array(fc.nat(), { maxLength: 4 }), indent: fc.constantFrom('', '  ', '\t') });

describe('parseSecLang (round trip)', () => {
  it('parses every printed configuration back to its AST, at the lines it was printed on', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 8 }), (entries) => {
        const lines: string[] = [];
        const expected: Directive[] = [];
        for (const { directive: model, before, breaks, indent } of entries) {
          lines.push(...before);
          const text = indent + print(model);
          // Continuations may fall anywhere in a directive, even inside a quoted string: ModSecurity joins the
          // lines as written. The directive starts on the first of its lines with text.
          const cuts = [...new Set(breaks.map((b) => b % (text.length + 1)))].sort((a, b) => a - b);
          const pieces = [0, ...cuts].map((from, i) => text.slice(from, cuts[i] ?? text.length));
          const first = pieces.findIndex((p) => /[^ \t]/.test(p));
          const { implicit: _, ...parsed } = model;
          expected.push({ ...parsed, file: 'f.conf', line: lines.length + 1 + first } as Directive);
          lines.push(...pieces.map((p, i) => (i < pieces.length - 1 ? `${p}\\` : p)));
        }
        expect(parseChecked(lines.join('\n'))).toEqual({ directives: expected, errors: [] });
      }),
      fcParams(500),
    );
  });
});
