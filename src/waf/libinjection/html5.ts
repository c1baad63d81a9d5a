// libinjection's HTML5 tokenizer (libinjection_html5.c, as bundled with ModSecurity v3.0.9): a reduced version of
// the WHATWG tokenizer states that yields tag names, attribute names and values, comments and doctypes, with the
// non-standard quirks upstream added for old browsers (NULs in tag names, back-quoted values, <% %> comments).
// It can start inside an attribute value, which is how ./xss.ts tests input that lands in one. Linear: every
// state consumes what it scans.

/** What a token is (upstream's enum html5_type, same order). */
export const H5_TOKEN = {
  DataText: 0,
  TagNameOpen: 1,
  TagNameClose: 2,
  TagNameSelfClose: 3,
  TagData: 4,
  TagClose: 5,
  AttrName: 6,
  AttrValue: 7,
  TagComment: 8,
  Doctype: 9,
} as const;
export type H5TokenType = (typeof H5_TOKEN)[keyof typeof H5_TOKEN];

/** Where the input is assumed to start (upstream's enum html5_flags, same order). */
export const H5_CONTEXT = {
  Data: 0,
  ValueNoQuote: 1,
  ValueSingleQuote: 2,
  ValueDoubleQuote: 3,
  ValueBackQuote: 4,
} as const;
export type H5Context = (typeof H5_CONTEXT)[keyof typeof H5_CONTEXT];

/** A state reads from `pos`, sets the token and the next state, and says whether it produced a token. */
type State = (h: Html5Tokenizer) => boolean;

/** The end of input as upstream's h5_skip_white reports it. */
const EOF = -1;

/** One pass over an input from a starting context (upstream's h5_state_t); the current token is a slice of it. */
export class Html5Tokenizer {
  readonly input: string;
  pos = 0;
  /** Inside "</": the next tag name closes a tag. */
  isClose = false;
  state: State;
  tokenStart = 0;
  tokenLength = 0;
  tokenType: H5TokenType = H5_TOKEN.DataText;

  constructor(input: string, context: H5Context) {
    this.input = input;
    this.state = INITIAL_STATE[context];
  }

  /** Advances to the next token; false when there is none. */
  next(): boolean {
    return this.state(this);
  }

  token(): string {
    return this.input.slice(this.tokenStart, this.tokenStart + this.tokenLength);
  }

  setToken(type: H5TokenType, start: number, length: number): void {
    this.tokenType = type;
    this.tokenStart = start;
    this.tokenLength = length;
  }
}

/** h5_is_white: upstream's strchr(" \t\n\v\f\r", ch) also finds the string's terminating NUL. */
function isWhite(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d) || code === 0;
}

/**
 * h5_skip_white: skips white space and NULs, returning the next byte or EOF. Upstream returns the byte as a
 * signed char, so 0xFF reads as EOF (-1): kept, since detection depends on it.
 */
function skipWhite(h: Html5Tokenizer): number {
  const s = h.input;
  while (h.pos < s.length) {
    const code = s.charCodeAt(h.pos);
    if (code === 0 || code === 0x20 || (code >= 0x09 && code <= 0x0d)) h.pos++;
    else return code === 0xff ? EOF : code;
  }
  return EOF;
}

function isAsciiLetter(code: number): boolean {
  return (code >= 0x61 && code <= 0x7a) || (code >= 0x41 && code <= 0x5a);
}

const stateEof: State = () => false;

const stateData: State = (h) => {
  const s = h.input;
  const lt = s.indexOf('<', h.pos);
  if (lt < 0) {
    h.setToken(H5_TOKEN.DataText, h.pos, s.length - h.pos);
    h.state = stateEof;
    return h.tokenLength !== 0;
  }
  h.setToken(H5_TOKEN.DataText, h.pos, lt - h.pos);
  h.pos = lt + 1;
  h.state = stateTagOpen;
  return h.tokenLength === 0 ? stateTagOpen(h) : true;
};

/** 12.2.4.8 tag open state: after '<'. */
const stateTagOpen: State = (h) => {
  const s = h.input;
  if (h.pos >= s.length) return false;
  const code = s.charCodeAt(h.pos);
  if (code === 0x21 /* ! */) {
    h.pos++;
    return stateMarkupDeclarationOpen(h);
  }
  if (code === 0x2f /* / */) {
    h.pos++;
    h.isClose = true;
    return stateEndTagOpen(h);
  }
  if (code === 0x3f /* ? */) {
    h.pos++;
    return stateBogusComment(h);
  }
  if (code === 0x25 /* % */) {
    // <% ... %>: not in the spec, but IE <= 9 and Safari < 4.0.3 treat it as a comment.
    h.pos++;
    return stateBogusComment2(h);
  }
  // IE ignores NULs, so "<\0script" is a tag.
  if (isAsciiLetter(code) || code === 0) return stateTagName(h);
  if (h.pos === 0) return stateData(h);
  h.setToken(H5_TOKEN.DataText, h.pos - 1, 1);
  h.state = stateData;
  return true;
};

/** 12.2.4.9 end tag open state: after "</". */
const stateEndTagOpen: State = (h) => {
  const s = h.input;
  if (h.pos >= s.length) return false;
  const code = s.charCodeAt(h.pos);
  if (code === 0x3e /* > */) return stateData(h);
  if (isAsciiLetter(code)) return stateTagName(h);
  h.isClose = false;
  return stateBogusComment(h);
};

/** The '>' that ends a start tag. */
const stateTagNameClose: State = (h) => {
  h.isClose = false;
  h.setToken(H5_TOKEN.TagNameClose, h.pos, 1);
  h.pos++;
  h.state = h.pos < h.input.length ? stateData : stateEof;
  return true;
};

/** 12.2.4.10 tag name state. */
const stateTagName: State = (h) => {
  const s = h.input;
  let pos = h.pos;
  while (pos < s.length) {
    const code = s.charCodeAt(pos);
    if (code === 0) {
      pos++;
    } else if (isWhite(code)) {
      h.setToken(H5_TOKEN.TagNameOpen, h.pos, pos - h.pos);
      h.pos = pos + 1;
      h.state = stateBeforeAttributeName;
      return true;
    } else if (code === 0x2f /* / */) {
      h.setToken(H5_TOKEN.TagNameOpen, h.pos, pos - h.pos);
      h.pos = pos + 1;
      h.state = stateSelfClosingStartTag;
      return true;
    } else if (code === 0x3e /* > */) {
      if (h.isClose) {
        h.setToken(H5_TOKEN.TagClose, h.pos, pos - h.pos);
        h.pos = pos + 1;
        h.isClose = false;
        h.state = stateData;
      } else {
        h.setToken(H5_TOKEN.TagNameOpen, h.pos, pos - h.pos);
        h.pos = pos;
        h.state = stateTagNameClose;
      }
      return true;
    } else {
      pos++;
    }
  }
  h.setToken(H5_TOKEN.TagNameOpen, h.pos, s.length - h.pos);
  h.state = stateEof;
  return true;
};

/** 12.2.4.34 before attribute name state. */
const stateBeforeAttributeName: State = (h) => {
  const code = skipWhite(h);
  if (code === EOF) return false;
  if (code === 0x2f /* / */) {
    h.pos++;
    return stateSelfClosingStartTag(h);
  }
  if (code === 0x3e /* > */) {
    h.state = stateData;
    h.setToken(H5_TOKEN.TagNameClose, h.pos, 1);
    h.pos++;
    return true;
  }
  return stateAttributeName(h);
};

/** 12.2.4.35 attribute name state: the name's first byte is taken whatever it is. */
const stateAttributeName: State = (h) => {
  const s = h.input;
  let pos = h.pos + 1;
  while (pos < s.length) {
    const code = s.charCodeAt(pos);
    let next: State | null = null;
    let resume = pos + 1;
    if (isWhite(code)) next = stateAfterAttributeName;
    else if (code === 0x2f /* / */) next = stateSelfClosingStartTag;
    else if (code === 0x3d /* = */) next = stateBeforeAttributeValue;
    else if (code === 0x3e /* > */) {
      next = stateTagNameClose;
      resume = pos;
    }
    if (next !== null) {
      h.setToken(H5_TOKEN.AttrName, h.pos, pos - h.pos);
      h.state = next;
      h.pos = resume;
      return true;
    }
    pos++;
  }
  h.setToken(H5_TOKEN.AttrName, h.pos, s.length - h.pos);
  h.state = stateEof;
  h.pos = s.length;
  return true;
};

/** 12.2.4.36 after attribute name state. */
const stateAfterAttributeName: State = (h) => {
  const code = skipWhite(h);
  if (code === EOF) return false;
  if (code === 0x2f /* / */) {
    h.pos++;
    return stateSelfClosingStartTag(h);
  }
  if (code === 0x3d /* = */) {
    h.pos++;
    return stateBeforeAttributeValue(h);
  }
  if (code === 0x3e /* > */) return stateTagNameClose(h);
  return stateAttributeName(h);
};

/** 12.2.4.37 before attribute value state; a back-quoted value is IE-only. */
const stateBeforeAttributeValue: State = (h) => {
  const code = skipWhite(h);
  if (code === EOF) {
    h.state = stateEof;
    return false;
  }
  if (code === 0x22 /* " */) return stateAttributeValueDoubleQuote(h);
  if (code === 0x27 /* ' */) return stateAttributeValueSingleQuote(h);
  if (code === 0x60 /* ` */) return stateAttributeValueBackQuote(h);
  return stateAttributeValueNoQuote(h);
};

/**
 * A quoted value. At pos 0 the tokenizer started inside the value (a quote context), so there is no opening
 * quote to skip: input "'><foo" then gives an empty value.
 */
function attributeValueQuoted(h: Html5Tokenizer, quote: string): boolean {
  const s = h.input;
  if (h.pos > 0) h.pos++;
  const end = s.indexOf(quote, h.pos);
  if (end < 0) {
    h.setToken(H5_TOKEN.AttrValue, h.pos, s.length - h.pos);
    h.state = stateEof;
  } else {
    h.setToken(H5_TOKEN.AttrValue, h.pos, end - h.pos);
    h.state = stateAfterAttributeValueQuoted;
    h.pos += h.tokenLength + 1;
  }
  return true;
}

const stateAttributeValueDoubleQuote: State = (h) => attributeValueQuoted(h, '"');
const stateAttributeValueSingleQuote: State = (h) => attributeValueQuoted(h, "'");
const stateAttributeValueBackQuote: State = (h) => attributeValueQuoted(h, '`');

/** 12.2.4.40 attribute value (unquoted) state. */
const stateAttributeValueNoQuote: State = (h) => {
  const s = h.input;
  let pos = h.pos;
  while (pos < s.length) {
    const code = s.charCodeAt(pos);
    if (isWhite(code)) {
      h.setToken(H5_TOKEN.AttrValue, h.pos, pos - h.pos);
      h.pos = pos + 1;
      h.state = stateBeforeAttributeName;
      return true;
    }
    if (code === 0x3e /* > */) {
      h.setToken(H5_TOKEN.AttrValue, h.pos, pos - h.pos);
      h.pos = pos;
      h.state = stateTagNameClose;
      return true;
    }
    pos++;
  }
  h.state = stateEof;
  h.setToken(H5_TOKEN.AttrValue, h.pos, s.length - h.pos);
  return true;
};

/** 12.2.4.41 after attribute value (quoted) state. */
const stateAfterAttributeValueQuoted: State = (h) => {
  const s = h.input;
  if (h.pos >= s.length) return false;
  const code = s.charCodeAt(h.pos);
  if (isWhite(code)) {
    h.pos++;
    return stateBeforeAttributeName(h);
  }
  if (code === 0x2f /* / */) {
    h.pos++;
    return stateSelfClosingStartTag(h);
  }
  if (code === 0x3e /* > */) {
    h.setToken(H5_TOKEN.TagNameClose, h.pos, 1);
    h.pos++;
    h.state = stateData;
    return true;
  }
  return stateBeforeAttributeName(h);
};

/** 12.2.4.43 self-closing start tag state: after '/' in a tag. */
const stateSelfClosingStartTag: State = (h) => {
  const s = h.input;
  if (h.pos >= s.length) return false;
  if (s.charCodeAt(h.pos) === 0x3e /* > */) {
    h.setToken(H5_TOKEN.TagNameSelfClose, h.pos - 1, 2);
    h.state = stateData;
    h.pos++;
    return true;
  }
  return stateBeforeAttributeName(h);
};

/** 12.2.4.44 bogus comment state: up to the next '>'. */
const stateBogusComment: State = (h) => {
  const s = h.input;
  const end = s.indexOf('>', h.pos);
  if (end < 0) {
    h.setToken(H5_TOKEN.TagComment, h.pos, s.length - h.pos);
    h.pos = s.length;
    h.state = stateEof;
  } else {
    h.setToken(H5_TOKEN.TagComment, h.pos, end - h.pos);
    h.pos = end + 1;
    h.state = stateData;
  }
  return true;
};

/** <% ... %> comments. */
const stateBogusComment2: State = (h) => {
  const s = h.input;
  const end = s.indexOf('%>', h.pos);
  if (end < 0) {
    h.setToken(H5_TOKEN.TagComment, h.pos, s.length - h.pos);
    h.pos = s.length;
    h.state = stateEof;
    return true;
  }
  h.setToken(H5_TOKEN.TagComment, h.pos, end - h.pos);
  h.pos = end + 2;
  h.state = stateData;
  return true;
};

/** ASCII case-insensitive (a non-unicode /i never folds a byte >= 0x80 to ASCII), anchored where it is set. */
const DOCTYPE = /doctype/iy;

/** 12.2.4.45 markup declaration open state: after "<!". */
const stateMarkupDeclarationOpen: State = (h) => {
  const s = h.input;
  const remaining = s.length - h.pos;
  DOCTYPE.lastIndex = h.pos;
  if (DOCTYPE.test(s)) return stateDoctype(h);
  if (remaining >= 7 && s.startsWith('[CDATA[', h.pos)) {
    h.pos += 7;
    return stateCdata(h);
  }
  if (remaining >= 2 && s.startsWith('--', h.pos)) {
    h.pos += 2;
    return stateComment(h);
  }
  return stateBogusComment(h);
};

/**
 * 12.2.4.48-51 comment states, simplified as upstream does: a comment ends at EOF, "-->" or "--!>", with NULs
 * ignored between the two dashes.
 */
const stateComment: State = (h) => {
  const s = h.input;
  let pos = h.pos;
  for (;;) {
    const dash = s.indexOf('-', pos);
    // Nothing found, or fewer than three bytes left from the dash.
    if (dash < 0 || dash > s.length - 3) return commentToEnd(h);
    let offset = 1;
    while (dash + offset < s.length && s.charCodeAt(dash + offset) === 0) offset++;
    if (dash + offset === s.length) return commentToEnd(h);
    const second = s[dash + offset];
    if (second !== '-' && second !== '!') {
      pos = dash + 1;
      continue;
    }
    offset++;
    if (dash + offset === s.length) return commentToEnd(h);
    if (s[dash + offset] !== '>') {
      pos = dash + 1;
      continue;
    }
    offset++;
    h.setToken(H5_TOKEN.TagComment, h.pos, dash - h.pos);
    h.pos = dash + offset;
    h.state = stateData;
    return true;
  }
};

function commentToEnd(h: Html5Tokenizer): boolean {
  h.state = stateEof;
  h.setToken(H5_TOKEN.TagComment, h.pos, h.input.length - h.pos);
  return true;
}

/** <![CDATA[ ... ]]> is text. */
const stateCdata: State = (h) => {
  const s = h.input;
  let pos = h.pos;
  for (;;) {
    const bracket = s.indexOf(']', pos);
    if (bracket < 0 || bracket > s.length - 3) {
      h.state = stateEof;
      h.setToken(H5_TOKEN.DataText, h.pos, s.length - h.pos);
      return true;
    }
    if (s[bracket + 1] === ']' && s[bracket + 2] === '>') {
      h.state = stateData;
      h.setToken(H5_TOKEN.DataText, h.pos, bracket - h.pos);
      h.pos = bracket + 3;
      return true;
    }
    pos = bracket + 1;
  }
};

/** 8.2.4.52 doctype state: up to the next '>'. */
const stateDoctype: State = (h) => {
  const s = h.input;
  const end = s.indexOf('>', h.pos);
  if (end < 0) {
    h.setToken(H5_TOKEN.Doctype, h.pos, s.length - h.pos);
    h.state = stateEof;
  } else {
    h.setToken(H5_TOKEN.Doctype, h.pos, end - h.pos);
    h.pos = end + 1;
    h.state = stateData;
  }
  return true;
};

const INITIAL_STATE: Readonly<Record<H5Context, State>> = {
  [H5_CONTEXT.Data]: stateData,
  [H5_CONTEXT.ValueNoQuote]: stateBeforeAttributeName,
  [H5_CONTEXT.ValueSingleQuote]: stateAttributeValueSingleQuote,
  [H5_CONTEXT.ValueDoubleQuote]: stateAttributeValueDoubleQuote,
  [H5_CONTEXT.ValueBackQuote]: stateAttributeValueBackQuote,
};
