// The REST API under /api/v1/ on the management listener, served by the telemetry actor with
// ../net/small-http.ts. Each route maps to one admin command, decoded with the admin socket's schema and run by
// the same handler (src/node/commands.ts), so `secbeat ctl` and the API can never disagree. Every request needs
// `Authorization: Bearer <[admin] api_token>`, compared in constant time; every answer is JSON,
// `{ ok: true, result }` or `{ ok: false, error: { code, message } }`, and a failure inside the node reaches
// the client as a catalogue code and a reference to the log line, never as its internals.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ERROR_CODES, toErrorData, type ErrorCode, type ErrorData } from '../errors.ts';
import { decodeAdminCommand, type AdminCommand, type AdminCommandName, type ConfigCheck } from '../messages.ts';
import type { SmallRequest, SmallResponse } from '../net/small-http.ts';
import type { Logger } from '../telemetry/log.ts';
import { RejectionLog } from './rejection-log.ts';
import type { AdminHandler } from './server.ts';

/** Paths under this prefix are the API's; the rest of the listener (/health, /metrics) needs no token. */
export const API_PREFIX = '/api/';

/**
 * Request bodies the management listener accepts: the largest is a bulk domain upload (POST /api/v1/domains,
 * up to MAX_DOMAINS_PER_CALL domains, ~1.4 MB); /health and /metrics take none.
 */
export const MAX_API_BODY_BYTES = 4 * 1024 * 1024;

interface ArgSpec {
  /** The admin command's name for the argument. */
  arg: string;
  /** Query-string values are text: read this one as a whole number. */
  int?: boolean;
}

export interface ApiRoute {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  cmd: AdminCommandName;
  /** Arguments by their REST name; absent = the route takes none. */
  args?: Readonly<Record<string, ArgSpec>>;
}

const DURATION: ArgSpec = { arg: 'durationSec', int: true };
const LIMIT: ArgSpec = { arg: 'limit', int: true };

/** Every route; docs/admin.md has the same table. */
export const API_ROUTES: readonly ApiRoute[] = [
  { method: 'GET', path: '/api/v1/stats', cmd: 'node.stats' },
  { method: 'GET', path: '/api/v1/events', cmd: 'events.list', args: { type: { arg: 'type' }, limit: LIMIT } },
  { method: 'GET', path: '/api/v1/certificates', cmd: 'certs.list', args: { limit: LIMIT } },
  // No `file` here, unlike ctl: a network client must not make the node read a path of its choosing.
  { method: 'POST', path: '/api/v1/reload', cmd: 'config.reload' },
  { method: 'GET', path: '/api/v1/block-ip', cmd: 'block.list' },
  { method: 'POST', path: '/api/v1/block-ip', cmd: 'block.add', args: { ip: { arg: 'ip' }, duration: DURATION } },
  { method: 'DELETE', path: '/api/v1/block-ip', cmd: 'block.remove', args: { ip: { arg: 'ip' } } },
  { method: 'GET', path: '/api/v1/emergency-block', cmd: 'cidr.list' },
  { method: 'POST', path: '/api/v1/emergency-block', cmd: 'cidr.block', args: { cidr: { arg: 'cidr' }, duration: DURATION } },
  { method: 'DELETE', path: '/api/v1/emergency-block', cmd: 'cidr.unblock', args: { cidr: { arg: 'cidr' } } },
  { method: 'GET', path: '/api/v1/domains', cmd: 'domains.list', args: { limit: LIMIT } },
  { method: 'POST', path: '/api/v1/domains', cmd: 'domains.upsert', args: { domains: { arg: 'domains' } } },
  { method: 'DELETE', path: '/api/v1/domains', cmd: 'domains.remove', args: { hosts: { arg: 'hosts' } } },
  { method: 'POST', path: '/api/v1/domains/compact', cmd: 'domains.compact', args: {} },
  { method: 'GET', path: '/api/v1/policy', cmd: 'policy.list', args: { limit: LIMIT } },
  { method: 'POST', path: '/api/v1/policy', cmd: 'policy.upsert', args: { kind: { arg: 'kind' }, entries: { arg: 'entries' } } },
  { method: 'DELETE', path: '/api/v1/policy', cmd: 'policy.remove', args: { kind: { arg: 'kind' }, names: { arg: 'names' } } },
];

/** The HTTP status of each failure a request can meet (docs/admin.md lists them); any other code is a 500. */
const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  SECBEAT_ERR_API_MALFORMED: 400,
  SECBEAT_ERR_ADMIN_INVALID_ARGS: 400,
  SECBEAT_ERR_API_UNAUTHORIZED: 401,
  SECBEAT_ERR_API_DISABLED: 403,
  SECBEAT_ERR_API_NOT_FOUND: 404,
  SECBEAT_ERR_API_METHOD_NOT_ALLOWED: 405,
  SECBEAT_ERR_CONFIG_INVALID: 422,
  SECBEAT_ERR_ASK_TIMEOUT: 503,
  SECBEAT_ERR_THREAD_UNAVAILABLE: 503,
  SECBEAT_ERR_MAILBOX_FULL: 503,
  SECBEAT_ERR_ACTOR_STOPPED: 503,
  SECBEAT_ERR_NODE_DRAINING: 503,
};

const UTF8 = new TextDecoder('utf-8', { fatal: true });

export interface RestApiOptions {
  /** The configured token, read per request so a config reload rotates it; undefined = the API is disabled. */
  token: () => string | undefined;
  /** Runs one admin command: the admin socket's handler. */
  execute: AdminHandler;
  log: Logger;
}

/** A refused request: its error and any headers its status calls for. */
interface Refusal {
  error: ErrorData;
  headers?: Record<string, string>;
}

export class RestApi {
  readonly #o: RestApiOptions;
  readonly #rejections: RejectionLog;
  /** Ids of the admin requests this API makes; only logs and the handler see them. */
  #requests = 0;

  constructor(options: RestApiOptions) {
    this.#o = options;
    this.#rejections = new RejectionLog(options.log);
  }

  /** Answers one request under API_PREFIX. Never rejects. */
  async handle(req: SmallRequest): Promise<SmallResponse> {
    try {
      return await this.#handle(req);
    } catch (err) {
      return this.#failure(toErrorData(err), err);
    }
  }

  /** Logs the summary of rejections still counted in the current window. */
  close(): void {
    this.#rejections.flush();
  }

  async #handle(req: SmallRequest): Promise<SmallResponse> {
    const denied = this.#authenticate(req);
    if (denied) return this.#refuse(req, denied);
    const routes = API_ROUTES.filter((r) => r.path === req.path);
    if (routes.length === 0) return this.#refuse(req, refusal('SECBEAT_ERR_API_NOT_FOUND', `no route ${req.path}; see docs/admin.md`));
    const route = routes.find((r) => r.method === req.method);
    if (!route) {
      const allow = routes.map((r) => r.method).join(', ');
      return this.#refuse(req, { ...refusal('SECBEAT_ERR_API_METHOD_NOT_ALLOWED', `${req.path} accepts ${allow}`), headers: { allow } });
    }
    const command = commandFor(route, req);
    if (!command.ok) return this.#refuse(req, command.refusal);
    let result: unknown;
    try {
      result = await this.#o.execute({ ...command.value, id: ++this.#requests });
    } catch (err) {
      return this.#failure(toErrorData(err), err);
    }
    // A reload that kept the running config failed as far as an HTTP client (curl -f, a deploy script) is concerned.
    if (route.cmd === 'config.reload' && isFailedCheck(result)) {
      const error: ErrorData = { code: 'SECBEAT_ERR_CONFIG_INVALID', message: result.issues.join('; ') };
      return json(statusOf(error.code), { ok: false, error, result });
    }
    return json(200, { ok: true, result: result ?? null });
  }

  #authenticate(req: SmallRequest): Refusal | null {
    const token = this.#o.token();
    if (token === undefined) {
      return refusal('SECBEAT_ERR_API_DISABLED', 'the REST API is disabled: set [admin] api_token (for example "${SECBEAT_API_TOKEN}") and reload');
    }
    const header = req.headers.get('authorization');
    const presented = header !== undefined && /^bearer /i.test(header) ? header.slice(7).trim() : null;
    // small-http hands header values over as latin1 text, so this gives back the bytes the client sent.
    if (presented !== null && sameSecret(Buffer.from(presented, 'latin1'), Buffer.from(token, 'utf8'))) return null;
    return {
      ...refusal('SECBEAT_ERR_API_UNAUTHORIZED', presented === null ? 'send Authorization: Bearer <token>' : 'the bearer token is wrong'),
      headers: { 'www-authenticate': 'Bearer realm="secbeat"' },
    };
  }

  #refuse(req: SmallRequest, r: Refusal): SmallResponse {
    this.#rejections.note(r.error.code, `${req.method} ${req.path} from ${req.remoteAddress}: ${r.error.message}`);
    return json(statusOf(r.error.code), { ok: false, error: r.error }, r.headers);
  }

  /** A command's failure: client errors as they are; server errors as their code and a log reference. */
  #failure(error: ErrorData, err: unknown): SmallResponse {
    const status = statusOf(error.code);
    if (status < 500) return json(status, { ok: false, error });
    const ref = randomBytes(4).toString('hex');
    const code: ErrorCode = status === 500 ? 'SECBEAT_ERR_INTERNAL' : error.code;
    if (status === 500) this.#o.log.error({ err, ref, code: error.code }, 'REST API request failed unexpectedly');
    else this.#o.log.warn({ ref, error }, 'REST API request failed');
    return json(status, { ok: false, error: { code, message: `${ERROR_CODES[code]} (ref ${ref} in the node's log)` } });
  }
}

/**
 * How the management listener answers what small-http refuses before any routing (malformed, too large, too
 * slow) and a handler that failed: in the API's JSON shape, whichever path was asked for.
 */
export function httpRequestError(status: number, message: string): SmallResponse {
  const code: ErrorCode = status >= 500 ? 'SECBEAT_ERR_INTERNAL' : 'SECBEAT_ERR_HTTP_REQUEST';
  return json(status, { ok: false, error: { code, message } });
}

/**
 * The admin command a request asks for. Arguments come from a JSON object body, or, without a body, from the
 * query string; each is named as the route names it and checked by the admin socket's schema.
 */
function commandFor(route: ApiRoute, req: SmallRequest): { ok: true; value: AdminCommand } | { ok: false; refusal: Refusal } {
  const invalid = (message: string) => ({ ok: false as const, refusal: refusal('SECBEAT_ERR_ADMIN_INVALID_ARGS', message) });
  const fromQuery = req.body.length === 0;
  const args: Record<string, unknown> = {};
  if (fromQuery) {
    for (const [name, value] of req.query) {
      if (Object.hasOwn(args, name)) return invalid(`${name}: given more than once`);
      args[name] = value;
    }
  } else {
    if (req.query.size > 0) return invalid('send arguments in the JSON body or in the query string, not both');
    const body = parseBody(req.body);
    if (body === null) {
      return { ok: false, refusal: refusal('SECBEAT_ERR_API_MALFORMED', 'the body must be a JSON object in UTF-8, like {"ip":"203.0.113.9"}') };
    }
    Object.assign(args, body);
  }
  const spec = route.args ?? {};
  const names = Object.keys(spec);
  const unknown = Object.keys(args).filter((k) => !Object.hasOwn(spec, k));
  if (unknown.length > 0) {
    const which = `unknown argument${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}`;
    return invalid(`${which}; ${route.method} ${route.path} takes ${names.length === 0 ? 'no arguments' : names.join(', ')}`);
  }
  const raw: Record<string, unknown> = { cmd: route.cmd };
  for (const [name, value] of Object.entries(args)) {
    const { arg, int } = spec[name]!;
    raw[arg] = fromQuery && int === true && typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value;
  }
  const decoded = decodeAdminCommand(raw);
  if (decoded.ok) return { ok: true, value: decoded.value };
  // The schema names the command's arguments; say them as this route does (durationSec → duration).
  const asNamed = (issue: string): string => {
    const name = names.find((n) => issue.startsWith(`${spec[n]!.arg}:`));
    return name === undefined ? issue : name + issue.slice(spec[name]!.arg.length);
  };
  return invalid(decoded.issues.map(asNamed).join('; '));
}

function parseBody(body: Buffer): Record<string, unknown> | null {
  try {
    const parsed: unknown = JSON.parse(UTF8.decode(body));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Constant time whatever the inputs: digests are equal in length and compared without early exit. */
function sameSecret(presented: Buffer, expected: Buffer): boolean {
  return timingSafeEqual(createHash('sha256').update(presented).digest(), createHash('sha256').update(expected).digest());
}

function isFailedCheck(result: unknown): result is ConfigCheck {
  const check = result as Partial<ConfigCheck> | null;
  return typeof check === 'object' && check !== null && check.ok === false && Array.isArray(check.issues);
}

function refusal(code: ErrorCode, message: string): Refusal {
  return { error: { code, message } };
}

function statusOf(code: ErrorCode): number {
  return STATUS_BY_CODE[code] ?? 500;
}

function json(status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): SmallResponse {
  return { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }, body: JSON.stringify(body) };
}
