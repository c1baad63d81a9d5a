// Binary-to-text codecs: t:base64Decode, t:base64DecodeExt, t:base64Encode, t:hexDecode, t:hexEncode and
// t:sqlHexDecode, byte for byte what ModSecurity v3 does (src/utils/base64.cc and the mbedtls decoder it calls,
// src/actions/transformations/hex_decode.cc, hex_encode.cc, sql_hex_decode.cc).
import { byteString, copyPrefix, HEX_DIGIT_CODES, hexByteAt, looseHexByte, outputBuffer } from './bytes.ts';
import type { Transform } from './types.ts';

const EQUALS = 0x3d;
const SPACE = 0x20;
const CR = 0x0d;
const LF = 0x0a;

/** Base64 digit values (RFC 4648 §4), -1 for anything else. */
const BASE64_VALUE = new Int8Array(256).fill(-1);
/** The same plus the URL-safe alphabet (RFC 4648 §5), which ModSecurity's forgiving decoder also reads. */
const FORGIVING_VALUE = new Int8Array(256).fill(-1);
for (const [value, digit] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) {
  BASE64_VALUE[digit.charCodeAt(0)] = value;
  FORGIVING_VALUE[digit.charCodeAt(0)] = value;
}
FORGIVING_VALUE[0x2d /* - */] = 62;
FORGIVING_VALUE[0x5f /* _ */] = 63;

function base64Value(table: Int8Array, code: number): number {
  return code < 256 ? table[code]! : -1;
}

/**
 * Strict base64 as mbedtls_base64_decode reads it (ModSecurity passes it the value up to its first NUL): CR, LF
 * and spaces at line ends are skipped; any other stray byte, a space inside a line, a third `=` or a digit after
 * `=` makes the whole value invalid, and an invalid value decodes to the empty string. A trailing group of fewer
 * than four digits is dropped.
 */
export const base64Decode: Transform = (input) => {
  const nul = input.indexOf('\0');
  const n = nul === -1 ? input.length : nul;
  if (!isStrictBase64(input, n)) return '';
  const out = outputBuffer(n);
  let o = 0;
  let group = 0;
  let digits = 0;
  // mbedtls counts `=` over the whole input; they can only be trailing, so this is the last group's byte count.
  let kept = 3;
  for (let i = 0; i < n; i++) {
    const c = input.charCodeAt(i);
    if (c === CR || c === LF || c === SPACE) continue;
    if (c === EQUALS) kept--;
    group = ((group << 6) | (c === EQUALS ? 0 : base64Value(BASE64_VALUE, c))) & 0xffffff;
    if (++digits === 4) {
      digits = 0;
      if (kept > 0) out[o++] = group >> 16;
      if (kept > 1) out[o++] = (group >> 8) & 0xff;
      if (kept > 2) out[o++] = group & 0xff;
    }
  }
  return byteString(out, o);
};

function isStrictBase64(input: string, n: number): boolean {
  let equals = 0;
  for (let i = 0; i < n; i++) {
    let spaces = false;
    while (i < n && input.charCodeAt(i) === SPACE) {
      i++;
      spaces = true;
    }
    if (i === n) break;
    const c = input.charCodeAt(i);
    if (c === CR && i + 1 < n && input.charCodeAt(i + 1) === LF) continue;
    if (c === LF) continue;
    if (spaces) return false;
    if (c === EQUALS) {
      if (++equals > 2) return false;
    } else if (base64Value(BASE64_VALUE, c) < 0 || equals !== 0) {
      return false;
    }
  }
  return true;
}

/**
 * ModSecurity's forgiving decoder (Base64::decode_forgiven_engine): both alphabets, every other byte skipped,
 * `=` ignored except that a group cut after one digit makes the result empty. It compares the last value it
 * read with `=` (61), so a value ending in the digit `9` (also 61) after a one-digit group is empty too.
 */
export const base64DecodeExt: Transform = (input) => {
  const n = input.length;
  const out = outputBuffer(n);
  let o = 0;
  let digits = 0;
  let last = -1;
  for (let i = 0; i < n; i++) {
    const c = input.charCodeAt(i);
    if (c === EQUALS) {
      if (input.charCodeAt(i + 1) !== EQUALS && digits % 4 === 1) return '';
      last = EQUALS;
      continue;
    }
    const value = base64Value(FORGIVING_VALUE, c);
    last = value;
    if (value < 0) continue;
    switch (digits % 4) {
      case 0:
        out[o] = value << 2;
        break;
      case 1:
        out[o] = out[o]! | (value >> 4);
        out[++o] = (value & 0x0f) << 4;
        break;
      case 2:
        out[o] = out[o]! | (value >> 2);
        out[++o] = (value & 0x03) << 6;
        break;
      default:
        out[o] = out[o]! | value;
        o++;
    }
    digits++;
  }
  if (last === EQUALS && digits % 4 === 1) return '';
  return byteString(out, o);
};

/** Standard base64 with padding. */
export const base64Encode: Transform = (input) => Buffer.from(input, 'latin1').toString('base64');

/**
 * Each pair of chars as one byte, an odd last char dropped. Like ModSecurity, pairs are not checked: non-hex
 * chars go through the same arithmetic as digits.
 */
export const hexDecode: Transform = (input) => {
  const pairs = input.length >> 1;
  const out = outputBuffer(pairs);
  for (let k = 0; k < pairs; k++) out[k] = looseHexByte(input.charCodeAt(2 * k), input.charCodeAt(2 * k + 1));
  return byteString(out, pairs);
};

/** Each byte as two lower-case hex digits. */
export const hexEncode: Transform = (input) => {
  const n = input.length;
  const out = outputBuffer(n * 2);
  for (let i = 0; i < n; i++) {
    const c = input.charCodeAt(i);
    out[2 * i] = HEX_DIGIT_CODES[(c >> 4) & 0x0f]!;
    out[2 * i + 1] = HEX_DIGIT_CODES[c & 0x0f]!;
  }
  return byteString(out, n * 2);
};

/**
 * SQL hex literals: `0x` followed by hex digit pairs becomes those bytes (an odd last digit stays); `0x` without
 * a pair after it stays as it is.
 */
export const sqlHexDecode: Transform = (input) => {
  let literal = nextHexLiteral(input, 0);
  if (literal === -1) return input;
  const n = input.length;
  const out = outputBuffer(n);
  let o = copyPrefix(out, input, literal);
  let i = literal;
  while (literal !== -1) {
    while (i < literal) out[o++] = input.charCodeAt(i++);
    i = literal + 2;
    for (let byte = hexByteAt(input, i); byte >= 0; byte = hexByteAt(input, i)) {
      out[o++] = byte;
      i += 2;
    }
    literal = nextHexLiteral(input, i);
  }
  while (i < n) out[o++] = input.charCodeAt(i++);
  return byteString(out, o);
};

/** Where the next `0x` or `0X` followed by a hex pair starts at or after `from`, or -1. */
function nextHexLiteral(input: string, from: number): number {
  let at = input.indexOf('0', from);
  while (at !== -1 && ((input.charCodeAt(at + 1) | 0x20) !== 0x78 || hexByteAt(input, at + 2) < 0)) at = input.indexOf('0', at + 1);
  return at;
}
