// The bounds every body processor in this folder works within, one place for all of them. Defaults are the
// values of ModSecurity's recommended configuration (modsecurity.conf-recommended, as Debian ships it in
// /etc/nginx/modsecurity.conf) where ModSecurity has a directive, and our own where it has none (there
// ModSecurity is bounded only by the body size; we add a count so no output grows past what a rule set can use).

export interface BodyLimits {
  /**
   * Arguments one parse may add (SecArgumentsLimit). ModSecurity counts ARGS as a whole, query string and body
   * together, so the caller passes what is left of the request's budget.
   */
  maxArgs: number;
  /** Body bytes, files excluded, beyond which a body is not parsed (SecRequestBodyNoFilesLimit). */
  noFilesLimit: number;
  /** Nesting of JSON arrays and objects (SecRequestBodyJsonDepthLimit). */
  maxJsonDepth: number;
  /** Multipart parts, files included; past it parsing stops with an error. */
  maxMultipartParts: number;
  /** File parts before MULTIPART_FILE_LIMIT_EXCEEDED is raised (SecUploadFileLimit). */
  maxMultipartFiles: number;
  /**
   * Elements open at once. libxml2 (without XML_PARSE_HUGE) refuses to open one when 256 are open past the root,
   * so its documents nest 257 deep at most.
   */
  maxXmlDepth: number;
  /** XML elements, attributes and text runs together. */
  maxXmlNodes: number;
  /** Characters of replacement text that internal entity references may produce in total (billion laughs). */
  maxXmlEntityChars: number;
}

export const DEFAULT_BODY_LIMITS: Readonly<BodyLimits> = Object.freeze({
  maxArgs: 1000,
  noFilesLimit: 131_072,
  maxJsonDepth: 512,
  maxMultipartParts: 1000,
  maxMultipartFiles: 100,
  maxXmlDepth: 257,
  maxXmlNodes: 100_000,
  maxXmlEntityChars: 65_536,
});

/** One argument as ARGS holds it: name and value, both byte strings. */
export type Arg = [name: string, value: string];
