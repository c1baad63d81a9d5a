// SecLang's line and word structure, for ./parser.ts: physical lines joined into directives, comments dropped,
// and a directive split into words with their quotes removed. Everything here is one left-to-right pass with
// no backtracking, so any text, however hostile, costs time linear in its length.

/** One directive's text after line continuations are joined, and the 1-based line it starts on. */
export interface LogicalLine {
  text: string;
  line: number;
}

export type Words = { ok: true; words: string[] } | { ok: false; reason: string };

const BACKSLASH = 0x5c;

/** Spaces, tabs and the other ASCII blanks but the newline separate words; CR among them, so CRLF files read as LF ones. */
export function isBlank(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0d || code === 0x0b || code === 0x0c;
}

/**
 * The directives of a configuration text. A line whose last non-blank character is a backslash continues on
 * the next one: the backslash (and blanks after it) go, the next line is appended as written. Comments are
 * logical lines whose first non-blank character is `#`, so a commented-out rule written as `#SecRule … \`
 * swallows its continuation lines: Apache httpd's config reader does so for every comment, ModSecurity v3's
 * lexer for commented-out SecRule and SecAction lines (seclang-scanner.ll, the COMMENT state).
 */
export function logicalLines(text: string): LogicalLine[] {
  const physical = withoutByteOrderMark(text).split('\n');
  const lines: LogicalLine[] = [];
  let pending = '';
  let pendingHasText = false;
  let start = 0;
  for (let i = 0; i < physical.length; i++) {
    const raw = physical[i]!;
    let end = raw.length;
    while (end > 0 && isBlank(raw.charCodeAt(end - 1))) end--;
    const continued = end > 0 && raw.charCodeAt(end - 1) === BACKSLASH;
    const content = raw.slice(0, continued ? end - 1 : end);
    // A directive starts on its first line with text, whatever blank continuation lines come before it.
    if (!pendingHasText) start = i + 1;
    pending += content;
    pendingHasText ||= hasText(content);
    if (continued) continue;
    if (pendingHasText) pushDirective(lines, pending, start);
    pending = '';
    pendingHasText = false;
  }
  if (pendingHasText) pushDirective(lines, pending, start);
  return lines;
}

/**
 * Apache httpd skips a UTF-8 byte order mark opening a config file (Windows editors write one); it comes as
 * one character when the file was decoded as UTF-8, as three when read byte for byte.
 */
function withoutByteOrderMark(text: string): string {
  if (text.startsWith('\ufeff')) return text.slice(1);
  if (text.startsWith('\xef\xbb\xbf')) return text.slice(3);
  return text;
}

function hasText(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (!isBlank(text.charCodeAt(i))) return true;
  return false;
}

function pushDirective(lines: LogicalLine[], text: string, line: number): void {
  let at = 0;
  while (isBlank(text.charCodeAt(at))) at++;
  if (text[at] === '#') return;
  lines.push({ text: text.slice(at), line });
}

/**
 * Reads the quoted string whose opening quote (`"` or `'`) is at `open`. A backslash before the quote
 * character or before a backslash stands for that character (Apache httpd's `ap_getword_conf`, which
 * ModSecurity 2 used and the CRS 3.3 regression suite was written against: CRS 920460's `[^\\\\]\\\\` means
 * "a backslash after a non-backslash" only so; libmodsecurity 3 keeps both backslashes, its known "double
 * escape" bug, owasp-modsecurity/ModSecurity#2148). Every other backslash stays as written, so a regular
 * expression's `\d` reaches the operator unchanged. Null when the string is not closed.
 */
export function readQuoted(text: string, open: number): { value: string; next: number } | null {
  const quote = text.charCodeAt(open);
  let value = '';
  let from = open + 1;
  for (let i = open + 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === BACKSLASH) {
      const following = text.charCodeAt(i + 1);
      if (following === quote) {
        value += text.slice(from, i);
        from = i + 1;
        i++;
      } else if (following === BACKSLASH) {
        value += text.slice(from, i + 1);
        from = i + 2;
        i++;
      }
    } else if (code === quote) {
      return { value: value + text.slice(from, i), next: i + 1 };
    }
  }
  return null;
}

/**
 * A directive's words: runs of non-blank characters, or strings in double or single quotes (Apache httpd's
 * `ap_getword_conf`, which ModSecurity v2 used; v3 accepts the same files). A quote inside an unquoted word is
 * an ordinary character; a closing quote must be followed by a blank or the end of the line.
 */
export function splitWords(line: string): Words {
  const words: string[] = [];
  let i = 0;
  for (;;) {
    while (i < line.length && isBlank(line.charCodeAt(i))) i++;
    if (i === line.length) return { ok: true, words };
    const first = line[i];
    if (first === '"' || first === "'") {
      const quoted = readQuoted(line, i);
      if (quoted === null) return { ok: false, reason: `unterminated ${first}-quoted argument starting ${excerpt(line, i)}` };
      if (quoted.next < line.length && !isBlank(line.charCodeAt(quoted.next))) {
        return { ok: false, reason: `unexpected text after a closing quote: ${excerpt(line, quoted.next)}` };
      }
      words.push(quoted.value);
      i = quoted.next;
    } else {
      const start = i;
      while (i < line.length && !isBlank(line.charCodeAt(i))) i++;
      words.push(line.slice(start, i));
    }
  }
}

const EXCERPT_CHARS = 40;

/** A short quotable view of `text` from `at`, for error messages that must stay small whatever the input. */
export function excerpt(text: string, at = 0): string {
  const rest = text.slice(at, at + EXCERPT_CHARS + 1);
  return JSON.stringify(rest.length > EXCERPT_CHARS ? `${rest.slice(0, EXCERPT_CHARS)}…` : rest);
}
