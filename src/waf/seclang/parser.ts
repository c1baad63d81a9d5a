// The SecLang parser: ModSecurity configuration text → the directive AST of ./ast.ts, which the rule compiler
// consumes. It never throws and never stops at a bad directive: the directive is reported with its file and
// line and skipped, and parsing goes on. Values are kept as written (./lexer.ts removes the quotes); what an
// operator argument, macro or setting means is the compiler's business.
import type {
  ActionSpec,
  Directive,
  IdRange,
  OperatorSpec,
  ParseResult,
  SecLangError,
  SourcePosition,
  TargetUpdate,
  VariableSelector,
} from './ast.ts';
import { excerpt, isBlank, logicalLines, readQuoted, splitWords } from './lexer.ts';

/** A piece parsed, or why it could not be. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

export function parseSecLang(text: string, file: string): ParseResult {
  const directives: Directive[] = [];
  const errors: SecLangError[] = [];
  for (const { text: line, line: lineNumber } of logicalLines(text)) {
    const at: SourcePosition = { file, line: lineNumber };
    const parsed = parseDirective(line, at);
    if (parsed.ok) directives.push(parsed.value);
    else errors.push({ ...at, message: parsed.reason });
  }
  return { directives, errors };
}

function parseDirective(line: string, at: SourcePosition): Parsed<Directive> {
  const split = splitWords(line);
  if (!split.ok) return split;
  const [name = '', ...args] = split.words;
  // Directive names are words (`SecRule`, `Include`); anything else, an Apache `<IfModule>` among them, is
  // not SecLang and would otherwise pass on as a setting.
  if (!isName(name) || !isLetter(name.charCodeAt(0))) return fail(`${excerpt(name)} is not a directive name`);
  const parsed = parseArguments(name, args, at);
  return parsed.ok ? parsed : fail(`${label(name)}: ${parsed.reason}`);
}

/** The directives the compiler acts on; ModSecurity matches directive names case-insensitively. */
function parseArguments(name: string, args: string[], at: SourcePosition): Parsed<Directive> {
  const directive = name.toLowerCase();
  switch (directive) {
    case 'secrule': {
      if (args.length < 2 || args.length > 3) return arity('variables, an operator and optional actions', args);
      const variables = parseVariables(args[0]!);
      if (!variables.ok) return variables;
      const operator = parseOperator(args[1]!);
      if (!operator.ok) return operator;
      // ModSecurity accepts a rule without actions; it then runs with the default actions alone.
      const actions = parseActions(args[2] ?? '');
      if (!actions.ok) return actions;
      return ok({ kind: 'rule', variables: variables.value, operator: operator.value, actions: actions.value, ...at });
    }
    case 'secaction':
    case 'secdefaultaction': {
      if (args.length !== 1) return arity('one action list', args);
      const actions = parseActions(args[0]!);
      if (!actions.ok) return actions;
      return ok({ kind: directive === 'secaction' ? 'action' : 'default_action', actions: actions.value, ...at });
    }
    case 'secmarker':
      if (args.length !== 1) return arity('one marker name', args);
      if (args[0] === '') return fail('empty marker name');
      return ok({ kind: 'marker', name: args[0]!, ...at });
    case 'secruleremovebyid': {
      if (args.length === 0) return arity('rule ids or ranges', args);
      const ranges = parseIdRanges(args.join(' '));
      return ranges.ok ? ok({ kind: 'remove_by_id', ranges: ranges.value, ...at }) : ranges;
    }
    case 'secruleremovebytag':
    case 'secruleremovebymsg':
      if (args.length !== 1) return arity('one pattern (quote it if it has spaces)', args);
      return ok({ kind: directive === 'secruleremovebytag' ? 'remove_by_tag' : 'remove_by_msg', pattern: args[0]!, ...at });
    case 'secruleupdatetargetbyid': {
      if (args.length < 2 || args.length > 3) return arity('rule ids, variables and optional replaced variables', args);
      const ranges = parseIdRanges(args[0]!);
      if (!ranges.ok) return ranges;
      const update = parseTargetUpdate(args[1]!, args[2]);
      return update.ok ? ok({ kind: 'update_target_by_id', ranges: ranges.value, ...update.value, ...at }) : update;
    }
    case 'secruleupdatetargetbytag': {
      if (args.length < 2 || args.length > 3) return arity('a tag pattern, variables and optional replaced variables', args);
      const update = parseTargetUpdate(args[1]!, args[2]);
      return update.ok ? ok({ kind: 'update_target_by_tag', pattern: args[0]!, ...update.value, ...at }) : update;
    }
    case 'secruleupdateactionbyid': {
      if (args.length !== 2) return arity('a rule id and an action list', args);
      const id = parseRuleId(args[0]!);
      if (id === null) return fail(`rule id ${excerpt(args[0]!)} is not a number`);
      const actions = parseActions(args[1]!);
      return actions.ok ? ok({ kind: 'update_action_by_id', id, actions: actions.value, ...at }) : actions;
    }
    case 'include':
      if (args.length !== 1) return arity('one path', args);
      if (args[0] === '') return fail('empty path');
      return ok({ kind: 'include', path: args[0]!, ...at });
    default:
      return ok({ kind: 'setting', name, args, ...at });
  }
}

function parseTargetUpdate(targets: string, replaced: string | undefined): Parsed<TargetUpdate> {
  const variables = parseVariables(targets);
  if (!variables.ok) return variables;
  if (replaced === undefined) return ok({ variables: variables.value });
  const old = parseVariables(replaced);
  return old.ok ? ok({ variables: variables.value, replaced: old.value }) : old;
}

// ---- Variables -------------------------------------------------------------------------------------------

const PIPE = 0x7c;
const SLASH = 0x2f;
const BACKSLASH = 0x5c;

/**
 * A rule's target list, `|`-separated selectors such as `ARGS`, `!REQUEST_COOKIES:/__utm/`, `&TX:foo`,
 * `REQUEST_HEADERS:'User-Agent'` or `XML:/*`. Exported for the compiler, which parses the targets of
 * `ctl:ruleRemoveTargetById=…;ARGS:foo` with it.
 */
export function parseVariables(text: string): Parsed<VariableSelector[]> {
  if (text === '') return fail('empty variable list');
  const closers = regexClosers(text);
  const selectors: VariableSelector[] = [];
  let i = 0;
  for (;;) {
    const selector = parseSelector(text, i, closers);
    if (!selector.ok) return selector;
    selectors.push(selector.value.selector);
    i = selector.value.next;
    if (i === text.length) return ok(selectors);
    // parseSelector stops only at the end or at a `|`.
    i++;
    if (i === text.length) return fail(`variable list ${excerpt(text)} ends with "|"`);
  }
}

/**
 * Where `/regex/` keys may close: a `/` that no backslash escapes and that ends the list or precedes a `|`.
 * Only such a slash closes a regex, so `ARGS:/a|b/` keeps its alternation and `ARGS:/path` (no closing slash
 * before a separator) is a plain name. Found in one pass, so a list of many unclosed keys stays linear.
 */
function regexClosers(text: string): number[] {
  const closers: number[] = [];
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (escaped) escaped = false;
    else if (code === BACKSLASH) escaped = true;
    else if (code === SLASH && (i + 1 === text.length || text.charCodeAt(i + 1) === PIPE)) closers.push(i);
  }
  return closers;
}

function parseSelector(text: string, start: number, closers: number[]): Parsed<{ selector: VariableSelector; next: number }> {
  let i = start;
  const exclude = text[i] === '!';
  const count = text[i] === '&';
  if (exclude || count) i++;
  const nameStart = i;
  while (i < text.length && isNameChar(text.charCodeAt(i))) i++;
  if (i === nameStart) return fail(`expected a variable name at ${excerpt(text, nameStart)}`);
  const collection = text.slice(nameStart, i).toUpperCase();
  const base = { collection, count, exclude };
  if (i === text.length || text.charCodeAt(i) === PIPE) return ok({ selector: base, next: i });
  if (text[i] !== ':') return fail(`unexpected ${excerpt(text[i]!)} after variable ${label(collection)}`);
  i++;
  const keyStart = i;
  if (keyStart === text.length || text.charCodeAt(keyStart) === PIPE) {
    return fail(`variable ${label(collection)} has an empty key after ":"`);
  }
  // XML keys are XPath expressions (`XML:/*`, `XML://a/b`): slashes there are paths, never a regex.
  if (collection !== 'XML') {
    if (text[keyStart] === "'") {
      const quoted = readQuoted(text, keyStart);
      if (quoted === null) return fail(`unterminated quoted key of ${label(collection)}: ${excerpt(text, keyStart)}`);
      if (quoted.next < text.length && text.charCodeAt(quoted.next) !== PIPE) {
        return fail(`unexpected text after the quoted key of ${label(collection)}: ${excerpt(text, quoted.next)}`);
      }
      const value = quoted.value;
      if (value === '') return fail(`variable ${label(collection)} has an empty key`);
      const isRegex = value.length >= 2 && value.startsWith('/') && value.endsWith('/');
      const key = isRegex ? { kind: 'regex' as const, pattern: value.slice(1, -1) } : { kind: 'name' as const, value };
      return ok({ selector: { ...base, key }, next: quoted.next });
    }
    if (text.charCodeAt(keyStart) === SLASH) {
      const close = firstAfter(closers, keyStart);
      if (close !== -1) {
        return ok({ selector: { ...base, key: { kind: 'regex', pattern: text.slice(keyStart + 1, close) } }, next: close + 1 });
      }
    }
  }
  const pipe = text.indexOf('|', keyStart);
  const keyEnd = pipe === -1 ? text.length : pipe;
  return ok({ selector: { ...base, key: { kind: 'name', value: text.slice(keyStart, keyEnd) } }, next: keyEnd });
}

/** The first of the sorted `positions` above `after`, or -1: a binary search, so each key costs O(log n). */
function firstAfter(positions: number[], after: number): number {
  let low = 0;
  let high = positions.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (positions[mid]! <= after) low = mid + 1;
    else high = mid;
  }
  return low < positions.length ? positions[low]! : -1;
}

/** Variable, action and operator names: letters, digits and `_`. */
function isNameChar(code: number): boolean {
  return isLetter(code) || (code >= 0x30 && code <= 0x39) || code === 0x5f;
}

function isLetter(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
}

function isName(text: string): boolean {
  if (text === '') return false;
  for (let i = 0; i < text.length; i++) if (!isNameChar(text.charCodeAt(i))) return false;
  return true;
}

// ---- Operator --------------------------------------------------------------------------------------------

/**
 * `@name argument`, optionally negated with a leading `!`; without `@` the whole text (after any `!`) is the
 * argument of an implicit `rx`, as ModSecurity defines. Blanks between the name and the argument separate
 * them; the argument itself is kept to its last character, where a regex may mean a trailing space.
 */
export function parseOperator(text: string): Parsed<OperatorSpec> {
  const negated = text[0] === '!';
  const rest = negated ? text.slice(1) : text;
  if (rest[0] !== '@') return ok({ name: 'rx', argument: rest, negated });
  let end = 1;
  while (end < rest.length && !isBlank(rest.charCodeAt(end))) end++;
  const name = rest.slice(1, end);
  if (!isName(name)) return fail(`invalid operator name ${excerpt(rest.slice(0, end))}`);
  while (end < rest.length && isBlank(rest.charCodeAt(end))) end++;
  return ok({ name, argument: rest.slice(end), negated });
}

// ---- Actions ---------------------------------------------------------------------------------------------

/**
 * A comma-separated action list: `name` or `name:value`, the value optionally in single quotes (which may
 * then hold commas, and `\'` for a quote). Only a quote that opens the value quotes it: in `msg:it's` the
 * apostrophe is text, as in ModSecurity v2's action parser. Names are lower-cased; blanks around names and
 * values (inside a directive's continuation lines, for one) are not part of them.
 */
export function parseActions(text: string): Parsed<ActionSpec[]> {
  const actions: ActionSpec[] = [];
  let i = skipBlanks(text, 0);
  if (i === text.length) return ok(actions);
  for (;;) {
    const nameStart = i;
    while (i < text.length && text[i] !== ':' && text[i] !== ',') i++;
    const name = trimEnd(text.slice(nameStart, i));
    if (name === '') return fail(`empty action at ${excerpt(text, nameStart)}`);
    if (!isName(name)) return fail(`invalid action name ${excerpt(name)}`);
    let value: string | undefined;
    if (text[i] === ':') {
      i = skipBlanks(text, i + 1);
      if (text[i] === "'") {
        const quoted = readQuoted(text, i);
        if (quoted === null) return fail(`unterminated quoted value of action ${label(name)}: ${excerpt(text, i)}`);
        value = quoted.value;
        i = skipBlanks(text, quoted.next);
        if (i < text.length && text[i] !== ',') {
          return fail(`unexpected text after the quoted value of action ${label(name)}: ${excerpt(text, i)}`);
        }
      } else {
        const comma = text.indexOf(',', i);
        const end = comma === -1 ? text.length : comma;
        value = trimEnd(text.slice(i, end));
        i = end;
      }
    }
    const lower = name.toLowerCase();
    actions.push(value === undefined ? { name: lower } : { name: lower, value });
    if (i === text.length) return ok(actions);
    // The loops above stop only at the end or at a `,`.
    i = skipBlanks(text, i + 1);
    if (i === text.length) return fail(`action list ends with ","`);
  }
}

function skipBlanks(text: string, from: number): number {
  let i = from;
  while (i < text.length && isBlank(text.charCodeAt(i))) i++;
  return i;
}

function trimEnd(text: string): string {
  let end = text.length;
  while (end > 0 && isBlank(text.charCodeAt(end - 1))) end--;
  return text.slice(0, end);
}

// ---- Rule ids --------------------------------------------------------------------------------------------

/** Ids fit a double exactly far below this many digits; ModSecurity's own ids are 32-bit. */
const MAX_ID_DIGITS = 15;

/**
 * Rule ids and `from-to` ranges separated by blanks or commas (`SecRuleRemoveById 1 2-5 "10,11"`, and the
 * id argument of `ctl:ruleRemoveById`). Exported for the compiler.
 */
export function parseIdRanges(text: string): Parsed<IdRange[]> {
  const ranges: IdRange[] = [];
  for (const token of text.split(/[\s,]+/)) {
    if (token === '') continue;
    const dash = token.indexOf('-');
    const from = parseRuleId(dash === -1 ? token : token.slice(0, dash));
    const to = dash === -1 ? from : parseRuleId(token.slice(dash + 1));
    if (from === null || to === null) return fail(`${excerpt(token)} is neither a rule id nor an id range`);
    if (from > to) return fail(`id range ${excerpt(token)} runs backwards`);
    ranges.push({ from, to });
  }
  return ranges.length > 0 ? ok(ranges) : fail('no rule ids');
}

function parseRuleId(text: string): number | null {
  if (text.length === 0 || text.length > MAX_ID_DIGITS) return null;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x30 || code > 0x39) return null;
  }
  return Number(text);
}

// ---- Helpers ---------------------------------------------------------------------------------------------

const MAX_LABEL_CHARS = 40;

function ok<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

function fail<T>(reason: string): Parsed<T> {
  return { ok: false, reason };
}

/** A name from the input as an error message shows it: whole when short, else a quoted excerpt. */
function label(name: string): string {
  return name.length <= MAX_LABEL_CHARS ? name : excerpt(name);
}

function arity<T>(expected: string, args: string[]): Parsed<T> {
  return fail(`expected ${expected}, got ${args.length} argument${args.length === 1 ? '' : 's'}`);
}
