// What the request and the response say, as SecLang variables: URI parts, arguments, headers, cookies, the
// processed body, the response. Derived lazily, each piece the first time a rule needs it, so a transaction
// only pays for what its rule set reads. What rules themselves change (TX, MATCHED_VAR, RULE …) is the
// transaction's (./transaction.ts).

import type { Arg } from './body/limits.ts';
import { parseCookies } from './body/cookies.ts';
import { parseUrlEncoded, type UrlEncodedResult } from './body/urlencoded.ts';
import type { RequestBodyOutcome } from './request-body.ts';
import type { WafRequest, WafResponse } from './request.ts';
import { makeValue, type VarValue, type VariableDef } from './variables.ts';

interface UriParts {
  /** REQUEST_URI: the target as sent, minus `scheme://authority` of an absolute-form target. */
  uri: string;
  /** QUERY_STRING: after the first `?`, as sent. */
  query: string;
  /** REQUEST_FILENAME / PATH_INFO: the path, %XX-decoded. */
  filename: string;
  /** REQUEST_BASENAME: the filename after its last `/` or `\`. */
  basename: string;
}

export class RequestData {
  readonly request: WafRequest;
  readonly #maxArgs: number;
  #uri: UriParts | null = null;
  #query: UrlEncodedResult | null = null;
  #cookies: Arg[] | null = null;
  #body: RequestBodyOutcome | null = null;
  #response: WafResponse | null = null;
  #responseBody: string | null = null;

  constructor(request: WafRequest, maxArgs: number) {
    this.request = request;
    this.#maxArgs = maxArgs;
  }

  /** The first value of header `lowerName`, or undefined. */
  header(lowerName: string): string | undefined {
    for (const [name, value] of this.request.headers) if (name.toLowerCase() === lowerName) return value;
    return undefined;
  }

  get contentType(): string {
    return this.header('content-type') ?? '';
  }

  setBody(body: RequestBodyOutcome): void {
    this.#body = body;
  }

  setResponse(response: WafResponse): void {
    this.#response = response;
  }

  setResponseBody(body: string | null): void {
    this.#responseBody = body;
  }

  /** Query-string arguments, parsed once; ARGS_GET counts against SecArgumentsLimit first. */
  get queryArgs(): UrlEncodedResult {
    return (this.#query ??= parseUrlEncoded(this.uriParts.query, { maxArgs: this.#maxArgs }));
  }

  /** How many more arguments the body may add under SecArgumentsLimit. */
  get argumentsLeft(): number {
    return Math.max(0, this.#maxArgs - this.queryArgs.args.length);
  }

  get uriParts(): UriParts {
    return (this.#uri ??= splitUri(this.request.uri));
  }

  /**
   * Values of a variable that depends on the request or response only, computed fresh (the transaction
   * caches them by lifetime). Variables the body has not filled yet have none.
   */
  values(def: VariableDef): VarValue[] {
    const { request } = this;
    const body = this.#body;
    switch (def.name) {
      case 'ARGS':
        return [...args('ARGS', this.queryArgs.args), ...args('ARGS', body?.args ?? [])];
      case 'ARGS_GET':
        return args(def.name, this.queryArgs.args);
      case 'ARGS_POST':
        return args(def.name, body?.args ?? []);
      case 'ARGS_NAMES':
        return [...names('ARGS_NAMES', this.queryArgs.args), ...names('ARGS_NAMES', body?.args ?? [])];
      case 'ARGS_GET_NAMES':
        return names(def.name, this.queryArgs.args);
      case 'ARGS_POST_NAMES':
        return names(def.name, body?.args ?? []);
      case 'ARGS_COMBINED_SIZE':
        return scalar(def, String(combinedSize(this.queryArgs.args) + combinedSize(body?.args ?? [])));
      case 'REQUEST_HEADERS':
        return args(def.name, request.headers);
      case 'REQUEST_HEADERS_NAMES':
        return names(def.name, request.headers);
      case 'REQUEST_COOKIES':
        return args(def.name, this.#cookieArgs());
      case 'REQUEST_COOKIES_NAMES':
        return names(def.name, this.#cookieArgs());
      case 'REQUEST_URI':
        return scalar(def, this.uriParts.uri);
      case 'REQUEST_URI_RAW':
        return scalar(def, request.uri);
      case 'REQUEST_FILENAME':
      case 'PATH_INFO':
        return scalar(def, this.uriParts.filename);
      case 'REQUEST_BASENAME':
        return scalar(def, this.uriParts.basename);
      case 'QUERY_STRING':
        return scalar(def, this.uriParts.query);
      case 'REQUEST_LINE':
        return scalar(def, `${request.method} ${request.uri} ${request.protocol}`);
      case 'REQUEST_METHOD':
        return scalar(def, request.method);
      case 'REQUEST_PROTOCOL':
        return scalar(def, request.protocol);
      case 'REMOTE_ADDR':
      case 'REMOTE_HOST':
        return scalar(def, request.remoteAddr);
      case 'REMOTE_PORT':
        return scalar(def, String(request.remotePort));
      case 'SERVER_ADDR':
        return scalar(def, request.serverAddr);
      case 'SERVER_PORT':
        return scalar(def, String(request.serverPort));
      case 'SERVER_NAME':
        return scalar(def, serverName(this.header('host') ?? ''));
      case 'AUTH_TYPE': {
        const authorization = this.header('authorization');
        return authorization === undefined ? [] : scalar(def, authorization.split(' ')[0]!);
      }
      case 'URLENCODED_ERROR':
        return scalar(def, this.queryArgs.invalidEncoding || body?.urlencodedError === true ? '1' : '0');
      default:
        return body === null ? this.#responseValues(def) : (this.#bodyValues(def, body) ?? this.#responseValues(def));
    }
  }

  #cookieArgs(): Arg[] {
    if (this.#cookies === null) {
      const headers = this.request.headers.filter(([name]) => name.toLowerCase() === 'cookie').map(([, value]) => value);
      this.#cookies = parseCookies(headers);
    }
    return this.#cookies;
  }

  /** Body-derived variables once the body was processed; undefined for a variable the body does not give. */
  #bodyValues(def: VariableDef, body: RequestBodyOutcome): VarValue[] | undefined {
    switch (def.name) {
      case 'REQUEST_BODY':
        return body.requestBody === null ? [] : scalar(def, body.requestBody);
      case 'REQUEST_BODY_LENGTH':
        return scalar(def, String(body.length));
      case 'FULL_REQUEST': {
        const head = this.request.headers.map(([name, value]) => `${name}: ${value}\n`).join('');
        return scalar(def, `${head}\n\n${body.inspected}`);
      }
      case 'FULL_REQUEST_LENGTH': {
        const head = this.request.headers.reduce((sum, [name, value]) => sum + name.length + value.length + 3, 0);
        return scalar(def, String(head + 2 + body.inspected.length));
      }
      case 'REQBODY_ERROR':
      case 'REQBODY_PROCESSOR_ERROR':
        return scalar(def, body.error === null ? '0' : '1');
      case 'REQBODY_ERROR_MSG':
      case 'REQBODY_PROCESSOR_ERROR_MSG':
        return body.error === null ? [] : scalar(def, body.error);
      case 'INBOUND_DATA_ERROR':
        return scalar(def, body.limitExceeded ? '1' : '0');
      case 'FILES':
        return body.files.map((file) => makeValue(def.name, file.name, file.filename));
      case 'FILES_NAMES':
        return body.files.map((file) => makeValue(def.name, file.name, file.name));
      case 'FILES_SIZES':
        return body.files.map((file) => makeValue(def.name, file.name, String(file.size)));
      case 'FILES_COMBINED_SIZE':
        return scalar(def, String(body.files.reduce((sum, file) => sum + file.size, 0)));
      case 'MULTIPART_PART_HEADERS':
        return args(def.name, body.partHeaders);
      case 'MULTIPART_NAME':
        return body.multipartNames.map((name) => makeValue(def.name, '', name));
      case 'MULTIPART_FILENAME':
        return body.multipartFilenames.map((name) => makeValue(def.name, '', name));
      case 'XML':
        if (body.xml === null) return [];
        return [
          ...(body.xml.text === null ? [] : [makeValue(def.name, '/*', body.xml.text)]),
          ...body.xml.attributes.map((value) => makeValue(def.name, '//@*', value)),
        ];
      default: {
        const flag = body.multipartFlags[def.name];
        return flag === undefined ? undefined : scalar(def, String(flag));
      }
    }
  }

  #responseValues(def: VariableDef): VarValue[] {
    const response = this.#response;
    if (response === null) return [];
    switch (def.name) {
      case 'RESPONSE_STATUS':
        return scalar(def, String(response.status));
      case 'RESPONSE_PROTOCOL':
        return scalar(def, response.protocol);
      case 'STATUS_LINE':
        return scalar(def, `${response.protocol} ${response.status}`);
      case 'RESPONSE_HEADERS':
        return args(def.name, response.headers);
      case 'RESPONSE_HEADERS_NAMES':
        return names(def.name, response.headers);
      case 'RESPONSE_CONTENT_TYPE':
        return responseHeader(def, response, 'content-type');
      case 'RESPONSE_CONTENT_LENGTH':
        return responseHeader(def, response, 'content-length');
      case 'RESPONSE_BODY':
        return this.#responseBody === null ? [] : scalar(def, this.#responseBody);
      case 'OUTBOUND_DATA_ERROR':
        return scalar(def, '0');
      default:
        return [];
    }
  }
}

function scalar(def: VariableDef, value: string): VarValue[] {
  return [makeValue(def.name, '', value)];
}

function args(collection: string, pairs: ReadonlyArray<readonly [string, string]>): VarValue[] {
  return pairs.map(([key, value]) => makeValue(collection, key, value));
}

function names(collection: string, pairs: ReadonlyArray<readonly [string, string]>): VarValue[] {
  return pairs.map(([key]) => makeValue(collection, key, key));
}

function combinedSize(pairs: readonly Arg[]): number {
  let size = 0;
  for (const [name, value] of pairs) size += name.length + value.length;
  return size;
}

function responseHeader(def: VariableDef, response: WafResponse, lowerName: string): VarValue[] {
  const found = response.headers.find(([name]) => name.toLowerCase() === lowerName);
  return found === undefined ? [] : scalar(def, found[1]);
}

/** SERVER_NAME: the Host header without its port (libmodsecurity splits at the first `:`, IPv6 aside). */
function serverName(host: string): string {
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    return close === -1 ? host : host.slice(0, close + 1);
  }
  const colon = host.indexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

/**
 * Splits a request target. REQUEST_URI keeps the target as sent (ModSecurity v2 and Coraza do; libmodsecurity 3
 * %-decodes it, which makes CRS's 920220 flag a well-encoded `%25`), and loses `scheme://authority` in absolute
 * form as libmodsecurity's processURI does. REQUEST_FILENAME is the %-decoded path, as in libmodsecurity 3
 * (uri_decode: valid %XX only, `+` stays).
 */
function splitUri(target: string): UriParts {
  let uri = target;
  if (!target.startsWith('/')) {
    const scheme = target.indexOf('://');
    if (scheme > 0) {
      const path = target.indexOf('/', scheme + 3);
      uri = path === -1 ? '' : target.slice(path);
    }
  }
  const question = uri.indexOf('?');
  const path = question === -1 ? uri : uri.slice(0, question);
  const query = question === -1 ? '' : uri.slice(question + 1);
  const filename = percentDecode(path);
  const slash = Math.max(filename.lastIndexOf('/'), filename.lastIndexOf('\\'));
  return { uri, query, filename, basename: slash === -1 ? filename : filename.slice(slash + 1) };
}

function percentDecode(text: string): string {
  if (!text.includes('%')) return text;
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}
