// libinjection's XSS detector (libinjection_xss.c, as bundled with ModSecurity v3.0.9): tokenize the input as
// HTML5 in five starting contexts (text, and inside an unquoted, single-, double- or back-quoted attribute
// value) and flag a dangerous tag, an event-handler or style attribute, a javascript:/data:/vbscript:/view-source:
// URL in a URL-taking attribute, an IE conditional or XML comment, or a doctype. Called by @detectXSS
// (../operators/libinjection.ts). Linear in the input: every token is checked once against fixed lists.
import { H5_CONTEXT, H5_TOKEN, Html5Tokenizer, type H5Context } from './html5.ts';

const Attr = { None: 0, Black: 1, Url: 2, Style: 3, Indirect: 4 } as const;
type Attr = (typeof Attr)[keyof typeof Attr];

/** Attribute names and what their value can do (upstream's BLACKATTR). */
const BLACK_ATTRIBUTES: ReadonlyMap<string, Attr> = new Map<string, Attr>([
  ['ACTION', Attr.Url], // form
  ['ATTRIBUTENAME', Attr.Indirect], // SVG names the attribute in a value
  ['BY', Attr.Url], // SVG
  ['BACKGROUND', Attr.Url], // IE6, O11
  ['DATAFORMATAS', Attr.Black], // IE
  ['DATASRC', Attr.Black], // IE
  ['DYNSRC', Attr.Url], // obsolete img attribute
  ['FILTER', Attr.Style], // Opera, SVG inline style
  ['FORMACTION', Attr.Url], // HTML5
  ['FOLDER', Attr.Url], // IE, A tags only
  ['FROM', Attr.Url], // SVG
  ['HANDLER', Attr.Url], // SVG Tiny, Opera
  ['HREF', Attr.Url],
  ['LOWSRC', Attr.Url], // obsolete img attribute
  ['POSTER', Attr.Url], // Opera 10, 11
  ['SRC', Attr.Url],
  ['STYLE', Attr.Style],
  ['TO', Attr.Url], // SVG
  ['VALUES', Attr.Url], // SVG
  ['XLINK:HREF', Attr.Url],
]);

/** Tags that run script or load content (upstream's BLACKTAG); any svg* and xsl* tag counts too. */
const BLACK_TAGS: ReadonlySet<string> = new Set([
  'APPLET',
  'BASE',
  'COMMENT', // IE, html5sec.org #38
  'EMBED',
  'FRAME',
  'FRAMESET',
  'HANDLER', // Opera SVG: effectively a script tag
  'IFRAME',
  'IMPORT',
  'ISINDEX',
  'LINK',
  'LISTENER',
  'META',
  'NOSCRIPT',
  'OBJECT',
  'SCRIPT',
  'STYLE',
  'VMLFRAME',
  'XML',
  'XSS',
]);

/** The longest listed tag or attribute name: a longer token can be neither. */
const MAX_LISTED_NAME = Math.max(...[...BLACK_TAGS, ...BLACK_ATTRIBUTES.keys()].map((name) => name.length));

/**
 * Bytes a black tag or attribute name can start with (either case, or a NUL, which the comparison skips): most
 * names in text are rejected on their first byte without building their upper-case form.
 */
function firstBytes(names: Iterable<string>): Uint8Array {
  const set = new Uint8Array(256);
  set[0] = 1;
  for (const name of names) {
    set[name.charCodeAt(0)] = 1;
    set[name.toLowerCase().charCodeAt(0)] = 1;
  }
  return set;
}

const TAG_FIRST_BYTES = firstBytes([...BLACK_TAGS, 'SVG', 'XSL']);
const ATTRIBUTE_FIRST_BYTES = firstBytes([...BLACK_ATTRIBUTES.keys(), 'ON', 'XMLNS', 'XLINK']);

/** URL schemes that run script or show source; "JAVA" covers javascript: and friends. */
const BLACK_URL_PREFIXES: readonly string[] = ['DATA', 'VIEW-SOURCE', 'JAVA', 'VBSCRIPT'];

function upperAscii(code: number): number {
  return code >= 0x61 && code <= 0x7a ? code - 0x20 : code;
}

/**
 * `s[at, at + len)` as upstream's cstrcasecmp_with_null compares it with a list entry: NUL bytes dropped
 * (browsers drop them, so "scr\0ipt" is "script") and ASCII letters upper-cased. Null when it has more than `max`
 * other bytes; a byte >= 0x80 gives null or a form that equals no entry (every entry is ASCII).
 */
function listedForm(s: string, at: number, len: number, max: number): string | null {
  if (len <= max) {
    // The usual short name without NULs: String#toUpperCase upper-cases ASCII letters and maps no other byte to
    // ASCII, except 'ß' to "SS", which the length check catches.
    const name = s.slice(at, at + len);
    if (!name.includes('\0')) {
      const upper = name.toUpperCase();
      return upper.length === len ? upper : null;
    }
  }
  let form = '';
  for (let i = at; i < at + len; i++) {
    const code = s.charCodeAt(i);
    if (code === 0) continue;
    if (code >= 0x80 || form.length === max) return null;
    form += String.fromCharCode(upperAscii(code));
  }
  return form;
}

function startsWithLetters(s: string, at: number, first: string, second: string, third?: string): boolean {
  return (
    upperAscii(s.charCodeAt(at)) === first.charCodeAt(0) &&
    upperAscii(s.charCodeAt(at + 1)) === second.charCodeAt(0) &&
    (third === undefined || upperAscii(s.charCodeAt(at + 2)) === third.charCodeAt(0))
  );
}

function isBlackTag(s: string, at: number, len: number): boolean {
  if (len < 3 || TAG_FIRST_BYTES[s.charCodeAt(at)] !== 1) return false;
  const form = listedForm(s, at, len, MAX_LISTED_NAME);
  if (form !== null && BLACK_TAGS.has(form)) return true;
  return startsWithLetters(s, at, 'S', 'V', 'G') || startsWithLetters(s, at, 'X', 'S', 'L');
}

function blackAttribute(s: string, at: number, len: number): Attr {
  if (len < 2 || ATTRIBUTE_FIRST_BYTES[s.charCodeAt(at)] !== 1) return Attr.None;
  if (len >= 5) {
    // on* event handlers; xmlns and xlink can create arbitrary tags.
    if (startsWithLetters(s, at, 'O', 'N')) return Attr.Black;
    const prefix = listedForm(s, at, 5, 5);
    if (prefix === 'XMLNS' || prefix === 'XLINK') return Attr.Black;
  }
  const form = listedForm(s, at, len, MAX_LISTED_NAME);
  return (form !== null && BLACK_ATTRIBUTES.get(form)) || Attr.None;
}

/** html_decode_char_at's result: the decoded character and how many bytes it took. */
interface Decoded {
  value: number;
  consumed: number;
}

const HEX_VALUE = new Int16Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX_VALUE[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX_VALUE[0x41 + i] = 10 + i;
  HEX_VALUE[0x61 + i] = 10 + i;
}

/** Numeric references past this are not characters: the '&' stands for itself. */
const MAX_CHAR_REFERENCE = 0x1000ff;

/**
 * html_decode_char_at: decodes one byte or numeric character reference (&#65; &#x41;) at `at`, `len` bytes
 * available. Named references are not decoded. Like upstream, the two bytes after "&#" are read even past `len`
 * (they are the input's next bytes, or the NUL after it), and `consumed` may then exceed `len`.
 */
function decodeCharAt(s: string, at: number, len: number, out: Decoded): void {
  out.consumed = 1;
  const first = s.charCodeAt(at);
  if (first !== 0x26 /* & */ || len < 2) {
    out.value = first;
    return;
  }
  out.value = 0x26;
  if (s.charCodeAt(at + 1) !== 0x23 /* # */) return;
  const marker = byteAt(s, at + 2);
  const hex = marker === 0x78 || marker === 0x58; /* x X */
  const base = hex ? 16 : 10;
  const firstDigit = hex ? HEX_VALUE[byteAt(s, at + 3)]! : marker >= 0x30 && marker <= 0x39 ? marker - 0x30 : -1;
  if (firstDigit < 0) return;
  let value = firstDigit;
  let i = hex ? 4 : 3;
  for (; i < len; i++) {
    const code = s.charCodeAt(at + i);
    if (code === 0x3b /* ; */) {
      out.value = value;
      out.consumed = i + 1;
      return;
    }
    const digit = hex ? HEX_VALUE[code]! : code >= 0x30 && code <= 0x39 ? code - 0x30 : -1;
    if (digit < 0) break;
    value = value * base + digit;
    if (value > MAX_CHAR_REFERENCE) return;
  }
  out.value = value;
  out.consumed = i;
}

function byteAt(s: string, i: number): number {
  return i < s.length ? s.charCodeAt(i) : 0;
}

const scratch: Decoded = { value: 0, consumed: 0 };

/**
 * htmlencode_startswith: whether the HTML-decoded `s[at, at + len)` starts with `upper`, case-insensitively,
 * skipping leading white space and control bytes and every NUL and newline. A decoded value above 0xFF compares
 * by its low byte, as upstream's (char) cast does. Where upstream's count of remaining bytes would wrap around
 * (a reference consumed past `len`, above) and read past the token, this stops at the token's end.
 */
function htmlDecodedStartsWith(upper: string, s: string, at: number, len: number): boolean {
  let matched = 0;
  let first = true;
  let pos = at;
  let left = len;
  while (left > 0) {
    if (matched === upper.length) return true;
    decodeCharAt(s, pos, left, scratch);
    pos += scratch.consumed;
    left -= scratch.consumed;
    const value = scratch.value;
    if (first && value <= 32) continue;
    first = false;
    if (value === 0 || value === 10) continue;
    if (upper.charCodeAt(matched) !== (upperAscii(value) & 0xff)) return false;
    matched++;
  }
  return matched === upper.length;
}

function isBlackUrl(s: string, at: number, len: number): boolean {
  // Leading white space, control bytes and (as upstream's signed char test has it) every byte >= 0x7F.
  while (len > 0) {
    const code = s.charCodeAt(at);
    if (code > 32 && code < 127) break;
    at++;
    len--;
  }
  for (const prefix of BLACK_URL_PREFIXES) if (htmlDecodedStartsWith(prefix, s, at, len)) return true;
  return false;
}

/** A comment that IE or an XML parser would act on: '`' (IE ends tags with it), [if, xml, import, entity. */
function isBlackComment(s: string, at: number, len: number): boolean {
  if (s.slice(at, at + len).includes('`')) return true;
  if (len > 3) {
    if (s[at] === '[' && startsWithLetters(s, at + 1, 'I', 'F')) return true;
    if (startsWithLetters(s, at, 'X', 'M', 'L')) return true;
  }
  if (len <= 5) return false;
  const prefix = listedForm(s, at, 6, 6);
  return prefix === 'IMPORT' || prefix === 'ENTITY';
}

/** libinjection_is_xss: whether `input` read from `context` contains XSS. */
export function isXssIn(input: string, context: H5Context): boolean {
  const h = new Html5Tokenizer(input, context);
  let attr: Attr = Attr.None;
  while (h.next()) {
    const at = h.tokenStart;
    const len = h.tokenLength;
    switch (h.tokenType) {
      case H5_TOKEN.Doctype:
        return true;
      case H5_TOKEN.TagNameOpen:
        if (isBlackTag(input, at, len)) return true;
        attr = Attr.None;
        break;
      case H5_TOKEN.AttrName:
        attr = blackAttribute(input, at, len);
        break;
      case H5_TOKEN.AttrValue:
        if (attr === Attr.Black || attr === Attr.Style) return true;
        if (attr === Attr.Url && isBlackUrl(input, at, len)) return true;
        // The value names an attribute (SVG's attributeName="onload").
        if (attr === Attr.Indirect && blackAttribute(input, at, len) !== Attr.None) return true;
        attr = Attr.None;
        break;
      case H5_TOKEN.TagComment:
        if (isBlackComment(input, at, len)) return true;
        attr = Attr.None;
        break;
      default:
        attr = Attr.None;
    }
  }
  return false;
}

const CONTEXTS: readonly H5Context[] = [
  H5_CONTEXT.Data,
  H5_CONTEXT.ValueNoQuote,
  H5_CONTEXT.ValueSingleQuote,
  H5_CONTEXT.ValueDoubleQuote,
  H5_CONTEXT.ValueBackQuote,
];

/** libinjection_xss: whether `input` (a byte string) contains XSS in any of the five contexts. */
export function detectXss(input: string): boolean {
  for (const context of CONTEXTS) if (isXssIn(input, context)) return true;
  return false;
}
