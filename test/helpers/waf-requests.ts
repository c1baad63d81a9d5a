// Generated requests for the WAF engine's property tests: arbitrary methods, targets, headers and body bytes
// under every body processor, mixed with the bytes attacks and parsers care about.
import fc from 'fast-check';
import type { WafRequest } from '../../src/waf/request.ts';

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

export const requests = fc.record({
  method: fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'HEAD'), bytes(10)),
  uri: fc.oneof(interesting(200).map((rest) => `/${rest}`), interesting(200)),
  protocol: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9'),
  headers: fc.array(fc.tuple(fc.oneof(fc.constantFrom('Host', 'Cookie', 'User-Agent', 'Content-Type', 'Accept', 'Range'), bytes(20)), interesting(100)), {
    maxLength: 8,
  }),
  contentType: fc.option(fc.constantFrom(...CONTENT_TYPES)),
  body: fc.option(interesting(600)),
});

export type Generated = typeof requests extends fc.Arbitrary<infer T> ? T : never;

/** The WafRequest a generated request stands for. */
export function toRequest(sent: Generated): WafRequest {
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
