// Comment removal for SQL, C, shell and HTML payloads: t:replaceComments, t:removeComments and
// t:removeCommentsChar, as ModSecurity v3 does them (src/actions/transformations/replace_comments.cc,
// remove_comments.cc, remove_comments_char.cc).
import { becomesByte, becomesNothing, markerTable, NOT_A_SEQUENCE, rewriteSequences } from './rebuild.ts';
import type { Transform } from './types.ts';

const SLASH = 0x2f;
const STAR = 0x2a;
const DASH = 0x2d;
const HASH = 0x23;

/** Each C comment `/* … *\/` to one space; an unterminated one runs to the end and also becomes one space. */
export const replaceComments: Transform = (input) => rewriteSequences(input, input.indexOf('/*'), SLASH_MARKER, cCommentAt);

const SLASH_MARKER = markerTable('/');

function cCommentAt(input: string, at: number): number {
  if (input.charCodeAt(at + 1) !== STAR) return NOT_A_SEQUENCE;
  const close = input.indexOf('*/', at + 2);
  return becomesByte(close === -1 ? input.length : close + 2, 0x20);
}

// `<!--` is listed although `--` finds it too, so that the search stops at its `<`.
const COMMENT_MARK = /\/\*|<!--|--|#/;
const COMMENT_MARKERS = markerTable('/<-#');

/**
 * Removes C comments `/* … *\/` and HTML comments `<!-- … -->`, and cuts the value at a `--` or `#` line comment
 * outside them; an unterminated block comment leaves one space. Older ModSecurity v3 code also copied the byte
 * after each closing mark without examining it, so two adjacent comments left the second one's opening `/`
 * behind; secrules-language-tests now require two adjacent empty comments between SELECT and UNION to give
 * "SELECTUNION", and SecBeat does that, which also stops that byte hiding a comment.
 */
export const removeComments: Transform = (input) =>
  rewriteSequences(input, input.search(COMMENT_MARK), COMMENT_MARKERS, commentAt);

function commentAt(input: string, at: number): number {
  const c = input.charCodeAt(at);
  const next = input.charCodeAt(at + 1);
  if (c === HASH || (c === DASH && next === DASH)) return becomesNothing(input.length);
  if (c === SLASH && next === STAR) return blockCommentEnd(input, at + 2);
  if (c === 0x3c && input.startsWith('!--', at + 1)) return blockCommentEnd(input, at + 4);
  return NOT_A_SEQUENCE;
}

/**
 * The block comment whose body starts at `from`: ModSecurity ends either kind at the first `*\/` or `-->`,
 * whichever opened it; an unterminated one becomes one space. One scan for both marks (not an indexOf for
 * each) keeps many comments linear: the scan stops at the first close.
 */
function blockCommentEnd(input: string, from: number): number {
  const n = input.length;
  for (let j = from; j < n; j++) {
    const c = input.charCodeAt(j);
    if (c === STAR && input.charCodeAt(j + 1) === SLASH) return becomesNothing(j + 2);
    if (c === DASH && input.startsWith('->', j + 1)) return becomesNothing(j + 3);
  }
  return becomesByte(n, 0x20);
}

const COMMENT_CHARS = /\/\*|\*\/|<!--|--|#/;
const COMMENT_CHAR_MARKERS = markerTable('/*<-#');

/** Deletes the comment marks themselves (`/*`, `*\/`, `<!--`, `-->`, `--`, `#`) and keeps the text between. */
export const removeCommentsChar: Transform = (input) =>
  // ModSecurity erases a mark and looks again at the same position, never behind it: a single forward pass
  // that skips marks gives the same result.
  rewriteSequences(input, input.search(COMMENT_CHARS), COMMENT_CHAR_MARKERS, commentMarkAt);

function commentMarkAt(input: string, at: number): number {
  const c = input.charCodeAt(at);
  const next = input.charCodeAt(at + 1);
  if ((c === SLASH && next === STAR) || (c === STAR && next === SLASH)) return becomesNothing(at + 2);
  if (c === 0x3c && input.startsWith('!--', at + 1)) return becomesNothing(at + 4);
  if (c === DASH && next === DASH) return becomesNothing(input.charCodeAt(at + 2) === 0x3e ? at + 3 : at + 2);
  if (c === HASH) return becomesNothing(at + 1);
  return NOT_A_SEQUENCE;
}
