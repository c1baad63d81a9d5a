// The PROXY header parser is the first code that sees a connection's bytes: it must never throw, must decide
// within PROXY_HEADER_MAX_BYTES, and must give the same verdict however the bytes are split into reads.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseProxyHeader, PROXY_HEADER_MAX_BYTES } from '../../src/net/proxy-protocol.ts';
import { fcParams } from '../helpers/fc.ts';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** Arbitrary bytes, biased towards the two signatures so that the deep paths are reached. */
const connectionStart = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.tuple(fc.constantFrom('PROXY ', 'PROXY TCP4 ', 'PROXY TCP6 ', 'PROXY UNKNOWN'), fc.string({ maxLength: 120 })).map(([a, b]) => Buffer.from(a + b, 'latin1')),
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 300 }), fc.uint8Array({ maxLength: 300 })).map(([vc, ft, len, rest]) => {
    const head = Buffer.from([vc, ft, len >> 8, len & 255]);
    return Buffer.concat([SIG, head, rest]);
  }),
);

describe('parseProxyHeader', () => {
  it('never throws; a header is no longer than the bound and than the input', () => {
    fc.assert(
      fc.property(connectionStart, (bytes) => {
        const result = parseProxyHeader(Buffer.from(bytes));
        if (result.kind === 'header') {
          expect(result.length).toBeLessThanOrEqual(Math.min(bytes.length, PROXY_HEADER_MAX_BYTES));
        }
        if (result.kind === 'incomplete') expect(bytes.length).toBeLessThan(PROXY_HEADER_MAX_BYTES);
      }),
      fcParams(5000),
    );
  });

  it('a prefix of a decided input is incomplete or decides the same way', () => {
    fc.assert(
      fc.property(connectionStart, fc.nat(), (bytes, cut) => {
        const whole = parseProxyHeader(Buffer.from(bytes));
        const part = parseProxyHeader(Buffer.from(bytes).subarray(0, cut % (bytes.length + 1)));
        if (part.kind === 'header') expect(whole).toEqual(part);
        if (part.kind === 'invalid') expect(whole.kind).toBe('invalid');
      }),
      fcParams(5000),
    );
  });
});
