// The origin-side response parser (src/http/response-parser.ts) on generated input: arbitrary bytes in arbitrary
// reads never make it throw or spin and give the same result however the reads fall, and every well-formed
// response (Content-Length or chunked, after any interim 1xx) parses back to the model it was printed from.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NEED_MORE, PARSE_ERROR, ResponseParser, type ResponseSink } from '../../src/http/response-parser.ts';
import { fcParams } from '../helpers/fc.ts';

/** What the parser made of a stream: each response's events, and how the stream ended. */
interface Parsed {
  events: string[];
  end: 'error' | 'upgraded' | 'need-more' | 'closed';
  /** Stream offset the last complete response (or 101 head) ended at. */
  offset: number;
}

/** Parses `stream` read by read, starting the next response where one ends (a keep-alive connection). */
function parse(stream: Buffer, cuts: readonly number[], headRequest: boolean): Parsed {
  const events: string[] = [];
  let open = false;
  const sink: ResponseSink = {
    onHead(status, headers) {
      if (open) throw new Error('onHead inside a response');
      open = true;
      events.push(`head ${status} ${JSON.stringify(headers)}`);
    },
    onBody(chunk) {
      if (!open) throw new Error('onBody outside a response');
      // Consecutive body slices are one body: how the reads fell must not show.
      const last = events.length - 1;
      if (events[last]!.startsWith('body ')) events[last] += chunk.toString('latin1');
      else events.push(`body ${chunk.toString('latin1')}`);
    },
    onEnd(reusable) {
      if (!open) throw new Error('onEnd outside a response');
      open = false;
      events.push(`end ${reusable}`);
    },
  };
  const parser = new ResponseParser();
  parser.expect(sink, headRequest);
  let offset = 0;
  let start = 0;
  for (const cut of [...cuts, stream.length]) {
    // One read can hold the end of one response and the start of the next.
    let at = start;
    while (at < cut) {
      const result = parser.execute(stream.subarray(at, cut));
      if (result === PARSE_ERROR) {
        expect(parser.error).not.toBe('');
        return { events, end: 'error', offset };
      }
      if (result === NEED_MORE) break;
      // Every response takes at least one byte of the read that completes it, or this loop would spin.
      expect(result).toBeGreaterThan(0);
      expect(result).toBeLessThanOrEqual(cut - at);
      at += result;
      offset = at;
      if (parser.upgraded) return { events, end: 'upgraded', offset };
      parser.expect(sink, headRequest);
    }
    start = cut;
  }
  return { events, end: parser.closed() ? 'closed' : 'need-more', offset };
}

/** Cut points inside `length` bytes: sorted, unique, never 0 or `length`. */
const cutsOf = (length: number, raw: readonly number[], bytewise: boolean): number[] =>
  bytewise ? Array.from({ length: Math.max(0, length - 1) }, (_, i) => i + 1) : [...new Set(raw.map((n) => (length > 1 ? 1 + (n % (length - 1)) : 0)))].filter((n) => n > 0).sort((a, b) => a - b);

const splits = fc.record({ raw: fc.array(fc.nat(), { maxLength: 24 }), bytewise: fc.boolean() });

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

// Arbitrary input, weighted towards bytes that reach the parser's deeper states.
const piece = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('latin1')),
  fc.constantFrom(
    'HTTP/1.1 200 OK\r\n',
    'HTTP/1.0 200 OK\r\n',
    'HTTP/1.1 100 Continue\r\n\r\n',
    'HTTP/1.1 101 Switching Protocols\r\n',
    'HTTP/1.1 204 No Content\r\n',
    'HTTP/1.1 304 Not Modified\r\n',
    'Content-Length: 3\r\n',
    'Content-Length: 0\r\n',
    'content-length: x\r\n',
    'Transfer-Encoding: chunked\r\n',
    'transfer-encoding: gzip\r\n',
    'Connection: close\r\n',
    'Connection: keep-alive\r\n',
    ' folded\r\n',
    '\r\n',
    '\n',
    '\r',
    '0\r\n\r\n',
    '5;x=y\r\nhello\r\n',
    'fffffffffffff\r\n',
    'abc',
  ),
);
const arbitraryStream = fc.array(piece, { maxLength: 40 }).map((parts) => latin1(parts.join('')));

describe('ResponseParser (fuzz)', () => {
  it('never throws or spins on arbitrary bytes, and reads falling differently change nothing', () => {
    fc.assert(
      fc.property(arbitraryStream, splits, fc.boolean(), (stream, { raw, bytewise }, headRequest) => {
        const started = performance.now();
        const whole = parse(stream, [], headRequest);
        const split = parse(stream, cutsOf(stream.length, raw, bytewise), headRequest);
        expect(split).toEqual(whole);
        expect(whole.offset).toBeLessThanOrEqual(stream.length);
        // Linear work: a few kilobytes parse in well under this, however they are cut.
        expect(performance.now() - started).toBeLessThan(1_000);
      }),
      fcParams(500),
    );
  });

  it('never throws on random bytes after a valid head', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('Content-Length: 40\r\n', 'Transfer-Encoding: chunked\r\n', ''),
        fc.uint8Array({ maxLength: 300 }),
        splits,
        (framing, tail, { raw, bytewise }) => {
          const stream = Buffer.concat([latin1(`HTTP/1.1 200 OK\r\n${framing}\r\n`), Buffer.from(tail)]);
          expect(parse(stream, cutsOf(stream.length, raw, bytewise), false)).toEqual(parse(stream, [], false));
        },
      ),
      fcParams(300),
    );
  });
});

// Well-formed responses and the model they are printed from.
const TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const FRAMING = new Set(['content-length', 'transfer-encoding', 'connection']);
const fieldName = fc.string({ unit: fc.constantFrom(...TCHAR), minLength: 1, maxLength: 12 }).filter((n) => !FRAMING.has(n.toLowerCase()));
/** VCHAR and obs-text, with SP and HTAB inside (the parser trims the ends, as RFC 9112 §5 says to). */
const fieldValue = fc
  .array(fc.oneof(fc.integer({ min: 0x21, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constantFrom(0x20, 0x09)), { maxLength: 30 })
  .map((codes) => String.fromCharCode(...codes).replace(/^[ \t]+|[ \t]+$/g, ''));
const headers = fc.array(fc.tuple(fieldName, fieldValue), { maxLength: 8 });

interface Model {
  interim: { status: number; headers: [string, string][] }[];
  status: number;
  headers: [string, string][];
  body: Buffer;
  close: boolean;
  framing: { kind: 'length' } | { kind: 'chunked'; cuts: number[]; upper: boolean; extensions: string[]; trailers: [string, string][] };
}

const model: fc.Arbitrary<Model> = fc.record({
  interim: fc.array(fc.record({ status: fc.constantFrom(100, 102, 103), headers }), { maxLength: 2 }),
  status: fc.integer({ min: 200, max: 599 }).filter((s) => s !== 204 && s !== 304),
  headers,
  body: fc.uint8Array({ maxLength: 3000 }).map((b) => Buffer.from(b)),
  close: fc.boolean(),
  framing: fc.oneof(
    fc.constant({ kind: 'length' as const }),
    fc.record({
      kind: fc.constant('chunked' as const),
      cuts: fc.array(fc.nat(), { maxLength: 12 }),
      upper: fc.boolean(),
      extensions: fc.array(fc.constantFrom('', ';a=b', ' ; name="quoted;value"', ';x'), { maxLength: 13 }),
      trailers: headers,
    }),
  ),
});

const headLines = (hs: readonly (readonly [string, string])[]): string => hs.map(([n, v]) => `${n}: ${v}\r\n`).join('');

/** The response as an origin would send it, and the headers the parser should report. */
function print(m: Model): { bytes: Buffer; reported: string[] } {
  const interim = m.interim.map((r) => `HTTP/1.1 ${r.status} Interim\r\n${headLines(r.headers)}\r\n`).join('');
  const all: [string, string][] = [...m.headers];
  if (m.close) all.push(['Connection', 'close']);
  let body: Buffer;
  if (m.framing.kind === 'length') {
    all.push(['Content-Length', String(m.body.length)]);
    body = m.body;
  } else {
    all.push(['Transfer-Encoding', 'chunked']);
    const { cuts, upper, extensions, trailers } = m.framing;
    const edges = [0, ...[...new Set(cuts.map((c) => c % (m.body.length + 1)))].sort((a, b) => a - b).filter((c) => c > 0 && c < m.body.length), m.body.length];
    const parts: Buffer[] = [];
    for (let i = 0; i + 1 < edges.length; i++) {
      const size = edges[i + 1]! - edges[i]!;
      if (size === 0) continue;
      const hex = size.toString(16);
      parts.push(latin1(`${upper ? hex.toUpperCase() : hex}${extensions[i] ?? ''}\r\n`), m.body.subarray(edges[i], edges[i + 1]), latin1('\r\n'));
    }
    parts.push(latin1(`0${extensions.at(-1) ?? ''}\r\n${headLines(trailers)}\r\n`));
    body = Buffer.concat(parts);
  }
  const head = latin1(`${interim}HTTP/1.1 ${m.status} Reason phrase\r\n${headLines(all)}\r\n`);
  return { bytes: Buffer.concat([head, body]), reported: all.flat() };
}

describe('ResponseParser (generated responses)', () => {
  it('parses every well-formed response to its model, however it is read', () => {
    fc.assert(
      fc.property(model, splits, fc.boolean(), (m, { raw, bytewise }, followed) => {
        const { bytes, reported } = print(m);
        // A next response's bytes behind this one are not this one's.
        const stream = followed ? Buffer.concat([bytes, latin1('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]) : bytes;
        const outcome = { status: 0, headers: [] as string[], body: [] as Buffer[], ends: [] as boolean[] };
        const parser = new ResponseParser();
        parser.expect(
          {
            onHead: (status, headers) => Object.assign(outcome, { status, headers }),
            onBody: (chunk) => outcome.body.push(Buffer.from(chunk)),
            onEnd: (reusable) => outcome.ends.push(reusable),
          },
          false,
        );
        let start = 0;
        let endedAt = -1;
        for (const cut of [...cutsOf(stream.length, raw, bytewise), stream.length]) {
          const result = parser.execute(stream.subarray(start, cut));
          expect(result, parser.error).not.toBe(PARSE_ERROR);
          if (result !== NEED_MORE) {
            endedAt = start + result;
            break;
          }
          start = cut;
        }
        expect(endedAt).toBe(bytes.length);
        expect(outcome.status).toBe(m.status);
        expect(outcome.headers).toEqual(reported);
        expect(Buffer.concat(outcome.body).equals(m.body)).toBe(true);
        expect(outcome.ends).toEqual([!m.close]);
        expect(parser.busy).toBe(false);
      }),
      fcParams(300),
    );
  });
});
