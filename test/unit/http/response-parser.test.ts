// The origin-side response parser (src/http/response-parser.ts) over a table of responses, each fed whole, split
// in two at every offset and a byte at a time: what the sink records must not depend on how the reads fall.
import { describe, expect, it } from 'vitest';
import { NEED_MORE, PARSE_ERROR, ResponseParser, type ResponseSink } from '../../../src/http/response-parser.ts';

/** What one response did to the sink, and how the parser finished it. */
interface Outcome {
  status: number | null;
  headers: string[];
  body: string;
  /** onEnd's `reusable`, once per call. */
  ends: boolean[];
  /** Stream offset where execute() said the response ended; 'closed' when closed() ended it; or the parse error. */
  end: number | 'closed' | 'unfinished' | { error: string };
  upgraded: boolean;
}

/** A sink that records, and throws (out of execute) on callbacks in an impossible order. */
function recorder(outcome: Outcome): ResponseSink {
  return {
    onHead(status, headers) {
      if (outcome.status !== null) throw new Error('second onHead');
      outcome.status = status;
      outcome.headers = [...headers];
    },
    onBody(chunk) {
      if (outcome.status === null || outcome.ends.length > 0) throw new Error('onBody outside a response');
      outcome.body += chunk.toString('latin1');
    },
    onEnd(reusable) {
      if (outcome.status === null || outcome.ends.length > 0) throw new Error('onEnd outside a response');
      outcome.ends.push(reusable);
    },
  };
}

interface Feed {
  head?: boolean;
  /** The origin closes the connection after the last byte. */
  close?: boolean;
}

/** Feeds `bytes` cut at `cuts` (increasing, inside the buffer); stops at the first completed response or error. */
function feed(bytes: Buffer, cuts: readonly number[], { head = false, close = false }: Feed = {}): Outcome {
  const outcome: Outcome = { status: null, headers: [], body: '', ends: [], end: 'unfinished', upgraded: false };
  const parser = new ResponseParser();
  parser.expect(recorder(outcome), head);
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    const result = parser.execute(bytes.subarray(start, cut));
    if (result === PARSE_ERROR) {
      outcome.end = { error: parser.error };
      expect(parser.busy).toBe(false);
      return outcome;
    }
    if (result !== NEED_MORE) {
      expect(result).toBeGreaterThanOrEqual(0);
      expect(result).toBeLessThanOrEqual(cut - start);
      outcome.end = start + result;
      outcome.upgraded = parser.upgraded;
      expect(parser.busy).toBe(false);
      return outcome;
    }
    start = cut;
  }
  if (close && parser.closed()) outcome.end = 'closed';
  return outcome;
}

/** Ways to cut a buffer: whole, in two at every offset (a sample for long ones), a byte at a time. */
function splits(length: number): { name: string; cuts: number[] }[] {
  const every = length <= 4096 ? Array.from({ length: Math.max(0, length - 1) }, (_, i) => i + 1) : Array.from({ length: 96 }, (_, i) => 1 + Math.floor((i * (length - 2)) / 95));
  return [
    { name: 'whole', cuts: [] },
    ...every.map((at) => ({ name: `split at ${at}`, cuts: [at] })),
    { name: 'bytewise', cuts: Array.from({ length: Math.max(0, length - 1) }, (_, i) => i + 1) },
  ];
}

/** A response the parser takes; `end` defaults to the whole input, `reusable` to true. */
interface Parsed {
  status: number;
  headers?: string[];
  body?: string;
  reusable?: boolean;
  end?: number | 'closed' | 'unfinished';
  upgraded?: boolean;
}
/** A response the parser refuses, after reporting the head (`status`) and `body` if given. */
interface Refused {
  error: RegExp;
  status?: number;
  body?: string;
}
type Expected = Parsed | Refused;

interface Case extends Feed {
  name: string;
  response: string;
  want: Expected;
}

const big = 'a'.repeat(70 * 1024);
/** A header line that makes the head (without its blank line) exactly `size` bytes. */
const headOf = (size: number): string => `HTTP/1.1 200 OK\r\nx: ${'b'.repeat(size - 'HTTP/1.1 200 OK\r\nx: '.length)}`;

const CASES: Case[] = [
  { name: 'Content-Length body', response: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhello', want: { status: 200, headers: ['Content-Length', '5', 'X-A', 'b'], body: 'hello' } },
  { name: 'zero Content-Length', response: 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n', want: { status: 200, body: '' } },
  { name: 'status line without a reason phrase', response: 'HTTP/1.1 404\r\nContent-Length: 1\r\n\r\nx', want: { status: 404, body: 'x' } },
  {
    name: 'chunked with extensions and trailers',
    response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6 ; a=b;c="d"\r\n world\r\nA\r\n0123456789\r\n0;last\r\nX-Trailer: t\r\nY: z\r\n\r\n',
    want: { status: 200, headers: ['Transfer-Encoding', 'chunked'], body: 'hello world0123456789' },
  },
  {
    name: 'chunked with multi-digit sizes and leading zeros (split mid size-line and mid CRLF)',
    response: `HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n1a\r\n${'z'.repeat(26)}\r\n000000000003\r\nabc\r\n0\r\n\r\n`,
    want: { status: 200, body: `${'z'.repeat(26)}abc` },
  },
  { name: 'close-delimited body', response: 'HTTP/1.1 200 OK\r\nX: y\r\n\r\nuntil the end', close: true, want: { status: 200, body: 'until the end', reusable: false, end: 'closed' } },
  { name: 'close-delimited, empty', response: 'HTTP/1.1 200 OK\r\n\r\n', close: true, want: { status: 200, body: '', reusable: false, end: 'closed' } },
  { name: 'close-delimited, not yet closed', response: 'HTTP/1.1 200 OK\r\n\r\nsome', want: { status: 200, body: 'some', reusable: false, end: 'unfinished' } },
  { name: 'Content-Length body cut short by close', response: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', close: true, want: { status: 200, body: 'abc', reusable: false, end: 'unfinished' } },
  { name: 'HEAD with Content-Length', head: true, response: 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n', want: { status: 200, body: '' } },
  { name: 'HEAD with chunked', head: true, response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', want: { status: 200, body: '' } },
  { name: '204', response: 'HTTP/1.1 204 No Content\r\nX: y\r\n\r\n', want: { status: 204, body: '' } },
  { name: '304 with the representation length', response: 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 100\r\n\r\n', want: { status: 304, body: '' } },
  { name: '100 Continue then 200', response: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', want: { status: 200, headers: ['Content-Length', '2'], body: 'ok' } },
  {
    name: '100 and 103 Early Hints then 200',
    response: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n',
    want: { status: 201, headers: ['Content-Length', '0'], body: '' },
  },
  {
    name: '101 upgrade: ends after the head, the bytes after are not consumed',
    response: 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello',
    want: { status: 101, headers: ['Upgrade', 'websocket', 'Connection', 'Upgrade'], body: '', upgraded: true, end: 77 },
  },
  { name: 'HTTP/1.0 is not reusable', response: 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok', want: { status: 200, body: 'ok', reusable: false } },
  { name: 'HTTP/1.0 with keep-alive is', response: 'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok', want: { status: 200, body: 'ok', reusable: true } },
  { name: 'Connection: close', response: 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok', want: { status: 200, body: 'ok', reusable: false } },
  { name: 'Connection: close after keep-alive', response: 'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok', want: { status: 200, body: 'ok', reusable: false } },
  { name: 'Connection: close before keep-alive', response: 'HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok', want: { status: 200, body: 'ok', reusable: false } },
  { name: 'duplicate equal Content-Length', response: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc', want: { status: 200, body: 'abc' } },
  { name: 'differing Content-Length', response: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', want: { error: /content-length/i } },
  { name: 'non-digit Content-Length', response: 'HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nab', want: { error: /content-length/i } },
  { name: 'signed Content-Length', response: 'HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nab', want: { error: /content-length/i } },
  { name: 'Content-Length list', response: 'HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\na', want: { error: /content-length/i } },
  { name: 'Transfer-Encoding not ending in chunked is read until close', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzipped', close: true, want: { status: 200, body: 'zipped', reusable: false, end: 'closed' } },
  { name: 'chunked then another coding on a second line is not chunked', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n2\r\nab\r\n', close: true, want: { status: 200, body: '2\r\nab\r\n', reusable: false, end: 'closed' } },
  { name: 'Transfer-Encoding and Content-Length together', response: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', want: { error: /transfer-encoding.*content-length/i } },
  { name: 'another coding and Content-Length together', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nzzHTTP/1.1 200 OK\r\n\r\n', want: { error: /transfer-encoding.*content-length/i } },
  { name: 'HTTP/1.0 with Transfer-Encoding is not reusable', response: 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n', want: { status: 200, body: 'a', reusable: false } },
  { name: 'bad status line: two-digit code', response: 'HTTP/1.1 20 OK\r\n\r\n', want: { error: /status line/ } },
  { name: 'bad status line: HTTP/2', response: 'HTTP/2 200 OK\r\n\r\n', want: { error: /status line/ } },
  { name: 'bad status line: no space after the code', response: 'HTTP/1.1 200OK\r\n\r\n', want: { error: /status line/ } },
  { name: 'bad status line: code under 100', response: 'HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n', want: { error: /status line/ } },
  { name: 'bad status line: garbage', response: 'SSH-2.0-OpenSSH_9.6\r\n\r\n', want: { error: /status line/ } },
  { name: 'obs-fold', response: 'HTTP/1.1 200 OK\r\nX: a\r\n  folded\r\nContent-Length: 0\r\n\r\n', want: { error: /header/ } },
  { name: 'obs-fold with a colon', response: 'HTTP/1.1 200 OK\r\nX: a\r\n\tfolded: b\r\nContent-Length: 0\r\n\r\n', want: { error: /header/ } },
  { name: 'header name with a space', response: 'HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n', want: { error: /header name/ } },
  { name: 'header name with a separator', response: 'HTTP/1.1 200 OK\r\nX(y): x\r\nContent-Length: 0\r\n\r\n', want: { error: /header name/ } },
  { name: 'empty header name', response: 'HTTP/1.1 200 OK\r\n: x\r\nContent-Length: 0\r\n\r\n', want: { error: /header/ } },
  { name: 'header line without a colon', response: 'HTTP/1.1 200 OK\r\nnocolon\r\nContent-Length: 0\r\n\r\n', want: { error: /header/ } },
  { name: 'bare LF inside a header value', response: 'HTTP/1.1 200 OK\r\nX: a\nSet-Cookie: b\r\nContent-Length: 0\r\n\r\n', want: { error: /header value/ } },
  { name: 'NUL inside a header value', response: 'HTTP/1.1 200 OK\r\nX: a\0b\r\nContent-Length: 0\r\n\r\n', want: { error: /header value/ } },
  { name: 'bare CR inside a header value', response: 'HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n', want: { error: /header value/ } },
  { name: 'obs-text and tabs in a header value are fine', response: 'HTTP/1.1 200 OK\r\nX: caf\xe9\tau lait\r\nContent-Length: 0\r\n\r\n', want: { status: 200, headers: ['X', 'caf\xe9\tau lait', 'Content-Length', '0'] } },
  { name: 'a header value ending in a UTF-8 "à" keeps its last byte', response: 'HTTP/1.1 200 OK\r\nX-Name: \t voil\xc3\xa0 \t\r\nContent-Length: 0\r\n\r\n', want: { status: 200, headers: ['X-Name', 'voil\xc3\xa0', 'Content-Length', '0'] } },
  { name: 'head of exactly 64 KiB', response: `${headOf(64 * 1024)}\r\n\r\n`, close: true, want: { status: 200, reusable: false, end: 'closed' } },
  { name: 'head over 64 KiB', response: `${headOf(64 * 1024 + 1)}\r\n\r\n`, want: { error: /head over/ } },
  { name: 'head over 64 KiB with no end', response: `HTTP/1.1 200 OK\r\nx: ${big}`, want: { error: /head over/ } },
  { name: 'chunk size line of 4 KiB', response: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(4094)}\r\nx\r\n0\r\n\r\n`, want: { status: 200, body: 'x' } },
  { name: 'chunk size line over 4 KiB', response: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(4095)}\r\nx\r\n0\r\n\r\n`, want: { error: /line over/, status: 200 } },
  { name: 'chunk size line that never ends', response: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(5000)}`, want: { error: /line over/, status: 200 } },
  { name: 'chunk size of 13 hex digits', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000\r\n', want: { error: /chunk size/, status: 200 } },
  { name: 'non-hex chunk size', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n', want: { error: /chunk size/, status: 200 } },
  { name: 'empty chunk size', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n', want: { error: /chunk size/, status: 200 } },
  { name: 'negative chunk size', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n', want: { error: /chunk size/, status: 200 } },
  { name: 'bare LF after a chunk size', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n', want: { error: /bare LF/, status: 200 } },
  { name: 'bare LF after chunk data', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n', want: { error: /bare LF/, status: 200, body: 'hello' } },
  { name: 'chunk data longer than its size', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n', want: { error: /CRLF/, status: 200, body: 'hello' } },
  { name: 'bare LF in the trailers', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\n\r\n', want: { error: /bare LF/, status: 200 } },
  { name: 'a second response after a Content-Length one', response: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', want: { status: 200, body: 'ok', end: 40 } },
  { name: 'a second response after a chunked one', response: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n', want: { status: 200, body: 'ok', end: 59 } },
  { name: 'bytes after a HEAD response', head: true, response: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello', want: { status: 200, body: '', end: 38 } },
];

function outcome(w: Parsed, length: number): Outcome {
  const upgraded = w.upgraded ?? false;
  return {
    status: w.status,
    headers: w.headers ?? (expect.any(Array) as string[]),
    body: w.body ?? '',
    ends: upgraded || w.end === 'unfinished' ? [] : [w.reusable ?? true],
    end: w.end ?? length,
    upgraded,
  };
}

describe('ResponseParser', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const bytes = Buffer.from(c.response, 'latin1');
    const w = c.want;
    let first: object | null = null;
    for (const { name, cuts } of splits(bytes.length)) {
      const got = feed(bytes, cuts, c);
      if ('error' in w) {
        expect(got.end, name).toEqual({ error: expect.stringMatching(w.error) });
        expect(got.status, name).toBe(w.status ?? null);
        if (w.body !== undefined) expect(got.body, name).toBe(w.body);
      } else {
        expect(got, name).toEqual(outcome(w, bytes.length));
      }
      // However the reads fall, the sink sees the same thing (errors may word themselves differently).
      const comparable = { ...got, end: typeof got.end === 'object' ? 'error' : got.end };
      first ??= comparable;
      expect(comparable, name).toEqual(first);
    }
  });

  it('tracks busy and endsAtClose through a response', () => {
    const parser = new ResponseParser();
    expect(parser.busy).toBe(false);
    const outcome: Outcome = { status: null, headers: [], body: '', ends: [], end: 'unfinished', upgraded: false };
    parser.expect(recorder(outcome), false);
    expect(parser.busy).toBe(true);
    expect(parser.endsAtClose).toBe(false);
    expect(parser.execute(Buffer.from('HTTP/1.1 200 OK\r\n\r\nab'))).toBe(NEED_MORE);
    expect(parser.endsAtClose).toBe(true);
    expect(parser.busy).toBe(true);
    expect(parser.closed()).toBe(true);
    expect(parser.busy).toBe(false);
    expect(outcome).toMatchObject({ status: 200, body: 'ab', ends: [false] });
  });

  it('a close mid-head or mid-body is not a clean end', () => {
    const parser = new ResponseParser();
    const sink: ResponseSink = { onHead() {}, onBody() {}, onEnd() {} };
    parser.expect(sink, false);
    expect(parser.execute(Buffer.from('HTTP/1.1 200 OK\r\n'))).toBe(NEED_MORE);
    expect(parser.closed()).toBe(false);
    parser.expect(sink, false);
    expect(parser.execute(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n'))).toBe(NEED_MORE);
    expect(parser.closed()).toBe(false);
  });

  it('parses responses back to back with one parser, and after an error', () => {
    const parser = new ResponseParser();
    const stream = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n');
    const seen: string[] = [];
    const sink: ResponseSink = { onHead: (s) => seen.push(String(s)), onBody: (b) => seen.push(b.toString()), onEnd: (r) => seen.push(`end ${r}`) };
    parser.expect(sink, false);
    const first = parser.execute(stream);
    expect(first).toBe(39);
    parser.expect(sink, false);
    expect(parser.execute(stream.subarray(first))).toBe(stream.length - first);
    expect(seen).toEqual(['200', 'a', 'end true', '200', 'b', 'end true']);

    parser.expect(sink, false);
    expect(parser.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n'))).toBe(PARSE_ERROR);
    expect(parser.error).toMatch(/content-length/);
    parser.expect(sink, false);
    expect(parser.error).toBe('');
    expect(parser.execute(Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'))).toBe(27);
  });

  it('an empty read changes nothing', () => {
    const outcome: Outcome = { status: null, headers: [], body: '', ends: [], end: 'unfinished', upgraded: false };
    const parser = new ResponseParser();
    parser.expect(recorder(outcome), false);
    for (const part of ['', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r', '', '\n\r', '', '\n', '', 'x']) {
      const result = parser.execute(Buffer.from(part));
      if (part === 'x') expect(result).toBe(1);
      else expect(result).toBe(NEED_MORE);
    }
    expect(outcome).toMatchObject({ status: 200, body: 'x', ends: [true] });
  });
});
