// Character-level text transformations: case, whitespace, NUL bytes, t:cmdLine and the 7-bit parity ones, as
// ModSecurity v3 does them (src/actions/transformations/*.cc). ModSecurity runs in the C locale, so "letter" and
// "whitespace" mean ASCII letters and C `isspace` (space, \t, \n, \v, \f, \r). Native string methods do the work
// where their result provably matches, because on this hot path they beat a JS loop by several times.
import { byteString, isAscii, isCSpace, outputBuffer } from './bytes.ts';
import type { Transform } from './types.ts';

/** Latin-1 capitals String#toLowerCase folds and C tolower() does not. */
const LATIN1_UPPER = /[\xc0-\xd6\xd8-\xde]/;
/** Latin-1 small letters String#toUpperCase changes (some into chars outside a byte string) and toupper() does not. */
const LATIN1_LOWER = /[\xb5\xdf-\xf6\xf8-\xff]/;

/** ASCII A–Z to a–z; every other byte unchanged. */
export const lowercase: Transform = (input) => {
  const lowered = input.toLowerCase();
  if (lowered === input) return input;
  return isAscii(input) || !LATIN1_UPPER.test(input) ? lowered : shiftAsciiLetters(input, 0x41, 0x20);
};

/** ASCII a–z to A–Z; every other byte unchanged. */
export const uppercase: Transform = (input) => {
  if (!isAscii(input) && LATIN1_LOWER.test(input)) return shiftAsciiLetters(input, 0x61, -0x20);
  const raised = input.toUpperCase();
  return raised === input ? input : raised;
};

/** Adds `delta` to every ASCII letter from `first` to `first + 25`. */
function shiftAsciiLetters(input: string, first: number, delta: number): string {
  const n = input.length;
  const out = outputBuffer(n);
  for (let i = 0; i < n; i++) {
    const c = input.charCodeAt(i);
    out[i] = c - first >= 0 && c - first < 26 ? c + delta : c;
  }
  return byteString(out, n);
}

const COMPRESSIBLE_WHITESPACE = /[\t-\r]| {2}/;
const WHITESPACE_RUN = /[\t-\r ]+/g;

/** Each run of whitespace to one space. */
export const compressWhitespace: Transform = (input) =>
  COMPRESSIBLE_WHITESPACE.test(input) ? input.replace(WHITESPACE_RUN, ' ') : input;

const REMOVABLE = /[\t-\r \xa0\xc2]/;
const REMOVABLE_RUN = /[\t-\r \xa0\xc2]+/g;

/**
 * Removes whitespace and the bytes of a UTF-8 non-breaking space (0xC2, 0xA0), wherever they are, as the
 * libmodsecurity 3.0.9 that Debian ships does (remove_whitespace.cc: `nonBreakingSpaces` 0xA0 and
 * `nonBreakingSpaces2` 0xC2), so a `file.php<NBSP>` upload name is still caught. Later v3 code means to remove
 * 0xA0 alone but compares a signed char with 160, so it removes neither.
 */
export const removeWhitespace: Transform = (input) =>
  REMOVABLE.test(input) ? input.replace(REMOVABLE_RUN, '') : input;

/** Removes NUL bytes. */
export const removeNulls: Transform = (input) => (input.indexOf('\0') === -1 ? input : input.replaceAll('\0', ''));

/** NUL bytes to spaces. */
export const replaceNulls: Transform = (input) => (input.indexOf('\0') === -1 ? input : input.replaceAll('\0', ' '));

/** Removes leading whitespace. */
export const trimLeft: Transform = (input) => input.slice(firstNonSpace(input));

/** Removes trailing whitespace. */
export const trimRight: Transform = (input) => input.slice(0, lastNonSpace(input) + 1);

/** Removes leading and trailing whitespace. */
export const trim: Transform = (input) => {
  const end = lastNonSpace(input) + 1;
  return input.slice(end === 0 ? 0 : firstNonSpace(input), end);
};

function firstNonSpace(input: string): number {
  let i = 0;
  while (i < input.length && isCSpace(input.charCodeAt(i))) i++;
  return i;
}

function lastNonSpace(input: string): number {
  let i = input.length - 1;
  while (i >= 0 && isCSpace(input.charCodeAt(i))) i--;
  return i;
}

const CMD_COPY = 0;
const CMD_DELETE = 1;
const CMD_SEPARATOR = 2;
const CMD_PATH_OR_CALL = 3;
const CMD_UPPER = 4;
/** What t:cmdLine does with each byte: one table lookup per byte costs less than a ten-way switch. */
const CMD_CLASS = new Uint8Array(256);
for (const c of '\\"\'^') CMD_CLASS[c.charCodeAt(0)] = CMD_DELETE;
for (const c of ' ,;\t\r\n') CMD_CLASS[c.charCodeAt(0)] = CMD_SEPARATOR;
for (const c of '/(') CMD_CLASS[c.charCodeAt(0)] = CMD_PATH_OR_CALL;
for (let c = 0x41; c <= 0x5a; c++) CMD_CLASS[c] = CMD_UPPER;

/**
 * Normalises a shell command line the way ModSecurity's cmd_line.cc does, so `c^at /e"t"c/pa''sswd` and
 * `CAT  /etc/passwd` look alike: deletes `\ " ' ^`; turns each run of space, tab, CR, LF, `,` and `;` into one
 * space; drops that space before `/` or `(`; lower-cases ASCII letters.
 */
export const cmdLine: Transform = (input) => {
  const n = input.length;
  const out = outputBuffer(n);
  let o = 0;
  let afterSpace = false;
  // Most values come out as they went in (a lower-case word, a number): then the input itself is the answer,
  // and no string is built.
  let changed = false;
  for (let i = 0; i < n; i++) {
    const c = input.charCodeAt(i);
    const kind = c < 256 ? CMD_CLASS[c]! : CMD_COPY;
    if (kind === CMD_COPY) {
      out[o++] = c;
      afterSpace = false;
    } else if (kind === CMD_UPPER) {
      out[o++] = c + 0x20;
      afterSpace = false;
      changed = true;
    } else if (kind === CMD_SEPARATOR) {
      if (c !== 0x20 || afterSpace) changed = true;
      if (!afterSpace) out[o++] = 0x20;
      afterSpace = true;
    } else if (kind === CMD_PATH_OR_CALL) {
      if (afterSpace) {
        o--;
        changed = true;
      }
      out[o++] = c;
      afterSpace = false;
    } else {
      // CMD_DELETE writes nothing and, as in ModSecurity, leaves `afterSpace` as it was.
      changed = true;
    }
  }
  return changed ? byteString(out, o) : input;
};

/** Sets or clears bit 7 of each byte so that the byte has even parity (ModSecurity counts all 8 bits). */
export const parityEven7bit: Transform = (input) => setParityBit(input, 0);

/** Sets or clears bit 7 of each byte so that the byte has odd parity. */
export const parityOdd7bit: Transform = (input) => setParityBit(input, 1);

/** Clears bit 7 of each byte. */
export const parityZero7bit: Transform = (input) => {
  const n = input.length;
  const out = outputBuffer(n);
  for (let i = 0; i < n; i++) out[i] = input.charCodeAt(i) & 0x7f;
  return byteString(out, n);
};

/** 0x6996 is a 16-entry parity table: bit k is the parity of the nibble k. */
function setParityBit(input: string, odd: number): string {
  const n = input.length;
  const out = outputBuffer(n);
  for (let i = 0; i < n; i++) {
    const c = input.charCodeAt(i);
    const parity = (0x6996 >> ((c ^ (c >> 4)) & 0x0f)) & 1;
    out[i] = parity !== odd ? c | 0x80 : c & 0x7f;
  }
  return byteString(out, n);
}
