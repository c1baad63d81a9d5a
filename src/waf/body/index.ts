// The request body processors' public table: which processor a request gets, and one call that runs it within
// the body limits. The engine turns the result into SecLang variables (ARGS_POST, FILES, MULTIPART_*, XML,
// REQBODY_ERROR / REQBODY_ERROR_MSG).
//
// How libmodsecurity 3 picks the processor (Transaction::addRequestHeader and ::processRequestBody), kept here:
// - a Content-Type header whose lower-cased value starts with `multipart/form-data` makes the body MULTIPART,
//   one starting with `application/x-www-form-urlencoded` URLENCODED (`ctl:requestBodyProcessor=URLENCODED`,
//   which CRS rule 901350 uses, sets the same slot);
// - `ctl:requestBodyProcessor=JSON` or `=XML` set a second slot, which wins over the first. CRS 3.3.4 itself sets
//   neither: the recommended ModSecurity configuration does, in rules 200000 (XML for text/xml,
//   application/xml, application/soap+xml) and 200001 (JSON for application/json);
// - with neither, the body is not parsed (REQUEST_BODY only, which CRS 901340 forces).

import { parseJson, type JsonResult } from './json.ts';
import type { Arg, BodyLimits } from './limits.ts';
import { parseMultipart, type MultipartResult } from './multipart.ts';
import { parseUrlEncoded } from './urlencoded.ts';
import { parseXml, type XmlResult } from './xml.ts';

export type BodyProcessorKind = 'URLENCODED' | 'MULTIPART' | 'JSON' | 'XML';
/** The processor a Content-Type header (or ctl:requestBodyProcessor=URLENCODED) selects. */
export type FormBodyType = 'URLENCODED' | 'MULTIPART';
/** The processors only ctl:requestBodyProcessor selects. */
export type CtlBodyProcessor = 'XML' | 'JSON';

export function bodyTypeFromContentType(contentType: string): FormBodyType | null {
  const start = contentType.slice(0, 33).toLowerCase();
  if (start.startsWith('multipart/form-data')) return 'MULTIPART';
  if (start.startsWith('application/x-www-form-urlencoded')) return 'URLENCODED';
  return null;
}

export function resolveBodyProcessor(
  formType: FormBodyType | null,
  ctlProcessor: CtlBodyProcessor | null,
): BodyProcessorKind | null {
  return ctlProcessor ?? formType;
}

/**
 * A processor's output. `error` is REQBODY_ERROR_MSG (REQBODY_ERROR is 1 when it is set, else 0). Arguments
 * are ARGS_POST as well as ARGS for URLENCODED and MULTIPART; libmodsecurity 3.0.9 adds JSON arguments to ARGS
 * only (its origin for them is neither GET nor POST), which the engine may follow or not.
 */
export type BodyResult =
  | { kind: 'URLENCODED'; args: Arg[]; /** URLENCODED_ERROR */ invalidEncoding: boolean; error: string | null }
  | ({ kind: 'MULTIPART' } & MultipartResult)
  | ({ kind: 'JSON' } & JsonResult)
  | ({ kind: 'XML' } & XmlResult);

/** libmodsecurity's REQBODY_ERROR_MSG past SecRequestBodyNoFilesLimit. */
export const NO_FILES_LIMIT_MESSAGE = 'Request body excluding files is bigger than the maximum expected.';

/**
 * Runs processor `kind` on a body (a byte string). `contentType` is the first Content-Type header's value,
 * which only MULTIPART reads (for its boundary). Like libmodsecurity, a body past `noFilesLimit` is not parsed
 * at all, except a multipart one, whose files do not count and whose arguments are kept.
 */
export function processBody(kind: BodyProcessorKind, body: string, contentType: string, limits: BodyLimits): BodyResult {
  const tooLarge = body.length > limits.noFilesLimit;
  switch (kind) {
    case 'URLENCODED': {
      if (tooLarge) return { kind, args: [], invalidEncoding: false, error: NO_FILES_LIMIT_MESSAGE };
      const { args, invalidEncoding, error } = parseUrlEncoded(body, limits);
      return { kind, args, invalidEncoding, error: error === null ? null : `URLENCODED parsing error: ${error}` };
    }
    case 'MULTIPART': {
      const result = parseMultipart(body, contentType, limits);
      let error = result.error === null ? null : `Multipart parsing error: ${result.error}`;
      if (error === null && result.noFilesLength > limits.noFilesLimit) error = NO_FILES_LIMIT_MESSAGE;
      return { kind, ...result, error };
    }
    case 'JSON': {
      if (tooLarge) return { kind, args: [], error: NO_FILES_LIMIT_MESSAGE };
      const result = parseJson(body, limits);
      // An empty body is no JSON error for libmodsecurity: it checks the body's length before reporting one.
      const error = result.error === null || body.length === 0 ? null : `JSON parsing error: ${result.error}`;
      return { kind, args: result.args, error };
    }
    case 'XML': {
      if (tooLarge) return { kind, text: null, attributes: [], error: NO_FILES_LIMIT_MESSAGE };
      const result = parseXml(body, limits);
      return { kind, ...result, error: result.error === null ? null : `XML parsing error: ${result.error}` };
    }
  }
}
