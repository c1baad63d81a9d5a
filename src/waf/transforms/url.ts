// URL-style transformations: t:urlDecode, t:urlDecodeUni, t:urlEncode and t:utf8toUnicode, byte for byte what
// ModSecurity v3 does (src/utils/decode.cc urldecode_nonstrict_inplace, src/actions/transformations/
// url_decode_uni.cc, url_encode.cc, utf8_to_unicode.cc).
import { byteString, copyPrefix, HEX_DIGIT_CODES, hexByteAt, isAscii, outputBuffer, unicodeEscapeByteAt } from './bytes.ts';
import { becomesByte, markerTable, NOT_A_SEQUENCE, rewriteSequences, type SequenceDecoder } from './rebuild.ts';
import type { Transform } from './types.ts';

const PERCENT = 0x25;
const PLUS = 0x2b;

/** `%XX` → byte and `+` → space; a `%` not followed by two hex digits stays as it is. */
export const urlDecode: Transform = (input) => percentDecode(input, percentEscapeAt);

/**
 * t:urlDecode plus IIS's `%uXXXX`: the low byte of the code point, except full-width ASCII (U+FF01–U+FF5E),
 * which maps to the ASCII char it stands for. `%u` without four hex digits stays as it is.
 * ModSecurity consults a SecUnicodeMapFile table first when one is configured; SecBeat has no such table.
 */
export const urlDecodeUni: Transform = (input) => percentDecode(input, percentOrUnicodeEscapeAt);

const URL_MARKERS = markerTable('%+');

function percentDecode(input: string, decodeAt: SequenceDecoder): string {
  const percent = input.indexOf('%');
  if (percent === -1) return input.indexOf('+') === -1 ? input : input.replaceAll('+', ' ');
  const plus = input.indexOf('+');
  return rewriteSequences(input, plus === -1 || percent < plus ? percent : plus, URL_MARKERS, decodeAt);
}

/** `+` is a space; `%XX` a byte; a `%` without two hex digits after it is kept. */
function percentEscapeAt(input: string, at: number): number {
  if (input.charCodeAt(at) === PLUS) return becomesByte(at + 1, 0x20);
  const byte = hexByteAt(input, at + 1);
  return byte < 0 ? NOT_A_SEQUENCE : becomesByte(at + 3, byte);
}

function percentOrUnicodeEscapeAt(input: string, at: number): number {
  if ((input.charCodeAt(at + 1) | 0x20) !== 0x75 /* u or U */ || input.charCodeAt(at) === PLUS) return percentEscapeAt(input, at);
  const byte = unicodeEscapeByteAt(input, at + 2);
  // ModSecurity copies the "%u" of a short or invalid escape and goes on after it: keeping the `%` has the same
  // effect, since the `u` after it is copied next and starts nothing.
  return byte < 0 ? NOT_A_SEQUENCE : becomesByte(at + 6, byte);
}

/** Bytes ModSecurity's url_enc keeps as they are: `*`, digits and ASCII letters. */
const URL_SAFE = /^[*0-9A-Za-z]*$/;

/** Every byte but `*`, digits and letters as `%xx` (lower-case hex); space as `+`. */
export const urlEncode: Transform = (input) => {
  if (URL_SAFE.test(input)) return input;
  const n = input.length;
  const out = outputBuffer(n * 3);
  let o = 0;
  for (let i = 0; i < n; i++) {
    const c = input.charCodeAt(i);
    if (c === 0x20) {
      out[o++] = PLUS;
    } else if (c === 0x2a || (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a)) {
      out[o++] = c;
    } else {
      out[o++] = PERCENT;
      out[o++] = HEX_DIGIT_CODES[c >> 4]!;
      out[o++] = HEX_DIGIT_CODES[c & 0x0f]!;
    }
  }
  return byteString(out, o);
};

const NON_ASCII = /[\x80-\xff]/;
/** Smallest code point each sequence length may encode; below it the sequence is overlong. */
const MIN_CODE_POINT = [0, 0, 0x80, 0x800, 0x10000] as const;

/**
 * Each well-formed UTF-8 sequence as `%uXXXX` (lower-case hex, at least four digits), the way ModSecurity's
 * utf8_to_unicode.cc writes it, so t:urlDecodeUni can then fold full-width and other escapes. Its quirks are
 * kept because rules are tuned to them: a lead byte whose continuation bytes are missing or wrong is dropped;
 * stray continuation bytes and 0xF8–0xFF are copied; after an overlong or surrogate sequence the lead byte is
 * appended raw; a 0xF5–0xF7 lead byte is written raw before its escape; NUL bytes are dropped (its ASCII branch
 * overwrites them with the next byte).
 */
export const utf8toUnicode: Transform = (input) => {
  const nul = input.indexOf('\0');
  if (isAscii(input)) return nul === -1 ? input : input.replaceAll('\0', '');
  const nonAscii = input.search(NON_ASCII);
  const start = nul === -1 || nonAscii < nul ? nonAscii : nul;
  const n = input.length;
  // Worst case is 7 output bytes per 2 input bytes (escape + lead byte of an overlong pair).
  const out = outputBuffer(n * 4);
  let o = copyPrefix(out, input, start);
  let i = start;
  while (i < n) {
    const c = input.charCodeAt(i);
    if (c < 0x80) {
      if (c !== 0) out[o++] = c;
      i++;
      continue;
    }
    let length = 0;
    let code = 0;
    if ((c & 0xe0) === 0xc0) {
      if (isContinuation(input, i + 1)) {
        length = 2;
        code = ((c & 0x1f) << 6) | (input.charCodeAt(i + 1) & 0x3f);
      }
    } else if ((c & 0xf0) === 0xe0) {
      if (isContinuation(input, i + 1) && isContinuation(input, i + 2)) {
        length = 3;
        code = ((c & 0x0f) << 12) | ((input.charCodeAt(i + 1) & 0x3f) << 6) | (input.charCodeAt(i + 2) & 0x3f);
      }
    } else if ((c & 0xf8) === 0xf0) {
      if (c >= 0xf5) out[o++] = c;
      if (isContinuation(input, i + 1) && isContinuation(input, i + 2) && isContinuation(input, i + 3)) {
        length = 4;
        code =
          ((c & 0x07) << 18) |
          ((input.charCodeAt(i + 1) & 0x3f) << 12) |
          ((input.charCodeAt(i + 2) & 0x3f) << 6) |
          (input.charCodeAt(i + 3) & 0x3f);
      }
    } else {
      out[o++] = c;
      i++;
      continue;
    }
    if (length === 0) {
      i++;
      continue;
    }
    o = writeUnicodeEscape(out, o, code);
    if (code >= 0xd800 && code <= 0xdfff) out[o++] = c;
    if (code < MIN_CODE_POINT[length]!) out[o++] = c;
    i += length;
  }
  return byteString(out, o);
};

function isContinuation(input: string, at: number): boolean {
  return at < input.length && (input.charCodeAt(at) & 0xc0) === 0x80;
}

/** `%u` and `code` in lower-case hex, zero-padded to four digits (codes above 0xFFFF take five or six). */
function writeUnicodeEscape(out: Buffer, at: number, code: number): number {
  let o = at;
  out[o++] = PERCENT;
  out[o++] = 0x75;
  let shift = code > 0xfffff ? 20 : code > 0xffff ? 16 : 12;
  for (; shift >= 0; shift -= 4) out[o++] = HEX_DIGIT_CODES[(code >> shift) & 0x0f]!;
  return o;
}
