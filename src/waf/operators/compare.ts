// @eq @ge @gt @le @lt: integer comparisons of the input (left) with the argument (right). libmodsecurity reads
// @eq's two sides with std::stoi (src/operators/eq.cc) and the others' with atoll (gt.cc …): leading white
// space, a sign, decimal digits, anything after ignored; no digits reads as 0. They differ past the ends of
// their range: stoi throws there, which eq.cc turns into 0, while atoll (glibc strtoll) saturates.
import type { CompiledOperator, OperatorFactory } from './types.ts';

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** A decimal integer as C reads one; a bigint only beyond what a double holds exactly. */
type Integer = number | bigint;

/** strtoll's reading of `text`: the integer its leading part spells, or null when it has no digits. */
export function readInteger(text: string): Integer | null {
  let i = 0;
  while (i < text.length && isCSpace(text.charCodeAt(i))) i++;
  const negative = text[i] === '-';
  if (negative || text[i] === '+') i++;
  const start = i;
  let value = 0;
  while (i < text.length && isDigit(text.charCodeAt(i))) value = value * 10 + (text.charCodeAt(i++) - 48);
  if (i === start) return null;
  // Every partial value up to 2^53 was exact; past it the digits are read again, exactly.
  if (value <= Number.MAX_SAFE_INTEGER) return negative ? -value : value;
  const digits = BigInt(text.slice(start, i));
  return negative ? -digits : digits;
}

/** atoll: 0 without digits, clamped to the 64-bit range as glibc's strtoll clamps. */
export function atoll(text: string): Integer {
  const value = readInteger(text) ?? 0;
  if (typeof value === 'number') return value;
  return value < INT64_MIN ? INT64_MIN : value > INT64_MAX ? INT64_MAX : value;
}

/** std::stoi as eq.cc uses it: 0 without digits and 0 outside the 32-bit range (the exception's fallback). */
export function stoi(text: string): number {
  const value = readInteger(text);
  if (value === null || typeof value === 'bigint' || value < INT32_MIN || value > INT32_MAX) return 0;
  return value;
}

const isCSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);
const isDigit = (c: number): boolean => c >= 48 && c <= 57;

function comparison(test: (input: Integer, argument: Integer) => boolean): OperatorFactory {
  return (argument) => {
    const right = atoll(argument);
    return { match: (input) => test(atoll(input), right) } satisfies CompiledOperator;
  };
}

export const eqOperator: OperatorFactory = (argument) => {
  const right = stoi(argument);
  return { match: (input) => stoi(input) === right };
};
export const geOperator = comparison((input, argument) => input >= argument);
export const gtOperator = comparison((input, argument) => input > argument);
export const leOperator = comparison((input, argument) => input <= argument);
export const ltOperator = comparison((input, argument) => input < argument);
