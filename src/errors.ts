// The error catalogue: every operational error SecBeat raises has a stable code from this table.
// Codes are never reused or renamed; across threads and NATS errors travel as `{ code, message }` data
// and callers match on `code`, never on `instanceof` (undici's cross-realm lesson).

export const ERROR_CODES = {
  SECBEAT_ERR_CONFIG_PARSE: 'configuration file is not valid TOML',
  SECBEAT_ERR_CONFIG_INVALID: 'configuration does not match the schema',
  SECBEAT_ERR_CONFIG_READ: 'configuration file cannot be read',
  SECBEAT_ERR_CONFIG_INTERPOLATION: 'configuration references an undefined ${VAR}',
  SECBEAT_ERR_ACTOR_NOT_FOUND: 'no actor at that address',
  SECBEAT_ERR_ACTOR_STOPPED: 'the actor is stopped',
  SECBEAT_ERR_ACTOR_EXISTS: 'an actor with that name already runs on this thread',
  SECBEAT_ERR_ASK_TIMEOUT: 'no reply before the ask deadline',
  SECBEAT_ERR_MAILBOX_FULL: 'the mailbox is full',
  SECBEAT_ERR_THREAD_NOT_FOUND: 'no such thread',
  SECBEAT_ERR_THREAD_UNAVAILABLE: 'the thread is restarting or stopped',
  SECBEAT_ERR_TRANSPORT_UNAVAILABLE: 'no transport reaches that address',
  SECBEAT_ERR_SUPERVISOR_ESCALATED: 'restart intensity exceeded; the supervisor gave up',
  SECBEAT_ERR_MESSAGE_INVALID: 'the message does not match its declared type',
  SECBEAT_ERR_CHAOS_DISABLED: 'chaos is disabled in the configuration',
  SECBEAT_ERR_CHAOS_RULE_INVALID: 'the chaos rule is invalid',
  SECBEAT_ERR_CHAOS_CRASH: 'crash injected by a chaos rule',
  SECBEAT_ERR_ADMIN_MALFORMED: 'the admin request is not a JSON object on one line',
  SECBEAT_ERR_ADMIN_UNKNOWN_COMMAND: 'unknown admin command',
  SECBEAT_ERR_ADMIN_INVALID_ARGS: 'invalid arguments for the admin command',
  SECBEAT_ERR_ADMIN_LINE_TOO_LONG: 'the admin request line is too long',
  SECBEAT_ERR_ADMIN_CONNECT: 'cannot reach the admin socket',
  SECBEAT_ERR_ADMIN_BUSY: 'too many admin requests in flight on this connection',
  SECBEAT_ERR_ADMIN_LISTEN: 'cannot listen on the admin socket',
  SECBEAT_ERR_API_DISABLED: 'the REST API is disabled: no [admin] api_token is configured',
  SECBEAT_ERR_API_UNAUTHORIZED: 'missing or wrong bearer token',
  SECBEAT_ERR_API_NOT_FOUND: 'no such REST API route',
  SECBEAT_ERR_API_METHOD_NOT_ALLOWED: 'the route does not accept that method',
  SECBEAT_ERR_API_MALFORMED: 'the request body is not a JSON object',
  SECBEAT_ERR_HTTP_REQUEST: 'the HTTP request is malformed, too large or too slow',
  SECBEAT_ERR_NODE_DRAINING: 'the node is draining',
  SECBEAT_ERR_PROXY_LISTEN: 'cannot listen on the configured address',
  SECBEAT_ERR_PROXY_UPSTREAM_CONNECT: 'cannot connect to the backend',
  SECBEAT_ERR_PROXY_UPSTREAM_TIMEOUT: 'the backend did not accept the connection in time',
  SECBEAT_ERR_METRICS_LISTEN: 'cannot listen on the metrics address',
  SECBEAT_ERR_TLS_CERT: 'the certificate or key is unusable for that name',
  SECBEAT_ERR_INTERNAL: 'internal error',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The plain-data form that crosses threads, NATS and the admin socket. */
export interface ErrorData {
  code: ErrorCode;
  message: string;
}

export class SecbeatError extends Error {
  override readonly name = 'SecbeatError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string = ERROR_CODES[code], options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  toData(): ErrorData {
    return { code: this.code, message: this.message };
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** Any thrown value as plain error data; unknown errors become SECBEAT_ERR_INTERNAL with their message. */
export function toErrorData(err: unknown): ErrorData {
  if (err instanceof SecbeatError) return err.toData();
  if (typeof err === 'object' && err !== null && 'code' in err && isErrorCode(err.code)) {
    return { code: err.code, message: String((err as { message?: unknown }).message ?? ERROR_CODES[err.code]) };
  }
  return { code: 'SECBEAT_ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

export function fromErrorData(data: ErrorData): SecbeatError {
  return new SecbeatError(data.code, data.message);
}

/** Exhaustiveness check for discriminated unions: a new member that is not handled fails the type check. */
export function assertNever(value: never): never {
  throw new Error(`unhandled variant ${JSON.stringify(value)}`);
}
