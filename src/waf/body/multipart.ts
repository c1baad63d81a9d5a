// multipart/form-data bodies (RFC 7578) as libmodsecurity 3.0.9 parses them (src/request_body_processor/
// multipart.cc): the same line-by-line state machine, so the same bodies raise the same strictness flags that
// the recommended configuration (rule 200003, MULTIPART_STRICT_ERROR) and CRS 922 (MULTIPART_PART_HEADERS) read.
//
// How ModSecurity reads a body, and so how this does:
// - the body is cut into lines of at most 4096 bytes (its buffer): a line ends after `\n`, or when the buffer
//   is full (a `\r` that would be the buffer's last byte waits for the next line);
// - a line that starts with `--` + boundary right after a line break is a boundary; any other line mentioning
//   `--` + boundary raises MULTIPART_UNMATCHED_BOUNDARY (which a matched boundary after the first sets to 2);
// - a part's header lines run to an empty line; the Content-Disposition must be `form-data` with a `name`;
//   a part with a `filename` is a file (FILES), any other a form field (ARGS_POST);
// - a malformed boundary stops the parse; a malformed part header only records the error and parsing goes on
//   (the part then stays in its header block), exactly as multipart.cc's ignored return values make it;
// - the `\r\n` (or `\n`) before a boundary belongs to the boundary, not to the part's value.
// Where we differ, on purpose:
// - multipart.cc drops the line break between two lines of a form field's value (it overwrites its reserved
//   `\r\n`); a value here keeps its line breaks, as ModSecurity 2 and every application see it, so a payload
//   split over lines is inspected as sent;
// - files are never written anywhere: FILES_SIZES is counted, the content is not kept;
// - `boundary=` and `boundary=""` are errors (multipart.cc parses nothing and reports nothing for them);
// - a body that ends without its final boundary is an error for both, but multipart.cc then adds no argument
//   and no file at all; we keep every part read, the unfinished one included, so they are still inspected;
// - `maxMultipartParts` stops the parse with an error; `maxMultipartFiles` raises MULTIPART_FILE_LIMIT_EXCEEDED
//   as SecUploadFileLimit does (ModSecurity applies that limit only when it stores files).

import { hexValue, isAlnum, isSpace } from './ctype.ts';
import type { Arg, BodyLimits } from './limits.ts';

/** multipart.cc's MULTIPART_BUF_SIZE: the longest line it looks at as one piece. */
const BUF_SIZE = 4096;
/** multipart.cc's limit on the Content-Type header it will read a boundary from. */
const MAX_CONTENT_TYPE_BYTES = 1024;

export interface MultipartFile {
  /** The part's name (the key of FILES, FILES_NAMES and FILES_SIZES). */
  name: string;
  /** As the client sent it (the value of FILES). */
  filename: string;
  /** Bytes of content (the value of FILES_SIZES). */
  size: number;
}

/** The MULTIPART_* variables, each 0 or 1 except `unmatchedBoundary` (0, 1, or 2: see above). */
export interface MultipartFlags {
  strictError: number;
  unmatchedBoundary: number;
  boundaryQuoted: number;
  boundaryWhitespace: number;
  dataBefore: number;
  dataAfter: number;
  headerFolding: number;
  lfLine: number;
  crlfLfLines: number;
  missingSemicolon: number;
  invalidQuoting: number;
  invalidPart: number;
  invalidHeaderFolding: number;
  fileLimitExceeded: number;
}

/** Which SecLang variable each flag is. */
export const MULTIPART_FLAG_VARIABLES = {
  MULTIPART_STRICT_ERROR: 'strictError',
  MULTIPART_UNMATCHED_BOUNDARY: 'unmatchedBoundary',
  MULTIPART_BOUNDARY_QUOTED: 'boundaryQuoted',
  MULTIPART_BOUNDARY_WHITESPACE: 'boundaryWhitespace',
  MULTIPART_DATA_BEFORE: 'dataBefore',
  MULTIPART_DATA_AFTER: 'dataAfter',
  MULTIPART_HEADER_FOLDING: 'headerFolding',
  MULTIPART_LF_LINE: 'lfLine',
  MULTIPART_CRLF_LF_LINES: 'crlfLfLines',
  MULTIPART_MISSING_SEMICOLON: 'missingSemicolon',
  MULTIPART_INVALID_QUOTING: 'invalidQuoting',
  MULTIPART_INVALID_PART: 'invalidPart',
  MULTIPART_INVALID_HEADER_FOLDING: 'invalidHeaderFolding',
  MULTIPART_FILE_LIMIT_EXCEEDED: 'fileLimitExceeded',
} as const satisfies Record<string, keyof MultipartFlags>;

export interface MultipartResult {
  /** Form fields in body order: ARGS_POST. */
  args: Arg[];
  files: MultipartFile[];
  /** FILES_COMBINED_SIZE. */
  filesCombinedSize: number;
  /** MULTIPART_PART_HEADERS: [part name, header line] with the line as sent, its line break included. */
  partHeaders: Arg[];
  /** MULTIPART_NAME: every `name` parameter seen in a Content-Disposition. */
  names: string[];
  /** MULTIPART_FILENAME: every `filename` parameter seen. */
  filenames: string[];
  flags: MultipartFlags;
  /** Header and form-field bytes (what SecRequestBodyNoFilesLimit bounds). */
  noFilesLength: number;
  /** The last error multipart.cc would have reported (REQBODY_ERROR_MSG after "Multipart parsing error: "). */
  error: string | null;
}

export function parseMultipart(
  body: string,
  contentType: string,
  limits: Pick<BodyLimits, 'maxMultipartParts' | 'maxMultipartFiles'>,
): MultipartResult {
  const parser = new MultipartParser(limits);
  if (parser.init(contentType)) parser.process(body);
  return parser.complete();
}

interface Header {
  value: string;
}

interface Part {
  name: string;
  filename: string;
  isFile: boolean;
  /** By lower-cased name: multipart.cc's header map compares names case-insensitively. */
  headers: Map<string, Header>;
  /** Name of the header a folded line continues, as sent. */
  lastHeaderName: string;
  /** The header line not yet recorded (it may still be folded). */
  lastHeaderLine: string;
  headerLines: string[];
  value: string;
  size: number;
}

function newPart(): Part {
  return {
    name: '',
    filename: '',
    isFile: false,
    headers: new Map(),
    lastHeaderName: '',
    lastHeaderLine: '',
    headerLines: [],
    value: '',
    size: 0,
  };
}

function emptyFlags(): MultipartFlags {
  return {
    strictError: 0,
    unmatchedBoundary: 0,
    boundaryQuoted: 0,
    boundaryWhitespace: 0,
    dataBefore: 0,
    dataAfter: 0,
    headerFolding: 0,
    lfLine: 0,
    crlfLfLines: 0,
    missingSemicolon: 0,
    invalidQuoting: 0,
    invalidPart: 0,
    invalidHeaderFolding: 0,
    fileLimitExceeded: 0,
  };
}

/** Where a body stopped being read: the text left in multipart.cc's buffer, and whether it began a line. */
interface Tail {
  text: string;
  startsLine: boolean;
}

class MultipartParser {
  readonly #limits: Pick<BodyLimits, 'maxMultipartParts' | 'maxMultipartFiles'>;
  readonly #flags = emptyFlags();
  /** multipart.cc's m_flag_error: a fatal problem, part of MULTIPART_STRICT_ERROR. */
  #fatal = false;
  #crlfLine = false;
  #error: string | null = null;
  #partLimitError: string | null = null;
  #boundary = '';
  #part: Part | null = null;
  /** In the part's data (true) or still in its headers (false). */
  #inData = false;
  /** Some data line of the current part has been read (m_mpp_substate_part_data_read). */
  #dataRead = false;
  /** The line break held back from the last data line: it belongs to a boundary if one follows. */
  #reserve = '';
  #boundaryCount = 0;
  #complete = false;
  #seenData = false;
  #partsBegun = 0;
  #fileCount = 0;
  #noFilesLength = 0;
  /** The last line ended in a bare `\n` (multipart.cc's m_crlf_state_buf_end == 2). */
  #lastLineLoneLf = false;
  #tail: Tail = { text: '', startsLine: true };
  /** Forward-only searches, cached (-1: none left; -2: not searched yet). */
  #nextMarker = -2;
  #nextDashLine = -2;
  #nextNul = -2;
  readonly #parts: Part[] = [];
  readonly #partHeaders: Arg[] = [];
  readonly #names: string[] = [];
  readonly #filenames: string[] = [];

  constructor(limits: Pick<BodyLimits, 'maxMultipartParts' | 'maxMultipartFiles'>) {
    this.#limits = limits;
  }

  /** Multipart::init: the boundary from the Content-Type header, with its strictness flags. */
  init(contentType: string): boolean {
    if (contentType === '') return this.#initFailure('Multipart: Content-Type header not available.');
    if (contentType.length > MAX_CONTENT_TYPE_BYTES) return this.#initFailure('Multipart: Invalid boundary in C-T (length).');
    if (asciiLower(contentType.slice(0, 19)) !== 'multipart/form-data') return this.#initFailure('Multipart: Invalid MIME type.');
    if (countBoundaryParams(contentType) > 1) return this.#initFailure('Multipart: Multiple boundary parameters in C-T.');
    const at = contentType.indexOf('boundary');
    if (at === -1) {
      // A Boundary parameter in another case is allowed by the RFC, but not by ModSecurity.
      if (countBoundaryParams(contentType) > 0) return this.#initFailure('Multipart: Invalid boundary in C-T (case sensitivity).');
      return this.#initFailure('Multipart: Boundary not found in C-T.');
    }
    // Only whitespace and one `;` may stand between the media type and the parameter.
    let semicolon = false;
    for (let i = 19; i < at; i++) {
      const c = contentType.charCodeAt(i);
      if (isSpace(c)) continue;
      if (c === 0x3b && !semicolon) semicolon = true;
      else return this.#initFailure('Multipart: Invalid boundary in C-T (malformed).');
    }
    if (!semicolon) this.#flags.missingSemicolon = 1;
    const equals = contentType.indexOf('=', at + 8);
    if (equals === -1) return this.#initFailure('Multipart: Invalid boundary in C-T (malformed).');
    for (let i = at + 8; i < equals; i++) {
      if (!isSpace(contentType.charCodeAt(i))) return this.#initFailure('Multipart: Invalid boundary in C-T (parameter name).');
      this.#flags.boundaryWhitespace = 1;
    }
    const raw = contentType.slice(equals + 1);
    if (isSpace(raw.charCodeAt(0))) this.#flags.boundaryWhitespace = 1;
    let boundary: string;
    if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) {
      boundary = raw.slice(1, -1);
      this.#flags.boundaryQuoted = 1;
    } else if (raw.startsWith('"') || (raw.length >= 2 && raw.endsWith('"'))) {
      return this.#initFailure('Multipart: Invalid boundary in C-T (quote).');
    } else {
      boundary = raw;
    }
    if (boundary === '') return this.#initFailure('Multipart: Invalid boundary in C-T (empty).');
    if (countBoundaryParams(boundary) !== 0) return this.#initFailure('Multipart: Invalid boundary in C-T (content).');
    // Some frameworks add `; charset=…` after the boundary; ModSecurity tolerates it by cutting it off.
    if (!boundaryCharactersValid(boundary)) {
      const cut = boundary.indexOf(';');
      if (cut !== -1) boundary = boundary.slice(0, cut);
    }
    if (!boundaryCharactersValid(boundary)) return this.#initFailure('Multipart: Invalid boundary in C-T (characters).');
    if (boundary === '') return this.#initFailure('Multipart: Invalid boundary in C-T (empty).');
    this.#boundary = boundary;
    return true;
  }

  #initFailure(message: string): false {
    this.#fatal = true;
    this.#error = message;
    return false;
  }

  /** Multipart::process: the body line by line (see the file comment for how lines are cut). */
  process(body: string): void {
    const length = body.length;
    if (length === 0) return;
    this.#seenData = true;
    let at = 0;
    let startsLine = true;
    let newline = body.indexOf('\n');
    while (at < length) {
      if (this.#inData && startsLine) {
        const plainEnd = this.#plainDataEnd(body, at);
        if (plainEnd > at) {
          this.#dataRun(body, at, plainEnd);
          at = plainEnd;
          continue;
        }
      }
      if (newline !== -1 && newline < at) newline = body.indexOf('\n', at);
      let end: number;
      let held = false;
      if (newline !== -1 && newline < at + BUF_SIZE) {
        end = newline + 1;
      } else if (length - at < BUF_SIZE) {
        break;
      } else if (body.charCodeAt(at + BUF_SIZE - 1) === 0x0d) {
        end = at + BUF_SIZE - 1;
        held = true;
      } else {
        end = at + BUF_SIZE;
      }
      if (!this.#line(body, at, end, startsLine, held || end - at === BUF_SIZE)) {
        this.#tail = { text: body.slice(at, end), startsLine };
        return;
      }
      const endsLine = body.charCodeAt(end - 1) === 0x0a;
      this.#lastLineLoneLf = endsLine && (end < 2 || body.charCodeAt(end - 2) !== 0x0d);
      startsLine = endsLine;
      at = end;
      if (this.#complete && at < length) {
        this.#flags.dataAfter = 1;
        return;
      }
    }
    this.#tail = { text: body.slice(at), startsLine };
  }

  /**
   * The line body[start, end) as multipart.cc's process loop handles a filled buffer. `startsLine` when the
   * previous one ended with `\n`; `bufferFull` when it ended because the buffer did. False on a fatal error.
   */
  #line(body: string, start: number, end: number, startsLine: boolean, bufferFull: boolean): boolean {
    const boundary = this.#boundary;
    // multipart.cc compares with C string functions, which stop at a NUL byte.
    const textEnd = this.#textEnd(body, start, end);
    const textLength = textEnd - start;
    if (startsLine && textLength > 3 && body.startsWith('--', start)) {
      if (textLength >= boundary.length + 2 && body.startsWith(boundary, start + 2)) {
        if (this.#lastLineLoneLf) this.#flags.lfLine = 1;
        if (!this.#dataRead && this.#boundaryCount > 0) {
          // A boundary where the part's data should begin: the part had no empty line after its headers.
          this.#flags.invalidPart = 1;
        } else {
          return this.#boundaryLine(body, start, textEnd);
        }
      } else {
        if (
          this.#flags.boundaryQuoted &&
          textLength >= boundary.length + 3 &&
          body.charCodeAt(start + 2) === 0x22 &&
          body.startsWith(boundary, start + 3)
        ) {
          return this.#lineFailure('Multipart: Invalid boundary (quotes).');
        }
        let p = start + 2;
        while (p < textEnd && isSpace(body.charCodeAt(p))) p++;
        if (p !== start + 2 && p + boundary.length <= textEnd && body.startsWith(boundary, p)) {
          return this.#lineFailure('Multipart: Invalid boundary (whitespace).');
        }
        this.#flags.unmatchedBoundary = 1;
      }
    } else if (startsLine) {
      const marker = this.#markerFrom(body, start);
      if (marker !== -1 && marker + boundary.length + 2 <= end) this.#flags.unmatchedBoundary = 1;
    }
    if (this.#part === null) {
      this.#flags.dataBefore = 1;
    } else if (!this.#inData) {
      if (bufferFull) return this.#lineFailure(`Multipart: Part header line over ${BUF_SIZE} bytes long`);
      this.#headerLine(body.slice(start, end));
    } else {
      this.#dataLine(body, start, end);
    }
    return true;
  }

  /** A line that is our boundary: a part ends (and, unless final, the next begins). */
  #boundaryLine(body: string, start: number, textEnd: number): boolean {
    if (this.#boundaryCount > 0) this.#flags.unmatchedBoundary = 2;
    let end = start + 2 + this.#boundary.length;
    const final = end + 2 <= textEnd && body.startsWith('--', end);
    if (final) {
      end += 2;
      if (this.#complete) return this.#lineFailure('Multipart: Invalid boundary (final duplicate).');
    }
    const lf = textEnd - end === 1 && body.charCodeAt(end) === 0x0a;
    const crlf = textEnd - end === 2 && body.startsWith('\r\n', end);
    if (!lf && !crlf) return this.#lineFailure(`Multipart: Invalid boundary: ${body.slice(start, textEnd)}`);
    if (lf) this.#flags.lfLine = 1;
    else this.#crlfLine = true;
    if (!this.#endPart(final)) return false;
    if (final) this.#complete = true;
    this.#boundaryCount++;
    return true;
  }

  /** Where the C string of line [start, end) ends: at its first NUL byte, if it has one. */
  #textEnd(body: string, start: number, end: number): number {
    if (this.#nextNul !== -1 && this.#nextNul < start) this.#nextNul = body.indexOf('\0', start);
    return this.#nextNul !== -1 && this.#nextNul < end ? this.#nextNul : end;
  }

  /** The first `--` + boundary at or after `from`, or -1. Searches move forward only, so one is cached. */
  #markerFrom(body: string, from: number): number {
    if (this.#nextMarker !== -1 && this.#nextMarker < from) this.#nextMarker = body.indexOf(`--${this.#boundary}`, from);
    return this.#nextMarker;
  }

  /** The first line start at or after `from` where a line begins with `--`, or -1 (cached like #markerFrom). */
  #dashLineFrom(body: string, from: number): number {
    if (this.#nextDashLine !== -1 && this.#nextDashLine < from) {
      let dashes = body.indexOf('--', from);
      while (dashes > 0 && body.charCodeAt(dashes - 1) !== 0x0a) dashes = body.indexOf('--', dashes + 1);
      this.#nextDashLine = dashes;
    }
    return this.#nextDashLine;
  }

  #lineFailure(message: string): false {
    this.#fatal = true;
    this.#error = message;
    return false;
  }

  /** Multipart::process_boundary: records the part being built and, unless `final`, starts the next. */
  #endPart(final: boolean): boolean {
    const part = this.#part;
    if (part !== null) {
      for (const line of part.headerLines) this.#partHeaders.push([part.name, line]);
      if (part.name !== '') this.#parts.push(part);
      else this.#flags.invalidPart = 1;
      this.#part = null;
    }
    if (final) return true;
    if (++this.#partsBegun > this.#limits.maxMultipartParts) {
      this.#partLimitError = `Multipart: more than ${this.#limits.maxMultipartParts} parts`;
      return this.#lineFailure(this.#partLimitError);
    }
    this.#part = newPart();
    this.#inData = false;
    this.#dataRead = false;
    this.#reserve = '';
    return true;
  }

  /** Multipart::process_part_header; its errors are recorded and parsing goes on, as in multipart.cc. */
  #headerLine(line: string): void {
    const part = this.#part!;
    if (line.includes('\0')) {
      this.#error = 'Multipart: Nul byte in part headers.';
      return;
    }
    this.#noFilesLength += line.length;
    if (line.length > 1 && line.charCodeAt(line.length - 2) === 0x0d) this.#crlfLine = true;
    else this.#flags.lfLine = 1;
    if (line === '\r\n' || line === '\n') {
      this.#recordHeaderLine(part);
      this.#endHeaders(part);
    } else if (isSpace(line.charCodeAt(0))) {
      this.#foldedHeaderLine(part, line);
    } else {
      this.#recordHeaderLine(part);
      const colon = line.indexOf(':');
      if (colon === -1) {
        this.#error = `Multipart: Invalid part header (colon missing): ${line}`;
        return;
      }
      if (colon === 0) {
        this.#error = 'Multipart: Invalid part header (header name missing).';
        return;
      }
      const name = line.slice(0, colon);
      let valueStart = colon + 1;
      while (line.charCodeAt(valueStart) === 0x20 || line.charCodeAt(valueStart) === 0x09) valueStart++;
      const key = asciiLower(name);
      // A repeated header is dropped without an error (multipart.cc returns before recording anything).
      if (part.headers.has(key)) return;
      part.headers.set(key, { value: chomp(line.slice(valueStart)) });
      part.lastHeaderName = name;
      part.lastHeaderLine = line;
    }
  }

  #recordHeaderLine(part: Part): void {
    if (part.lastHeaderLine === '') return;
    part.headerLines.push(part.lastHeaderLine);
    part.lastHeaderLine = '';
  }

  /** A continuation line (RFC 2557 folding: SP or HTAB; other whitespace is accepted but flagged). */
  #foldedHeaderLine(part: Part, line: string): void {
    this.#flags.headerFolding = 1;
    const first = line.charCodeAt(0);
    if (first !== 0x20 && first !== 0x09) this.#flags.invalidHeaderFolding = 1;
    if (part.lastHeaderName === '') {
      this.#error = 'Multipart: Invalid part header (folding error).';
      return;
    }
    let at = 0;
    while (isSpace(line.charCodeAt(at))) {
      const c = line.charCodeAt(at);
      if (c !== 0x20 && c !== 0x09) this.#flags.invalidHeaderFolding = 1;
      at++;
    }
    const header = part.headers.get(asciiLower(part.lastHeaderName))!;
    header.value = `${header.value} ${chomp(line.slice(at))}`;
    if (header.value.length > BUF_SIZE) {
      this.#error = 'Multipart: Part header too long.';
      return;
    }
    part.lastHeaderLine = `${part.lastHeaderName}: ${header.value}`;
  }

  /** The empty line after a part's headers: its Content-Disposition decides what the part is. */
  #endHeaders(part: Part): void {
    const disposition = part.headers.get('content-disposition');
    if (disposition === undefined) {
      this.#error = 'Multipart: Part missing Content-Disposition header.';
      return;
    }
    const rc = this.#contentDisposition(part, disposition.value);
    if (rc < 0) {
      this.#error = `Multipart: Invalid Content-Disposition header (${rc}): ${disposition.value}`;
      return;
    }
    if (part.name === '') {
      this.#error = 'Multipart: Content-Disposition header missing name field.';
      return;
    }
    if (part.filename !== '') {
      // A parser that read the header more crudely would not have seen this filename: refuse the difference.
      if (!disposition.value.includes('filename=')) {
        this.#error = 'Multipart: Invalid Content-Disposition header (filename).';
        return;
      }
      part.isFile = true;
      if (++this.#fileCount > this.#limits.maxMultipartFiles && this.#flags.fileLimitExceeded === 0) {
        this.#flags.fileLimitExceeded = 1;
        this.#error = `Multipart: Upload file limit exceeded ${this.#limits.maxMultipartFiles}.`;
      }
    }
    this.#inData = true;
    this.#dataRead = false;
    part.lastHeaderName = '';
  }

  /**
   * Multipart::parse_content_disposition: `form-data` and its `name`, `filename` and `filename*` parameters.
   * Returns 1, or multipart.cc's negative code for the first problem.
   */
  #contentDisposition(part: Part, value: string): number {
    if (!value.startsWith('form-data')) return -1;
    const length = value.length;
    let p = skipBlanks(value, 9);
    if (p === length) return 1;
    if (value.charCodeAt(p) !== 0x3b) return -2;
    p++;
    let filenameStar = '';
    while (p < length) {
      p = skipBlanks(value, p);
      if (p === length) return -3;
      const nameStart = p;
      while (p < length && !'= \t'.includes(value[p]!)) p++;
      if (p === length) return -4;
      const name = value.slice(nameStart, p);
      p = skipBlanks(value, p);
      if (p === length) return -5;
      if (value.charCodeAt(p) !== 0x3d) return -13;
      p = skipBlanks(value, p + 1);
      if (p === length) return -6;
      let quote = '';
      let parameter: string;
      if (name === 'filename*') {
        // RFC 5987: charset'language'percent-encoded-name.
        const charsetStart = p;
        while (p < length && (isAlnum(value.charCodeAt(p)) || MIME_CHARSET_SPECIAL.includes(value[p]!))) p++;
        if (p === length || value[p] !== "'" || p === charsetStart) return -16;
        p = value.indexOf("'", p + 1);
        if (p === -1) return -17;
        p++;
        const filenameStart = p;
        while (p < length && value[p] !== ';') {
          if (value[p] === '%') {
            if (hexValue(value.charCodeAt(p + 1)) < 0 || hexValue(value.charCodeAt(p + 2)) < 0) return -18;
            p += 3;
          } else if (isAlnum(value.charCodeAt(p)) || ATTR_CHAR_SPECIAL.includes(value[p]!)) {
            p++;
          } else {
            return -19;
          }
        }
        parameter = value.slice(filenameStart, p);
      } else if (value[p] === '"' || value[p] === "'") {
        // A single quote is not valid quoting, but some back ends accept it: accepted, and flagged.
        quote = value[p]!;
        if (quote === "'") this.#flags.invalidQuoting = 1;
        p++;
        if (p === length) return -7;
        parameter = '';
        while (p < length) {
          const c = value[p]!;
          if (c === '\\') {
            if (p + 1 === length) return -8;
            // Only the quote and the backslash can be escaped; IE's other backslashes are kept as they are.
            if (value[p + 1] === quote || value[p + 1] === '\\') p++;
          } else if (c === quote) {
            break;
          }
          parameter += value[p];
          p++;
        }
        // multipart.cc reads on past the end of an unclosed quote into whatever memory follows (undefined
        // behaviour: sometimes an error code, sometimes a value). Here the value runs to the end of the header,
        // so the part's content is still inspected, and the quoting is flagged.
        if (p === length) this.#flags.invalidQuoting = 1;
        p++;
      } else {
        const start = p;
        while (p < length && isTokenChar(value.charCodeAt(p))) p++;
        parameter = value.slice(start, p);
      }
      if (name === 'name') {
        this.#checkQuotes(parameter, quote);
        this.#names.push(parameter);
        if (part.name !== '') return -14;
        part.name = parameter;
      } else if (name === 'filename') {
        this.#checkQuotes(parameter, quote);
        this.#filenames.push(parameter);
        if (part.filename !== '') return -15;
        part.filename = parameter;
      } else if (name === 'filename*') {
        if (filenameStar !== '') return -20;
        filenameStar = parameter;
      } else {
        return -11;
      }
      if (p < length) {
        p = skipBlanks(value, p);
        if (p < length) {
          if (value.charCodeAt(p) !== 0x3b) {
            const before = value[p - 1];
            if (before === "'" || before === '"') this.#flags.invalidQuoting = 1;
            return -12;
          }
          p++;
        }
      }
    }
    if (filenameStar !== '' && part.filename === '') return -21;
    return 1;
  }

  /** A `'` inside a name or filename not enclosed in double quotes is suspicious quoting. */
  #checkQuotes(parameter: string, quote: string): void {
    if (quote !== '"' && parameter.includes("'")) this.#flags.invalidQuoting = 1;
  }

  /**
   * Where part data starting at line start `at` may stop being plain: the start of the first line beginning with
   * `--` (only such a line can be a boundary or fail as one). The lines before it are taken in one piece by
   * #dataRun: a file of a million short lines costs a few searches, not a million line steps.
   */
  #plainDataEnd(body: string, at: number): number {
    const dashLine = this.#dashLineFrom(body, at);
    const stop = dashLine === -1 ? body.length : dashLine;
    return stop <= at ? at : body.lastIndexOf('\n', stop - 1) + 1;
  }

  /**
   * Data lines [from, to), `to` just after a `\n`, none starting with `--`, as #line would take them one by one:
   * however the 4096-byte buffer cut them, the part gets every byte but the last line break, which is held back.
   */
  #dataRun(body: string, from: number, to: number): void {
    if (this.#marksUnmatched(body, from, to)) this.#flags.unmatchedBoundary = 1;
    const held = to - 2 >= from && body.charCodeAt(to - 2) === 0x0d ? '\r\n' : '\n';
    this.#data(body, from, to - held.length, held);
    this.#lastLineLoneLf = held === '\n';
  }

  /**
   * Whether #line would have raised MULTIPART_UNMATCHED_BOUNDARY for one of the lines [from, to): some line holds
   * `--` + boundary within its first buffer-full (later pieces of a long line are not looked at).
   */
  #marksUnmatched(body: string, from: number, to: number): boolean {
    const length = this.#boundary.length + 2;
    let marker = this.#markerFrom(body, from);
    while (marker !== -1 && marker < to) {
      const lineStart = body.lastIndexOf('\n', marker - 1) + 1;
      const newline = body.indexOf('\n', lineStart);
      let firstPieceEnd = newline + 1;
      if (newline >= lineStart + BUF_SIZE) {
        firstPieceEnd = lineStart + (body.charCodeAt(lineStart + BUF_SIZE - 1) === 0x0d ? BUF_SIZE - 1 : BUF_SIZE);
      }
      if (marker + length <= firstPieceEnd) return true;
      // The rest of this line is past its first piece: go on from the next line.
      marker = newline + 1 < to ? this.#markerFrom(body, newline + 1) : -1;
    }
    return false;
  }

  /** Multipart::process_part_data: a line of a part's value, its line break held back for a boundary. */
  #dataLine(body: string, start: number, end: number): void {
    let held = '';
    if (body.charCodeAt(end - 1) === 0x0a) held = end - 2 >= start && body.charCodeAt(end - 2) === 0x0d ? '\r\n' : '\n';
    this.#data(body, start, end - held.length, held);
  }

  /** Adds body[from, to) to the part after the line break held back before it, and holds back `held`. */
  #data(body: string, from: number, to: number, held: string): void {
    const part = this.#part!;
    this.#dataRead = true;
    const length = to - from + this.#reserve.length;
    if (part.isFile) {
      part.size += length;
    } else {
      this.#noFilesLength += length;
      part.value += this.#reserve + body.slice(from, to);
    }
    this.#reserve = held;
  }

  /** Multipart::multipart_complete: the final checks, then the parts as arguments and files. */
  complete(): MultipartResult {
    const flags = this.#flags;
    flags.crlfLfLines = this.#crlfLine && flags.lfLine ? 1 : 0;
    flags.strictError = this.#fatal || STRICT_FLAGS.some((name) => flags[name] !== 0) ? 1 : 0;
    // multipart.cc has set the variables above before it looks at the unprocessed rest of the body, and the
    // changes it makes from here on touch only the variables it names again.
    const reported = { ...flags };
    if (this.#seenData && !this.#complete) {
      if (this.#boundaryCount > 0) {
        if (this.#tail.startsLine && this.#tail.text === `--${this.#boundary}--`) {
          if (this.#lastLineLoneLf && flags.lfLine !== 1) {
            reported.lfLine = 1;
            reported.crlfLfLines = this.#crlfLine ? 1 : 0;
            reported.strictError = 1;
          }
          if (!this.#dataRead && flags.invalidPart !== 1) {
            reported.invalidPart = 1;
            reported.strictError = 1;
          }
          this.#endPart(true);
          this.#complete = true;
        }
        if (!this.#complete) {
          // Our own limit says more than the missing boundary that it caused.
          this.#error = this.#partLimitError ?? 'Multipart: Final boundary missing.';
          // multipart.cc drops the part it was reading (and every other); we keep it for inspection.
          this.#endPart(true);
        }
      } else {
        this.#error = 'Multipart: No boundaries found in payload.';
      }
    }
    const args: Arg[] = [];
    const files: MultipartFile[] = [];
    let filesCombinedSize = 0;
    for (const part of this.#parts) {
      if (part.isFile) {
        files.push({ name: part.name, filename: part.filename, size: part.size });
        filesCombinedSize += part.size;
      } else {
        args.push([part.name, part.value]);
      }
    }
    return {
      args,
      files,
      filesCombinedSize,
      partHeaders: this.#partHeaders,
      names: this.#names,
      filenames: this.#filenames,
      flags: reported,
      noFilesLength: this.#noFilesLength,
      error: this.#error,
    };
  }
}

/**
 * The flags MULTIPART_STRICT_ERROR sums up, with any fatal error. MULTIPART_UNMATCHED_BOUNDARY and
 * MULTIPART_CRLF_LF_LINES are reported but are not among them.
 */
const STRICT_FLAGS = [
  'boundaryQuoted',
  'boundaryWhitespace',
  'dataBefore',
  'dataAfter',
  'headerFolding',
  'lfLine',
  'missingSemicolon',
  'invalidQuoting',
  'invalidPart',
  'invalidHeaderFolding',
  'fileLimitExceeded',
] as const satisfies readonly (keyof MultipartFlags)[];

/** How many times `boundary` appears (any case) with a `=` somewhere after it. */
function countBoundaryParams(value: string): number {
  const lower = asciiLower(value);
  let count = 0;
  let at = lower.indexOf('boundary');
  while (at !== -1) {
    if (lower.includes('=', at + 8)) count++;
    at = lower.indexOf('boundary', at + 8);
  }
  return count;
}

/** RFC 2046 §5.1.1 bchars; a space is allowed but not last. */
function boundaryCharactersValid(boundary: string): boolean {
  for (let i = 0; i < boundary.length; i++) {
    const c = boundary.charCodeAt(i);
    if (isAlnum(c) || "'()+_,-./:=?".includes(boundary[i]!)) continue;
    if (c === 0x20 && i < boundary.length - 1) continue;
    return false;
  }
  return true;
}

const MIME_CHARSET_SPECIAL = '!#$%&+-^_`{}~';
const ATTR_CHAR_SPECIAL = '!#$&+-.^_`~';

/** RFC 2616 token characters: printable ASCII except separators. */
function isTokenChar(c: number): boolean {
  return c > 0x20 && c < 0x7f && !'()<>@,;:\\"/[]?='.includes(String.fromCharCode(c));
}

function skipBlanks(value: string, at: number): number {
  while (value.charCodeAt(at) === 0x20 || value.charCodeAt(at) === 0x09) at++;
  return at;
}

/** ModSecurity's chomp: trailing CR and LF go, unless the value is nothing but CR and LF. */
function chomp(value: string): string {
  let end = value.length;
  while (end > 0 && (value.charCodeAt(end - 1) === 0x0a || value.charCodeAt(end - 1) === 0x0d)) end--;
  return end === 0 ? value : value.slice(0, end);
}

/** C's tolower: ASCII letters only, as ModSecurity compares names (toLowerCase would fold Latin-1 letters too). */
function asciiLower(value: string): string {
  return NON_ASCII.test(value) ? value.replace(/[A-Z]+/g, (upper) => upper.toLowerCase()) : value.toLowerCase();
}

const NON_ASCII = /[^\x00-\x7f]/;
