// Maps a key path ("server.worker_threads") back to the line and column where a TOML file sets it, and
// suggests near-miss key names. Used by load.ts for issue positions: smol-toml reports none for keys.
// Only files that already parsed reach the locator, so it reads headers and `key =` lines, not full TOML.

export interface KeyPosition {
  line: number;
  column: number;
}

/** First position of every table header and key path in a file, keyed by the JSON of the path's parts. */
export type KeyIndex = ReadonlyMap<string, KeyPosition>;

const BARE_KEY = /[A-Za-z0-9_-]/;
const MAX_PREFIX_DEPTH = 4;

const ESCAPES: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', e: '\x1b', '"': '"', '\\': '\\' };

/** Decodes one escape of a basic string at `start` (the backslash), as TOML 1.0/1.1 define them. */
function readEscape(text: string, start: number): { char: string; end: number } {
  const kind = text[start + 1] ?? '';
  const hexLength = kind === 'u' ? 4 : kind === 'U' ? 8 : kind === 'x' ? 2 : 0;
  if (hexLength > 0) {
    const code = Number.parseInt(text.slice(start + 2, start + 2 + hexLength), 16);
    const char = Number.isInteger(code) && code >= 0 && code <= 0x10ffff ? String.fromCodePoint(code) : '';
    return { char, end: start + 2 + hexLength };
  }
  return { char: ESCAPES[kind] ?? kind, end: start + 2 };
}

/** Reads a dotted key starting at `i`: bare, "basic" and 'literal' parts; null when the text is not a key. */
function readKey(text: string, start: number): { parts: string[]; end: number } | null {
  const parts: string[] = [];
  let i = start;
  for (;;) {
    while (text[i] === ' ' || text[i] === '\t') i++;
    const c = text[i];
    if (c === '"' || c === "'") {
      let part = '';
      let j = i + 1;
      while (j < text.length && text[j] !== c) {
        if (c === '"' && text[j] === '\\') {
          const escape = readEscape(text, j);
          part += escape.char;
          j = escape.end;
        } else {
          part += text[j];
          j++;
        }
      }
      if (j >= text.length) return null;
      parts.push(part);
      i = j + 1;
    } else {
      let j = i;
      while (j < text.length && BARE_KEY.test(text[j]!)) j++;
      if (j === i) return null;
      parts.push(text.slice(i, j));
      i = j;
    }
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (text[i] !== '.') return { parts, end: i };
    i++;
  }
}

/** Number of unclosed multi-line string delimiters on a line (odd = a multi-line string stays open). */
function countDelimiters(line: string, delimiter: string): number {
  let n = 0;
  for (let i = line.indexOf(delimiter); i >= 0; i = line.indexOf(delimiter, i + 3)) n++;
  return n;
}

/** One pass over the text; O(size). */
export function indexKeyLines(text: string): KeyIndex {
  const index = new Map<string, KeyPosition>();
  const record = (parts: readonly string[], line: number, column: number): void => {
    const add = (key: string): void => {
      if (!index.has(key)) index.set(key, { line, column });
    };
    // `[a.b]` and `a.b = 1` also define `a`. Schema issue paths are at most section.key.item deep, so
    // short prefixes suffice and a hostile 100k-part header costs O(length), not O(length²).
    for (let depth = 1; depth < Math.min(parts.length, MAX_PREFIX_DEPTH + 1); depth++) add(JSON.stringify(parts.slice(0, depth)));
    add(JSON.stringify(parts));
  };
  let table: string[] = [];
  let openString: string | null = null;
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    if (openString !== null) {
      if (countDelimiters(line, openString) % 2 === 1) openString = null;
      continue;
    }
    const indent = line.length - line.trimStart().length;
    if (line[indent] === '[') {
      const double = line[indent + 1] === '[';
      const key = readKey(line, indent + (double ? 2 : 1));
      if (key && line[key.end] === ']') {
        table = key.parts;
        record(table, n + 1, indent + 1);
      }
      continue;
    }
    const key = readKey(line, indent);
    if (!key || line[key.end] !== '=') continue;
    record([...table, ...key.parts], n + 1, indent + 1);
    const value = line.slice(key.end + 1);
    for (const delimiter of ['"""', "'''"]) {
      if (countDelimiters(value, delimiter) % 2 === 1) openString = delimiter;
    }
  }
  return index;
}

/**
 * Where `path` is set: the key itself, else its nearest ancestor (the inline table or array holding it,
 * or its table header) so that "required when enabled" points at the section. Null when nothing matches.
 */
export function locateKey(index: KeyIndex, path: readonly (string | number)[]): KeyPosition | null {
  for (let depth = path.length; depth > 0; depth--) {
    const found = index.get(JSON.stringify(path.slice(0, depth).map(String)));
    if (found) return found;
  }
  return null;
}

/** Levenshtein distance, giving up (returning limit + 1) once the length gap alone exceeds the limit. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * The closest known key within edit distance 2 (case-insensitive), for "did you mean …?". Short names need
 * a closer match (at most half their length), or "a" would suggest "waf".
 */
export function suggestKey(name: string, known: readonly string[]): string | null {
  const lower = name.toLowerCase();
  let best: string | null = null;
  let bestDistance = Math.min(2, Math.floor(name.length / 2)) + 1;
  for (const candidate of known) {
    const d = editDistance(lower, candidate, 2);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}
