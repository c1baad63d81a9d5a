// libinjection's SQL-injection detector in TypeScript, behaving as the copy bundled with ModSecurity v3.0.9
// (libinjection 3.9.2, others/libinjection/src/libinjection_sqli.c) so @detectSQLi agrees with what the CRS
// regression tests were recorded against: tokenize the input as SQL, fold the tokens into at most five, and
// look their type string ("fingerprint") up in a table of known injections, trying the input as-is and as if it
// continued a single- or double-quoted string. Called by the @detectSQLi operator (../operators/libinjection.ts).
//
// Where the C reads a token value as a NUL-terminated string, or a byte as a signed char, this file says so: the
// results depend on it. Work is linear in the input (every parser consumes what it reads, folding keeps at most
// eight tokens), so there is no length cap, as ModSecurity has none.
import { SQLI_CHAR_CLASSES, SQLI_FINGERPRINTS, SQLI_KEYWORDS, type SqliCharClass, type SqliKeywordType } from './sqli-data.ts';

/** libinjection's token types; '' is "no token" (C's CHAR_NULL). */
export type SqliTokenType =
  | SqliKeywordType
  | 's' // string
  | 'c' // comment
  | 'X' // evil: unparsable, always injection
  | '?' // unknown character
  | '\\' // backslash
  | '(' | ')' | '{' | '}' | '.' | ',' | ':' | ';'
  | '';

/** Tokenizer flags (libinjection_sqli.h): how a leading quote is assumed, and which comment syntax applies. */
export const SQLI_FLAGS = {
  QuoteNone: 1,
  QuoteSingle: 2,
  QuoteDouble: 4,
  /** `--x` is a comment, `#` an operator. */
  SqlAnsi: 8,
  /** `--x` is two minus signs, `#` starts a comment. */
  SqlMysql: 16,
} as const;

/** The contexts libinjection_is_sqli tries, in its order; the quoted ones only when the input has that quote. */
const AS_IS_ANSI = SQLI_FLAGS.QuoteNone | SQLI_FLAGS.SqlAnsi;
const AS_IS_MYSQL = SQLI_FLAGS.QuoteNone | SQLI_FLAGS.SqlMysql;
const SINGLE_ANSI = SQLI_FLAGS.QuoteSingle | SQLI_FLAGS.SqlAnsi;
const SINGLE_MYSQL = SQLI_FLAGS.QuoteSingle | SQLI_FLAGS.SqlMysql;
const DOUBLE_MYSQL = SQLI_FLAGS.QuoteDouble | SQLI_FLAGS.SqlMysql;

/** Token values are C char[32]: at most 31 bytes are kept, and `len` is what was kept. */
const TOKEN_VALUE_MAX = 31;
const MAX_TOKENS = 5;
/** Folding may look at a sixth and seventh token; the C array has eight. */
const TOKEN_SLOTS = 8;

/**
 * `s` upper-cased for comparison with the keyword table and the other all-ASCII names, as libinjection's
 * cstrcasecmp compares (ASCII letters only). String#toUpperCase changes no other ASCII byte, and turns no Latin-1
 * byte into ASCII except 'ß' (into "SS", changing the length): a string with a 'ß' equals no name, so it gets
 * '', which is none.
 */
function upperKey(s: string): string {
  const upper = s.toUpperCase();
  return upper.length === s.length ? upper : '';
}

/**
 * The table by its keys in lower case (they are ASCII with no lower-case letter): a word with no upper-case
 * letter, as most words of benign text, is looked up as it is, without building its upper-case copy.
 */
const KEYWORDS_BY_LOWER: ReadonlyMap<string, SqliKeywordType> = new Map([...SQLI_KEYWORDS].map(([keyword, type]) => [keyword.toLowerCase(), type]));

/** The keyword table's answer for `word` (libinjection's bsearch_keyword_type), '' for none. */
function lookupWord(word: string): SqliKeywordType | '' {
  const found = KEYWORDS_BY_LOWER.get(word);
  if (found !== undefined) return found;
  return hasUpperAscii(word) ? (SQLI_KEYWORDS.get(upperKey(word)) ?? '') : '';
}

function hasUpperAscii(word: string): boolean {
  for (let i = 0; i < word.length; i++) {
    const c = word.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return true;
  }
  return false;
}

/** Byte sets for strspn/strcspn-style scans. C's strchr finds the terminating NUL, so NUL is in every set. */
function byteSet(chars: string): Uint8Array {
  const set = new Uint8Array(256);
  set[0] = 1;
  for (let i = 0; i < chars.length; i++) set[chars.charCodeAt(i)] = 1;
  return set;
}

const WHITE = byteSet(' \t\n\v\f\r\xa0');
const WORD_END = byteSet(' []{}<>:\\?=@!#~+-*/&|^%(),\';\t\n\v\f\r"\xa0');
const VARIABLE_END = byteSet(' <>:\\?=@!#~+-*/&|^%(),\';\t\n\v\f\r\'`"');
const MONEY_DIGITS = byteSet('0123456789.,');
const MONEY_TAG = byteSet('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ');
const BINARY_DIGITS = byteSet('01');
const HEX_DIGITS = byteSet('0123456789ABCDEFabcdef');

/** Length of the run of `set` bytes in `s` from `from`. */
function span(set: Uint8Array, s: string, from: number): number {
  let i = from;
  while (i < s.length && set[s.charCodeAt(i)] === 1) i++;
  return i - from;
}

/** Length of the run of bytes not in `set` in `s` from `from`. */
function spanUntil(set: Uint8Array, s: string, from: number): number {
  let i = from;
  while (i < s.length && set[s.charCodeAt(i)] !== 1) i++;
  return i - from;
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

function upperEquals(value: string, upper: string): boolean {
  return value.length === upper.length && upperKey(value) === upper;
}

/** One token: libinjection's stoken_t. `strOpen`/`strClose` are the quote characters seen ('' for none). */
export class SqliToken {
  type: SqliTokenType = '';
  /** Where the token starts in the input. */
  pos = 0;
  len = 0;
  /** The first `len` (at most 31) bytes of the token. */
  val = '';
  strOpen = '';
  strClose = '';
  /** For variables: how many '@' preceded the name. */
  count = 0;

  clear(): void {
    this.type = '';
    this.pos = 0;
    this.len = 0;
    this.val = '';
    this.strOpen = '';
    this.strClose = '';
    this.count = 0;
  }

  /** st_assign: sets type and value, leaving the quote and count fields as they were. */
  assign(type: SqliTokenType, pos: number, len: number, source: string, from: number): void {
    const kept = len < TOKEN_VALUE_MAX ? len : TOKEN_VALUE_MAX;
    this.type = type;
    this.pos = pos;
    this.len = kept;
    this.val = source.slice(from, from + kept);
  }

  copyFrom(other: SqliToken): void {
    this.type = other.type;
    this.pos = other.pos;
    this.len = other.len;
    this.val = other.val;
    this.strOpen = other.strOpen;
    this.strClose = other.strClose;
    this.count = other.count;
  }

  /** The first byte of the value, NUL when empty (C reads val[0] of an empty string). */
  firstByte(): number {
    return this.len > 0 ? this.val.charCodeAt(0) : 0;
  }

  isUnaryOperator(): boolean {
    if (this.type !== 'o') return false;
    switch (this.len) {
      case 1:
        return this.val === '+' || this.val === '-' || this.val === '!' || this.val === '~';
      case 2:
        return this.val === '!!';
      case 3:
        return upperEquals(this.val, 'NOT');
      default:
        return false;
    }
  }

  isArithmeticOperator(): boolean {
    return this.type === 'o' && this.len === 1 && '*/-+%'.includes(this.val);
  }
}

type Parser = (state: SqliState, pos: number) => number;

/**
 * Tokenizer and folder state over one input: libinjection_sqli_state. `tokenize` yields raw tokens into
 * `current`; `fold` reduces the stream to at most five tokens in `tokens`; `fingerprintAs` does both for one
 * context; `isSqli` is libinjection_is_sqli.
 */
export class SqliState {
  /** What is read; detectSqli points one state at each input in turn rather than allocate eight tokens a call. */
  input: string;
  flags = AS_IS_ANSI;
  /** Where the tokenizer continues. */
  pos = 0;
  readonly tokens: SqliToken[] = Array.from({ length: TOKEN_SLOTS }, () => new SqliToken());
  current: SqliToken;
  fingerprint = '';
  /** Tokens produced so far, comments included: the whitelist step reads it to tell folded input from plain. */
  statsTokens = 0;
  /** `--x` comments seen in ANSI mode and `#` seen at all: either makes the MySQL reading worth a try. */
  statsCommentDdx = 0;
  statsCommentHash = 0;
  readonly #lastComment = new SqliToken();

  constructor(input: string) {
    this.input = input;
    this.current = this.tokens[0]!;
  }

  /** libinjection_sqli_reset: start over on the same input with `flags`. */
  reset(flags: number): void {
    this.flags = flags;
    this.pos = 0;
    for (const token of this.tokens) token.clear();
    this.current = this.tokens[0]!;
    this.fingerprint = '';
    this.statsTokens = 0;
    this.statsCommentDdx = 0;
    this.statsCommentHash = 0;
  }

  /** Reads the next token into `current`; false at the end of the input. */
  tokenize(): boolean {
    const s = this.input;
    const current = this.current;
    if (s.length === 0) return false;
    current.clear();
    // In a quote context the input is taken to start inside a string of that quote.
    if (this.pos === 0 && (this.flags & (SQLI_FLAGS.QuoteSingle | SQLI_FLAGS.QuoteDouble)) !== 0) {
      const delim = (this.flags & SQLI_FLAGS.QuoteSingle) !== 0 ? "'" : '"';
      this.pos = parseStringCore(this, 0, delim, 0);
      this.statsTokens++;
      return true;
    }
    while (this.pos < s.length) {
      this.pos = PARSERS[s.charCodeAt(this.pos)]!(this, this.pos);
      if (current.type !== '') {
        this.statsTokens++;
        return true;
      }
    }
    return false;
  }

  /** Whether the input has more tokens, as #readUntil left it. */
  #more = true;

  /**
   * Tokenizes into tokens[pos …], unless `more` says the input has ended, until `count` tokens stand past `left`
   * or the input ends (#more is false then); a comment is kept aside as the last one, not counted. Returns the
   * next free slot. (Upstream writes this loop out twice in the fold; a closure over the fold's locals measured
   * ~25 % slower.)
   */
  #readUntil(pos: number, left: number, count: number, more: boolean): number {
    const t = this.tokens;
    const lastComment = this.#lastComment;
    this.#more = more;
    while (this.#more && pos <= MAX_TOKENS && pos - left < count) {
      this.current = t[pos]!;
      if (!this.tokenize()) {
        this.#more = false;
        break;
      }
      if (this.current.type === 'c') {
        lastComment.copyFrom(this.current);
      } else {
        lastComment.type = '';
        pos++;
      }
    }
    return pos;
  }

  /**
   * libinjection_sqli_fold: tokenizes and folds (merges "UNION" "ALL", drops unary operators, collapses
   * "1+1" to "1", ...) until five tokens are settled; returns how many. The index arithmetic on `pos` (next free
   * slot) and `left` (tokens settled) is upstream's, on purpose: which token a fold drops depends on it.
   */
  fold(): number {
    const t = this.tokens;
    const lastComment = this.#lastComment;
    let pos = 0;
    let left = 0;
    let more = true;
    lastComment.clear();

    // Leading comments, '(', SQL types and unary operators say nothing: skip them.
    this.current = t[0]!;
    while (more) {
      more = this.tokenize();
      const c = this.current;
      if (!(c.type === 'c' || c.type === '(' || c.type === 't' || c.isUnaryOperator())) break;
    }
    if (!more) return 0;
    pos = 1;

    for (;;) {
      if (pos >= MAX_TOKENS && matchesFiveTokenCollapse(t)) {
        if (pos > MAX_TOKENS) {
          t[1]!.copyFrom(t[MAX_TOKENS]!);
          pos = 2;
        } else {
          pos = 1;
        }
        left = 0;
      }
      if (!more || left >= MAX_TOKENS) {
        left = pos;
        break;
      }

      // Get up to two tokens.
      pos = this.#readUntil(pos, left, 2, more);
      more = this.#more;
      if (pos - left < 2) {
        left = pos;
        continue;
      }

      const a = t[left]!;
      const b = t[left + 1]!;
      if (a.type === 's' && b.type === 's') {
        // "foo" "bar" is one string in SQL.
        pos--;
        continue;
      } else if (a.type === ';' && b.type === ';') {
        pos--;
        continue;
      } else if ((a.type === 'o' || a.type === '&') && (b.isUnaryOperator() || b.type === 't')) {
        pos--;
        left = 0;
        continue;
      } else if (a.type === '(' && b.isUnaryOperator()) {
        pos--;
        if (left > 0) left--;
        continue;
      } else if (mergeWords(a, b)) {
        pos--;
        if (left > 0) left--;
        continue;
      } else if (a.type === ';' && b.type === 'f' && upperKey(b.val.slice(0, 2)) === 'IF') {
        // T-SQL's IF statement after a ';' (upstream tests only the first two letters, so IFNULL too).
        b.type = 'T';
        continue;
      } else if ((a.type === 'n' || a.type === 'v') && b.type === '(' && FUNCTION_LIKE_WORDS.has(upperKey(a.val))) {
        a.type = 'f';
        continue;
      } else if (a.type === 'k' && (upperEquals(a.val, 'IN') || upperEquals(a.val, 'NOT IN'))) {
        a.type = b.type === '(' ? 'o' : 'n';
        continue;
      } else if (a.type === 'o' && (upperEquals(a.val, 'LIKE') || upperEquals(a.val, 'NOT LIKE'))) {
        if (b.type === '(') a.type = 'f';
      } else if (a.type === 't' && FOLDS_INTO_SQL_TYPE.has(b.type)) {
        // A type name before a value or call is a cast, which changes nothing: keep the value.
        a.copyFrom(b);
        pos--;
        left = 0;
        continue;
      } else if (a.type === 'A' && b.type === 'n') {
        // Too many collation names to list: a bareword with '_' after COLLATE is one.
        if (cString(b.val).includes('_')) {
          b.type = 't';
          left = 0;
        }
      } else if (a.type === '\\') {
        if (b.isArithmeticOperator()) {
          // T-SQL reads '\%1' as '0 % 1'.
          a.type = '1';
        } else {
          // ... and '\1' as '1'.
          a.copyFrom(b);
          pos--;
        }
        left = 0;
        continue;
      } else if ((a.type === '(' && b.type === '(') || (a.type === ')' && b.type === ')')) {
        pos--;
        left = 0;
        continue;
      } else if (a.type === '{' && b.type === 'n') {
        // MySQL's "{ ``.``.id }" is too odd to parse: an empty name after '{' is evil outright.
        if (b.len === 0) {
          b.type = 'X';
          return left + 2;
        }
        // ODBC "{foo expr}": drop the "{ foo".
        left = 0;
        pos -= 2;
        continue;
      } else if (b.type === '}') {
        pos--;
        left = 0;
        continue;
      }

      // Get a third token.
      pos = this.#readUntil(pos, left, 3, more);
      more = this.#more;
      if (pos - left < 3) {
        left = pos;
        continue;
      }

      // The COLLATE case above may have moved `left`: read the three tokens afresh.
      const x = t[left]!;
      const y = t[left + 1]!;
      const z = t[left + 2]!;
      if (x.type === '1' && y.type === 'o' && z.type === '1') {
        pos -= 2;
        left = 0;
        continue;
      } else if (x.type === 'o' && y.type !== '(' && z.type === 'o') {
        left = 0;
        pos -= 2;
        continue;
      } else if (x.type === '&' && z.type === '&') {
        pos -= 2;
        left = 0;
        continue;
      } else if (x.type === 'v' && y.type === 'o' && (z.type === 'v' || z.type === '1' || z.type === 'n')) {
        pos -= 2;
        left = 0;
        continue;
      } else if ((x.type === 'n' || x.type === '1') && y.type === 'o' && (z.type === '1' || z.type === 'n')) {
        pos -= 2;
        left = 0;
        continue;
      } else if (isValueType(x.type) && y.type === 'o' && cString(y.val) === '::' && z.type === 't') {
        pos -= 2;
        left = 0;
        continue;
      } else if (isValueType(x.type) && y.type === ',' && isValueType(z.type)) {
        pos -= 2;
        left = 0;
        continue;
      } else if ((x.type === 'E' || x.type === 'B' || x.type === ',') && y.isUnaryOperator() && z.type === '(') {
        // "SELECT + (": drop the unary operator.
        y.copyFrom(z);
        pos--;
        left = 0;
        continue;
      } else if (
        (x.type === 'k' || x.type === 'E' || x.type === 'B') &&
        y.isUnaryOperator() &&
        (isValueType(z.type) || z.type === 'f')
      ) {
        y.copyFrom(z);
        pos--;
        left = 0;
        continue;
      } else if (x.type === ',' && y.isUnaryOperator() && isValueType(z.type)) {
        // ", -1" → ",1", then back up: "1,-1" folds to "1".
        y.copyFrom(z);
        left = 0;
        pos -= 3;
        continue;
      } else if (x.type === ',' && y.isUnaryOperator() && z.type === 'f') {
        y.copyFrom(z);
        pos--;
        left = 0;
        continue;
      } else if (x.type === 'n' && y.type === '.' && z.type === 'n') {
        // database.table
        pos -= 2;
        left = 0;
        continue;
      } else if (x.type === 'E' && y.type === '.' && z.type === 'n') {
        y.copyFrom(z);
        pos--;
        left = 0;
        continue;
      } else if (x.type === 'f' && y.type === '(' && z.type !== ')') {
        // USER() takes no arguments: USER(foo) is not that function.
        if (upperEquals(x.val, 'USER')) x.type = 'n';
      }

      // Nothing folded: the leftmost token is settled.
      left++;
    }

    // A trailing comment is part of the fingerprint when there is room.
    if (left < MAX_TOKENS && lastComment.type === 'c') {
      t[left]!.copyFrom(lastComment);
      left++;
    }
    return left > MAX_TOKENS ? MAX_TOKENS : left;
  }

  /** libinjection_sqli_fingerprint: the fingerprint of the input read in the context `flags`. */
  fingerprintAs(flags: number): string {
    this.reset(flags);
    const count = this.fold();
    const t = this.tokens;
    // PHP's magic backquote comment: a lone unclosed '`' at the end is a comment.
    const last = t[count - 1];
    if (count > 2 && last !== undefined && last.type === 'n' && last.len === 0 && last.strOpen === '`' && last.strClose === '') {
      last.type = 'c';
    }
    let fingerprint = '';
    for (let i = 0; i < count; i++) fingerprint += t[i]!.type;
    // Anything unparsable makes the whole fingerprint 'X'.
    this.fingerprint = fingerprint.includes('X') ? 'X' : fingerprint;
    return this.fingerprint;
  }

  /** libinjection_sqli_check_fingerprint: the fingerprint is a known injection and the whitelist lets it stand. */
  fingerprintIsSqli(): boolean {
    return this.fingerprint.length > 0 && SQLI_FINGERPRINTS.has(upperKey(this.fingerprint)) && this.#notWhitelisted();
  }

  /** libinjection_is_sqli: tries the contexts in upstream's order and stops at the first injection. */
  isSqli(): boolean {
    const s = this.input;
    if (s.length === 0) return false;
    if (this.#isSqliAs(AS_IS_ANSI, AS_IS_MYSQL)) return true;
    if (s.includes("'") && this.#isSqliAs(SINGLE_ANSI, SINGLE_MYSQL)) return true;
    if (s.includes('"')) {
      this.fingerprintAs(DOUBLE_MYSQL);
      if (this.fingerprintIsSqli()) return true;
    }
    return false;
  }

  /** One context: ANSI first, then MySQL comment rules when the ANSI pass saw a comment they would read otherwise. */
  #isSqliAs(ansi: number, mysql: number): boolean {
    this.fingerprintAs(ansi);
    if (this.fingerprintIsSqli()) return true;
    if (this.statsCommentDdx === 0 && this.statsCommentHash === 0) return false;
    this.fingerprintAs(mysql);
    return this.fingerprintIsSqli();
  }

  /** libinjection_sqli_not_whitelist: true when a blacklisted fingerprint should stand as SQLi. */
  #notWhitelisted(): boolean {
    const fp = this.fingerprint;
    const t = this.tokens;
    const s = this.input;
    // SQL Server's audit log skips statements mentioning sp_password, so it is a known evasion.
    if (fp.length > 1 && fp[fp.length - 1] === 'c' && s.includes('sp_password')) return true;

    if (fp.length === 2) {
      const t0 = t[0]!;
      const t1 = t[1]!;
      if (fp[1] === 'U') {
        // "1 union" alone is too common; with folding or comments around it, it is an injection.
        return this.statsTokens !== 2;
      }
      if (t1.firstByte() === 0x23 /* # */) return false;
      // "foo --" or "foo #": only a C-style comment makes a bareword suspicious.
      if (t0.type === 'n' && t1.type === 'c' && t1.firstByte() !== 0x2f /* / */) return false;
      if (t0.type === '1' && t1.type === 'c' && t1.firstByte() === 0x2f) return true;
      if (t0.type === '1' && t1.type === 'c') {
        if (this.statsTokens > 2) return true;
        // "1234--" but not base64-like "1234-ABC--": the number must really end where its token does. Upstream
        // indexes the input by the token's length, reads the C string's NUL past the end, and compares signed
        // chars, so any byte >= 0x80 counts as "<= 32".
        const next = byteAt(s, t0.len);
        if (next <= 32 || next >= 0x80) return true;
        const after = byteAt(s, t0.len + 1);
        if (next === 0x2f && after === 0x2a) return true;
        if (next === 0x2d && after === 0x2d) return true;
        return false;
      }
      // Text ending in "--" is a scan only when nothing follows the dashes.
      if (t1.len > 2 && t1.firstByte() === 0x2d) return false;
      return true;
    }
    if (fp.length === 3) {
      if (fp === 'sos' || fp === 's&s') {
        // ...foo' + 'bar...: both ends open and the quotes agree.
        return t[0]!.strOpen === '' && t[2]!.strClose === '' && t[0]!.strClose === t[2]!.strOpen;
      }
      if (fp === 's&n' || fp === 'n&1' || fp === '1&1' || fp === '1&v' || fp === '1&s') {
        // "sexy and 17" is prose; "sexy and 17<18" was folded and is not.
        return this.statsTokens !== 3;
      }
      if (t[1]!.type === 'k') {
        // Only MySQL's INTO OUTFILE / INTO DUMPFILE make a keyword in the middle an injection.
        return t[1]!.len >= 5 && upperKey(t[1]!.val.slice(0, 4)) === 'INTO';
      }
    }
    return true;
  }
}

/** The byte at `i`, or 0 past the end (ModSecurity passes a NUL-terminated std::string). */
function byteAt(s: string, i: number): number {
  return i < s.length ? s.charCodeAt(i) : 0;
}

/** A token value read as a C string: up to its first NUL. */
function cString(val: string): string {
  const nul = val.indexOf('\0');
  return nul < 0 ? val : val.slice(0, nul);
}

const FOLDS_INTO_SQL_TYPE = new Set<SqliTokenType>(['n', '1', 't', '(', 'f', 'v', 's']);

function isValueType(type: SqliTokenType): boolean {
  return type === 'n' || type === '1' || type === 's' || type === 'v';
}

/** Barewords that act as functions when a '(' follows: T-SQL and MySQL functions common as column names. */
const FUNCTION_LIKE_WORDS: ReadonlySet<string> = new Set([
  'USER_ID',
  'USER_NAME',
  'DATABASE',
  'PASSWORD',
  'USER',
  'CURRENT_USER',
  'CURRENT_DATE',
  'CURRENT_TIME',
  'CURRENT_TIMESTAMP',
  'LOCALTIME',
  'LOCALTIMESTAMP',
]);

/** Five-token shapes ("1,(1)", "n=(n)", "1),(1", "n)=(n") that fold back to their first token. */
function matchesFiveTokenCollapse(t: readonly SqliToken[]): boolean {
  const a = t[0]!.type;
  const b = t[1]!.type;
  const c = t[2]!.type;
  const d = t[3]!.type;
  const e = t[4]!.type;
  return (
    (a === '1' && (b === 'o' || b === ',') && c === '(' && d === '1' && e === ')') ||
    (a === 'n' && b === 'o' && c === '(' && (d === 'n' || d === '1') && e === ')') ||
    (a === '1' && b === ')' && c === ',' && d === '(' && e === '1') ||
    (a === 'n' && b === ')' && c === 'o' && d === '(' && e === 'n')
  );
}

const MERGE_FIRST = new Set<SqliTokenType>(['k', 'n', 'o', 'U', 'f', 'E', 'T', 't']);
const MERGE_SECOND = new Set<SqliTokenType>(['k', 'n', 'o', 'U', 'f', 'E', 'T', 't', '&']);

/** Every part of a keyword before one of its spaces ("UNION" of "UNION ALL"): only these can start a phrase. */
const PHRASE_STARTS: ReadonlySet<string> = new Set(
  [...SQLI_KEYWORDS.keys()].flatMap((keyword) => [...keyword.matchAll(/ /g)].map((space) => keyword.slice(0, space.index))),
);

/** syntax_merge_words: "UNION" + "ALL" → one "UNION ALL" token when the phrase is in the keyword table. */
function mergeWords(a: SqliToken, b: SqliToken): boolean {
  if (!MERGE_FIRST.has(a.type) || !MERGE_SECOND.has(b.type) || !PHRASE_STARTS.has(upperKey(a.val))) return false;
  const merged = `${a.val} ${b.val}`;
  if (merged.length > TOKEN_VALUE_MAX) return false;
  const type = lookupWord(merged);
  if (type === '') return false;
  a.assign(type, a.pos, merged.length, merged, 0);
  return true;
}

// The parsers, one per character class. Each reads from `pos`, fills `state.current` (or not, for white
// space) and returns where the tokenizer continues.

const parseWhite: Parser = (_state, pos) => pos + 1;

const parseOperator1: Parser = (state, pos) => {
  state.current.assign('o', pos, 1, state.input, pos);
  return pos + 1;
};

const parseOther: Parser = (state, pos) => {
  state.current.assign('?', pos, 1, state.input, pos);
  return pos + 1;
};

/** ; , ( ) { } are their own token types. */
const parseChar: Parser = (state, pos) => {
  state.current.assign(state.input[pos] as SqliTokenType, pos, 1, state.input, pos);
  return pos + 1;
};

function parseEndOfLineComment(state: SqliState, pos: number): number {
  const s = state.input;
  const newline = s.indexOf('\n', pos);
  if (newline < 0) {
    state.current.assign('c', pos, s.length - pos, s, pos);
    return s.length;
  }
  state.current.assign('c', pos, newline - pos, s, pos);
  return newline + 1;
}

/** '#' is an operator in ANSI SQL and starts a comment in MySQL. */
const parseHash: Parser = (state, pos) => {
  state.statsCommentHash++;
  if ((state.flags & SQLI_FLAGS.SqlMysql) !== 0) {
    state.statsCommentHash++;
    return parseEndOfLineComment(state, pos);
  }
  state.current.assign('o', pos, 1, '#', 0);
  return pos + 1;
};

/** "--" then white space or the end is a comment everywhere; "--x" is one in ANSI SQL only. */
const parseDash: Parser = (state, pos) => {
  const s = state.input;
  const dashDash = pos + 1 < s.length && s[pos + 1] === '-';
  if (dashDash && pos + 2 < s.length && WHITE[s.charCodeAt(pos + 2)] === 1) return parseEndOfLineComment(state, pos);
  if (dashDash && pos + 2 === s.length) return parseEndOfLineComment(state, pos);
  if (dashDash && (state.flags & SQLI_FLAGS.SqlAnsi) !== 0) {
    state.statsCommentDdx++;
    return parseEndOfLineComment(state, pos);
  }
  state.current.assign('o', pos, 1, '-', 0);
  return pos + 1;
};

/**
 * "/*" comments. A nested "/*" (PostgreSQL nests them, MySQL does not) or MySQL's executable "/*!" comment makes
 * the token evil: no single reading of the input is right.
 */
const parseSlash: Parser = (state, pos) => {
  const s = state.input;
  if (pos + 1 === s.length || s[pos + 1] !== '*') return parseOperator1(state, pos);
  const end = s.indexOf('*/', pos + 2);
  const len = end < 0 ? s.length - pos : end + 2 - pos;
  let type: SqliTokenType = 'c';
  if (end >= 0) {
    const nested = s.indexOf('/*', pos + 2);
    if (nested >= 0 && nested < end) type = 'X';
  }
  if (type === 'c' && pos + 2 < s.length && s[pos + 2] === '!') type = 'X';
  state.current.assign(type, pos, len, s, pos);
  return pos + len;
};

/** MySQL's "\N" is NULL. */
const parseBackslash: Parser = (state, pos) => {
  const s = state.input;
  if (pos + 1 < s.length && s[pos + 1] === 'N') {
    state.current.assign('1', pos, 2, s, pos);
    return pos + 2;
  }
  state.current.assign('\\', pos, 1, s, pos);
  return pos + 1;
};

const parseOperator2: Parser = (state, pos) => {
  const s = state.input;
  if (pos + 1 >= s.length) return parseOperator1(state, pos);
  if (pos + 2 < s.length && s[pos] === '<' && s[pos + 1] === '=' && s[pos + 2] === '>') {
    state.current.assign('o', pos, 3, s, pos);
    return pos + 3;
  }
  const type = lookupWord(s.slice(pos, pos + 2));
  if (type !== '') {
    state.current.assign(type, pos, 2, s, pos);
    return pos + 2;
  }
  if (s[pos] === ':') {
    state.current.assign(':', pos, 1, s, pos);
    return pos + 1;
  }
  return parseOperator1(state, pos);
};

/** Whether the quote at `end + 1` is escaped: an odd number of backslashes before it, back to `start`. */
function isBackslashEscaped(s: string, end: number, start: number): boolean {
  let i = end;
  while (i >= start && s.charCodeAt(i) === 0x5c) i--;
  return ((end - i) & 1) === 1;
}

/**
 * A string from `pos`: `offset` is 1 when `s[pos]` is the opening quote and 0 when the quote is only assumed (a
 * quote context). A doubled or backslash-escaped quote does not close it; no closing quote runs to the end.
 */
function parseStringCore(state: SqliState, pos: number, delim: string, offset: number): number {
  const s = state.input;
  const token = state.current;
  const start = pos + offset;
  token.strOpen = offset > 0 ? delim : '';
  let quote = s.indexOf(delim, start);
  for (;;) {
    if (quote < 0) {
      token.assign('s', start, s.length - start, s, start);
      token.strClose = '';
      return s.length;
    }
    if (isBackslashEscaped(s, quote - 1, start)) {
      quote = s.indexOf(delim, quote + 1);
    } else if (quote + 1 < s.length && s[quote + 1] === delim) {
      quote = s.indexOf(delim, quote + 2);
    } else {
      token.assign('s', start, quote - start, s, start);
      token.strClose = delim;
      return quote + 1;
    }
  }
}

const parseString: Parser = (state, pos) => parseStringCore(state, pos, state.input[pos]!, 1);

/** E'...' (PostgreSQL escape string) and N'...' (MySQL national charset); anything else is a word. */
const parseEString: Parser = (state, pos) => {
  const s = state.input;
  if (pos + 2 >= s.length || s[pos + 1] !== "'") return parseWord(state, pos);
  return parseStringCore(state, pos, "'", 2);
};

/** U&'...' (unicode string). */
const parseUString: Parser = (state, pos) => {
  const s = state.input;
  if (pos + 2 < s.length && s[pos + 1] === '&' && s[pos + 2] === "'") {
    const next = parseString(state, pos + 2);
    state.current.strOpen = 'u';
    if (state.current.strClose === "'") state.current.strClose = 'u';
    return next;
  }
  return parseWord(state, pos);
};

/** Oracle's q'Xtext X' quoting, at `pos + offset`, with ( [ { < closed by their pair. */
function parseQStringCore(state: SqliState, pos: number, offset: number): number {
  const s = state.input;
  const at = pos + offset;
  if (at >= s.length || (s[at] !== 'q' && s[at] !== 'Q') || at + 2 >= s.length || s[at + 1] !== "'") return parseWord(state, pos);
  const open = s.charCodeAt(at + 2);
  // Signed char in C: bytes >= 0x80 are "< 33" too.
  if (open < 33 || open >= 0x80) return parseWord(state, pos);
  const close = QSTRING_CLOSERS[s[at + 2]!] ?? s[at + 2]!;
  const end = s.indexOf(`${close}'`, at + 3);
  const token = state.current;
  token.strOpen = 'q';
  if (end < 0) {
    token.assign('s', at + 3, s.length - at - 3, s, at + 3);
    token.strClose = '';
    return s.length;
  }
  token.assign('s', at + 3, end - at - 3, s, at + 3);
  token.strClose = 'q';
  return end + 2;
}

const QSTRING_CLOSERS: Readonly<Record<string, string>> = { '(': ')', '[': ']', '{': '}', '<': '>' };

const parseQString: Parser = (state, pos) => parseQStringCore(state, pos, 0);

/** N'...' is MySQL's national string; nq'...' Oracle's. */
const parseNqString: Parser = (state, pos) => {
  const s = state.input;
  if (pos + 2 < s.length && s[pos + 1] === "'") return parseEString(state, pos);
  return parseQStringCore(state, pos, 1);
};

/** b'0101' and x'BEEF' literals are numbers. */
function parseQuotedDigits(state: SqliState, pos: number, digits: Uint8Array): number {
  const s = state.input;
  if (pos + 2 >= s.length || s[pos + 1] !== "'") return parseWord(state, pos);
  const len = span(digits, s, pos + 2);
  if (pos + 2 + len >= s.length || s[pos + 2 + len] !== "'") return parseWord(state, pos);
  state.current.assign('1', pos, len + 3, s, pos);
  return pos + len + 3;
}

const parseBString: Parser = (state, pos) => parseQuotedDigits(state, pos, BINARY_DIGITS);
const parseXString: Parser = (state, pos) => parseQuotedDigits(state, pos, HEX_DIGITS);

/** SQL Server's [bracketed name]. */
const parseBWord: Parser = (state, pos) => {
  const s = state.input;
  const end = s.indexOf(']', pos);
  if (end < 0) {
    state.current.assign('n', pos, s.length - pos, s, pos);
    return s.length;
  }
  state.current.assign('n', pos, end - pos + 1, s, pos);
  return end + 1;
};

/**
 * A word, typed by the keyword table. A word holding '.' or '`' is split there when the part before it is a
 * keyword ("SELECT.1", "SELECT`col`"); only the first 31 bytes are looked at, as upstream's token value holds.
 */
function parseWord(state: SqliState, pos: number): number {
  const s = state.input;
  const token = state.current;
  const len = spanUntil(WORD_END, s, pos);
  token.assign('n', pos, len, s, pos);
  const val = token.val;
  for (let i = 0; i < token.len; i++) {
    const ch = val[i];
    if (ch === '.' || ch === '`') {
      const type = lookupWord(val.slice(0, i));
      if (type !== '' && type !== 'n') {
        token.clear();
        token.assign(type, pos, i, s, pos);
        return pos + i;
      }
    }
  }
  if (len <= TOKEN_VALUE_MAX) token.type = lookupWord(val) || 'n';
  return pos + len;
}

/** MySQL `backticks`: a name, unless the name is a function. */
function parseTick(state: SqliState, pos: number): number {
  const next = parseStringCore(state, pos, '`', 1);
  state.current.type = lookupWord(state.current.val) === 'f' ? 'f' : 'n';
  return next;
}

/** @var, @@var, @@`var`, @'var'. */
const parseVariable: Parser = (state, pos0) => {
  const s = state.input;
  const token = state.current;
  let pos = pos0 + 1;
  if (pos < s.length && s[pos] === '@') {
    pos++;
    token.count = 2;
  } else {
    token.count = 1;
  }
  if (pos < s.length) {
    if (s[pos] === '`') {
      const next = parseTick(state, pos);
      token.type = 'v';
      return next;
    }
    if (s[pos] === "'" || s[pos] === '"') {
      const next = parseString(state, pos);
      token.type = 'v';
      return next;
    }
  }
  const len = spanUntil(VARIABLE_END, s, pos);
  token.assign('v', pos, len, s, pos);
  return pos + len;
};

/** $1,000.00 (money), $$text$$ and $tag$text$tag$ (PostgreSQL dollar quoting), or a lone '$'. */
const parseMoney: Parser = (state, pos) => {
  const s = state.input;
  const token = state.current;
  if (pos + 1 === s.length) {
    token.assign('n', pos, 1, '$', 0);
    return s.length;
  }
  let len = span(MONEY_DIGITS, s, pos + 1);
  if (len === 0) {
    if (s[pos + 1] === '$') {
      const end = s.indexOf('$$', pos + 2);
      token.strOpen = '$';
      if (end < 0) {
        token.assign('s', pos + 2, s.length - (pos + 2), s, pos + 2);
        token.strClose = '';
        return s.length;
      }
      token.assign('s', pos + 2, end - (pos + 2), s, pos + 2);
      token.strClose = '$';
      return end + 2;
    }
    len = span(MONEY_TAG, s, pos + 1);
    if (len === 0 || pos + len + 1 === s.length || s[pos + len + 1] !== '$') {
      token.assign('n', pos, 1, '$', 0);
      return pos + 1;
    }
    const tag = s.slice(pos, pos + len + 2);
    const bodyStart = pos + len + 2;
    const end = s.indexOf(tag, bodyStart);
    token.strOpen = '$';
    if (end < 0) {
      token.assign('s', bodyStart, s.length - bodyStart, s, bodyStart);
      token.strClose = '';
      return s.length;
    }
    token.assign('s', bodyStart, end - bodyStart, s, bodyStart);
    token.strClose = '$';
    return end + len + 2;
  }
  if (len === 1 && s[pos + 1] === '.') return parseWord(state, pos);
  token.assign('1', pos, len + 1, s, pos);
  return pos + len + 1;
};

/** Numbers: 0x.., 0b.., decimals with exponent, Oracle's trailing d/f; "1.e" is a word. */
const parseNumber: Parser = (state, pos0) => {
  const s = state.input;
  const token = state.current;
  let pos = pos0;
  if (s[pos] === '0' && pos + 1 < s.length) {
    const radix = s[pos + 1];
    const digits = radix === 'X' || radix === 'x' ? HEX_DIGITS : radix === 'B' || radix === 'b' ? BINARY_DIGITS : null;
    if (digits !== null) {
      const len = span(digits, s, pos + 2);
      if (len === 0) {
        token.assign('n', pos, 2, s, pos);
        return pos + 2;
      }
      token.assign('1', pos, len + 2, s, pos);
      return pos + len + 2;
    }
  }
  const start = pos;
  while (pos < s.length && isDigit(s.charCodeAt(pos))) pos++;
  if (pos < s.length && s[pos] === '.') {
    pos++;
    while (pos < s.length && isDigit(s.charCodeAt(pos))) pos++;
    if (pos - start === 1) {
      token.assign('.', start, 1, '.', 0);
      return pos;
    }
  }
  let hasE = false;
  let hasExponent = false;
  if (pos < s.length && (s[pos] === 'E' || s[pos] === 'e')) {
    hasE = true;
    pos++;
    if (pos < s.length && (s[pos] === '+' || s[pos] === '-')) pos++;
    while (pos < s.length && isDigit(s.charCodeAt(pos))) {
      hasExponent = true;
      pos++;
    }
  }
  if (pos < s.length && 'dDfF'.includes(s[pos]!)) {
    // "1.2f" at the end, before white space or ';', or glued to UNION ("1fUNION") is a float; "123FROM" is not.
    const next = pos + 1 < s.length ? s.charCodeAt(pos + 1) : -1;
    if (next === -1 || WHITE[next] === 1 || next === 0x3b || next === 0x75 || next === 0x55) pos++;
  }
  token.assign(hasE && !hasExponent ? 'n' : '1', start, pos - start, s, start);
  return pos;
};

const PARSER_BY_CLASS: Readonly<Record<SqliCharClass, Parser>> = {
  CHAR_WHITE: parseWhite,
  CHAR_OP1: parseOperator1,
  CHAR_UNARY: parseOperator1,
  CHAR_OP2: parseOperator2,
  CHAR_BANG: parseOperator2,
  CHAR_BACK: parseBackslash,
  CHAR_DASH: parseDash,
  CHAR_STR: parseString,
  CHAR_HASH: parseHash,
  CHAR_NUM: parseNumber,
  CHAR_SLASH: parseSlash,
  CHAR_SEMICOLON: parseChar,
  CHAR_COMMA: parseChar,
  CHAR_LEFTPARENS: parseChar,
  CHAR_RIGHTPARENS: parseChar,
  CHAR_LEFTBRACE: parseChar,
  CHAR_RIGHTBRACE: parseChar,
  CHAR_VAR: parseVariable,
  CHAR_OTHER: parseOther,
  CHAR_MONEY: parseMoney,
  CHAR_TICK: parseTick,
  CHAR_USTRING: parseUString,
  CHAR_QSTRING: parseQString,
  CHAR_NQSTRING: parseNqString,
  CHAR_XSTRING: parseXString,
  CHAR_BSTRING: parseBString,
  CHAR_ESTRING: parseEString,
  CHAR_BWORD: parseBWord,
  CHAR_WORD: parseWord,
};

const PARSERS: readonly Parser[] = SQLI_CHAR_CLASSES.map((charClass) => PARSER_BY_CLASS[charClass]);

/** Calls are synchronous and never nest, so one state serves them all. */
const shared = new SqliState('');

/**
 * libinjection_sqli: the fingerprint when `input` (a byte string) reads as SQL injection in any context, else null.
 * ModSecurity's @detectSQLi matches on non-null and captures the fingerprint as TX.0.
 */
export function detectSqli(input: string): string | null {
  if (isAlphanumericRun(input)) return null;
  shared.input = input;
  const fingerprint = shared.isSqli() ? shared.fingerprint : null;
  // Hold no request's data past the call.
  shared.input = '';
  return fingerprint;
}

/**
 * Whether `input` is ASCII letters, digits and `_` only, which libinjection reads as at most two tokens, a number
 * and a word, in every context (no quote, no comment: only the as-is one runs). Of the table's one- and two-token
 * fingerprints (1C, 1U, NC, SC, VC, VU, X) such an input can only make 1U, which upstream's whitelist lets pass
 * with two tokens; so it is never SQL injection, and most names and values of a benign request (`csrf_token`,
 * `Alice`, `48213`, a hex session id) need no tokenizing. The property test
 * (test/property/waf-libinjection.prop.test.ts) holds the tokenizer to this on every keyword, with numeric
 * prefixes, and on generated runs.
 */
export function isAlphanumericRun(input: string): boolean {
  const n = input.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = input.charCodeAt(i);
    const letter = c | 0x20;
    if (!(isDigit(c) || (letter >= 0x61 && letter <= 0x7a) || c === 0x5f)) return false;
  }
  return true;
}
