// String operators, case-sensitive like libmodsecurity's (src/operators/*.cc): none captures.
import type { OperatorFactory } from './types.ts';

/** @streq: the input is the argument. */
export const streqOperator: OperatorFactory = (argument) => ({ match: (input) => input === argument });

/** @contains and @strmatch: the argument occurs in the input (an empty argument always does). */
export const containsOperator: OperatorFactory = (argument) => ({ match: (input) => input.includes(argument) });

/** @beginsWith. */
export const beginsWithOperator: OperatorFactory = (argument) => ({ match: (input) => input.startsWith(argument) });

/** @endsWith. */
export const endsWithOperator: OperatorFactory = (argument) => ({ match: (input) => input.endsWith(argument) });

/** @within: the INPUT occurs in the argument (an empty input always does). */
export const withinOperator: OperatorFactory = (argument) => ({ match: (input) => argument.includes(input) });

/**
 * @containsWord: the argument occurs with no ASCII letter just before or after it (contains_word.cc: digits,
 * `_` and all other bytes count as word boundaries). An empty argument matches; an empty input does not.
 */
export const containsWordOperator: OperatorFactory = (argument) => ({
  match(input) {
    if (argument === '') return true;
    for (let at = input.indexOf(argument); at !== -1; at = input.indexOf(argument, at + 1)) {
      if (!isLetterAt(input, at - 1) && !isLetterAt(input, at + argument.length)) return true;
    }
    return false;
  },
});

function isLetterAt(text: string, index: number): boolean {
  const c = index >= 0 && index < text.length ? text.charCodeAt(index) | 0x20 : 0;
  return c >= 0x61 && c <= 0x7a;
}
