// XML request bodies, for the two XPath targets CRS uses: XML:/* (libmodsecurity: xmlNodeGetContent of the root
// element, i.e. all of its text, CDATA and entity text joined in one value) and XML://@* (each attribute value).
// libmodsecurity hands the body to libxml2's push parser and evaluates XPath over whatever tree it built, so a
// malformed body still yields the text and attributes parsed before the error (besides REQBODY_ERROR); so does
// this parser.
//
// Safety, not a feature list: no entity is ever fetched (libmodsecurity's default, SecXmlExternalEntity Off:
// an external entity reads as empty text); internal entities are expanded within `maxXmlEntityChars` of
// replacement text in all (the billion-laughs bound; libxml2 also refuses dense entity references by a
// heuristic of its own, not copied here) and a bounded nesting; element depth and node count are bounded.
// No DTD validation, no namespace checks (libxml2 does not count namespace errors against well-formedness
// either), no default attributes from ATTLIST.
//
// Encodings as libxml2 reads them: a UTF-8 or UTF-16 byte-order mark, else the XML declaration's encoding
// (UTF-8 by default; ISO-8859-1, US-ASCII and windows-1252 are converted). Output is UTF-8 bytes, as libxml2's is.

import type { BodyLimits } from './limits.ts';

export interface XmlResult {
  /** XML:/* — the root element's text content; null when no root element was parsed. */
  text: string | null;
  /** XML://@* — attribute values in document order (namespace declarations are not attributes). */
  attributes: string[];
  /** Why the body is not well-formed, null when it is. */
  error: string | null;
}

type XmlLimits = Pick<BodyLimits, 'maxXmlDepth' | 'maxXmlNodes' | 'maxXmlEntityChars'>;

export function parseXml(body: string, limits: XmlLimits): XmlResult {
  const decoded = decodeDocument(body);
  const parser = new XmlParser(decoded.text, decoded.cut, limits);
  let error = parser.parseDocument();
  // The encoding problem is where the document stopped; report it rather than the truncation it caused.
  if (decoded.error !== null) error = decoded.error;
  const text = parser.textParts === null ? null : toUtf8Bytes(parser.textParts.join(''));
  return { text, attributes: parser.attributes.map(toUtf8Bytes), error };
}

/** Entity nesting beyond which a document is refused whatever its size (libxml2 stops at 40). */
const MAX_ENTITY_NESTING = 40;

/** Thrown inside the parser only, caught by parseDocument: the first well-formedness error ends the parse. */
class XmlSyntaxError extends Error {}

interface Entity {
  /** Replacement text; null for an external entity (never fetched). */
  value: string | null;
  /** Declared with NDATA: may not be referenced from content. */
  unparsed: boolean;
}

/** XML 1.0 NameStartChar, with surrogates standing for the astral planes it allows. */
const NAME_START = [
  ':A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F',
  '\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\uD800-\\uDFFF',
].join('');
const NAME_CHAR = `${NAME_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040`;
const NAME = new RegExp(`[${NAME_START}][${NAME_CHAR}]*`, 'y');
const SPACE = /[ \t\n]*/y;
const MARKUP = /[<&]/g;
const XML_DECLARATION =
  /^<\?xml\s+version\s*=\s*(["'])1\.[0-9]+\1(?:\s+encoding\s*=\s*(["'])[A-Za-z][A-Za-z0-9._-]*\2)?(?:\s+standalone\s*=\s*(["'])(?:yes|no)\3)?\s*\?>/;
const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };

class XmlParser {
  /** Text of the root element, in pieces; null until the root element exists. */
  textParts: string[] | null = null;
  readonly attributes: string[] = [];
  readonly #source: string;
  /** Why the document was cut short (see Decoded), null when it was not. */
  readonly #cut: Decoded['cut'];
  readonly #limits: XmlLimits;
  readonly #entities = new Map<string, Entity>();
  /** A DTD we did not read (external subset, parameter entities) may declare what we have not seen. */
  #undeclaredAllowed = false;
  readonly #expanding: string[] = [];
  #entityChars = 0;
  #depth = 0;
  #nodes = 0;

  constructor(source: string, cut: Decoded['cut'], limits: XmlLimits) {
    this.#source = source;
    this.#cut = cut;
    this.#limits = limits;
  }

  /** Returns the first well-formedness error, or null. */
  parseDocument(): string | null {
    try {
      this.#document(new Cursor(this.#source));
      return null;
    } catch (error) {
      if (error instanceof XmlSyntaxError) return error.message;
      throw error;
    }
  }

  #document(at: Cursor): void {
    if (/^<\?xml[\s?]/.test(at.source)) {
      const declaration = XML_DECLARATION.exec(at.source);
      if (declaration === null) throw new XmlSyntaxError('malformed XML declaration');
      at.pos = declaration[0].length;
    }
    let doctypeSeen = false;
    for (;;) {
      at.skipSpace();
      if (at.done()) throw new XmlSyntaxError('document is empty: no root element');
      if (at.startsWith('<!--')) this.#comment(at);
      else if (at.startsWith('<?')) this.#processingInstruction(at);
      else if (at.startsWith('<!DOCTYPE') && !doctypeSeen) {
        this.#doctype(at);
        doctypeSeen = true;
      } else if (at.startsWith('<') && at.nameAt(1)) break;
      else throw new XmlSyntaxError('start tag expected');
    }
    this.#content(at, true);
    for (;;) {
      at.skipSpace();
      if (at.done()) return;
      if (at.startsWith('<!--')) this.#comment(at);
      else if (at.startsWith('<?')) this.#processingInstruction(at);
      else throw new XmlSyntaxError('extra content at the end of the document');
    }
  }

  /**
   * Elements, text and references until the element open at the start closes (`root`: the cursor is at the
   * root's start tag) or, for an entity's replacement text, until its end (which must close all it opened).
   */
  #content(at: Cursor, root: boolean): void {
    const open: string[] = [];
    // Entities' elements belong to the entity, not the tree: XML://@* does not see their attributes.
    const recordAttributes = this.#expanding.length === 0;
    if (root) {
      this.#startTag(at, open, recordAttributes);
      this.textParts = [];
    }
    while (!root || open.length > 0) {
      const next = at.indexOfMarkup();
      const run = next < at.source.length ? at.source.slice(at.pos, next) : this.#finalRun(at, next);
      if (run !== '') this.#text(run);
      at.pos = next;
      if (at.done()) {
        if (open.length > 0) throw new XmlSyntaxError(`premature end of data in tag ${open[open.length - 1]}`);
        return;
      }
      if (at.startsWith('&')) this.#reference(at);
      else if (at.startsWith('</')) this.#endTag(at, open);
      else if (at.startsWith('<!--')) this.#comment(at);
      else if (at.startsWith('<![CDATA[')) this.#cdata(at);
      else if (at.startsWith('<?')) this.#processingInstruction(at);
      else this.#startTag(at, open, recordAttributes);
    }
  }

  /**
   * What of a text run reaching the end of an unfinished document is content, as libxml2's push parser has it.
   * Its ASCII fast path passes text on when it meets a non-ASCII or non-XML character, its slower path when it
   * meets a non-XML character; text in hand when an undecodable byte stops it is lost. And at a plain end it
   * never reads a run shorter than two bytes.
   */
  #finalRun(at: Cursor, end: number): string {
    const run = at.source.slice(at.pos, end);
    if (at.source !== this.#source || this.#cut === 'char') return run;
    if (this.#cut === 'encoding') return asciiPrefix(run);
    return Buffer.byteLength(run) >= 2 ? run : '';
  }

  #text(text: string): void {
    const bad = text.indexOf(']]>');
    if (bad !== -1) {
      // Refused by whichever path libxml2 was on; only text the fast path had already passed on survives.
      const passed = asciiPrefix(text);
      if (passed.length < bad) this.textParts!.push(passed);
      throw new XmlSyntaxError("sequence ']]>' not allowed in content");
    }
    this.#count();
    this.textParts!.push(text);
  }

  #startTag(at: Cursor, open: string[], recordAttributes: boolean): void {
    at.pos++;
    const name = at.name();
    if (name === null) throw new XmlSyntaxError('invalid element name');
    const values: string[] = [];
    const seen = new Set<string>();
    for (;;) {
      const spaced = at.skipSpace();
      if (at.startsWith('/>') || at.startsWith('>')) break;
      if (!spaced) throw new XmlSyntaxError('attributes construct error');
      const attribute = at.name();
      if (attribute === null) throw new XmlSyntaxError('attributes construct error');
      at.skipSpace();
      if (!at.startsWith('=')) throw new XmlSyntaxError(`specification mandates value for attribute ${attribute}`);
      at.pos++;
      at.skipSpace();
      const value = this.#attributeValue(at);
      if (seen.has(attribute)) throw new XmlSyntaxError(`attribute ${attribute} redefined`);
      seen.add(attribute);
      if (attribute !== 'xmlns' && !attribute.startsWith('xmlns:')) values.push(value);
    }
    this.#count();
    if (++this.#depth > this.#limits.maxXmlDepth) {
      throw new XmlSyntaxError(`excessive depth in document: ${this.#limits.maxXmlDepth}`);
    }
    for (const value of values) {
      this.#count();
      if (recordAttributes) this.attributes.push(value);
    }
    if (at.startsWith('/>')) {
      at.pos += 2;
      this.#depth--;
    } else {
      at.pos++;
      open.push(name);
    }
  }

  #endTag(at: Cursor, open: string[]): void {
    at.pos += 2;
    const name = at.name();
    const expected = open.pop();
    if (name === null || name !== expected) {
      const problem = expected === undefined ? 'end tag without start tag' : `opening and ending tag mismatch: ${expected}`;
      throw new XmlSyntaxError(problem);
    }
    at.skipSpace();
    if (!at.startsWith('>')) throw new XmlSyntaxError(`expected '>' after end tag ${name}`);
    at.pos++;
    this.#depth--;
  }

  /** A quoted attribute value, normalized: whitespace characters become spaces, references are replaced. */
  #attributeValue(at: Cursor): string {
    const quote = at.source[at.pos];
    if (quote !== '"' && quote !== "'") throw new XmlSyntaxError('attribute value expected');
    const end = at.source.indexOf(quote, at.pos + 1);
    if (end === -1) throw new XmlSyntaxError('unterminated attribute value');
    const raw = at.source.slice(at.pos + 1, end);
    at.pos = end + 1;
    return this.#normalizeAttribute(raw);
  }

  /**
   * Replaces references in an attribute value and, in the value as written (`literal`), turns each whitespace
   * character into a space. libxml2 leaves whitespace from an entity's replacement text as it is.
   */
  #normalizeAttribute(raw: string, literal = true): string {
    if (raw.includes('<')) throw new XmlSyntaxError("unescaped '<' not allowed in attribute values");
    const spaces = (text: string): string => (literal ? text.replace(/[\t\n]/g, ' ') : text);
    let out = '';
    let run = 0;
    for (let amp = raw.indexOf('&'); amp !== -1; amp = raw.indexOf('&', run)) {
      out += spaces(raw.slice(run, amp));
      const semicolon = raw.indexOf(';', amp);
      if (semicolon === -1) throw new XmlSyntaxError("EntityRef: expecting ';'");
      const reference = raw.slice(amp + 1, semicolon);
      const predefined = PREDEFINED[reference];
      if (reference.startsWith('#')) {
        out += characterReference(reference);
      } else if (predefined !== undefined) {
        out += predefined;
      } else {
        const replacement = this.#entityText(reference, false);
        if (replacement !== null) {
          out += this.#withEntity(reference, replacement, () => this.#normalizeAttribute(replacement, false));
        }
      }
      run = semicolon + 1;
    }
    return out + spaces(raw.slice(run));
  }

  #reference(at: Cursor): void {
    const semicolon = at.source.indexOf(';', at.pos);
    const reference = semicolon === -1 ? '' : at.source.slice(at.pos + 1, semicolon);
    if (reference === '' || (!reference.startsWith('#') && !isName(reference))) {
      throw new XmlSyntaxError("EntityRef: expecting ';'");
    }
    at.pos = semicolon + 1;
    if (reference.startsWith('#')) {
      this.#count();
      this.textParts!.push(characterReference(reference));
      return;
    }
    const predefined = PREDEFINED[reference];
    if (predefined !== undefined) {
      this.#count();
      this.textParts!.push(predefined);
      return;
    }
    const replacement = this.#entityText(reference, true);
    if (replacement === null) return;
    this.#withEntity(reference, replacement, () => this.#content(new Cursor(replacement), false));
  }

  /** The replacement text of entity `name`, or null for one that reads as nothing (never fetched). */
  #entityText(name: string, inContent: boolean): string | null {
    if (!isName(name)) throw new XmlSyntaxError("EntityRef: expecting ';'");
    const entity = this.#entities.get(name);
    if (entity === undefined) {
      if (this.#undeclaredAllowed) return null;
      throw new XmlSyntaxError(`entity '${name}' not defined`);
    }
    if (entity.unparsed) throw new XmlSyntaxError(`entity reference to unparsed entity ${name}`);
    if (entity.value === null) {
      if (inContent) return null;
      throw new XmlSyntaxError(`attribute references external entity '${name}'`);
    }
    return entity.value;
  }

  /** Runs `expand` over an entity's replacement text, within the nesting and total expansion bounds. */
  #withEntity<T>(name: string, replacement: string, expand: () => T): T {
    if (this.#expanding.includes(name)) throw new XmlSyntaxError('detected an entity reference loop');
    if (this.#expanding.length >= MAX_ENTITY_NESTING) throw new XmlSyntaxError('entity nesting too deep');
    this.#entityChars += replacement.length;
    if (this.#entityChars > this.#limits.maxXmlEntityChars) {
      throw new XmlSyntaxError(`entity expansion beyond ${this.#limits.maxXmlEntityChars} characters`);
    }
    this.#expanding.push(name);
    const result = expand();
    this.#expanding.pop();
    return result;
  }

  #comment(at: Cursor): void {
    const dashes = at.source.indexOf('--', at.pos + 4);
    if (dashes === -1) throw new XmlSyntaxError('comment not terminated');
    if (at.source[dashes + 2] !== '>') throw new XmlSyntaxError('double hyphen within comment');
    at.pos = dashes + 3;
  }

  #cdata(at: Cursor): void {
    const end = at.source.indexOf(']]>', at.pos + 9);
    if (end === -1) throw new XmlSyntaxError('CData section not finished');
    this.#count();
    this.textParts!.push(at.source.slice(at.pos + 9, end));
    at.pos = end + 3;
  }

  #processingInstruction(at: Cursor): void {
    at.pos += 2;
    const target = at.name();
    if (target === null) throw new XmlSyntaxError('processing instruction target expected');
    if (target.toLowerCase() === 'xml') throw new XmlSyntaxError('XML declaration allowed only at the start of the document');
    const end = at.source.indexOf('?>', at.pos);
    if (end === -1) throw new XmlSyntaxError('processing instruction not terminated');
    if (end > at.pos && !at.skipSpace()) throw new XmlSyntaxError('space required after the processing instruction target');
    at.pos = end + 2;
  }

  /** <!DOCTYPE name ExternalID? [internal subset]?>: only entity declarations are kept. */
  #doctype(at: Cursor): void {
    at.pos += 9;
    if (!at.skipSpace() || at.name() === null) throw new XmlSyntaxError('DOCTYPE improperly formed');
    at.skipSpace();
    if (at.startsWith('SYSTEM') || at.startsWith('PUBLIC')) {
      this.#externalId(at);
      this.#undeclaredAllowed = true;
      at.skipSpace();
    }
    if (at.startsWith('[')) {
      at.pos++;
      this.#internalSubset(at);
      at.skipSpace();
    }
    if (!at.startsWith('>')) throw new XmlSyntaxError('DOCTYPE improperly terminated');
    at.pos++;
  }

  #internalSubset(at: Cursor): void {
    for (;;) {
      at.skipSpace();
      if (at.done()) throw new XmlSyntaxError('internal subset not terminated');
      if (at.startsWith(']')) {
        at.pos++;
        return;
      }
      if (at.startsWith('<!ENTITY')) this.#entityDeclaration(at);
      else if (at.startsWith('<!--')) this.#comment(at);
      else if (at.startsWith('<?')) this.#processingInstruction(at);
      else if (at.startsWith('<!')) at.skipDeclaration();
      else if (at.startsWith('%')) {
        // A parameter entity we do not expand may declare anything.
        const semicolon = at.source.indexOf(';', at.pos);
        if (semicolon === -1) throw new XmlSyntaxError("PEReference: expecting ';'");
        at.pos = semicolon + 1;
        this.#undeclaredAllowed = true;
      } else throw new XmlSyntaxError('internal subset: markup declaration expected');
    }
  }

  #entityDeclaration(at: Cursor): void {
    at.pos += 8;
    if (!at.skipSpace()) throw new XmlSyntaxError('space required after <!ENTITY');
    const parameter = at.startsWith('%');
    if (parameter) {
      at.pos++;
      at.skipSpace();
    }
    const name = at.name();
    if (name === null || !at.skipSpace()) throw new XmlSyntaxError('entity name expected');
    let entity: Entity;
    if (at.startsWith('"') || at.startsWith("'")) {
      entity = { value: this.#entityValue(at), unparsed: false };
    } else {
      this.#externalId(at);
      const spaced = at.skipSpace();
      const unparsed = spaced && at.startsWith('NDATA');
      if (unparsed) {
        at.pos += 5;
        if (!at.skipSpace() || at.name() === null) throw new XmlSyntaxError('NDATA name expected');
      }
      entity = { value: null, unparsed };
    }
    at.skipSpace();
    if (!at.startsWith('>')) throw new XmlSyntaxError('entity declaration not terminated');
    at.pos++;
    // The first declaration of an entity binds (XML 1.0 §4.2); parameter entities are not expanded here.
    if (!parameter && !this.#entities.has(name)) this.#entities.set(name, entity);
  }

  /** A quoted entity value: character references are replaced now, entity references when it is used. */
  #entityValue(at: Cursor): string {
    const quote = at.source[at.pos]!;
    const end = at.source.indexOf(quote, at.pos + 1);
    if (end === -1) throw new XmlSyntaxError('entity value not terminated');
    const raw = at.source.slice(at.pos + 1, end);
    at.pos = end + 1;
    if (raw.includes('%')) throw new XmlSyntaxError('PEReferences forbidden in internal subset');
    return raw.replace(/&#[^;]*;/g, (reference) => characterReference(reference.slice(1, -1)));
  }

  #externalId(at: Cursor): void {
    const kind = at.source.slice(at.pos, at.pos + 6);
    at.pos += 6;
    const literals = kind === 'PUBLIC' ? 2 : 1;
    for (let i = 0; i < literals; i++) {
      if (!at.skipSpace()) throw new XmlSyntaxError(`space required after ${kind}`);
      const quote = at.source[at.pos];
      const end = quote === '"' || quote === "'" ? at.source.indexOf(quote, at.pos + 1) : -1;
      if (end === -1) throw new XmlSyntaxError(`${kind} literal expected`);
      at.pos = end + 1;
    }
  }

  #count(): void {
    if (++this.#nodes > this.#limits.maxXmlNodes) throw new XmlSyntaxError(`more than ${this.#limits.maxXmlNodes} nodes`);
  }
}

/** A position in a document or in an entity's replacement text. */
class Cursor {
  readonly source: string;
  pos = 0;

  constructor(source: string) {
    this.source = source;
  }

  done(): boolean {
    return this.pos >= this.source.length;
  }

  startsWith(text: string): boolean {
    return this.source.startsWith(text, this.pos);
  }

  /** Skips XML whitespace; says whether there was any. */
  skipSpace(): boolean {
    SPACE.lastIndex = this.pos;
    SPACE.test(this.source);
    const moved = SPACE.lastIndex > this.pos;
    this.pos = SPACE.lastIndex;
    return moved;
  }

  nameAt(pos: number): boolean {
    NAME.lastIndex = this.pos + pos;
    return NAME.test(this.source);
  }

  /** Reads a Name at the cursor, or returns null without moving. */
  name(): string | null {
    NAME.lastIndex = this.pos;
    const match = NAME.exec(this.source);
    if (match === null) return null;
    this.pos = NAME.lastIndex;
    return match[0];
  }

  /** The next `<` or `&` at or after the cursor, or the end. */
  indexOfMarkup(): number {
    MARKUP.lastIndex = this.pos;
    return MARKUP.test(this.source) ? MARKUP.lastIndex - 1 : this.source.length;
  }

  /** Steps over a markup declaration we do not interpret (<!ELEMENT …>, <!ATTLIST …>, <!NOTATION …>). */
  skipDeclaration(): void {
    let quote = '';
    for (let i = this.pos + 2; i < this.source.length; i++) {
      const c = this.source[i]!;
      if (quote !== '') {
        if (c === quote) quote = '';
      } else if (c === '"' || c === "'") {
        quote = c;
      } else if (c === '>') {
        this.pos = i + 1;
        return;
      }
    }
    throw new XmlSyntaxError('markup declaration not terminated');
  }
}

/** The text before its first non-ASCII character. */
function asciiPrefix(text: string): string {
  const end = text.search(/[^\x00-\x7f]/);
  return end === -1 ? text : text.slice(0, end);
}

function isName(text: string): boolean {
  NAME.lastIndex = 0;
  return NAME.test(text) && NAME.lastIndex === text.length;
}

/** `#65` or `#x41` (without & and ;) to its character; a reference to a non-Char is an error. */
function characterReference(reference: string): string {
  const hex = reference.startsWith('#x');
  const digits = reference.slice(hex ? 2 : 1);
  if (!(hex ? /^[0-9a-fA-F]{1,8}$/ : /^[0-9]{1,10}$/).test(digits)) throw new XmlSyntaxError('CharRef: invalid value');
  const code = Number.parseInt(digits, hex ? 16 : 10);
  if (!isXmlChar(code)) throw new XmlSyntaxError(`CharRef: invalid xmlChar value ${code}`);
  return String.fromCodePoint(code);
}

/** XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]. */
function isXmlChar(code: number): boolean {
  if (code === 0x9 || code === 0xa || code === 0xd) return true;
  return (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
}

/** Any character outside XML 1.0's Char production (surrogate pairs are fine, lone ones are not). */
const NOT_XML_CHAR =
  /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\uD800-\uDBFF\uDC00-\uDFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

interface Decoded {
  /** The document as Unicode text, line ends normalized, cut at the first character that cannot be read. */
  text: string;
  /** Why the text was cut short, null if it was not. */
  error: string | null;
  /** Where it was cut: at bytes the encoding cannot read, or at a character XML does not allow. */
  cut: 'encoding' | 'char' | null;
}

/** Bytes to text the way libxml2 reads them (see the file comment), stopping at the first unreadable byte. */
function decodeDocument(body: string): Decoded {
  let text: string;
  let error: string | null = null;
  if (body.startsWith('\xef\xbb\xbf')) {
    ({ text, error } = decodeUtf8(body.slice(3)));
  } else if (body.startsWith('\xfe\xff') || body.startsWith('\xff\xfe')) {
    text = new TextDecoder(body.startsWith('\xfe\xff') ? 'utf-16be' : 'utf-16le').decode(Buffer.from(body.slice(2), 'latin1'));
  } else {
    const declared = /^<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(body)?.[1]?.toLowerCase();
    if (declared === undefined || declared === 'utf-8' || declared === 'utf8') {
      ({ text, error } = decodeUtf8(body));
    } else if (['iso-8859-1', 'iso8859-1', 'iso_8859-1', 'latin1'].includes(declared)) {
      text = body;
    } else if (declared === 'us-ascii' || declared === 'ascii') {
      const high = body.search(NON_ASCII);
      text = high === -1 ? body : body.slice(0, high);
      if (high !== -1) error = 'input is not proper ASCII';
    } else if (declared === 'windows-1252' || declared === 'cp1252') {
      text = new TextDecoder('windows-1252').decode(Buffer.from(body, 'latin1'));
    } else {
      return { text: '', error: `unsupported encoding ${declared}`, cut: 'encoding' };
    }
  }
  let cut: Decoded['cut'] = error === null ? null : 'encoding';
  const bad = NOT_XML_CHAR.exec(text);
  if (bad !== null) {
    cut ??= 'char';
    text = text.slice(0, bad.index);
    error ??= `invalid character U+${(bad[0].codePointAt(0) ?? 0).toString(16).toUpperCase()} in document`;
  }
  return { text: text.replace(/\r\n?/g, '\n'), error, cut };
}

function decodeUtf8(body: string): { text: string; error: string | null } {
  // ASCII is its own UTF-8, and most documents are ASCII.
  if (!NON_ASCII.test(body)) return { text: body, error: null };
  const bytes = Buffer.from(body, 'latin1');
  const valid = validUtf8Length(bytes);
  return { text: bytes.toString('utf8', 0, valid), error: valid === bytes.length ? null : 'input is not proper UTF-8' };
}

/** Length of the longest prefix that is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
function validUtf8Length(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    if (lead < 0x80) {
      i++;
      continue;
    }
    let follow: number;
    let min: number;
    if (lead >= 0xc2 && lead <= 0xdf) [follow, min] = [1, 0x80];
    else if (lead >= 0xe0 && lead <= 0xef) [follow, min] = [2, 0x800];
    else if (lead >= 0xf0 && lead <= 0xf4) [follow, min] = [3, 0x10000];
    else return i;
    if (i + follow >= bytes.length) return i;
    let code = lead & (0x3f >> follow);
    for (let k = 1; k <= follow; k++) {
      const next = bytes[i + k]!;
      if ((next & 0xc0) !== 0x80) return i;
      code = (code << 6) | (next & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return i;
    i += follow + 1;
  }
  return i;
}

/** Unicode text to the UTF-8 byte string the WAF inspects. */
function toUtf8Bytes(text: string): string {
  return NON_ASCII.test(text) ? Buffer.from(text, 'utf8').toString('latin1') : text;
}

const NON_ASCII = /[^\x00-\x7f]/;
