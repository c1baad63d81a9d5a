// Byte-level helpers shared by the transformations in this folder: the reusable output buffer they rebuild a
// value into, and the C character classes (`isxdigit`, `isspace` in the C locale) ModSecurity's code tests with.

/** Outputs up to this size reuse one buffer; a larger one is allocated for that call only and then dropped. */
const SCRATCH_KEEP_BYTES = 1024 * 1024;

let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * A buffer of at least `size` bytes to build one result in. Transformations are synchronous and never call each
 * other, so one buffer per thread serves them all: a rebuilt value costs one string allocation, not one per byte.
 */
export function outputBuffer(size: number): Buffer {
  if (size <= scratch.length) return scratch;
  const buffer = Buffer.allocUnsafe(size);
  if (size <= SCRATCH_KEEP_BYTES) scratch = buffer;
  return buffer;
}

/** The first `length` bytes of `buffer` as a byte string. */
export function byteString(buffer: Buffer, length: number): string {
  return buffer.toString('latin1', 0, length);
}

/** Copies the first `length` chars of the byte string `input` into `buffer`; returns `length`. */
export function copyPrefix(buffer: Buffer, input: string, length: number): number {
  return length === 0 ? 0 : buffer.write(input, 0, length, 'latin1');
}

/** Whether a byte string is all ASCII: its UTF-8 length is its length (a native count, ~2x faster than a regex). */
export function isAscii(input: string): boolean {
  return Buffer.byteLength(input, 'utf8') === input.length;
}

/** Value of a hex digit (0-9, a-f, A-F), -1 for any other byte. */
const HEX_VALUE = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX_VALUE[0x30 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX_VALUE[0x41 + c] = 10 + c;
  HEX_VALUE[0x61 + c] = 10 + c;
}

/** Value of the hex digit `code`, or -1 (also for codes outside a byte string's range, and for the NaN past its end). */
export function hexValue(code: number): number {
  return code < 256 ? HEX_VALUE[code]! : -1;
}

/**
 * ModSecurity's `x2c` (src/utils/string.h), which does not check its input: each char maps to
 * `(c >= 'A' ? (c & 0xdf) - 'A' + 10 : c - '0')` and the pair is folded into one byte with wrap-around.
 * t:hexDecode relies on this for non-hex input ("0z" decodes to 0x23).
 */
export function looseHexByte(high: number, low: number): number {
  return ((looseNibble(high) << 4) + looseNibble(low)) & 0xff;
}

function looseNibble(code: number): number {
  return code >= 0x41 ? (code & 0xdf) - 0x41 + 10 : code - 0x30;
}

/** The byte of the two hex digits at `at` and `at + 1`, or -1 unless both are hex digits (or are past the end). */
export function hexByteAt(input: string, at: number): number {
  const high = hexValue(input.charCodeAt(at));
  const low = hexValue(input.charCodeAt(at + 1));
  return high < 0 || low < 0 ? -1 : (high << 4) | low;
}

/**
 * The byte ModSecurity keeps of a 16-bit escape given its hex digits h1 h2 and its low byte: the low byte, plus
 * 0x20 when the code point is full-width ASCII (U+FF01–U+FF5E), so `%uFF1C` is `<`. Shared by t:urlDecodeUni,
 * t:jsDecode and t:cssDecode.
 */
export function fullWidthToAscii(h1: number, h2: number, low: number): number {
  return h1 === 15 && h2 === 15 && low > 0x00 && low < 0x5f ? low + 0x20 : low;
}

/**
 * The byte of the 16-bit escape whose four hex digits start at `at` (`%uHHHH`, `\uHHHH`), full-width ASCII
 * folded, or -1 unless all four are hex digits.
 */
export function unicodeEscapeByteAt(input: string, at: number): number {
  const h1 = hexValue(input.charCodeAt(at));
  const h2 = hexValue(input.charCodeAt(at + 1));
  const low = hexByteAt(input, at + 2);
  return h1 < 0 || h2 < 0 || low < 0 ? -1 : fullWidthToAscii(h1, h2, low);
}

/** C `isspace` in the C locale: space, \t, \n, \v, \f, \r (never 0xA0, which libc only adds in Latin-1 locales). */
export function isCSpace(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d);
}

/** C `isalnum` in the C locale. */
export function isAsciiAlnum(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || ((code | 0x20) >= 0x61 && (code | 0x20) <= 0x7a);
}

/** Char codes of the lower-case hex digits, the way ModSecurity's `c2x` and `%x` print them. */
export const HEX_DIGIT_CODES = Uint8Array.from('0123456789abcdef', (digit) => digit.charCodeAt(0));
