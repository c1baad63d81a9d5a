// Variable selectors (`ARGS|!ARGS:foo|&TX:x|REQUEST_COOKIES:/__utm/|XML:/*`) → the run-time targets of a rule,
// and the key tests they and the `ctl:ruleRemoveTarget*` actions use. Shared by the compiler and the action
// parser so a key means the same wherever it is written.

import { compilePcre } from './regex.ts';
import type { KeyTest, Target, TargetFilter, XmlPath } from './ruleset.ts';
import type { VariableKey, VariableSelector } from './seclang/ast.ts';
import { parseVariables } from './seclang/parser.ts';
import { lookupVariable, type VarValue, type VariableDef } from './variables.ts';

export type Compiled<T> = { ok: true; value: T } | { ok: false; error: string };

const XML_PATHS: readonly XmlPath[] = ['/*', '//@*'];

/**
 * A key test. Names compare without case; regexes are matched case-insensitively, as ModSecurity v3 compiles
 * them (VariableRegex builds its Regex with ignore-case), so `REQUEST_COOKIES:/__utm/` also takes `__UTMA`.
 */
export function compileKeyTest(variable: VariableDef, key: VariableKey): Compiled<KeyTest> {
  if (!variable.keyed) return { ok: false, error: `${variable.name} has no members, so it takes no key` };
  if (variable.name === 'XML') {
    const path = XML_PATHS.find((p) => key.kind === 'name' && p === key.value);
    if (path === undefined) return { ok: false, error: `XML XPath ${keyText(key)} is not supported (only ${XML_PATHS.join(' and ')})` };
    return { ok: true, value: { kind: 'xpath', path } };
  }
  if (key.kind === 'name') return { ok: true, value: { kind: 'name', lower: key.value.toLowerCase() } };
  const literal = literalKeyTest(key.pattern);
  if (literal !== null) return { ok: true, value: { kind: 'regex', source: key.pattern, test: literal } };
  const compiled = compilePcre(key.pattern, { caseless: true, dotAll: true });
  if (!compiled.ok) return { ok: false, error: `key regex /${key.pattern}/ of ${variable.name}: ${compiled.error}` };
  const regex = compiled.regex;
  return { ok: true, value: { kind: 'regex', source: key.pattern, test: (member) => regex.test(member) } };
}

/** `^word`, `word`, and `word_*` (the last byte optional): the key regexes CRS writes, on TX mostly. */
const LITERAL_KEY = /^(\^?)([0-9A-Za-z_-]+?)([0-9A-Za-z_-]\*)?$/;

/**
 * A key regex that is a plain word, anchored or not, as a case-insensitive prefix or substring test: the
 * same answer as the regex, for a fraction of its cost. CRS 920450 tests every TX member against
 * `/^header_name_/` once per request header, so this runs hundreds of times a request.
 */
function literalKeyTest(pattern: string): ((member: string) => boolean) | null {
  const parts = LITERAL_KEY.exec(pattern);
  if (parts === null) return null;
  // A trailing `x*` may match nothing: the word before it is what every match holds.
  const [, anchor, word] = parts;
  const lower = word!.toLowerCase();
  if (anchor === '^') return (member) => member.length >= lower.length && foldedAt(member, lower, 0);
  return (member) => {
    for (let at = 0; at + lower.length <= member.length; at++) if (foldedAt(member, lower, at)) return true;
    return false;
  };
}

/** Whether `member` holds `lower` (ASCII, lower case) at `at`, A–Z folded as PCRE's caseless matching folds them. */
function foldedAt(member: string, lower: string, at: number): boolean {
  for (let i = 0; i < lower.length; i++) {
    const c = member.charCodeAt(at + i);
    if ((c >= 0x41 && c <= 0x5a ? c + 0x20 : c) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** Whether member `value` is picked by `test` (an XPath test is the caller's business: it picks values, not keys). */
export function keySelects(test: KeyTest, value: VarValue): boolean {
  switch (test.kind) {
    case 'name':
      return value.keyLower === test.lower;
    case 'regex':
      return test.test(value.key);
    case 'xpath':
      return value.key === test.path;
  }
}

/**
 * A rule's selector list as targets. Exclusions (`!ARGS:foo`) attach to every selection of their variable,
 * wherever they are written in the list, as in ModSecurity; `!VAR` without a key drops the variable.
 * Problems are returned per selector, and the selectors that compiled are kept.
 */
export function compileTargets(selectors: readonly VariableSelector[]): { targets: Target[]; errors: string[] } {
  const errors: string[] = [];
  const exclusions = new Map<string, KeyTest[]>();
  const dropped = new Set<string>();
  for (const selector of selectors) {
    if (!selector.exclude) continue;
    const variable = lookupVariable(selector.collection);
    if (variable === undefined) {
      errors.push(`unknown variable ${selector.collection}`);
      continue;
    }
    if (selector.key === undefined) {
      dropped.add(variable.name);
      continue;
    }
    const test = compileKeyTest(variable, selector.key);
    if (!test.ok) errors.push(test.error);
    else exclusions.set(variable.name, [...(exclusions.get(variable.name) ?? []), test.value]);
  }
  const targets: Target[] = [];
  for (const selector of selectors) {
    if (selector.exclude) continue;
    const variable = lookupVariable(selector.collection);
    if (variable === undefined) {
      errors.push(`unknown variable ${selector.collection}`);
      continue;
    }
    if (dropped.has(variable.name)) continue;
    let key: KeyTest | null = null;
    if (selector.key !== undefined) {
      const test = compileKeyTest(variable, selector.key);
      if (!test.ok) {
        errors.push(test.error);
        continue;
      }
      key = test.value;
    }
    targets.push({ variable, key, count: selector.count, exclusions: exclusions.get(variable.name) ?? [] });
  }
  return { targets, errors };
}

/** The `VAR` or `VAR:key` of `ctl:ruleRemoveTargetById=942100;ARGS:foo`. */
export function parseTargetFilter(text: string): Compiled<TargetFilter> {
  const parsed = parseVariables(text);
  if (!parsed.ok) return { ok: false, error: parsed.reason };
  const [selector, ...rest] = parsed.value;
  if (selector === undefined || rest.length > 0 || selector.exclude || selector.count) {
    return { ok: false, error: `expected one variable, optionally with a key, not "${text}"` };
  }
  const variable = lookupVariable(selector.collection);
  if (variable === undefined) return { ok: false, error: `unknown variable ${selector.collection}` };
  if (selector.key === undefined) return { ok: true, value: { variable, key: null } };
  const key = compileKeyTest(variable, selector.key);
  return key.ok ? { ok: true, value: { variable, key: key.value } } : key;
}

/** Whether a filter removes `value` of `variable`. */
export function filterRemoves(filter: TargetFilter, variable: VariableDef, value: VarValue): boolean {
  return filter.variable === variable && (filter.key === null || keySelects(filter.key, value));
}

/** Whether a tag or message pattern (compileTextPattern) finds `text`. */
export function textMatches(pattern: KeyTest, text: string): boolean {
  return pattern.kind === 'regex' ? pattern.test(text) : pattern.kind === 'name' && text.toLowerCase() === pattern.lower;
}

/** A pattern matched against tags or messages (SecRuleRemoveByTag, ctl:ruleRemoveByTag …), as a key test. */
export function compileTextPattern(pattern: string): Compiled<KeyTest> {
  const compiled = compilePcre(pattern, { dotAll: true });
  if (!compiled.ok) return { ok: false, error: `pattern /${pattern}/: ${compiled.error}` };
  const regex = compiled.regex;
  return { ok: true, value: { kind: 'regex', source: pattern, test: (text) => regex.test(text) } };
}

function keyText(key: VariableKey): string {
  return key.kind === 'name' ? key.value : `/${key.pattern}/`;
}
