// Macro expansion (`%{tx.anomaly_score}`, `%{MATCHED_VAR}`, `%{REQUEST_HEADERS.host}`, `%{rule.id}`) for
// action values (msg, logdata, setvar, redirect) and operator arguments. Text is split once at compile time
// into literal runs and variable references, so expanding costs one lookup per reference.

import { lookupVariable, type VariableDef } from './variables.ts';

export interface MacroRef {
  readonly variable: VariableDef;
  /** The member after the dot, lower-cased (lookups ignore case); null for `%{MATCHED_VAR}`. */
  readonly key: string | null;
}

export interface Macro {
  /** The text as written, for logs and SecRuleRemoveByMsg. */
  readonly source: string;
  /** Literal runs and references in order; a macro-free text is one literal. */
  readonly parts: readonly (string | MacroRef)[];
  /** The text itself when it holds no reference: expansion is then free. */
  readonly constant: string | null;
}

/** What expansion reads: the first value of a variable, or of one member of it ('' when there is none). */
export interface MacroScope {
  macroValue(ref: MacroRef): string;
}

/**
 * `%{NAME}` or `%{NAME.member}`, as ModSecurity's run-time string parser accepts: a variable name of letters,
 * digits and `_`, then optionally a dot and a member name running to the closing brace.
 */
const REFERENCE = /%\{([A-Za-z_][A-Za-z0-9_]*)(?:\.([^}]*))?\}/g;

export type MacroResult = { ok: true; macro: Macro } | { ok: false; error: string };

export function compileMacro(text: string): MacroResult {
  const parts: (string | MacroRef)[] = [];
  let last = 0;
  for (const found of text.matchAll(REFERENCE)) {
    const variable = lookupVariable(found[1]!);
    if (variable === undefined) return { ok: false, error: `unknown variable ${found[1]} in macro ${found[0]}` };
    const member = found[2];
    if (found.index > last) parts.push(text.slice(last, found.index));
    parts.push({ variable, key: member === undefined || member === '' ? null : member.toLowerCase() });
    last = found.index + found[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  const constant = parts.every((part) => typeof part === 'string') ? text : null;
  return { ok: true, macro: { source: text, parts, constant } };
}

/** A macro for text known to hold no reference (generated values, tests). */
export function literalMacro(text: string): Macro {
  return { source: text, parts: [text], constant: text };
}

export function expandMacro(macro: Macro, scope: MacroScope): string {
  if (macro.constant !== null) return macro.constant;
  let out = '';
  for (const part of macro.parts) out += typeof part === 'string' ? part : scope.macroValue(part);
  return out;
}
