// The few CPython behaviours that CRS's own test tool, ftw (Python 3, coreruleset/ftw 1.2.x: ruleset.py and
// http.py), leans on when it turns a YAML stage into bytes, redone so ./request.ts sends what ftw sent.
// Strings here are Python `str`s: sequences of code points, held as JS strings.

/** `str(value)` for the scalar types a YAML 1.1 loader yields in header names and values. */
export function pythonStr(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (value === null) return 'None';
  // Floats print as Python's repr (`1.0`, `1e+16`), which JS does not reproduce; integers print the same.
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return null;
}

/** `len(s)`: code points, not UTF-16 units (ftw's automatic Content-Length is `len(data)`). */
export function pythonLen(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** `urllib.parse.unquote(s) == s`: whether `s` holds no `%XX` escape for unquote to decode. */
export function hasNoPercentEscape(s: string): boolean {
  return !/%[0-9A-Fa-f]{2}/.test(s);
}

/**
 * `urllib.parse.parse_qsl(s)` (Python ≥ 3.9.2 defaults: `&` only, blank values dropped) for a string that
 * `hasNoPercentEscape` (so unquoting reduces to `+` → space, which is all ftw's callers ever see).
 */
export function parseQslUnescaped(s: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const field of s.split('&')) {
    const eq = field.indexOf('=');
    // No `=`, or an empty value: dropped, as keep_blank_values=False does.
    if (eq === -1 || eq === field.length - 1) continue;
    pairs.push([field.slice(0, eq).replaceAll('+', ' '), field.slice(eq + 1).replaceAll('+', ' ')]);
  }
  return pairs;
}

/** `urllib.parse.urlencode(pairs)`: each side through `quote_plus` (UTF-8, only `A-Za-z0-9_.-~` kept). */
export function urlencode(pairs: ReadonlyArray<readonly [string, string]>): string {
  return pairs.map(([k, v]) => `${quotePlus(k)}=${quotePlus(v)}`).join('&');
}

function quotePlus(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9_.~-]/.test(c)) out += c;
    else if (byte === 0x20) out += '+';
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\',
  "'": "'",
  '"': '"',
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

/**
 * `bytes.decode('unicode_escape')`: each byte is a Latin-1 character except backslash escapes, which are
 * resolved as in a Python string literal. Returns an error message where CPython raises UnicodeDecodeError.
 */
export function decodeUnicodeEscape(bytes: Uint8Array): { ok: true; text: string } | { ok: false; error: string } {
  const src = Buffer.from(bytes).toString('latin1');
  let out = '';
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c !== '\\') {
      out += c;
      i++;
      continue;
    }
    const e = src[i + 1];
    if (e === undefined) return { ok: false, error: '\\ at end of string' };
    i += 2;
    if (e === '\n') continue;
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) {
      out += simple;
    } else if (e >= '0' && e <= '7') {
      const digits = /^[0-7]{1,2}/.exec(src.slice(i))?.[0] ?? '';
      out += String.fromCodePoint(parseInt(e + digits, 8));
      i += digits.length;
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const width = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const hex = src.slice(i, i + width);
      if (!new RegExp(`^[0-9A-Fa-f]{${width}}$`).test(hex)) return { ok: false, error: `truncated \\${e} escape` };
      const code = parseInt(hex, 16);
      if (code > 0x10ffff) return { ok: false, error: 'illegal Unicode character' };
      out += String.fromCodePoint(code);
      i += width;
    } else if (e === 'N') {
      // \N{NAME} needs the Unicode name table; no CRS test uses it, so it is reported rather than guessed.
      return { ok: false, error: '\\N{...} escapes are not reproduced' };
    } else {
      // An unknown escape stays as written, backslash included.
      out += `\\${e}`;
    }
  }
  return { ok: true, text: out };
}

/**
 * A Python `re` pattern as a JS RegExp, for `log_contains` and friends (ftw uses `re.compile(x).search`).
 * Covers the syntax that differs and that such patterns use: named groups and leading inline flags.
 * Returns an error message for a pattern JS cannot run the same way.
 */
export function pythonRegex(source: string): RegExp | { error: string } {
  let flags = '';
  let body = source;
  const inline = /^\(\?([aiLmsux]+)\)/.exec(body);
  if (inline !== null) {
    for (const f of inline[1]!) {
      if (f === 'i' || f === 'm' || f === 's') flags += f;
      else if (f !== 'u') return { error: `inline flag (?${f}) is not reproduced` };
    }
    body = body.slice(inline[0].length);
  }
  if (/\\[AZ]/.test(body)) return { error: 'anchors \\A and \\Z are not reproduced' };
  body = body.replaceAll('(?P<', '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>');
  try {
    return new RegExp(body, flags);
  } catch (error) {
    return { error: (error as Error).message };
  }
}
