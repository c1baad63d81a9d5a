// The request body processors (src/waf/body/) on generated input: arbitrary bytes never make one throw or run
// long, every result stays within the limits it was given, and well-formed bodies printed from a model parse
// back to that model (names as libmodsecurity gives them).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCookies } from '../../src/waf/body/cookies.ts';
import { processBody, type BodyProcessorKind } from '../../src/waf/body/index.ts';
import { parseJson } from '../../src/waf/body/json.ts';
import { DEFAULT_BODY_LIMITS, type Arg, type BodyLimits } from '../../src/waf/body/limits.ts';
import { parseMultipart } from '../../src/waf/body/multipart.ts';
import { parseUrlEncoded } from '../../src/waf/body/urlencoded.ts';
import { parseXml } from '../../src/waf/body/xml.ts';
import { fcParams } from '../helpers/fc.ts';

const bytes = (maxLength: number): fc.Arbitrary<string> => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b).toString('latin1'));
/** Arbitrary input weighted towards the bytes each syntax cares about. */
const piecesOf = (tokens: string[], maxLength = 60): fc.Arbitrary<string> =>
  fc.array(fc.oneof(fc.constantFrom(...tokens), bytes(8)), { maxLength }).map((parts) => parts.join(''));

const smallLimits: fc.Arbitrary<BodyLimits> = fc.record({
  maxArgs: fc.integer({ min: 0, max: 20 }),
  noFilesLimit: fc.integer({ min: 0, max: 4096 }),
  maxJsonDepth: fc.integer({ min: 1, max: 8 }),
  maxMultipartParts: fc.integer({ min: 1, max: 6 }),
  maxMultipartFiles: fc.integer({ min: 0, max: 3 }),
  maxXmlDepth: fc.integer({ min: 1, max: 8 }),
  maxXmlNodes: fc.integer({ min: 1, max: 40 }),
  maxXmlEntityChars: fc.integer({ min: 0, max: 200 }),
});

const URLENCODED_TOKENS = ['&', '=', '%', '%4', '%41', '%zz', '+', 'a', '&&', '=='];
const COOKIE_TOKENS = [';', '=', ' ', '\t', 'a', 'b=c', ';;', '$Version=1'];
const JSON_TOKENS = ['{', '}', '[', ']', ',', ':', '"', '"k"', '\\', '\\u', 'd83d', '\\ude00', '1', '-', '.', 'e', 'true', 'null', ' ', '\xc3\xa9', '\xff'];
const MULTIPART_TOKENS = [
  '--b',
  '--b--',
  '\r\n',
  '\n',
  '\r',
  'Content-Disposition: form-data; name="a"',
  'Content-Disposition: form-data; name="f"; filename="x"',
  "filename*=UTF-8''x",
  'Content-Type: text/plain',
  ' folded',
  '"',
  "'",
  ';',
  '\0',
  'x'.repeat(4095),
];
const XML_TOKENS = ['<a>', '</a>', '<b c="d">', '</b>', '<e/>', '&amp;', '&#65;', '&x;', '<![CDATA[', ']]>', '<!--', '-->', '<?p', '?>', '<!DOCTYPE a [', '<!ENTITY x "<b>&y;</b>">', '<!ENTITY y "yy">', ']>', '"', '=', '\xc3\xa9', '\xe9', '\0'];

describe('body processors (fuzz)', () => {
  it('parseUrlEncoded: any text, at most maxArgs arguments, never longer than the text', () => {
    fc.assert(
      fc.property(piecesOf(URLENCODED_TOKENS), smallLimits, (text, limits) => {
        const { args, error } = parseUrlEncoded(text, limits);
        // std::getline's pieces: a trailing `&` ends the last one rather than starting another.
        const pieces = text === '' ? 0 : text.split('&').length - (text.endsWith('&') ? 1 : 0);
        expect(args.length).toBe(Math.min(pieces, limits.maxArgs));
        expect(error === null).toBe(pieces <= limits.maxArgs);
        for (const [name, value] of args) expect(name.length + value.length).toBeLessThanOrEqual(text.length);
      }),
      fcParams(500),
    );
  });

  it('parseCookies: any headers, pairs taken from them', () => {
    fc.assert(
      fc.property(fc.array(piecesOf(COOKIE_TOKENS, 20), { maxLength: 3 }), (headers) => {
        const cookies = parseCookies(headers);
        expect(cookies.length).toBeLessThanOrEqual(headers.reduce((n, h) => n + h.split(';').length, 0));
        for (const [name, value] of cookies) {
          expect(name).not.toBe('');
          expect(headers.some((h) => h.includes(name) && h.includes(value))).toBe(true);
        }
      }),
      fcParams(500),
    );
  });

  it('parseJson: any bytes, bounded by maxArgs and maxJsonDepth', () => {
    fc.assert(
      fc.property(piecesOf(JSON_TOKENS), smallLimits, (body, limits) => {
        const { args, error } = parseJson(body, limits);
        expect(args.length).toBeLessThanOrEqual(limits.maxArgs);
        for (const [name, value] of args) {
          expect(name.startsWith('json')).toBe(true);
          expect(value.length).toBeLessThanOrEqual(body.length);
        }
        if (error === null) expect(body.trim()).not.toBe('');
      }),
      fcParams(1000),
    );
  });

  it('parseMultipart: any body and boundary, bounded by the part limit', () => {
    const contentType = fc.constantFrom(
      'multipart/form-data; boundary=b',
      'multipart/form-data; boundary="b"',
      'multipart/form-data boundary=b',
      'multipart/form-data; boundary= b',
      'multipart/form-data; boundary=',
      'multipart/form-data',
      'text/plain',
    );
    fc.assert(
      fc.property(piecesOf(MULTIPART_TOKENS, 40), contentType, smallLimits, (body, type, limits) => {
        const result = parseMultipart(body, type, limits);
        expect(result.args.length + result.files.length).toBeLessThanOrEqual(limits.maxMultipartParts);
        for (const [, value] of result.args) expect(value.length).toBeLessThanOrEqual(body.length);
        expect(result.filesCombinedSize).toBeLessThanOrEqual(body.length);
        expect(result.noFilesLength).toBeLessThanOrEqual(body.length);
        for (const [name, flag] of Object.entries(result.flags)) expect(name === 'unmatchedBoundary' ? [0, 1, 2] : [0, 1]).toContain(flag);
        const strict = Object.entries(result.flags).some(([name, flag]) => flag !== 0 && !['strictError', 'unmatchedBoundary', 'crlfLfLines'].includes(name));
        if (strict) expect(result.flags.strictError).toBe(1);
      }),
      fcParams(1000),
    );
  });

  it('parseXml: any bytes, bounded by depth, node and entity limits', () => {
    fc.assert(
      fc.property(piecesOf(XML_TOKENS, 50), smallLimits, (body, limits) => {
        const { text, attributes } = parseXml(body, limits);
        expect(attributes.length).toBeLessThanOrEqual(limits.maxXmlNodes);
        // UTF-8 output of Latin-1 or entity text is at most three bytes per input character.
        if (text !== null) expect(text.length).toBeLessThanOrEqual(3 * (body.length + limits.maxXmlEntityChars));
      }),
      fcParams(1000),
    );
  });

  it('processBody: every processor on any body returns a result of its kind, quickly', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<BodyProcessorKind>('URLENCODED', 'MULTIPART', 'JSON', 'XML'),
        fc.oneof(bytes(2000), piecesOf([...URLENCODED_TOKENS, ...JSON_TOKENS, ...MULTIPART_TOKENS, ...XML_TOKENS])),
        (kind, body) => {
          const started = performance.now();
          const result = processBody(kind, body, 'multipart/form-data; boundary=b', DEFAULT_BODY_LIMITS);
          expect(result.kind).toBe(kind);
          expect(performance.now() - started).toBeLessThan(1_000);
        },
      ),
      fcParams(500),
    );
  });
});

/** A byte string's UTF-8 encoding, as a byte string. */
const utf8 = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

describe('body processors (round trips)', () => {
  it('parseUrlEncoded: percent-encoded pairs parse back', () => {
    const encode = (s: string): string => [...s].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('');
    fc.assert(
      fc.property(fc.array(fc.tuple(bytes(12), bytes(12)), { minLength: 1, maxLength: 10 }), (pairs) => {
        const text = pairs.map(([name, value]) => `${encode(name)}=${encode(value)}`).join('&');
        expect(parseUrlEncoded(text, DEFAULT_BODY_LIMITS)).toEqual({ args: pairs, invalidEncoding: false, error: null });
      }),
      fcParams(300),
    );
  });

  it('parseJson: any JSON value gives the arguments libmodsecurity names', () => {
    /** json.cc's naming, written as a walk over the value. */
    const expected = (value: unknown, path: string, out: Arg[]): Arg[] => {
      if (Array.isArray(value)) value.forEach((element, i) => expected(element, `${path}.array_${i}`, out));
      else if (value !== null && typeof value === 'object') {
        for (const [key, member] of Object.entries(value)) expected(member, `${path}.${key === '' ? 'empty-key' : utf8(key)}`, out);
      } else out.push([path, value === null ? '' : typeof value === 'string' ? utf8(value) : JSON.stringify(value)]);
      return out;
    };
    // Integer-like keys would be reordered by JS objects, so keys carry a letter.
    const key = fc.string({ unit: 'grapheme', maxLength: 6 }).map((k) => (k === '' ? k : `k${k}`));
    const { value: json } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constant(null),
        fc.boolean(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.string({ unit: 'grapheme', maxLength: 8 }),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(key, tie('value'), { maxKeys: 4 }),
      ),
    }));
    fc.assert(
      fc.property(json, (value) => {
        const body = utf8(JSON.stringify(value));
        expect(parseJson(body, DEFAULT_BODY_LIMITS)).toEqual({ args: expected(value, 'json', []), error: null });
      }),
      fcParams(500),
    );
  });

  it('parseMultipart: well-formed forms parse back, with no strictness flag raised', () => {
    const name = fc.string({ unit: fc.constantFrom(...'abcxyz_-.0123456789'), minLength: 1, maxLength: 8 });
    // Values never contain the boundary (a client picks one that does not occur).
    const value = bytes(40).filter((v) => !v.includes('--XyZ'));
    const part = fc.record({ name, value, filename: fc.option(name, { nil: undefined }) });
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 6 }), (parts) => {
        const body =
          parts
            .map((p) => {
              const disposition = `Content-Disposition: form-data; name="${p.name}"${p.filename === undefined ? '' : `; filename="${p.filename}"`}`;
              return `--XyZ\r\n${disposition}\r\n\r\n${p.value}\r\n`;
            })
            .join('') + '--XyZ--\r\n';
        const result = parseMultipart(body, 'multipart/form-data; boundary=XyZ', DEFAULT_BODY_LIMITS);
        expect(result.error).toBeNull();
        expect(result.flags.strictError).toBe(0);
        expect(result.args).toEqual(parts.filter((p) => p.filename === undefined).map((p) => [p.name, p.value]));
        expect(result.files).toEqual(parts.filter((p) => p.filename !== undefined).map((p) => ({ name: p.name, filename: p.filename, size: p.value.length })));
      }),
      fcParams(300),
    );
  });

  it('parseXml: a printed tree gives back its text and attributes', () => {
    interface Element {
      name: string;
      attributes: [string, string][];
      children: (Element | string)[];
    }
    const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;').replace(/>/g, '&gt;');
    const print = (e: Element): string =>
      `<${e.name}${e.attributes.map(([n, v], i) => ` ${n}${i}="${escape(v)}"`).join('')}>${e.children.map((c) => (typeof c === 'string' ? escape(c) : print(c))).join('')}</${e.name}>`;
    const text = (e: Element): string => e.children.map((c) => (typeof c === 'string' ? c : text(c))).join('');
    const attributes = (e: Element): string[] => [...e.attributes.map(([, v]) => v), ...e.children.flatMap((c) => (typeof c === 'string' ? [] : attributes(c)))];
    // Printable text without the characters XML normalizes (\r, and \t / \n inside attribute values).
    const chars = fc.string({ unit: fc.constantFrom(...'ab <&>"\'é€x'), maxLength: 8 });
    const xmlName = fc.constantFrom('a', 'b', 'p:q', '_x', 'é');
    const { element } = fc.letrec((tie) => ({
      element: fc.record({
        name: xmlName,
        attributes: fc.array(fc.tuple(fc.constantFrom('k', 'v'), chars), { maxLength: 3 }),
        children: fc.array(fc.oneof({ depthSize: 'small' }, chars, tie('element') as fc.Arbitrary<Element>), { maxLength: 4 }),
      }),
    }));
    fc.assert(
      fc.property(element, (root) => {
        const result = parseXml(utf8(`<?xml version="1.0"?>${print(root)}`), DEFAULT_BODY_LIMITS);
        expect(result).toEqual({ text: utf8(text(root)), attributes: attributes(root).map(utf8), error: null });
      }),
      fcParams(300),
    );
  });
});
