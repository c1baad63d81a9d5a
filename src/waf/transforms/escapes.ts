// Decoders of language escape syntaxes: t:htmlEntityDecode, t:jsDecode, t:cssDecode and t:escapeSeqDecode, byte
// for byte what ModSecurity v3 does (src/actions/transformations/html_entity_decode.cc, js_decode.cc,
// css_decode.cc, escape_seq_decode.cc). Every escape decodes to one byte: the low byte of its value.
import { fullWidthToAscii, hexByteAt, hexValue, isAsciiAlnum, isCSpace, unicodeEscapeByteAt } from './bytes.ts';
import { becomesByte, becomesNothing, markerTable, NOT_A_SEQUENCE, rewriteSequences } from './rebuild.ts';
import type { Transform } from './types.ts';

const AMPERSAND = 0x26;
const HASH = 0x23;
const SEMICOLON = 0x3b;
const NBSP = 0xa0;

/**
 * `&#DDD;`, `&#xHH;` and the five named entities ModSecurity knows (quot, amp, lt, gt, nbsp — any case), with or
 * without the `;`. Other `&` sequences stay as they are.
 */
export const htmlEntityDecode: Transform = (input) => {
  // Most `&`s in benign values start no entity (query strings, prose): find one that does before building anything.
  let start = input.indexOf('&');
  while (start !== -1 && entityAt(input, start) === NOT_A_SEQUENCE) start = input.indexOf('&', start + 1);
  // Not an entity: copying the `&` alone and rescanning what follows gives ModSecurity's result, since none of the
  // chars it copies in one go (`#`, `x`, digits, letters) can start an entity.
  return rewriteSequences(input, start, AMPERSAND_MARKER, entityAt);
};

const AMPERSAND_MARKER = markerTable('&');

/** The entity whose `&` is at `at`; it ends after its `;` when it has one. */
function entityAt(input: string, at: number): number {
  const n = input.length;
  const from = at + 1;
  let j = from;
  if (input.charCodeAt(j) === HASH) {
    j++;
    if (j >= n) return NOT_A_SEQUENCE;
    const hex = (input.charCodeAt(j) | 0x20) === 0x78; /* x or X */
    if (hex) {
      j++;
      if (j >= n) return NOT_A_SEQUENCE;
    }
    const digits = j;
    while (j < n && (hex ? hexValue(input.charCodeAt(j)) >= 0 : isDigit(input.charCodeAt(j)))) j++;
    if (j === digits) return NOT_A_SEQUENCE;
    return becomesByte(afterSemicolon(input, j), numericEntityByte(input, digits, j, hex));
  }
  while (j < n && isAsciiAlnum(input.charCodeAt(j))) j++;
  const byte = namedEntityByte(input, from, j);
  return byte < 0 ? NOT_A_SEQUENCE : becomesByte(afterSemicolon(input, j), byte);
}

function afterSemicolon(input: string, at: number): number {
  return input.charCodeAt(at) === SEMICOLON ? at + 1 : at;
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** LONG_MAX in decimal, the bound where strtol stops and returns LONG_MAX (low byte 0xFF). */
const LONG_MAX_DECIMAL = '9223372036854775807';

/**
 * The byte `(unsigned char)strtol(digits, NULL, base)` gives for the digits in [from, to): the value's low byte,
 * or 0xFF once the value passes LONG_MAX (strtol saturates), found without parsing arbitrarily long numbers.
 */
function numericEntityByte(input: string, from: number, to: number, hex: boolean): number {
  let first = from;
  while (first < to - 1 && input.charCodeAt(first) === 0x30) first++;
  const digits = to - first;
  if (hex) {
    if (digits > 16 || (digits === 16 && hexValue(input.charCodeAt(first)) >= 8)) return 0xff;
    const low = hexValue(input.charCodeAt(to - 1));
    return digits === 1 ? low : (hexValue(input.charCodeAt(to - 2)) << 4) | low;
  }
  if (digits > LONG_MAX_DECIMAL.length) return 0xff;
  if (digits === LONG_MAX_DECIMAL.length && input.slice(first, to) > LONG_MAX_DECIMAL) return 0xff;
  let byte = 0;
  for (let k = first; k < to; k++) byte = (byte * 10 + input.charCodeAt(k) - 0x30) & 0xff;
  return byte;
}

function namedEntityByte(input: string, from: number, to: number): number {
  if (to - from < 2 || to - from > 4) return -1;
  switch (input.slice(from, to).toLowerCase()) {
    case 'quot':
      return 0x22;
    case 'amp':
      return AMPERSAND;
    case 'lt':
      return 0x3c;
    case 'gt':
      return 0x3e;
    case 'nbsp':
      return NBSP;
    default:
      return -1;
  }
}

function isOctalDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x37;
}

/** Number of octal digits (at most 3) starting at `from`. */
function octalRun(input: string, from: number): number {
  let j = 0;
  while (j < 3 && isOctalDigit(input.charCodeAt(from + j))) j++;
  return j;
}

function octalValue(input: string, from: number, digits: number): number {
  let value = 0;
  for (let k = from; k < from + digits; k++) value = value * 8 + input.charCodeAt(k) - 0x30;
  return value;
}

/** The C escapes \a \b \f \n \r \t \v, or -1. */
function controlEscape(code: number): number {
  switch (code) {
    case 0x61:
      return 0x07;
    case 0x62:
      return 0x08;
    case 0x66:
      return 0x0c;
    case 0x6e:
      return 0x0a;
    case 0x72:
      return 0x0d;
    case 0x74:
      return 0x09;
    case 0x76:
      return 0x0b;
    default:
      return -1;
  }
}

/**
 * JavaScript escapes: `\uHHHH` (low byte, full-width ASCII folded like t:urlDecodeUni), `\xHH`, octal `\OOO`
 * (two digits only when three would pass 0377), `\a \b \f \n \r \t \v`, and `\C` → C for any other char.
 * A malformed `\u` or `\x` loses only its backslash; a trailing backslash stays.
 */
export const jsDecode: Transform = (input) => rewriteSequences(input, input.indexOf('\\'), BACKSLASH_MARKER, jsEscapeAt);

const BACKSLASH_MARKER = markerTable('\\');

function jsEscapeAt(input: string, at: number): number {
  if (at + 1 >= input.length) return NOT_A_SEQUENCE;
  const next = input.charCodeAt(at + 1);
  if (next === 0x75 /* u */) {
    const byte = unicodeEscapeByteAt(input, at + 2);
    if (byte >= 0) return becomesByte(at + 6, byte);
  }
  if (next === 0x78 /* x */) {
    const byte = hexByteAt(input, at + 2);
    if (byte >= 0) return becomesByte(at + 4, byte);
  }
  if (isOctalDigit(next)) {
    let digits = octalRun(input, at + 1);
    if (digits === 3 && next > 0x33) digits = 2;
    return becomesByte(at + 1 + digits, octalValue(input, at + 1, digits));
  }
  const control = controlEscape(next);
  return becomesByte(at + 2, control === -1 ? next : control);
}

/**
 * CSS 2 escapes: a backslash and 1–6 hex digits is one byte (the last two digits; full-width ASCII folded when
 * the value is U+FF01–U+FF5E), eating one whitespace after it; backslash-newline is removed; a backslash before
 * any other char is removed; a trailing backslash is removed.
 */
export const cssDecode: Transform = (input) => rewriteSequences(input, input.indexOf('\\'), BACKSLASH_MARKER, cssEscapeAt);

function cssEscapeAt(input: string, at: number): number {
  const n = input.length;
  const from = at + 1;
  if (from >= n) return becomesNothing(n);
  let digits = 0;
  while (digits < 6 && from + digits < n && hexValue(input.charCodeAt(from + digits)) >= 0) digits++;
  if (digits === 0) {
    const next = input.charCodeAt(from);
    return next === 0x0a ? becomesNothing(from + 1) : becomesByte(from + 1, next);
  }
  const end = from + digits < n && isCSpace(input.charCodeAt(from + digits)) ? from + digits + 1 : from + digits;
  return becomesByte(end, cssEscapeByte(input, from, digits));
}

/** The byte css_decode.cc makes of `digits` hex digits at `from`. */
function cssEscapeByte(input: string, from: number, digits: number): number {
  const last = hexValue(input.charCodeAt(from + digits - 1));
  if (digits === 1) return last;
  const byte = (hexValue(input.charCodeAt(from + digits - 2)) << 4) | last;
  // Only a value that can be U+FF01–U+FF5E gets the full-width check: four digits, or five/six with leading zeros.
  const zeros = digits - 4;
  if (zeros < 0) return byte;
  for (let k = 0; k < zeros; k++) if (input.charCodeAt(from + k) !== 0x30) return byte;
  return fullWidthToAscii(
    hexValue(input.charCodeAt(from + digits - 4)),
    hexValue(input.charCodeAt(from + digits - 3)),
    byte,
  );
}

/**
 * ANSI C escapes: `\a \b \f \n \r \t \v \\ \? \' \"`, `\xHH`, octal `\O` to `\OOO` (low byte of the value).
 * Any other escape, including a malformed `\x`, loses its backslash; a trailing backslash stays.
 */
export const escapeSeqDecode: Transform = (input) =>
  rewriteSequences(input, input.indexOf('\\'), BACKSLASH_MARKER, cEscapeAt);

function cEscapeAt(input: string, at: number): number {
  if (at + 1 >= input.length) return NOT_A_SEQUENCE;
  const next = input.charCodeAt(at + 1);
  const control = controlEscape(next);
  if (control !== -1) return becomesByte(at + 2, control);
  const hex = (next | 0x20) === 0x78 /* x or X */ ? hexByteAt(input, at + 2) : -1;
  if (hex >= 0) return becomesByte(at + 4, hex);
  if (isOctalDigit(next)) {
    const digits = octalRun(input, at + 1);
    return becomesByte(at + 1 + digits, octalValue(input, at + 1, digits) & 0xff);
  }
  // \\ \? \' \" and every unrecognised escape: the char after the backslash.
  return becomesByte(at + 2, next);
}
