// @rx: a PCRE match, translated and bounded by ../regex.ts. With `capture`, TX.0 is the whole match and
// TX.1–TX.9 the groups, as libmodsecurity stores them (src/operators/rx.cc).
import { type BoundedRegex, compilePcre, type PcreFlags } from '../regex.ts';
import type { Captures, CompiledOperator, OperatorFactory } from './types.ts';

/** How libmodsecurity compiles @rx (src/utils/regex.cc): PCRE_DOTALL | PCRE_MULTILINE, case-sensitive. */
export const RX_FLAGS: Readonly<PcreFlags> = Object.freeze({ dotAll: true, multiline: true });

/** TX.0 … TX.9. */
const MAX_CAPTURES = 10;

/**
 * An operator whose inputs longer than `maxInputLength` are not evaluated (`match` is false): a pattern V8's
 * linear engine cannot run (see ../regex.ts). The engine can test the length first and apply its budget
 * policy instead; Infinity for every other pattern.
 */
export interface LengthBoundedOperator extends CompiledOperator {
  readonly maxInputLength: number;
}

/** libmodsecurity: an empty pattern matches everything and captures nothing. */
const EMPTY_PATTERN: LengthBoundedOperator = { maxInputLength: Infinity, match: () => true };

/**
 * `^.*$` with DOTALL matches every input whole: CRS captures header names (920450, once per header) and the
 * User-Agent (901318) with it, and a regex run per value is what it would otherwise cost.
 */
const WHOLE_INPUT: LengthBoundedOperator = {
  maxInputLength: Infinity,
  match(input, captures) {
    if (captures !== null) {
      captures.values[0] = input;
      captures.count = 1;
    }
    return true;
  },
};

export const rxOperator: OperatorFactory = (argument) => {
  if (argument === '') return EMPTY_PATTERN;
  if (argument === '^.*$') return WHOLE_INPUT;
  const compiled = compilePcre(argument, RX_FLAGS);
  if (!compiled.ok) return { error: `invalid regular expression /${argument}/: ${compiled.error}` };
  return regexOperator(compiled.regex);
};

function regexOperator(regex: BoundedRegex): LengthBoundedOperator {
  const groups = regex.groups;
  const captured = Math.min(groups.length, MAX_CAPTURES);
  const match = (input: string, captures: Captures | null, checked: boolean): boolean => {
    if (captures === null) return regex.test(input, checked);
    const found = regex.exec(input, checked);
    if (found === null) return false;
    // Up to the last group that took part; one skipped before it is written empty (ModSecurity leaves its
    // old TX value in place, which no CRS rule relies on).
    let count = 0;
    for (let i = 0; i < captured; i++) {
      const value = found[groups[i]!];
      captures.values[i] = value ?? '';
      if (value !== undefined) count = i + 1;
    }
    captures.count = count;
    return true;
  };
  return {
    maxInputLength: regex.maxInputLength,
    literals: regex.literals,
    match: (input, captures) => match(input, captures, false),
    matchChecked: (input, captures) => match(input, captures, true),
  };
}
