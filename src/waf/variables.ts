// The SecLang variable catalogue: every variable name a rule or macro may use, whether its values carry member
// keys, and how long a transaction may keep its values once computed. The compiler looks names up here; the
// transaction (./transaction.ts) computes the values, through ./collect.ts, when a rule first asks.

/**
 * One value a rule inspects: a member of `collection` (`ARGS`, `TX` …). `key` is the member name as sent (''
 * for a variable without members) and `keyLower` the same lower-cased, because ModSecurity v3 looks members
 * up case-insensitively in every collection (its AnchoredSetVariable hashes and compares keys without case).
 * valueName gives what MATCHED_VAR_NAME and the match log show.
 */
export interface VarValue {
  readonly collection: string;
  readonly key: string;
  readonly keyLower: string;
  readonly value: string;
  /**
   * The transaction's transformation cache for this value: chain key k (CompiledRule.transformKeys), then the
   * value after chain k, pair after pair. Kept on the value so a lookup compares small numbers, not the value;
   * values live as long as their transaction caches them, so the cache does too. A flat list, not a Map: a
   * value meets a few of the rule set's hundreds of chains, and a Map's table costs more to build than a few
   * comparisons save.
   */
  transformed: (number | string)[] | null;
  /** The value's traits (./transforms/traits.ts), -1 until the transaction needs them. */
  traits: number;
  /** The transaction's mark of the literal sets the value holds (CompiledRuleSet.literals), -1 until needed. */
  mark: number;
}

/**
 * When a variable's values may change, which decides how long a transaction caches them:
 * - `request`: fixed once the request line and headers are known (computed at most once);
 * - `body`: fixed once the request body was processed (computed again after phase 2's body processing);
 * - `response`: fixed once the response headers / body were given;
 * - `live`: may change while rules run (TX, MATCHED_VAR, RULE, DURATION …): never cached.
 */
export type Lifetime = 'request' | 'body' | 'response' | 'live';

/**
 * - `list`: values computed as one array (ARGS, REQUEST_URI …);
 * - `store`: a collection rules write with setvar (TX and the persistent-collection stand-ins), read by key
 *   without building an array.
 */
export type Shape = 'list' | 'store';

export interface VariableDef {
  readonly name: string;
  /** Dense index, for per-transaction caches kept in arrays. */
  readonly id: number;
  /** Members have names (`ARGS:foo`); without, a key in a selector is meaningless. */
  readonly keyed: boolean;
  readonly lifetime: Lifetime;
  readonly shape: Shape;
}

type Entry = readonly [name: string, keyed: boolean, lifetime: Lifetime, shape?: Shape];

/** Every variable ModSecurity v3 documents that this engine can feed, CRS 3.3's among them. */
const ENTRIES: readonly Entry[] = [
  ['ARGS', true, 'body'],
  ['ARGS_GET', true, 'request'],
  ['ARGS_POST', true, 'body'],
  ['ARGS_NAMES', true, 'body'],
  ['ARGS_GET_NAMES', true, 'request'],
  ['ARGS_POST_NAMES', true, 'body'],
  ['ARGS_COMBINED_SIZE', false, 'body'],
  ['AUTH_TYPE', false, 'request'],
  ['DURATION', false, 'live'],
  ['FILES', true, 'body'],
  ['FILES_COMBINED_SIZE', false, 'body'],
  ['FILES_NAMES', true, 'body'],
  ['FILES_SIZES', true, 'body'],
  ['FILES_TMPNAMES', true, 'body'],
  ['FILES_TMP_CONTENT', true, 'body'],
  ['FULL_REQUEST', false, 'body'],
  ['FULL_REQUEST_LENGTH', false, 'body'],
  ['GEO', true, 'request'],
  ['HIGHEST_SEVERITY', false, 'live'],
  ['INBOUND_DATA_ERROR', false, 'body'],
  ['MATCHED_VAR', false, 'live'],
  ['MATCHED_VARS', true, 'live'],
  ['MATCHED_VAR_NAME', false, 'live'],
  ['MATCHED_VARS_NAMES', true, 'live'],
  ['MULTIPART_BOUNDARY_QUOTED', false, 'body'],
  ['MULTIPART_BOUNDARY_WHITESPACE', false, 'body'],
  ['MULTIPART_CRLF_LF_LINES', false, 'body'],
  ['MULTIPART_DATA_AFTER', false, 'body'],
  ['MULTIPART_DATA_BEFORE', false, 'body'],
  ['MULTIPART_FILE_LIMIT_EXCEEDED', false, 'body'],
  ['MULTIPART_FILENAME', false, 'body'],
  ['MULTIPART_HEADER_FOLDING', false, 'body'],
  ['MULTIPART_INVALID_HEADER_FOLDING', false, 'body'],
  ['MULTIPART_INVALID_PART', false, 'body'],
  ['MULTIPART_INVALID_QUOTING', false, 'body'],
  ['MULTIPART_LF_LINE', false, 'body'],
  ['MULTIPART_MISSING_SEMICOLON', false, 'body'],
  ['MULTIPART_NAME', false, 'body'],
  ['MULTIPART_PART_HEADERS', true, 'body'],
  ['MULTIPART_STRICT_ERROR', false, 'body'],
  ['MULTIPART_UNMATCHED_BOUNDARY', false, 'body'],
  ['OUTBOUND_DATA_ERROR', false, 'response'],
  ['PATH_INFO', false, 'request'],
  ['QUERY_STRING', false, 'request'],
  ['REMOTE_ADDR', false, 'request'],
  ['REMOTE_HOST', false, 'request'],
  ['REMOTE_PORT', false, 'request'],
  ['REMOTE_USER', false, 'request'],
  ['REQBODY_ERROR', false, 'body'],
  ['REQBODY_ERROR_MSG', false, 'body'],
  ['REQBODY_PROCESSOR', false, 'live'],
  ['REQBODY_PROCESSOR_ERROR', false, 'body'],
  ['REQBODY_PROCESSOR_ERROR_MSG', false, 'body'],
  ['REQUEST_BASENAME', false, 'request'],
  ['REQUEST_BODY', false, 'body'],
  ['REQUEST_BODY_LENGTH', false, 'body'],
  ['REQUEST_COOKIES', true, 'request'],
  ['REQUEST_COOKIES_NAMES', true, 'request'],
  ['REQUEST_FILENAME', false, 'request'],
  ['REQUEST_HEADERS', true, 'request'],
  ['REQUEST_HEADERS_NAMES', true, 'request'],
  ['REQUEST_LINE', false, 'request'],
  ['REQUEST_METHOD', false, 'request'],
  ['REQUEST_PROTOCOL', false, 'request'],
  ['REQUEST_URI', false, 'request'],
  ['REQUEST_URI_RAW', false, 'request'],
  ['RESPONSE_BODY', false, 'response'],
  ['RESPONSE_CONTENT_LENGTH', false, 'response'],
  ['RESPONSE_CONTENT_TYPE', false, 'response'],
  ['RESPONSE_HEADERS', true, 'response'],
  ['RESPONSE_HEADERS_NAMES', true, 'response'],
  ['RESPONSE_PROTOCOL', false, 'response'],
  ['RESPONSE_STATUS', false, 'response'],
  ['RULE', true, 'live'],
  ['SERVER_ADDR', false, 'request'],
  ['SERVER_NAME', false, 'request'],
  ['SERVER_PORT', false, 'request'],
  ['SESSIONID', false, 'request'],
  ['STATUS_LINE', false, 'response'],
  ['TIME', false, 'live'],
  ['TIME_DAY', false, 'live'],
  ['TIME_EPOCH', false, 'live'],
  ['TIME_HOUR', false, 'live'],
  ['TIME_MIN', false, 'live'],
  ['TIME_MON', false, 'live'],
  ['TIME_SEC', false, 'live'],
  ['TIME_WDAY', false, 'live'],
  ['TIME_YEAR', false, 'live'],
  ['UNIQUE_ID', false, 'live'],
  ['URLENCODED_ERROR', false, 'body'],
  ['USERID', false, 'request'],
  ['WEBSERVER_ERROR_LOG', true, 'request'],
  ['XML', true, 'body'],
  // Collections rules write with setvar. IP, GLOBAL, SESSION, USER and RESOURCE are persistent in ModSecurity
  // (initcol + SecDataDir); here each lives for one transaction, as the module comment of ./engine.ts explains.
  ['TX', true, 'live', 'store'],
  ['IP', true, 'live', 'store'],
  ['GLOBAL', true, 'live', 'store'],
  ['SESSION', true, 'live', 'store'],
  ['USER', true, 'live', 'store'],
  ['RESOURCE', true, 'live', 'store'],
  // setenv's values for this transaction (the process environment is not exposed to rules: a logdata macro
  // could copy a secret into the match log).
  ['ENV', true, 'live', 'store'],
];

/** Every variable, indexed by its id. */
export const VARIABLES: readonly VariableDef[] = ENTRIES.map(([name, keyed, lifetime, shape = 'list'], id) =>
  Object.freeze({ name, id, keyed, lifetime, shape }),
);

const BY_NAME = new Map<string, VariableDef>(VARIABLES.map((def) => [def.name, def]));

/** How many variables there are: the length of a per-transaction cache indexed by `VariableDef.id`. */
export const VARIABLE_COUNT = VARIABLES.length;

/** A variable by name, any case (`args`, `ARGS`). */
export function lookupVariable(name: string): VariableDef | undefined {
  return BY_NAME.get(name.toUpperCase());
}

/** The definition of a name this module is known to hold (for the engine's own references, e.g. TX). */
export function variable(name: string): VariableDef {
  const def = BY_NAME.get(name);
  if (def === undefined) throw new Error(`unknown variable ${name}`);
  return def;
}

/** The collections `setvar` (and, for ENV, `setenv`) write: TX, ENV and the per-transaction stand-ins. */
export function isStore(def: VariableDef): boolean {
  return def.shape === 'store';
}

/**
 * A value of member `key` of `collection` (`ARGS`, `foo`); '' makes an unkeyed value. `keyLower` when the
 * caller has it already.
 */
export function makeValue(collection: string, key: string, value: string, keyLower = key.toLowerCase()): VarValue {
  return { collection, key, keyLower, value, transformed: null, traits: -1, mark: -1 };
}

/**
 * The value's name as MATCHED_VAR_NAME and the match log show it (`ARGS:foo`, `REQUEST_HEADERS:User-Agent`,
 * `REQUEST_URI`): built when a rule matches, not with every value (a request makes over a hundred, CRS's TX
 * defaults included, and a few match).
 */
export function valueName(value: VarValue): string {
  return value.key === '' ? value.collection : `${value.collection}:${value.key}`;
}
