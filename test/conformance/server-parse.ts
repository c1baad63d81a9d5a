// Reads a stage's raw request bytes the way the web server in CRS 3.3.4's CI did before ModSecurity saw
// anything, for the in-process target (./engine-target.ts). That server was Apache httpd 2.4 (the
// owasp/modsecurity-crs:3.3-apache image) with its default `HttpProtocolOptions Strict LenientMethods
// Allow0.9`, proxying to an httpbin backend. The stages whose expectation is a status (400, or a list that
// allows 400) were written against what that server refuses, so the model refuses the same things:
//
//  * request line: `method SP target SP HTTP/d.d CRLF` with single spaces, a token method, no control
//    characters; leading blank lines skipped; a line with no version is an HTTP/0.9 request, whose answer has
//    no status line (ftw reports an error); an explicit version below 1.0 or not of that form is refused.
//  * target: `/…`, `?…` (no path: httpd makes it `/`), `*`, an absolute URI, or for CONNECT `host:port`.
//    httpd refuses any other (a relative path such as `\`) with "Invalid URI in request" when it maps the
//    URI, after ModSecurity's phase 1 ran; the model refuses it outright, and no stage looks at that log.
//  * lines end in CRLF (strict mode refuses a bare LF); header names are tokens with the colon right after;
//    values lose surrounding whitespace, may not hold control characters other than HTAB, and a line
//    starting with whitespace continues the previous one; at most 100 fields of 8190 bytes (LimitRequest*).
//  * HTTP/1.1 needs a Host; a Host must be a hostname or [IPv6] literal with an optional numeric port.
//  * body: `Transfer-Encoding: chunked` is de-chunked and drops any Content-Length header from what the
//    WAF sees (RFC 9112 §6.3, as httpd does); another coding is 501; a Content-Length must be digits. When
//    fewer body bytes arrived than announced the server waits for the rest, and ftw gives up after 5 s.
//  * what is accepted gets the backend's answer: 200, or 405 for CONNECT, which httpd does not proxy.
//    (Statuses that depend on the backend's routes, like httpbin's 404, are not modelled: see
//    known-failures.json.)

/** The parts of a WafRequest the bytes determine; addresses come from the target. */
export interface ParsedRequest {
  method: string;
  uri: string;
  protocol: string;
  /** As sent, repeated names kept apart, minus Content-Length when the body is chunked. */
  headers: Array<readonly [name: string, value: string]>;
  /** Latin-1 byte string; null when the request announced no body. */
  body: string | null;
}

export type ServerView =
  /** A request the server passes on; `status` is what the backend answers. */
  | { kind: 'request'; request: ParsedRequest; status: number }
  /** Refused before any module sees it. */
  | { kind: 'refused'; status: number; reason: string }
  /** The head is complete but not the body: phase-1 rules run, the server then waits, and ftw times out. */
  | { kind: 'incomplete'; request: ParsedRequest; reason: string }
  /** HTTP/0.9: answered with a bare body, which ftw cannot parse (an ftw error). */
  | { kind: 'http09'; reason: string };

const LIMIT_REQUEST_LINE = 8190;
const LIMIT_REQUEST_FIELD_SIZE = 8190;
const LIMIT_REQUEST_FIELDS = 100;
/** httpd skips at most this many empty lines before the request line (DEFAULT_LIMIT_BLANK_LINES). */
const LIMIT_BLANK_LINES = 10;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
const VERSION = /^HTTP\/([0-9])\.([0-9])$/;
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;
const AUTHORITY = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]+$/;
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?$/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,15})[ \t]*(?:;.*)?$/;

export function parseAsServer(bytes: Buffer): ServerView {
  const text = bytes.toString('latin1');
  let at = 0;
  const lines = {
    /** The next line without its CRLF; null when no line end arrived; Error for a bare LF or an overlong line. */
    next(limit: number): string | null | Error {
      const lf = text.indexOf('\n', at);
      if (lf === -1) return text.length - at > limit ? new Error('line too long') : null;
      if (lf === at || text[lf - 1] !== '\r') return new Error('line not ended by CRLF');
      if (lf - 1 - at > limit) return new Error('line too long');
      const line = text.slice(at, lf - 1);
      at = lf + 1;
      return line;
    },
  };

  let requestLine = lines.next(LIMIT_REQUEST_LINE);
  for (let blank = 0; requestLine === '' && blank < LIMIT_BLANK_LINES; blank++) requestLine = lines.next(LIMIT_REQUEST_LINE);
  if (requestLine === null) return { kind: 'refused', status: 400, reason: 'no complete request line' };
  if (requestLine instanceof Error) {
    return { kind: 'refused', status: requestLine.message === 'line too long' ? 414 : 400, reason: `request line: ${requestLine.message}` };
  }
  if (CONTROL.test(requestLine) || requestLine.includes('\t')) return { kind: 'refused', status: 400, reason: 'control character in the request line' };
  const parts = requestLine.split(' ');
  const [method = '', target = '', version = ''] = parts;
  if (!TOKEN.test(method)) return { kind: 'refused', status: 400, reason: `method ${JSON.stringify(method)} is not a token` };
  if (target === '') return { kind: 'refused', status: 400, reason: 'no request target' };
  if (parts.length === 2 || (parts.length === 3 && version === '')) return { kind: 'http09', reason: 'request line without a version (HTTP/0.9)' };
  if (parts.length !== 3) return { kind: 'refused', status: 400, reason: 'request line is not three single-space-separated parts' };
  const v = VERSION.exec(version);
  if (v === null) return { kind: 'refused', status: 400, reason: `version ${JSON.stringify(version)} is not HTTP/d.d` };
  if (v[1] === '0') return { kind: 'refused', status: 400, reason: `explicit version ${version} below HTTP/1.0` };
  const targetOk = method === 'CONNECT' ? AUTHORITY.test(target) : target === '*' || /^[/?]/.test(target) || ABSOLUTE_URI.test(target);
  if (!targetOk) return { kind: 'refused', status: 400, reason: `request target ${JSON.stringify(target.slice(0, 40))} is not of a form httpd serves` };

  const headers: Array<[string, string]> = [];
  for (;;) {
    const line = lines.next(LIMIT_REQUEST_FIELD_SIZE);
    if (line === null) return { kind: 'refused', status: 400, reason: 'header block not terminated' };
    if (line instanceof Error) return { kind: 'refused', status: 400, reason: `header line: ${line.message}` };
    if (line === '') break;
    if (line[0] === ' ' || line[0] === '\t') {
      const last = headers.at(-1);
      if (last === undefined) return { kind: 'refused', status: 400, reason: 'continuation line before any header' };
      last[1] = `${last[1]} ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon === -1 ? '' : line.slice(0, colon);
    if (!TOKEN.test(name)) return { kind: 'refused', status: 400, reason: `header name ${JSON.stringify(line.slice(0, 40))} is not a token followed by a colon` };
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (CONTROL.test(value)) return { kind: 'refused', status: 400, reason: `control character in header ${name}` };
    headers.push([name, value]);
    if (headers.length > LIMIT_REQUEST_FIELDS) return { kind: 'refused', status: 400, reason: 'too many header fields' };
  }
  const first = (name: string): string | undefined => headers.find(([n]) => n.toLowerCase() === name)?.[1];

  const host = first('host');
  if (host === undefined ? version !== 'HTTP/1.0' : !HOST.test(host)) {
    return { kind: 'refused', status: 400, reason: host === undefined ? 'HTTP/1.1 request without Host' : `Host ${JSON.stringify(host)} is not a hostname` };
  }

  const request: ParsedRequest = { method, uri: target, protocol: version, headers, body: null };
  const rest = text.slice(at);
  const codings = first('transfer-encoding');
  if (codings !== undefined) {
    if (codings.toLowerCase() !== 'chunked') return { kind: 'refused', status: 501, reason: `Transfer-Encoding ${JSON.stringify(codings)}` };
    request.headers = headers.filter(([n]) => n.toLowerCase() !== 'content-length');
    const body = dechunk(rest);
    if (body === null) return { kind: 'incomplete', request, reason: 'chunked body not complete' };
    if (body instanceof Error) return { kind: 'refused', status: 400, reason: body.message };
    request.body = body;
  } else {
    const length = first('content-length');
    if (length !== undefined) {
      if (!/^[0-9]{1,15}$/.test(length)) return { kind: 'refused', status: 400, reason: `Content-Length ${JSON.stringify(length)}` };
      const want = Number(length);
      if (rest.length < want) {
        return { kind: 'incomplete', request, reason: `Content-Length ${want}, ${rest.length} body bytes sent` };
      }
      // Bytes past the announced length would be the next request on the connection; ftw never reads its answer.
      request.body = rest.slice(0, want);
    }
  }
  return { kind: 'request', request, status: method === 'CONNECT' ? 405 : 200 };
}

/** A chunked body's data; null while incomplete; Error when malformed. Trailer fields are dropped. */
function dechunk(text: string): string | null | Error {
  let body = '';
  let at = 0;
  for (;;) {
    const lf = text.indexOf('\r\n', at);
    if (lf === -1) return null;
    const size = CHUNK_SIZE.exec(text.slice(at, lf));
    if (size === null) return new Error('bad chunk size line');
    const n = parseInt(size[1]!, 16);
    at = lf + 2;
    if (n === 0) break;
    if (text.length < at + n + 2) return null;
    if (text.slice(at + n, at + n + 2) !== '\r\n') return new Error('chunk data not followed by CRLF');
    body += text.slice(at, at + n);
    at += n + 2;
  }
  for (;;) {
    const lf = text.indexOf('\r\n', at);
    if (lf === -1) return null;
    if (lf === at) return body;
    at = lf + 2;
  }
}
