// The engine (src/waf/engine.ts) with the whole CRS 3.3.4 loaded, on generated requests: arbitrary methods,
// targets, headers and body bytes, under every body processor. No transaction may throw or report an internal
// error; every outcome is a well-formed interruption or null; the evaluation budget holds.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createWaf } from '../../src/waf/engine.ts';
import type { WafRequest } from '../../src/waf/request.ts';
import { fcParams } from '../helpers/fc.ts';

/** Byte strings: what the proxy hands over (one char per byte). */
const bytes = (maxLength: number) =>
  fc.uint8Array({ maxLength }).map((array) => Buffer.from(array).toString('latin1'));

/** Bytes that look like what attacks and parsers care about, mixed with arbitrary ones. */
const interesting = (maxLength: number) =>
  fc.oneof(
    bytes(maxLength),
    fc
      .array(fc.constantFrom('%', '%2', '%u', '&', '=', '+', ';', "'", '"', '<', '>', '/', '\\', '..', '{', '}', '[', ']', ':', ',', '\r\n', '--', 'a', '1', ' ', '\0', '\xff', 'select', 'script'), { maxLength: 40 })
      .map((parts) => parts.join('').slice(0, maxLength)),
  );

const CONTENT_TYPES = [
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'multipart/form-data',
  'application/json',
  'text/xml',
  'application/octet-stream',
];

const requests = fc.record({
  method: fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'HEAD'), bytes(10)),
  uri: fc.oneof(interesting(200).map((rest) => `/${rest}`), interesting(200)),
  protocol: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9'),
  headers: fc.array(fc.tuple(fc.oneof(fc.constantFrom('Host', 'Cookie', 'User-Agent', 'Content-Type', 'Accept', 'Range'), bytes(20)), interesting(100)), {
    maxLength: 8,
  }),
  contentType: fc.option(fc.constantFrom(...CONTENT_TYPES)),
  body: fc.option(interesting(600)),
});

type Generated = typeof requests extends fc.Arbitrary<infer T> ? T : never;

/** The WafRequest a generated request stands for. */
function toRequest(sent: Generated): WafRequest {
  const headers: [string, string][] = [...sent.headers];
  if (sent.contentType !== null) headers.push(['Content-Type', sent.contentType]);
  return {
    method: sent.method,
    uri: sent.uri,
    protocol: sent.protocol,
    headers,
    remoteAddr: '203.0.113.9',
    remotePort: 1234,
    serverAddr: '198.51.100.3',
    serverPort: 443,
  };
}

describe('the engine with CRS on arbitrary requests', () => {
  const { ruleSet, errors } = createWaf({ crs: { paranoiaLevel: 4 } });
  const tight = createWaf({ crs: { paranoiaLevel: 4 }, limits: { budget: 2000, onExhausted: 'fail-closed' } }).ruleSet;

  it('loads the CRS', () => {
    expect(errors).toEqual([]);
  });

  it('never throws nor fails internally, and answers with a well-formed outcome', () => {
    fc.assert(
      fc.property(requests, (sent) => {
        const tx = ruleSet.begin(toRequest(sent));
        const interruption = tx.requestHeaders() ?? tx.requestBody(sent.body);
        tx.responseHeaders({ status: 200, protocol: 'HTTP/1.1', headers: [['Content-Type', 'text/html']] });
        tx.responseBody('<html>ok</html>');
        tx.logging();
        expect(tx.internalError).toBeNull();
        if (interruption !== null) {
          expect(['deny', 'drop', 'redirect']).toContain(interruption.action);
          expect(interruption.status).toBeGreaterThanOrEqual(300);
        }
        for (const match of tx.matches) expect(match.ruleId).toBeGreaterThan(0);
        expect(Number.isFinite(tx.anomalyScore)).toBe(true);
      }),
      fcParams(200),
    );
  });

  it('keeps to a small evaluation budget: a request that exceeds it is flagged and, fail-closed, refused', () => {
    fc.assert(
      fc.property(requests, (sent) => {
        const tx = tight.begin(toRequest(sent));
        const interruption = tx.requestHeaders() ?? tx.requestBody(sent.body);
        expect(tx.internalError).toBeNull();
        if (tx.budgetExceeded) expect(interruption).toMatchObject({ reason: 'budget', ruleId: 0 });
      }),
      fcParams(100),
    );
  });
});
