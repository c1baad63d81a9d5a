// The `t:` transformations (src/waf/transforms/) on generated input: every one of them, on arbitrary byte
// strings of up to a few KB, returns a byte string without throwing; the decoders never grow their input; the
// encoders round-trip; and each fast path (native string methods, "nothing to do" checks) agrees with the
// byte-by-byte algorithm it stands in for.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lookupTransform, TRANSFORMS } from '../../src/waf/transforms/index.ts';
import type { Transform } from '../../src/waf/transforms/types.ts';
import { fcParams } from '../helpers/fc.ts';

const MAX_BYTES = 4096;

const bytes = fc.uint8Array({ maxLength: MAX_BYTES }).map((array) => Buffer.from(array).toString('latin1'));

/** Fragments that reach the escape, comment, path and UTF-8 branches far more often than uniform bytes do. */
const FRAGMENTS = [
  '%', '%u', '%U', '+', 'ff', 'FF', '0', '1', '3', '4', '7', '9', 'a', 'A', 'f', 'g', 'x', 'X', 'u', 'z',
  '&', '&#', '&#x', ';', 'amp', 'lt', 'nbsp', 'QUOT', '\\', '\n', '\r', '\t', ' ', '\x0b', '\xa0', '\0',
  '/', '//', '.', '..', '/*', '*/', '*', '--', '-->', '<!--', '#', '^', '"', "'", ',', '(', '=', '==',
  '\xc3', '\xa9', '\xc0', '\xe2', '\x82', '\xac', '\xed', '\xa0', '\xf0', '\x9f', '\xf5', '\x80', '\xff',
];
const tokens = fc
  .array(fc.constantFrom(...FRAGMENTS), { maxLength: MAX_BYTES / 4 })
  .map((parts) => parts.join(''));

const input = fc.oneof(bytes, tokens);

function isByteString(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0xff) return false;
  return true;
}

function transform(name: string): Transform {
  const found = lookupTransform(name);
  if (!found) throw new Error(`t:${name} is not registered`);
  return found;
}

/** Transformations whose output is never longer than their input. */
const SHRINKING = [
  'urlDecode', 'urlDecodeUni', 'htmlEntityDecode', 'jsDecode', 'cssDecode', 'escapeSeqDecode', 'base64Decode',
  'base64DecodeExt', 'hexDecode', 'sqlHexDecode', 'lowercase', 'uppercase', 'compressWhitespace',
  'removeWhitespace', 'removeNulls', 'replaceNulls', 'trim', 'trimLeft', 'trimRight', 'cmdLine',
  'removeComments', 'removeCommentsChar', 'replaceComments', 'normalizePath', 'normalizePathWin',
  'parityEven7bit', 'parityOdd7bit', 'parityZero7bit',
];

/** ASCII-only case mapping, the C-locale tolower/toupper the fast paths must agree with. */
function shiftAscii(value: string, first: number, delta: number): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    out += String.fromCharCode(c >= first && c < first + 26 ? c + delta : c);
  }
  return out;
}

describe('every transformation', () => {
  it('returns a byte string for any byte string, without throwing', () => {
    fc.assert(
      fc.property(input, (value) => {
        for (const [name, fn] of TRANSFORMS) {
          const output = fn(value);
          expect(typeof output, name).toBe('string');
          expect(isByteString(output), name).toBe(true);
        }
      }),
      fcParams(200),
    );
  });

  it('gives the same result twice (no state survives a call)', () => {
    fc.assert(
      fc.property(input, input, (first, second) => {
        for (const [name, fn] of TRANSFORMS) {
          const expected = fn(first);
          fn(second);
          expect(fn(first), name).toBe(expected);
        }
      }),
      fcParams(100),
    );
  });
});

describe('output size', () => {
  it.each(SHRINKING)('t:%s never grows its input', (name) => {
    const fn = transform(name);
    fc.assert(
      fc.property(input, (value) => {
        expect(fn(value).length).toBeLessThanOrEqual(value.length);
      }),
      fcParams(200),
    );
  });

  it('t:utf8toUnicode, t:urlEncode and t:hexEncode stay within their worst case', () => {
    fc.assert(
      fc.property(input, (value) => {
        expect(transform('utf8toUnicode')(value).length).toBeLessThanOrEqual(value.length * 4);
        expect(transform('urlEncode')(value).length).toBeLessThanOrEqual(value.length * 3);
        expect(transform('hexEncode')(value).length).toBe(value.length * 2);
      }),
      fcParams(200),
    );
  });
});

describe('round trips', () => {
  it('decoders undo their encoders', () => {
    fc.assert(
      fc.property(bytes, (value) => {
        expect(transform('hexDecode')(transform('hexEncode')(value))).toBe(value);
        expect(transform('urlDecode')(transform('urlEncode')(value))).toBe(value);
        expect(transform('urlDecodeUni')(transform('urlEncode')(value))).toBe(value);
        expect(transform('base64Decode')(transform('base64Encode')(value))).toBe(value);
        expect(transform('base64DecodeExt')(transform('base64Encode')(value))).toBe(value);
      }),
      fcParams(200),
    );
  });
});

describe('fast paths agree with the full algorithm', () => {
  it('t:lowercase and t:uppercase change ASCII letters only', () => {
    fc.assert(
      fc.property(input, (value) => {
        expect(transform('lowercase')(value)).toBe(shiftAscii(value, 0x41, 0x20));
        expect(transform('uppercase')(value)).toBe(shiftAscii(value, 0x61, -0x20));
      }),
      fcParams(300),
    );
  });

  it('t:normalizePath, which skips paths it cannot change, agrees with the full algorithm', () => {
    // t:normalizePathWin always runs the full algorithm on input with a backslash, and reads a backslash it
    // converts as a slash. It converts one that starts the path or ends it after a non-slash, so those two
    // placements give the same path both ways (elsewhere ModSecurity may copy a backslash unconverted).
    const path = fc
      .array(fc.constantFrom('a', 'b', '.', '..', '/', '//', '///'), { maxLength: 40 })
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(path, (value) => {
        expect(transform('normalizePath')(`/${value}`)).toBe(transform('normalizePathWin')(`\\${value}`));
        if (!value.endsWith('/')) {
          expect(transform('normalizePath')(`${value}/`)).toBe(transform('normalizePathWin')(`${value}\\`));
        }
      }),
      fcParams(1000),
    );
  });

  it('t:compressWhitespace leaves no whitespace run and t:removeWhitespace no whitespace', () => {
    fc.assert(
      fc.property(input, (value) => {
        expect(transform('compressWhitespace')(value)).not.toMatch(/[\t-\r ]{2}|[\t\n\x0b\f\r]/);
        expect(transform('removeWhitespace')(value)).not.toMatch(/[\t-\r \xa0\xc2]/);
      }),
      fcParams(200),
    );
  });
});
