// JSON request bodies as libmodsecurity 3 turns them into ARGS (src/request_body_processor/json.cc over yajl 2),
// with our own byte-level parser: JSON.parse would merge duplicate keys, reorder integer-like keys, turn numbers
// into floats, and read a byte string's UTF-8 as Latin-1, none of which ModSecurity does, and it overflows the
// stack on deep nesting instead of failing cleanly. This parser keeps an explicit stack, so depth costs memory
// bounded by `maxJsonDepth`, never recursion.
//
// Argument names follow json.cc exactly:
// - a top-level scalar is `json`; the members of a top-level object are `json.<key>`, the elements of a
//   top-level array `json.array_<n>`;
// - nesting joins with `.`: `{"a":{"b":1}}` is `json.a.b`, `{"a":[1,[2]]}` gives `json.a.array_0` and
//   `json.a.array_1.array_0`, `[{"b":1}]` gives `json.array_0.b`;
// - an empty key is spelled `empty-key`; values are the text of numbers as sent, `true`/`false`, and `` for null;
//   empty objects and arrays add nothing.
// What yajl accepts is accepted: one value, whitespace (including \v and \f) around it, no comments, no trailing
// commas, strings checked to be well-formed UTF-8 byte sequences (yajl checks the structure, not overlongs).
// `\u` escapes become UTF-8 bytes as yajl_string_decode (Debian's yajl 2.1) makes them, quirks included:
// `\u0000` is a NUL byte, a high surrogate is combined with whatever `\u` escape follows it, and one with no `\u`
// after it becomes `?`.
// Arguments found before an error are kept (yajl has already reported them), and the error names the problem in
// yajl's words. Past `maxArgs` or `maxJsonDepth` parsing stops with an error, as json.cc cancels the parse.

import { hexValue } from './ctype.ts';
import type { Arg, BodyLimits } from './limits.ts';

export interface JsonResult {
  args: Arg[];
  /** Why the body is not valid JSON (REQBODY_ERROR_MSG after "JSON parsing error: "), null when it is. */
  error: string | null;
}

interface Container {
  array: boolean;
  /** Argument names of the children start with this: `json.a.` in an object, `json.a` in an array. */
  prefix: string;
  /** Elements of an array completed so far. */
  count: number;
}

/** What the parser expects next. */
const Expect = { Value: 0, ValueOrEnd: 1, Key: 2, KeyOrEnd: 3, Colon: 4, CommaOrEnd: 5, Nothing: 6 } as const;
type Expect = (typeof Expect)[keyof typeof Expect];

const LEXICAL = {
  char: 'lexical error: invalid char in json text.',
  literal: 'lexical error: invalid string in json text.',
  stringChar: 'lexical error: invalid character inside string.',
  utf8: 'lexical error: invalid bytes in UTF8 string.',
  escape: 'lexical error: inside a JSON string, an invalid character was found after the escape character.',
  hex: "lexical error: invalid (non-hex) character occurs after '\\u' inside string.",
  comment: 'lexical error: probable comment found in input text, comments are not enabled.',
  minus: 'lexical error: malformed number, a digit is required after the minus sign.',
  decimal: 'lexical error: malformed number, a digit is required after the decimal point.',
  exponent: 'lexical error: malformed number, a digit is required after the exponent.',
} as const;

const PREMATURE_EOF = 'parse error: premature EOF';

export function parseJson(body: string, limits: Pick<BodyLimits, 'maxArgs' | 'maxJsonDepth'>): JsonResult {
  return new JsonParser(body, limits).run();
}

class JsonParser {
  readonly #text: string;
  readonly #limits: Pick<BodyLimits, 'maxArgs' | 'maxJsonDepth'>;
  readonly #args: Arg[] = [];
  readonly #stack: Container[] = [];
  #at = 0;
  /** The key just read, waiting for its value (json.cc's m_current_key). */
  #key = '';
  /** Set by a scanner that failed; the run stops at the next check. */
  #error: string | null = null;

  constructor(text: string, limits: Pick<BodyLimits, 'maxArgs' | 'maxJsonDepth'>) {
    this.#text = text;
    this.#limits = limits;
  }

  run(): JsonResult {
    let expect: Expect = Expect.Value;
    const text = this.#text;
    while (this.#error === null) {
      const at = this.#skipSpace();
      if (at >= text.length) {
        if (expect !== Expect.Nothing) this.#error = PREMATURE_EOF;
        break;
      }
      const c = text.charCodeAt(at);
      if (c === 0x2f) {
        this.#error = LEXICAL.comment;
        break;
      }
      switch (expect) {
        case Expect.Value:
        case Expect.ValueOrEnd:
          if (c === 0x5d && expect === Expect.ValueOrEnd) {
            this.#at++;
            expect = this.#close();
          } else {
            expect = this.#value(c);
          }
          break;
        case Expect.Key:
        case Expect.KeyOrEnd:
          if (c === 0x7d && expect === Expect.KeyOrEnd) {
            this.#at++;
            expect = this.#close();
          } else if (c === 0x22) {
            const key = this.#string();
            if (key !== null) this.#key = key;
            expect = Expect.Colon;
          } else {
            this.#error = isToken(c) ? 'parse error: invalid object key (must be a string)' : LEXICAL.char;
          }
          break;
        case Expect.Colon:
          if (c === 0x3a) {
            this.#at++;
            expect = Expect.Value;
          } else {
            this.#error = "parse error: object key and value must be separated by a colon (':')";
          }
          break;
        case Expect.CommaOrEnd:
          expect = this.#afterValue(c);
          break;
        case Expect.Nothing:
          this.#trailing(c);
          break;
      }
    }
    return { args: this.#args, error: this.#error };
  }

  /**
   * Something after the one value. yajl reports trailing garbage only for a token it could finish: a string
   * still open at the end of the body is not one, so `{}"x` is accepted (and so it is here). yajl finishes by
   * feeding one more space, so the open string must still be well-formed with that space added.
   */
  #trailing(c: number): void {
    if (c === 0x22) {
      const probe = new JsonParser(`${this.#text.slice(this.#at)} `, this.#limits);
      if (probe.#string() === null && probe.#error === PREMATURE_EOF) {
        this.#at = this.#text.length;
        return;
      }
    }
    this.#error = 'parse error: trailing garbage';
  }

  /** After a value inside a container: `,` or the container's closing bracket. */
  #afterValue(c: number): Expect {
    const top = this.#stack[this.#stack.length - 1]!;
    if (c === 0x2c) {
      this.#at++;
      return top.array ? Expect.Value : Expect.Key;
    }
    if (c === (top.array ? 0x5d : 0x7d)) {
      this.#at++;
      return this.#close();
    }
    this.#error = top.array
      ? "parse error: after array element, I expect ',' or ']'"
      : "parse error: after key and value, inside map, I expect ',' or '}'";
    return Expect.Nothing;
  }

  /** A value starting with char `c`: a scalar becomes an argument, `{` / `[` opens a container. */
  #value(c: number): Expect {
    if (c === 0x7b || c === 0x5b) {
      this.#at++;
      return this.#open(c === 0x5b);
    }
    let value: string | null;
    if (c === 0x22) value = this.#string();
    else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) value = this.#number();
    else if (c === 0x74) value = this.#literal('true', 'true');
    else if (c === 0x66) value = this.#literal('false', 'false');
    else if (c === 0x6e) value = this.#literal('null', '');
    else {
      this.#error = isToken(c) ? 'parse error: unallowed token at this point in JSON text' : LEXICAL.char;
      return Expect.Nothing;
    }
    if (value === null) return Expect.Nothing;
    this.#addArgument(this.#nameForValue(), value);
    return this.#stack.length === 0 ? Expect.Nothing : Expect.CommaOrEnd;
  }

  /** json.cc's addArgument naming: the container path plus the key, or the array index (then counted). */
  #nameForValue(): string {
    const top = this.#stack[this.#stack.length - 1];
    if (top === undefined) return 'json';
    if (top.array) return `${top.prefix}.array_${top.count++}`;
    return top.prefix + this.#takeKey();
  }

  /** json.cc's getCurrentKey: the pending key, `empty-key` for "", and the key is used up. */
  #takeKey(): string {
    const key = this.#key;
    this.#key = '';
    return key === '' ? 'empty-key' : key;
  }

  #open(array: boolean): Expect {
    const parent = this.#stack[this.#stack.length - 1];
    let path: string;
    if (parent === undefined) path = 'json';
    else if (parent.array) path = `${parent.prefix}.array_${parent.count}`;
    else path = parent.prefix + this.#takeKey();
    if (this.#stack.length >= this.#limits.maxJsonDepth) {
      this.#error = 'parse error: client cancelled parse via callback return value. Parsing depth limit exceeded';
      return Expect.Nothing;
    }
    this.#stack.push({ array, prefix: array ? path : `${path}.`, count: 0 });
    return array ? Expect.ValueOrEnd : Expect.KeyOrEnd;
  }

  /** A container ended: it counts as one element of an enclosing array. */
  #close(): Expect {
    this.#stack.pop();
    const parent = this.#stack[this.#stack.length - 1];
    if (parent === undefined) return Expect.Nothing;
    if (parent.array) parent.count++;
    return Expect.CommaOrEnd;
  }

  #addArgument(name: string, value: string): void {
    if (this.#args.length >= this.#limits.maxArgs) {
      this.#error = `parse error: client cancelled parse via callback return value. Argument limit (${this.#limits.maxArgs})`;
      return;
    }
    this.#args.push([name, value]);
  }

  #skipSpace(): number {
    const text = this.#text;
    let at = this.#at;
    while (at < text.length) {
      const c = text.charCodeAt(at);
      if (c !== 0x20 && (c < 0x09 || c > 0x0d)) break;
      at++;
    }
    this.#at = at;
    return at;
  }

  #literal(word: string, value: string): string | null {
    if (this.#text.startsWith(word, this.#at)) {
      this.#at += word.length;
      return value;
    }
    // A prefix of the word cut off by the end of the body is yajl's premature EOF, anything else a bad literal.
    this.#error = word.startsWith(this.#text.slice(this.#at, this.#at + word.length)) ? PREMATURE_EOF : LEXICAL.literal;
    return null;
  }

  /** -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, returned as written. */
  #number(): string | null {
    const text = this.#text;
    const start = this.#at;
    let at = start;
    if (text.charCodeAt(at) === 0x2d) at++;
    if (text.charCodeAt(at) === 0x30) at++;
    else if (isDigit(text.charCodeAt(at))) at = skipDigits(text, at);
    else return this.#fail(LEXICAL.minus);
    if (text.charCodeAt(at) === 0x2e) {
      if (!isDigit(text.charCodeAt(at + 1))) return this.#fail(LEXICAL.decimal);
      at = skipDigits(text, at + 1);
    }
    const e = text.charCodeAt(at);
    if (e === 0x65 || e === 0x45) {
      at++;
      const sign = text.charCodeAt(at);
      if (sign === 0x2b || sign === 0x2d) at++;
      if (!isDigit(text.charCodeAt(at))) return this.#fail(LEXICAL.exponent);
      at = skipDigits(text, at);
    }
    this.#at = at;
    return text.slice(start, at);
  }

  /** A string token starting at the opening quote, decoded to bytes; null (and #error set) when malformed. */
  #string(): string | null {
    const text = this.#text;
    const start = this.#at + 1;
    let at = start;
    let escaped = false;
    while (at < text.length) {
      const c = text.charCodeAt(at);
      if (c === 0x22) {
        this.#at = at + 1;
        return escaped ? decodeEscapes(text, start, at) : text.slice(start, at);
      }
      if (c === 0x5c) {
        escaped = true;
        at = this.#escape(at + 1);
      } else if (c < 0x20) {
        return this.#fail(LEXICAL.stringChar);
      } else if (c < 0x80) {
        at++;
      } else {
        at = this.#utf8(at, c);
      }
      if (at < 0) return null;
    }
    return this.#fail(PREMATURE_EOF);
  }

  /** Checks the escape whose letter is at `at`; returns where the string goes on, or -1 (error set). */
  #escape(at: number): number {
    const text = this.#text;
    if (at >= text.length) return this.#failAt(PREMATURE_EOF);
    const c = text.charCodeAt(at);
    if (c !== 0x75) return SIMPLE_ESCAPES.has(c) ? at + 1 : this.#failAt(LEXICAL.escape);
    for (let i = 1; i <= 4; i++) {
      if (at + i >= text.length) return this.#failAt(PREMATURE_EOF);
      if (hexValue(text.charCodeAt(at + i)) < 0) return this.#failAt(LEXICAL.hex);
    }
    return at + 5;
  }

  /** yajl_lex_utf8_char: a lead byte and its continuation bytes, structure only. Returns the next index or -1. */
  #utf8(at: number, lead: number): number {
    const text = this.#text;
    let follow: number;
    if (lead >> 5 === 0x6) follow = 1;
    else if (lead >> 4 === 0xe) follow = 2;
    else if (lead >> 3 === 0x1e) follow = 3;
    else return this.#failAt(LEXICAL.utf8);
    for (let i = 1; i <= follow; i++) {
      if (at + i >= text.length) return this.#failAt(PREMATURE_EOF);
      if (text.charCodeAt(at + i) >> 6 !== 0x2) return this.#failAt(LEXICAL.utf8);
    }
    return at + follow + 1;
  }

  #fail(message: string): null {
    this.#error = message;
    return null;
  }

  #failAt(message: string): number {
    this.#error = message;
    return -1;
  }
}

/** `"`, `\`, `/`, b, f, n, r, t. */
const SIMPLE_ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);
const SIMPLE_ESCAPE_BYTES: Readonly<Record<number, string>> = {
  0x22: '"',
  0x5c: '\\',
  0x2f: '/',
  0x62: '\b',
  0x66: '\f',
  0x6e: '\n',
  0x72: '\r',
  0x74: '\t',
};

/** yajl_string_decode over a string body already checked by the scanner (every escape is complete). */
function decodeEscapes(text: string, from: number, to: number): string {
  let out = '';
  let run = from;
  let at = from;
  while (at < to) {
    if (text.charCodeAt(at) !== 0x5c) {
      at++;
      continue;
    }
    out += text.slice(run, at);
    const letter = text.charCodeAt(at + 1);
    if (letter !== 0x75) {
      out += SIMPLE_ESCAPE_BYTES[letter]!;
      at += 2;
    } else {
      let codepoint = hex4(text, at + 2);
      at += 6;
      if ((codepoint & 0xfc00) === 0xd800) {
        if (at + 1 < to && text.charCodeAt(at) === 0x5c && text.charCodeAt(at + 1) === 0x75) {
          const low = hex4(text, at + 2);
          codepoint = ((codepoint & 0x3f) << 10) | ((((codepoint >> 6) & 0xf) + 1) << 16) | (low & 0x3ff);
          at += 6;
          out += utf32ToUtf8(codepoint);
        } else {
          out += '?';
        }
      } else {
        out += utf32ToUtf8(codepoint);
      }
    }
    run = at;
  }
  return out + text.slice(run, to);
}

/** yajl's Utf32toUtf8: code points past U+1FFFFF (only a garbled surrogate pair makes one) become `?`. */
function utf32ToUtf8(codepoint: number): string {
  if (codepoint < 0x80) return String.fromCharCode(codepoint);
  if (codepoint < 0x800) return String.fromCharCode(0xc0 | (codepoint >> 6), 0x80 | (codepoint & 0x3f));
  if (codepoint < 0x10000) {
    return String.fromCharCode(0xe0 | (codepoint >> 12), 0x80 | ((codepoint >> 6) & 0x3f), 0x80 | (codepoint & 0x3f));
  }
  if (codepoint < 0x1fffff) {
    return String.fromCharCode(
      0xf0 | (codepoint >> 18),
      0x80 | ((codepoint >> 12) & 0x3f),
      0x80 | ((codepoint >> 6) & 0x3f),
      0x80 | (codepoint & 0x3f),
    );
  }
  return '?';
}

function hex4(text: string, at: number): number {
  let value = 0;
  for (let i = 0; i < 4; i++) value = (value << 4) | hexValue(text.charCodeAt(at + i));
  return value;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function skipDigits(text: string, at: number): number {
  while (isDigit(text.charCodeAt(at))) at++;
  return at;
}

/** Chars that start some JSON token: a misplaced one is a parse error, anything else a lexical one. */
function isToken(c: number): boolean {
  return '{}[],:"-tfn'.includes(String.fromCharCode(c)) || isDigit(c);
}
