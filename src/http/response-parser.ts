// An incremental HTTP/1.1 response parser for the origin side of L7 mode (./origin-pool.ts): status line and
// header block, then the body framed as RFC 9112 §6.3 says (none for HEAD, 1xx, 204 and 304; chunked;
// Content-Length; else until the connection closes), handed on as slices of the socket's own buffers, never
// copied. It is written for the common case, a whole small response in one read, and never throws: an origin
// that sends something malformed gets an error reason and its connection closed, never a crashed thread.

/** What the parser reports a response through. */
export interface ResponseSink {
  /** `headers` flat, [name, value, ...], names as the origin spelled them. */
  onHead(status: number, headers: string[]): void;
  onBody(chunk: Buffer): void;
  /** The response is complete; `reusable` when the connection may carry another request. */
  onEnd(reusable: boolean): void;
}

export const NEED_MORE = -1;
export const PARSE_ERROR = -2;

/** Response header blocks larger than this are refused (a misbehaving origin must not grow a buffer forever). */
const MAX_HEAD_BYTES = 64 * 1024;
/** Chunk-size lines (size, extensions) and trailer blocks are bounded the same way. */
const MAX_CHUNK_LINE_BYTES = 4 * 1024;
const MAX_CHUNK_SIZE_DIGITS = 12;
const CRLF_CRLF = Buffer.from('\r\n\r\n', 'latin1');
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/**
 * Field values are VCHAR, obs-text, SP and HTAB (RFC 9110 §5.5): a CR, LF or NUL let through would make the
 * client side's writeHead throw, or split the response there.
 */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Status codes are 100-599 (RFC 9110 §15); below 100 is nothing a client could act on. */
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: .*)?$/;
const CHUNKED_LAST = /(?:^|,)\s*chunked\s*$/i;

const State = { Head: 0, Length: 1, ChunkSize: 2, ChunkData: 3, ChunkDataEnd: 4, Trailers: 5, UntilClose: 6, Done: 7 } as const;
type State = (typeof State)[keyof typeof State];

export class ResponseParser {
  /** Why the last execute() returned PARSE_ERROR. */
  error = '';
  /** The response was 101 Switching Protocols: the bytes after the head belong to the upgraded stream. */
  upgraded = false;
  #sink: ResponseSink | null = null;
  #headRequest = false;
  #state: State = State.Done;
  /** Head or chunk-line bytes of earlier reads, when one read did not complete them: the first #pendingLength. */
  #pending: Buffer | null = null;
  #pendingLength = 0;
  #left = 0;
  #keepAlive = true;

  /** Starts a response to a request; `headRequest` when it was HEAD (no body whatever the headers say). */
  expect(sink: ResponseSink, headRequest: boolean): void {
    this.#sink = sink;
    this.#headRequest = headRequest;
    this.#state = State.Head;
    this.#dropPending();
    this.error = '';
    this.upgraded = false;
  }

  /** True while a response is expected or under way. */
  get busy(): boolean {
    return this.#state !== State.Done;
  }

  /** True when the connection closing now would end the response cleanly (a close-delimited body). */
  get endsAtClose(): boolean {
    return this.#state === State.UntilClose;
  }

  /**
   * Consumes `data`. Returns NEED_MORE, PARSE_ERROR (see `error`), or, once the response (or a 101 head)
   * is complete, the offset in `data` where it ended.
   */
  execute(data: Buffer): number {
    let at = 0;
    while (at < data.length || this.#state === State.Head) {
      switch (this.#state) {
        case State.Head: {
          const end = this.#headEnd(data, at);
          if (end === NEED_MORE || end === PARSE_ERROR) return end;
          at = end;
          if (this.upgraded) return at;
          // #headEnd moved the state on (TypeScript cannot see that through the call).
          if ((this.#state as State) === State.Done) return at;
          break;
        }
        case State.Length: {
          const take = Math.min(this.#left, data.length - at);
          this.#sink!.onBody(data.subarray(at, at + take));
          at += take;
          this.#left -= take;
          if (this.#left === 0) return this.#finish(at);
          break;
        }
        case State.ChunkSize: {
          const line = this.#line(data, at, MAX_CHUNK_LINE_BYTES);
          if (line === null) return this.error === '' ? NEED_MORE : PARSE_ERROR;
          at = line.next;
          const size = chunkSize(line.text);
          if (size < 0) return this.#fail(`bad chunk size line ${JSON.stringify(line.text.slice(0, 40))}`);
          this.#left = size;
          this.#state = size === 0 ? State.Trailers : State.ChunkData;
          break;
        }
        case State.ChunkData: {
          const take = Math.min(this.#left, data.length - at);
          this.#sink!.onBody(data.subarray(at, at + take));
          at += take;
          this.#left -= take;
          if (this.#left === 0) this.#state = State.ChunkDataEnd;
          break;
        }
        case State.ChunkDataEnd: {
          const line = this.#line(data, at, 2);
          if (line === null) return this.error === '' ? NEED_MORE : PARSE_ERROR;
          if (line.text !== '') return this.#fail('chunk data not followed by CRLF');
          at = line.next;
          this.#state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          // Trailer fields are dropped (the response head has gone out already); only the block's end matters.
          const line = this.#line(data, at, MAX_CHUNK_LINE_BYTES);
          if (line === null) return this.error === '' ? NEED_MORE : PARSE_ERROR;
          at = line.next;
          if (line.text === '') return this.#finish(at);
          break;
        }
        case State.UntilClose:
          this.#sink!.onBody(at === 0 ? data : data.subarray(at));
          return NEED_MORE;
        case State.Done:
          return at;
      }
    }
    return NEED_MORE;
  }

  /** The connection closed: completes a close-delimited body; true when the response had ended properly. */
  closed(): boolean {
    if (this.#state !== State.UntilClose) return this.#state === State.Done;
    this.#state = State.Done;
    this.#sink!.onEnd(false);
    return true;
  }

  /** Parses the head once its blank line is in; returns the offset after it. */
  #headEnd(data: Buffer, at: number): number {
    let block = at === 0 ? data : data.subarray(at);
    const had = this.#pendingLength;
    let end: number;
    if (had === 0) {
      end = block.indexOf(CRLF_CRLF);
    } else {
      // Search from three bytes before the seam: the blank line may straddle the two reads.
      block = this.#keep(block);
      end = block.indexOf(CRLF_CRLF, Math.max(0, had - 3));
    }
    if (end === -1) {
      // Up to three bytes of the blank line may be in already: the same head is refused however the reads fall.
      if (block.length > MAX_HEAD_BYTES + 3) return this.#fail(`response head over ${MAX_HEAD_BYTES} bytes`);
      if (had === 0) this.#keep(block);
      return NEED_MORE;
    }
    if (end > MAX_HEAD_BYTES) return this.#fail(`response head over ${MAX_HEAD_BYTES} bytes`);
    const consumed = end + 4 - had;
    const text = block.toString('latin1', 0, end);
    this.#dropPending();
    const result = this.#head(text);
    if (result !== 0) return result;
    return at + consumed;
  }

  /** Status line and fields: picks the body's framing (RFC 9112 §6.3) and reports the head. */
  #head(text: string): number {
    const lines = text.split('\r\n');
    const status = STATUS_LINE.exec(lines[0]!);
    if (status === null) return this.#fail(`bad status line ${JSON.stringify(lines[0]!.slice(0, 40))}`);
    const code = Number(status[2]);
    const http11 = status[1] === '1';
    let length = -1;
    // Every Transfer-Encoding line, joined as one list.
    let codings = '';
    let close = false;
    let keepAliveAsked = false;
    const headers: string[] = [];
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      // obs-fold (a line starting with whitespace) and fields without a name are refused (RFC 9112 §5.2).
      if (colon <= 0) return this.#fail(`bad header line ${JSON.stringify(line.slice(0, 40))}`);
      const name = line.slice(0, colon);
      if (!TOKEN.test(name)) return this.#fail(`bad header name ${JSON.stringify(name.slice(0, 40))}`);
      const value = withoutOws(line, colon + 1);
      if (!FIELD_VALUE.test(value)) return this.#fail(`bad header value for ${name}`);
      // Only Content-Length (14), Transfer-Encoding (17) and Connection (10) matter here: lower-casing just
      // names of those lengths spares a string per field on every response.
      const lower = name.length === 14 || name.length === 17 || name.length === 10 ? name.toLowerCase() : '';
      if (lower === 'content-length') {
        if (!/^\d{1,15}$/.test(value) || (length !== -1 && length !== Number(value))) return this.#fail(`bad content-length ${JSON.stringify(value.slice(0, 20))}`);
        length = Number(value);
      } else if (lower === 'transfer-encoding') {
        codings = codings === '' ? value : `${codings}, ${value}`;
      } else if (lower === 'connection') {
        // A close anywhere wins, whatever order the lines come in.
        const v = value.toLowerCase();
        if (v.includes('close')) close = true;
        else if (v.includes('keep-alive')) keepAliveAsked = true;
      }
      headers.push(name, value);
    }
    if (code < 200) {
      if (code === 101) {
        this.upgraded = true;
        this.#state = State.Done;
        this.#sink!.onHead(code, headers);
        return 0;
      }
      // 100 Continue and other interim responses: the real one follows on the same connection.
      this.#state = State.Head;
      return 0;
    }
    // Only chunked as the final coding frames the body; any other is read until close (RFC 9112 §6.3).
    const chunked = CHUNKED_LAST.test(codings);
    // Both framings at once is how responses are split or smuggled: the RFC says "ought to be handled as an
    // error", and the client would be sent the origin's Content-Length with a body framed otherwise (§6.3).
    if (codings !== '' && length !== -1 && !this.#headRequest && code !== 204 && code !== 304) return this.#fail('both Transfer-Encoding and Content-Length');
    // HTTP/1.0 keeps the connection only when asked to, and never with a Transfer-Encoding (RFC 9112 §6.1, §9.3).
    const keepAlive = !close && (http11 || (keepAliveAsked && codings === ''));
    this.#keepAlive = keepAlive;
    this.#sink!.onHead(code, headers);
    if (this.#headRequest || code === 204 || code === 304) {
      this.#state = State.Done;
      this.#sink!.onEnd(keepAlive);
    } else if (chunked) {
      this.#state = State.ChunkSize;
    } else if (length >= 0) {
      this.#left = length;
      this.#state = length === 0 ? State.Done : State.Length;
      if (length === 0) this.#sink!.onEnd(keepAlive);
    } else {
      this.#state = State.UntilClose;
      this.#keepAlive = false;
    }
    return 0;
  }

  /** One CRLF-terminated line at `at`, with earlier reads' partial line; null when it is not complete yet. */
  #line(data: Buffer, at: number, max: number): { text: string; next: number } | null {
    const lf = data.indexOf(0x0a, at);
    const had = this.#pendingLength;
    if (lf === -1) {
      const part = data.subarray(at);
      if (had + part.length > max + 1) {
        this.#fail(`line over ${max} bytes`);
        return null;
      }
      this.#keep(part);
      return null;
    }
    const raw = had === 0 ? data.toString('latin1', at, lf) : this.#pending!.toString('latin1', 0, had) + data.toString('latin1', at, lf);
    this.#dropPending();
    if (raw.length > max + 1 || !raw.endsWith('\r')) {
      this.#fail(raw.endsWith('\r') ? `line over ${max} bytes` : 'bare LF in chunked framing');
      return null;
    }
    return { text: raw.slice(0, -1), next: lf + 1 };
  }

  /**
   * Appends `part` to the pending bytes and returns them all. The room doubles as it fills: an origin that
   * sends its head a byte per read costs linear time, where concatenating on every read was quadratic
   * (about a second of CPU for a 64 KiB head).
   */
  #keep(part: Buffer): Buffer {
    const had = this.#pendingLength;
    const length = had + part.length;
    let pending = this.#pending;
    if (pending === null || pending.length < length) {
      const grown = Buffer.allocUnsafe(Math.max(length, 2 * (pending?.length ?? 0), 256));
      pending?.copy(grown, 0, 0, had);
      pending = this.#pending = grown;
    }
    part.copy(pending, had);
    this.#pendingLength = length;
    return pending.subarray(0, length);
  }

  #dropPending(): void {
    this.#pending = null;
    this.#pendingLength = 0;
  }

  #finish(at: number): number {
    this.#state = State.Done;
    this.#sink!.onEnd(this.#keepAlive);
    return at;
  }

  #fail(reason: string): number {
    this.error = reason;
    this.#state = State.Done;
    return PARSE_ERROR;
  }
}

/**
 * `line` from `from` without the optional whitespace around a field value, which is SP and HTAB only (RFC 9112
 * §5.1): String#trim would also take a latin1 0xA0, the last byte of a UTF-8 "à".
 */
function withoutOws(line: string, from: number): string {
  let to = line.length;
  while (from < to && (line.charCodeAt(from) === 0x20 || line.charCodeAt(from) === 0x09)) from++;
  while (to > from && (line.charCodeAt(to - 1) === 0x20 || line.charCodeAt(to - 1) === 0x09)) to--;
  return line.slice(from, to);
}

/** The size of a chunk-size line (hex, then optional extensions); -1 when it is not one. */
function chunkSize(line: string): number {
  const semicolon = line.indexOf(';');
  const hex = (semicolon === -1 ? line : line.slice(0, semicolon)).trim();
  if (hex.length === 0 || hex.length > MAX_CHUNK_SIZE_DIGITS || !/^[0-9a-fA-F]+$/.test(hex)) return -1;
  return parseInt(hex, 16);
}
