// The table of `t:` transformations, for the rule compiler: it resolves each `t:name` once, at compile time,
// with lookupTransform. Names are matched case-insensitively, as ModSecurity's SecLang lexer does (CRS spells
// both `t:base64Decode` and `t:base64decode`), and both spellings of normalise/normalize are accepted.
import { base64Decode, base64DecodeExt, base64Encode, hexDecode, hexEncode, sqlHexDecode } from './codecs.ts';
import { removeComments, removeCommentsChar, replaceComments } from './comments.ts';
import { length, md5, sha1 } from './digest.ts';
import { cssDecode, escapeSeqDecode, htmlEntityDecode, jsDecode } from './escapes.ts';
import { normalizePath, normalizePathWin } from './path.ts';
import {
  cmdLine,
  compressWhitespace,
  lowercase,
  parityEven7bit,
  parityOdd7bit,
  parityZero7bit,
  removeNulls,
  removeWhitespace,
  replaceNulls,
  trim,
  trimLeft,
  trimRight,
  uppercase,
} from './text.ts';
import type { Transform } from './types.ts';
import { urlDecode, urlDecodeUni, urlEncode, utf8toUnicode } from './url.ts';

/**
 * `t:none` is not a transformation but an instruction to the compiler: drop the transformations inherited so
 * far (from SecDefaultAction or earlier in the action list). It is therefore absent from TRANSFORMS.
 */
export const TRANSFORM_NONE = 'none';

/** Every transformation by its ModSecurity name, lower-cased. */
export const TRANSFORMS: ReadonlyMap<string, Transform> = new Map(
  Object.entries({
    base64Decode,
    base64DecodeExt,
    base64Encode,
    cmdLine,
    compressWhitespace,
    cssDecode,
    escapeSeqDecode,
    hexDecode,
    hexEncode,
    htmlEntityDecode,
    jsDecode,
    length,
    lowercase,
    md5,
    normalisePath: normalizePath,
    normalisePathWin: normalizePathWin,
    normalizePath,
    normalizePathWin,
    parityEven7bit,
    parityOdd7bit,
    parityZero7bit,
    removeComments,
    removeCommentsChar,
    removeNulls,
    removeWhitespace,
    replaceComments,
    replaceNulls,
    sha1,
    sqlHexDecode,
    trim,
    trimLeft,
    trimRight,
    uppercase,
    urlDecode,
    urlDecodeUni,
    urlEncode,
    utf8toUnicode,
  }).map(([name, transform]) => [name.toLowerCase(), transform]),
);

/** The transformation named `name` (any case), or undefined for `none` and unknown names. */
export function lookupTransform(name: string): Transform | undefined {
  return TRANSFORMS.get(name.toLowerCase());
}
