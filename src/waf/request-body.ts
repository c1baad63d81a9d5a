// Phase 2's body processing: runs the body processor the transaction chose (./body/index.ts) within the
// configured limits and gathers what the body variables (ARGS_POST, FILES, XML, MULTIPART_*, REQBODY_ERROR …)
// read, as libmodsecurity 3's Transaction::processRequestBody does.

import { processBody, type BodyProcessorKind } from './body/index.ts';
import { DEFAULT_BODY_LIMITS, type Arg } from './body/limits.ts';
import { MULTIPART_FLAG_VARIABLES, type MultipartFile } from './body/multipart.ts';
import type { EngineSettings } from './settings.ts';

export interface RequestBodyOutcome {
  /**
   * REQUEST_BODY: the bytes inspected, when the URLENCODED processor ran or ctl:forceRequestBodyVariable asked
   * for it, as ModSecurity 2 defines the variable and the CRS regression suite expects (libmodsecurity 3 fills
   * it for every processor, so CRS's Java rules see `<java.lang.Runtime>` element names in XML bodies that
   * the suite says must pass); null otherwise and for an empty body.
   */
  requestBody: string | null;
  /**
   * The body bytes inspected, whatever the processor ('' when body access is off): FULL_REQUEST ends with
   * them, as libmodsecurity 3 builds it from the request's buffer, not from REQUEST_BODY.
   */
  inspected: string;
  /** REQUEST_BODY_LENGTH: bytes received. */
  length: number;
  /** INBOUND_DATA_ERROR: the body was longer than the limit and only its start was inspected. */
  limitExceeded: boolean;
  /** ARGS_POST (JSON arguments included, as Coraza does: exclusions written for ARGS_POST then apply). */
  args: Arg[];
  /** URLENCODED_ERROR from the body (the query string's is the request's). */
  urlencodedError: boolean;
  /** REQBODY_ERROR_MSG, null when the processor succeeded or none ran. */
  error: string | null;
  files: MultipartFile[];
  partHeaders: Arg[];
  multipartNames: string[];
  multipartFilenames: string[];
  /** MULTIPART_* flags by variable name; empty unless the multipart processor ran. */
  multipartFlags: Record<string, number>;
  /** XML:/* (null when no root element was parsed) and XML://@*. */
  xml: { text: string | null; attributes: string[] } | null;
}

export interface BodyContext {
  processor: BodyProcessorKind | null;
  /** SecRequestBodyAccess (or its ctl): off, nothing of the body is inspected. */
  access: boolean;
  /** ctl:forceRequestBodyVariable=On (CRS 901340 sets it when no processor claims the body). */
  forceRequestBody: boolean;
  contentType: string;
  settings: Readonly<EngineSettings>;
  /** SecArgumentsLimit less the query string's arguments. */
  argumentsLeft: number;
  limitExceeded: boolean;
}

export function processRequestBody(body: string, context: BodyContext): RequestBodyOutcome {
  const outcome: RequestBodyOutcome = {
    requestBody: context.access && body.length > 0 && (context.processor === 'URLENCODED' || context.forceRequestBody) ? body : null,
    inspected: context.access ? body : '',
    length: body.length,
    limitExceeded: context.limitExceeded,
    args: [],
    urlencodedError: false,
    error: null,
    files: [],
    partHeaders: [],
    multipartNames: [],
    multipartFilenames: [],
    multipartFlags: {},
    xml: null,
  };
  if (!context.access || context.processor === null) return outcome;
  const { settings } = context;
  const result = processBody(context.processor, body, context.contentType, {
    ...DEFAULT_BODY_LIMITS,
    maxArgs: context.argumentsLeft,
    noFilesLimit: settings.requestBodyNoFilesLimit,
    maxJsonDepth: settings.requestBodyJsonDepthLimit,
    maxMultipartFiles: settings.uploadFileLimit,
  });
  outcome.error = result.error;
  switch (result.kind) {
    case 'URLENCODED':
      outcome.args = result.args;
      outcome.urlencodedError = result.invalidEncoding;
      break;
    case 'JSON':
      outcome.args = result.args;
      break;
    case 'MULTIPART':
      outcome.args = result.args.slice(0, context.argumentsLeft);
      outcome.files = result.files;
      outcome.partHeaders = result.partHeaders;
      outcome.multipartNames = result.names;
      outcome.multipartFilenames = result.filenames;
      for (const [name, field] of Object.entries(MULTIPART_FLAG_VARIABLES)) outcome.multipartFlags[name] = result.flags[field];
      break;
    case 'XML':
      outcome.xml = { text: result.text, attributes: result.attributes };
      break;
  }
  return outcome;
}
