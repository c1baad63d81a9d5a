// A stage's request as the bytes CRS's own tool put on the wire, so that both targets (./engine-target.ts,
// ./socket-target.ts) see exactly what the CRS CI's Apache + ModSecurity saw. This is coreruleset/ftw
// (Python 3), the tool CRS 3.3.4's CI ran (tests/regression/requirements.txt: ftw 1.2.x), step for step:
//
//  * ruleset.py `Input.__init__`, unless `stop_magic`: when there is data, a missing `Content-Type` becomes
//    `application/x-www-form-urlencoded`; form data holding no `%XX` escape is re-encoded with
//    `urlencode(parse_qsl(data))` (so `a=<b>` goes out as `a=%3Cb%3E`, and a field with no `=` or an empty
//    value is dropped); a missing `Content-Length` becomes `len(data)`, counted in code points. Header names
//    are matched exactly as written, as the Python dict does (`content-type` is not `Content-Type`).
//  * http.py `build_request`: `"#method# #uri##version#\r\n#headers#\r\n#data#"` filled by successive
//    replace-alls; headers as `name: value\r\n` in YAML order; the data encoded with the charset of the
//    `Content-Type` (its regex, its alias check) and the whole request then sent as UTF-8.
//  * `raw_request` replaces all that: its UTF-8 bytes are decoded with `unicode_escape` and sent as UTF-8
//    again (so a non-ASCII character goes out double-encoded, as it did in CRS's CI); `encoded_request` is
//    base64 and is sent as decoded. Both at once is an ftw error.
import type { StageInput } from './ftw.ts';
import { decodeUnicodeEscape, hasNoPercentEscape, parseQslUnescaped, pythonLen, urlencode } from './python.ts';

/**
 * Why ftw did not send a stage: `test-error` is ftw's own TestError, which a stage with `expect_error`
 * expects; `exception` is any other Python exception (the stage fails); `unsupported` is what this runner
 * does not reproduce (the stage fails, and says so).
 */
export interface BuildError {
  kind: 'test-error' | 'exception' | 'unsupported';
  message: string;
}

export type BuiltRequest = { ok: true; bytes: Buffer } | { ok: false; error: BuildError };

const FORM = 'application/x-www-form-urlencoded';
/** http.py's charset lookup, matched case-sensitively against the exact `Content-Type` header. */
const CHARSET_PARAM = /;\s??charset=(.*?)(?:$|;|\s)/;
/** Python codec names (after ftw's `-` → `_`, lower-casing) that are UTF-8. */
const UTF8_NAMES = new Set(['utf_8', 'utf8', 'u8', 'utf', 'utf8_ucs2', 'utf8_ucs4', 'cp65001']);
/** Codecs that do not write ASCII as ASCII: UTF-7/16/32 and the EBCDIC code pages. */
const ASCII_INCOMPATIBLE = /^(?:u(?:tf_?)?(?:7|16|32)(?:_?[bl]e)?|unicode_1_1_utf_7|csunicode11utf7|(?:cp|ibm|csibm)0*(?:37|273|424|500|875|1026|1140)|ebcdic.*)$/;

export function buildRequest(input: StageInput): BuiltRequest {
  const headers = new Map(input.headers);
  let data = input.data;
  if (data !== '' && !input.stopMagic) {
    if (!headers.has('Content-Type')) headers.set('Content-Type', FORM);
    if (headers.get('Content-Type') === FORM && hasNoPercentEscape(data)) {
      const pairs = parseQslUnescaped(data);
      if (pairs.length > 0) data = urlencode(pairs);
    }
    if (!headers.has('Content-Length')) headers.set('Content-Length', String(pythonLen(data)));
  }
  const body = encodeData(data, input.stopMagic ? undefined : headers.get('Content-Type'));
  if (!body.ok) return body;
  let request = '#method# #uri##version#\r\n#headers#\r\n#data#';
  const fill = (slot: string, value: string): void => {
    request = request.split(slot).join(value);
  };
  fill('#method#', input.method);
  fill('#uri#', `${input.uri} `);
  fill('#version#', input.version);
  fill('#headers#', [...headers].map(([name, value]) => `${name}: ${value}\r\n`).join(''));
  fill('#data#', body.text);
  let bytes = Buffer.from(request, 'utf8');
  if (input.rawRequest !== null) {
    if (input.encodedRequest !== null) return { ok: false, error: { kind: 'test-error', message: 'Cannot specify both raw and encoded modes' } };
    const decoded = decodeUnicodeEscape(Buffer.from(input.rawRequest, 'utf8'));
    if (!decoded.ok) return { ok: false, error: { kind: 'exception', message: `UnicodeDecodeError: ${decoded.error}` } };
    bytes = Buffer.from(decoded.text, 'utf8');
  }
  if (input.encodedRequest !== null) bytes = Buffer.from(input.encodedRequest, 'base64');
  return { ok: true, bytes };
}

/**
 * The data as http.py leaves it before the request is encoded as UTF-8: encoded with the `Content-Type`
 * charset, then decoded again as UTF-8. ASCII data comes out unchanged under every ASCII-compatible codec,
 * which covers the whole CRS corpus; other combinations are reported, not guessed.
 */
function encodeData(data: string, contentType: string | undefined): { ok: true; text: string } | { ok: false; error: BuildError } {
  const charset = contentType === undefined ? undefined : CHARSET_PARAM.exec(contentType)?.[1]?.replaceAll('-', '_').toLowerCase();
  if (charset === undefined || UTF8_NAMES.has(charset)) return { ok: true, text: data };
  const ascii = /^[\x00-\x7f]*$/.test(data);
  if (ascii && !ASCII_INCOMPATIBLE.test(charset)) return { ok: true, text: data };
  return { ok: false, error: { kind: 'unsupported', message: `data encoded as charset ${JSON.stringify(charset)} is not reproduced` } };
}
