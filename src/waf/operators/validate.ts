// @validateByteRange, @validateUrlEncoding, @validateUtf8Encoding: they match when the input is NOT valid,
// by libmodsecurity's exact rules (src/operators/validate_*.cc).
import { readInteger } from './compare.ts';
import type { OperatorFactory } from './types.ts';

/** Up to this many refused bytes are handed to the engine as required literals. */
const MAX_REFUSED_LITERALS = 8;

/**
 * `9,10,13,32-126`: the bytes allowed; matches when any input byte is outside them. Each comma-separated
 * item is a number or `from-to`, read as std::stoi reads them (so ` 32` and `32x` are 32).
 */
export const validateByteRangeOperator: OperatorFactory = (argument) => {
  const allowed = new Uint8Array(256);
  for (const item of argument.split(',')) {
    const dash = item.indexOf('-');
    const from = byteValue(dash === -1 ? item : item.slice(0, dash));
    const to = dash === -1 ? from : byteValue(item.slice(dash + 1));
    if (from === null || to === null || from > to) {
      return { error: `@validateByteRange: ${JSON.stringify(item)} is not a byte value or range of them (0–255)` };
    }
    allowed.fill(1, from, to + 1);
  }
  const refused: string[] = [];
  for (let c = 0; c < 256; c++) if (allowed[c] === 0) refused.push(String.fromCharCode(c));
  return {
    // A few refused bytes (CRS 920270 refuses NUL alone) are the one clause a match satisfies, so the engine's
    // literal scan answers for the operator; a text being a byte string, no char above 0xFF can match instead.
    literals: refused.length <= MAX_REFUSED_LITERALS ? [refused] : null,
    match(input) {
      for (let i = 0; i < input.length; i++) {
        const c = input.charCodeAt(i);
        if (c > 255 || allowed[c] === 0) return true;
      }
      return false;
    },
  };
};

/** Matches a `%` not followed by two hex digits (also at the very end). Empty input is valid. */
export const validateUrlEncodingOperator: OperatorFactory = () => ({
  match(input) {
    // From `%` to `%` with indexOf (a 2 KiB form body holds a few): a loop over every byte cost 4 µs there.
    for (let i = input.indexOf('%'); i !== -1; i = input.indexOf('%', i + 3)) {
      if (i + 2 >= input.length || !isHex(input.charCodeAt(i + 1)) || !isHex(input.charCodeAt(i + 2))) return true;
    }
    return false;
  },
});

function byteValue(text: string): number | null {
  const value = readInteger(text);
  return typeof value === 'number' && value >= 0 && value <= 255 ? value : null;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);
}

/**
 * Matches invalid UTF-8 (detect_utf8_character): a truncated or malformed sequence, an overlong form, a
 * surrogate, or a lead byte F5–FF. Like libmodsecurity it does not check the U+10FFFF limit of F4 sequences.
 */
export const validateUtf8EncodingOperator: OperatorFactory = () => ({
  match(input) {
    for (let i = 0; i < input.length; ) {
      const length = utf8SequenceLength(input, i);
      if (length <= 0) return true;
      i += length;
    }
    return false;
  },
});

/** The length of the valid sequence at `at`, or 0 when it is invalid. */
function utf8SequenceLength(input: string, at: number): number {
  const lead = input.charCodeAt(at);
  let length: number;
  let value: number;
  if (lead < 0x80) return 1;
  if ((lead & 0xe0) === 0xc0) [length, value] = [2, lead & 0x1f];
  else if ((lead & 0xf0) === 0xe0) [length, value] = [3, lead & 0x0f];
  else if ((lead & 0xf8) === 0xf0 && lead < 0xf5) [length, value] = [4, lead & 0x07];
  else return 0;
  if (at + length > input.length) return 0;
  for (let k = 1; k < length; k++) {
    const next = input.charCodeAt(at + k);
    if ((next & 0xc0) !== 0x80) return 0;
    value = (value << 6) | (next & 0x3f);
  }
  const overlong = value < [0, 0, 0x80, 0x800, 0x10000][length]!;
  return overlong || (value >= 0xd800 && value <= 0xdfff) ? 0 : length;
}
