// Path normalisation for t:normalizePath / t:normalisePath and their Windows variants: removes `./` segments,
// resolves `../` against the segment before it, and collapses repeated slashes, following ModSecurity v3's
// normalize_path_inplace (src/actions/transformations/normalise_path.cc) step for step, because rules such as
// CRS 930xxx match on exactly the strings it produces (a relative path keeps `..` it cannot resolve; a trailing
// slash survives only if the input had one).
import { byteString, outputBuffer } from './bytes.ts';
import type { Transform } from './types.ts';

const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const DOT = 0x2e;

/**
 * What the algorithm below can change: a slash run, or a segment-ending `.` that starts the path or follows a `/`
 * or another `.` (it treats the end of "ab.." like ".."). A path with none of these comes out as it went in.
 */
const NEEDS_NORMALISING = /\/\/|(?:^|[./])\.(?:\/|$)/;
/** The same, plus any backslash. */
const NEEDS_NORMALISING_WIN = /\\|\/\/|(?:^|[./])\.(?:\/|$)/;

export const normalizePath: Transform = (input) =>
  NEEDS_NORMALISING.test(input) ? normalise(input, false) : input;

/** normalizePath after turning every `\` into `/`. */
export const normalizePathWin: Transform = (input) =>
  NEEDS_NORMALISING_WIN.test(input) ? normalise(input, true) : input;

function normalise(input: string, windows: boolean): string {
  const n = input.length;
  const path = outputBuffer(n);
  path.write(input, 0, n, 'latin1');
  return byteString(path, normaliseInPlace(path, n, windows));
}

function isSeparator(code: number | undefined, windows: boolean): boolean {
  return code === SLASH || (windows && code === BACKSLASH);
}

/**
 * Normalises the first `n` bytes of `path` in place and returns the new length. `src` reads ahead of `dst`,
 * which writes; a segment is examined when `src` reaches its last byte. Labelled blocks stand in for the C
 * code's gotos so that each branch can be checked against it.
 */
function normaliseInPlace(path: Buffer, n: number, windows: boolean): number {
  if (n === 0) return 0;
  const end = n - 1;
  const relative = !isSeparator(path[0], windows);
  const trailing = isSeparator(path[end], windows);
  let src = 0;
  let dst = 0;
  let hitRoot = false;
  let done = false;
  while (!done && src <= end && dst <= end) {
    if (windows) {
      // As in ModSecurity, only the current and next byte are converted here; the slash-skipping loop below
      // can therefore copy a backslash from a run of three or more.
      if (path[src] === BACKSLASH) path[src] = SLASH;
      if (src < end && path[src + 1] === BACKSLASH) path[src + 1] = SLASH;
    }
    copy: {
      if (src === end) done = true;
      else if (path[src + 1] !== SLASH) break copy; // not the last byte of a segment
      if (src !== end && path[src] === SLASH) break copy; // empty segment: the slash run is collapsed below
      if (path[src] === DOT) {
        if (dst > 0 && path[dst - 1] === DOT) {
          // A back-reference "..".
          if (relative && (hitRoot || dst - 2 <= 0)) {
            hitRoot = true;
            break copy; // nothing to remove it against: keep it
          }
          dst -= 3;
          while (dst > 0 && path[dst] !== SLASH) dst--;
          if (dst <= 0) {
            hitRoot = true;
            dst = 0;
            if (!relative && src === end) dst++;
          }
          if (done) continue;
          src++;
        } else if (dst === 0) {
          // A leading "./" of a relative path.
          if (done) continue;
          src++;
        } else if (path[dst - 1] === SLASH) {
          // A self-reference "/.".
          if (done) continue;
          dst--;
          src++;
        }
      } else if (dst > 0) {
        hitRoot = false;
      }
    }
    if (path[src] === SLASH) {
      while (src < end && isSeparator(path[src + 1], windows)) src++;
      if (relative && dst === 0) {
        // A relative path does not start with the slash left over from a removed segment.
        src++;
        continue;
      }
    }
    path[dst++] = path[src++]!;
  }
  if (!trailing && dst > 0 && path[dst - 1] === SLASH) dst--;
  return dst;
}
