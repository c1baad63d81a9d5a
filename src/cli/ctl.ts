// `secbeat ctl`: turns a command line into one AdminCommand, sends it over the admin socket and prints the
// reply. Called by src/main.ts; the exit codes are the table in ./exit-codes.ts. Arguments are checked with
// the same schema the node uses, so a bad argument is a usage error here rather than a round trip.
import { isIP } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { parseArgs } from 'node:util';
import { toErrorData, type ErrorData } from '../errors.ts';
import { CONFIG_RELOAD_TIMEOUT_MS, decodeAdminCommand, type AdminCommand, type AdminResponse } from '../messages.ts';
import { AdminClient } from '../admin/client.ts';
import { EXIT_CODES, type ExitCode } from './exit-codes.ts';
import { renderResult } from './render.ts';

export interface CtlIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: Record<string, string | undefined>;
}

export interface CtlFlags {
  socket: string | null;
  config: string | null;
  json: boolean;
  timeoutMs: number;
}

export type CtlParse =
  | { ok: true; command: AdminCommand; flags: CtlFlags }
  /** `error` is null when help was asked for (usage to stdout, exit 0). */
  | { ok: false; error: string | null; usage: string };

/** Where ctl looks when neither --socket, $SECBEAT_ADMIN_SOCKET nor a config names the socket. */
export const DEFAULT_SOCKET_PATH = '.run/secbeat.sock';
export const DEFAULT_CTL_TIMEOUT_MS = 10_000;
/**
 * Added to a command's own deadline (drain, inject --ask, config reload) to get ctl's wait; larger than the server's grace
 * (5 s) so the node's answer, even a timeout error, arrives before ctl gives up.
 */
const OWN_DEADLINE_GRACE_MS = 10_000;

const OPTIONS = {
  socket: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  ask: { type: 'boolean' },
  'ask-timeout': { type: 'string' },
  limit: { type: 'string' },
  duration: { type: 'string' },
  'timeout-ms': { type: 'string' },
  type: { type: 'string' },
} as const;

type LocalFlag = 'ask' | 'ask-timeout' | 'limit' | 'duration' | 'timeout-ms' | 'type';
type LocalValues = { ask?: boolean } & { [K in Exclude<LocalFlag, 'ask'>]?: string };

interface CtlCommandSpec {
  /** Operands in usage order; a trailing '?' marks an optional one. */
  operands: readonly string[];
  flags?: readonly LocalFlag[];
  help: string;
  /** The raw command; decodeAdminCommand then checks it and fills defaults. */
  build: (operands: readonly string[], flags: LocalValues) => Record<string, unknown>;
}

/** Every ctl command and the one AdminCommand it sends. Two-word names are subcommands (`chaos set`). */
const COMMANDS: Record<string, CtlCommandSpec> = {
  ping: { operands: [], help: 'check that the node answers', build: () => ({ cmd: 'ping' }) },
  threads: { operands: [], help: 'list threads: status, restarts, heartbeat age, actors', build: () => ({ cmd: 'threads.list' }) },
  actors: { operands: [], help: 'list actors: status, mailbox, processed, dropped, restarts', build: () => ({ cmd: 'actors.list' }) },
  inspect: { operands: ['ADDR'], help: 'show one actor', build: ([a]) => ({ cmd: 'actor.inspect', address: a }) },
  restart: { operands: ['ADDR'], help: 'restart an actor', build: ([a]) => ({ cmd: 'actor.restart', address: a }) },
  stop: { operands: ['ADDR'], help: 'stop an actor', build: ([a]) => ({ cmd: 'actor.stop', address: a }) },
  suspend: { operands: ['ADDR'], help: 'stop processing an actor’s mailbox (messages queue)', build: ([a]) => ({ cmd: 'actor.suspend', address: a }) },
  resume: { operands: ['ADDR'], help: 'resume a suspended actor', build: ([a]) => ({ cmd: 'actor.resume', address: a }) },
  inject: {
    operands: ['ADDR', 'MESSAGE_JSON'],
    flags: ['ask', 'ask-timeout'],
    help: 'send a message to an actor; --ask waits for its reply',
    build: ([a, m], f) => ({
      cmd: 'actor.inject',
      address: a,
      message: parseJson(m!, 'MESSAGE_JSON'),
      ask: f.ask === true,
      ...(f['ask-timeout'] === undefined ? {} : { timeoutMs: parseWhole(f['ask-timeout'], '--ask-timeout') }),
    }),
  },
  'thread-restart': { operands: ['THREAD'], help: 'restart a worker thread and its actors', build: ([t]) => ({ cmd: 'thread.restart', thread: t }) },
  'thread-terminate': {
    operands: ['THREAD'],
    help: 'kill a worker thread abruptly (chaos; needs [chaos] enabled)',
    build: ([t]) => ({ cmd: 'thread.terminate', thread: t }),
  },
  'chaos list': { operands: [], help: 'list chaos rules', build: () => ({ cmd: 'chaos.list' }) },
  'chaos set': { operands: ['RULE_JSON'], help: 'add or replace a chaos rule', build: ([r]) => ({ cmd: 'chaos.set', rule: parseJson(r!, 'RULE_JSON') }) },
  'chaos clear': {
    operands: ['RULE_ID?'],
    help: 'remove one chaos rule, or all of them',
    build: ([r]) => ({ cmd: 'chaos.clear', ...(r === undefined ? {} : { rule: r }) }),
  },
  deadletters: {
    operands: [],
    flags: ['limit'],
    help: 'recent undeliverable messages (default 100)',
    build: (_, f) => ({ cmd: 'deadletters.list', ...limit(f) }),
  },
  stats: { operands: [], help: 'node statistics', build: () => ({ cmd: 'node.stats' }) },
  'config show': { operands: [], help: 'the running configuration (secrets redacted)', build: () => ({ cmd: 'config.show' }) },
  'config validate': { operands: ['FILE?'], help: 'check a config file (default: the running one) without applying it', build: ([f]) => configFile('config.validate', f) },
  'config reload': { operands: ['FILE?'], help: 'load, check and apply a config file; on error the running one stays', build: ([f]) => configFile('config.reload', f) },
  'log-level': { operands: ['LEVEL'], help: 'set the log level on every thread', build: ([l]) => ({ cmd: 'log.level', level: l }) },
  block: {
    operands: ['IP'],
    flags: ['duration'],
    help: 'block an IP address (for --duration SECONDS, default until unblocked)',
    build: ([ip], f) => ({ cmd: 'block.add', ip: checkIp(ip!), ...duration(f) }),
  },
  unblock: { operands: ['IP'], help: 'unblock an IP address', build: ([ip]) => ({ cmd: 'block.remove', ip: checkIp(ip!) }) },
  blocks: { operands: [], help: 'list blocked IP addresses', build: () => ({ cmd: 'block.list' }) },
  'cidr block': {
    operands: ['CIDR'],
    flags: ['duration'],
    help: 'block a whole network in an emergency, e.g. 203.0.113.0/24 (like block)',
    build: ([cidr], f) => ({ cmd: 'cidr.block', cidr, ...duration(f) }),
  },
  'cidr unblock': { operands: ['CIDR'], help: 'lift the block of a network', build: ([cidr]) => ({ cmd: 'cidr.unblock', cidr }) },
  'cidr list': { operands: [], help: 'list blocked networks', build: () => ({ cmd: 'cidr.list' }) },
  events: {
    operands: [],
    flags: ['type', 'limit'],
    help: 'recent security events of every thread, oldest first (default 100; attack: refusals, blocks)',
    build: (_, f) => ({
      cmd: 'events.list',
      ...(f.type === undefined ? {} : { type: f.type }),
      ...limit(f),
    }),
  },
  syn: { operands: [], help: 'SYN mode: the XDP attachment, protected ports, list sizes and packets per reason', build: () => ({ cmd: 'syn.status' }) },
  certs: {
    operands: [],
    flags: ['limit'],
    help: 'L7 certificate counts and the names that expire first (default 100)',
    build: (_, f) => ({ cmd: 'certs.list', ...limit(f) }),
  },
  domains: {
    operands: [],
    flags: ['limit'],
    help: 'the fleet\'s tenant domains: count, peers, the first ones by name (default 100)',
    build: (_, f) => ({ cmd: 'domains.list', ...limit(f) }),
  },
  'domains add': {
    operands: ['HOST', 'ORIGIN'],
    help: 'add or replace one domain, e.g. shop.example http://10.0.0.5:8080 (bulk: POST /api/v1/domains)',
    build: ([host, origin]) => ({ cmd: 'domains.upsert', domains: [{ host, origins: [origin] }] }),
  },
  policy: {
    operands: [],
    flags: ['limit'],
    help: 'the fleet\'s WAF rules, exclusions, allows and blocked networks: counts and the first ones (default 100)',
    build: (_, f) => ({ cmd: 'policy.list', ...limit(f) }),
  },
  'policy add': {
    operands: ['KIND', 'JSON'],
    help: 'add or replace fleet entries: KIND rule|exclusion|allow|block, JSON one entry or an array (docs/tenants.md)',
    build: ([kind, json]) => ({ cmd: 'policy.upsert', kind, entries: jsonEntries(json!) }),
  },
  'policy rm': {
    operands: ['KIND', 'NAME'],
    help: 'remove one fleet entry by name (a rule by id, a block by CIDR)',
    build: ([kind, name]) => ({ cmd: 'policy.remove', kind, names: [name] }),
  },
  'policy block': {
    operands: ['CIDR'],
    flags: ['duration'],
    help: 'block a network on every node of the fleet (for --duration SECONDS, default until removed)',
    build: ([cidr], f) => ({ cmd: 'policy.upsert', kind: 'block', entries: [{ cidr, ...(f.duration === undefined ? {} : { duration_sec: parseWhole(f.duration, '--duration') }) }] }),
  },
  'domains compact': {
    operands: [],
    help: 'start the next generation of the tenant document now (the fleet follows; history is dropped)',
    build: () => ({ cmd: 'domains.compact' }),
  },
  'domains rm': { operands: ['HOST'], help: 'remove one domain from the fleet', build: ([host]) => ({ cmd: 'domains.remove', hosts: [host] }) },
  drain: { operands: [], flags: ['timeout-ms'], help: 'stop accepting, let connections finish (default 30000 ms)', build: (_, f) => drainCommand('node.drain', f) },
  shutdown: { operands: [], flags: ['timeout-ms'], help: 'drain, then stop the node', build: (_, f) => drainCommand('node.shutdown', f) },
};

const FLAG_USAGE: Record<LocalFlag, string> = {
  ask: '[--ask]',
  'ask-timeout': '[--ask-timeout MS]',
  limit: '[--limit N]',
  duration: '[--duration SECONDS]',
  'timeout-ms': '[--timeout-ms MS]',
  type: '[--type all|attack]',
};

export const CTL_USAGE = usage();

/** Pure: argv (after `ctl`) → the command to send and the global flags, or what is wrong with them. */
export function parseCtlArgs(argv: readonly string[]): CtlParse {
  try {
    return parse(argv);
  } catch (err) {
    if (err instanceof UsageError) return { ok: false, error: err.message, usage: CTL_USAGE };
    throw err;
  }
}

export async function runCtl(argv: readonly string[], io: CtlIo, resolveSocketPath?: (configFile: string | null) => string | null): Promise<ExitCode> {
  const parsed = parseCtlArgs(argv);
  if (!parsed.ok) {
    if (parsed.error === null) {
      io.stdout(parsed.usage);
      return EXIT_CODES.OK;
    }
    io.stderr(`error: ${parsed.error}\n\n${parsed.usage}`);
    return EXIT_CODES.USAGE;
  }
  const { command, flags } = parsed;
  const socketPath = socketPathFor(flags, io.env, resolveSocketPath);
  if (socketPath === null) {
    io.stderr(`error: cannot read the admin socket path from --config ${flags.config}; pass --socket PATH\n`);
    return EXIT_CODES.USAGE;
  }
  let response: AdminResponse;
  try {
    await using client = await AdminClient.connect(socketPath, flags.timeoutMs);
    response = await client.request(command, requestTimeoutFor(command, flags.timeoutMs));
  } catch (err) {
    const error = toErrorData(err);
    printError(io, flags, error);
    if (error.code === 'SECBEAT_ERR_ADMIN_CONNECT') return EXIT_CODES.UNREACHABLE;
    if (error.code === 'SECBEAT_ERR_ASK_TIMEOUT') return EXIT_CODES.TIMEOUT;
    return EXIT_CODES.COMMAND_FAILED;
  }
  if (!response.ok) {
    printError(io, flags, response.error);
    return EXIT_CODES.COMMAND_FAILED;
  }
  io.stdout(`${flags.json ? JSON.stringify(response.result) : renderResult(command.cmd, response.result)}\n`);
  return EXIT_CODES.OK;
}

/** --socket, else $SECBEAT_ADMIN_SOCKET, else the config's socket path, else the default; null if --config names none. */
export function socketPathFor(
  flags: CtlFlags,
  env: Record<string, string | undefined>,
  resolveSocketPath?: (configFile: string | null) => string | null,
): string | null {
  if (flags.socket !== null) return flags.socket;
  const fromEnv = env['SECBEAT_ADMIN_SOCKET'];
  if (fromEnv) return fromEnv;
  const fromConfig = resolveSocketPath?.(flags.config) ?? null;
  if (fromConfig !== null) return fromConfig;
  // An explicit --config that yields nothing must not silently reach whichever node owns the default path.
  return flags.config === null ? DEFAULT_SOCKET_PATH : null;
}

function parse(argv: readonly string[]): CtlParse {
  const { values, positionals } = readArgs(argv);
  if (values.help) return { ok: false, error: null, usage: CTL_USAGE };
  const flags: CtlFlags = {
    socket: values.socket ?? null,
    config: values.config ?? null,
    json: values.json === true,
    timeoutMs: values.timeout === undefined ? DEFAULT_CTL_TIMEOUT_MS : positive(parseWhole(values.timeout, '--timeout'), '--timeout'),
  };
  const [first, second] = positionals;
  if (first === undefined) throw new UsageError('missing command');
  const twoWords = second === undefined ? undefined : `${first} ${second}`;
  const name = twoWords !== undefined && Object.hasOwn(COMMANDS, twoWords) ? twoWords : first;
  if (!Object.hasOwn(COMMANDS, name)) {
    const subcommands = Object.keys(COMMANDS).filter((c) => c.startsWith(`${first} `));
    throw new UsageError(
      subcommands.length > 0
        ? `${first} needs one of: ${subcommands.map((c) => c.slice(first.length + 1)).join(', ')}`
        : `unknown command ${JSON.stringify(first)}`,
    );
  }
  const spec = COMMANDS[name]!;
  const operands = positionals.slice(name.split(' ').length);
  const required = spec.operands.filter((o) => !o.endsWith('?')).length;
  if (operands.length < required || operands.length > spec.operands.length) {
    throw new UsageError(`${name} takes ${spec.operands.length === 0 ? 'no operands' : spec.operands.join(' ')}: usage: ${commandUsage(name, spec)}`);
  }
  const local: LocalValues = {};
  for (const flag of ['ask', 'ask-timeout', 'limit', 'duration', 'timeout-ms', 'type'] as const) {
    const value = values[flag];
    if (value === undefined) continue;
    if (!spec.flags?.includes(flag)) throw new UsageError(`--${flag} does not apply to ${name}`);
    Object.assign(local, { [flag]: value });
  }
  const checked = decodeAdminCommand(spec.build(operands, local));
  if (!checked.ok) throw new UsageError(`invalid arguments for ${name}: ${checked.issues.join('; ')}: usage: ${commandUsage(name, spec)}`);
  return { ok: true, command: checked.value, flags };
}

function readArgs(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Commands with their own deadline (a reload: the node's) get it plus a grace period; the rest wait --timeout. */
function requestTimeoutFor(command: AdminCommand, timeoutMs: number): number {
  if (command.cmd === 'node.drain' || (command.cmd === 'actor.inject' && command.ask)) {
    return Math.max(timeoutMs, command.timeoutMs + OWN_DEADLINE_GRACE_MS);
  }
  if (command.cmd === 'config.reload') return Math.max(timeoutMs, CONFIG_RELOAD_TIMEOUT_MS + OWN_DEADLINE_GRACE_MS);
  return timeoutMs;
}

function printError(io: CtlIo, flags: CtlFlags, error: ErrorData): void {
  if (flags.json) io.stdout(`${JSON.stringify(error)}\n`);
  else io.stderr(`error ${error.code}: ${error.message}\n`);
}

class UsageError extends Error {}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

function parseWhole(text: string, what: string): number {
  if (!/^\d{1,15}$/.test(text)) throw new UsageError(`${what} expects a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

function positive(n: number, what: string): number {
  if (n === 0) throw new UsageError(`${what} must be greater than 0`);
  return n;
}

function checkIp(text: string): string {
  if (isIP(text) === 0) throw new UsageError(`IP: ${JSON.stringify(text)} is not an IPv4 or IPv6 address`);
  return text;
}

function limit(f: LocalValues): Record<string, unknown> {
  return f.limit === undefined ? {} : { limit: parseWhole(f.limit, '--limit') };
}

/** `policy add`'s JSON operand: one entry or an array of them. */
function jsonEntries(text: string): unknown[] {
  const parsed = parseJson(text, 'JSON');
  return Array.isArray(parsed) ? parsed : [parsed];
}

function duration(f: LocalValues): Record<string, unknown> {
  return f.duration === undefined ? {} : { durationSec: parseWhole(f.duration, '--duration') };
}

/** The node resolves relative paths against its own working directory, so send an absolute one. */
function configFile(cmd: 'config.validate' | 'config.reload', file: string | undefined): Record<string, unknown> {
  return { cmd, ...(file === undefined ? {} : { file: resolvePath(file) }) };
}

function drainCommand(cmd: 'node.drain' | 'node.shutdown', f: LocalValues): Record<string, unknown> {
  return { cmd, ...(f['timeout-ms'] === undefined ? {} : { timeoutMs: parseWhole(f['timeout-ms'], '--timeout-ms') }) };
}

function commandUsage(name: string, spec: CtlCommandSpec): string {
  const operands = spec.operands.map((o) => (o.endsWith('?') ? `[${o.slice(0, -1)}]` : o));
  return [name, ...operands, ...(spec.flags ?? []).map((f) => FLAG_USAGE[f])].join(' ');
}

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, spec]) => [commandUsage(name, spec), spec.help] as const);
  const width = Math.max(...lines.map(([u]) => u.length));
  return `usage: secbeat ctl [--socket PATH | --config FILE] [--json] [--timeout MS] COMMAND [ARGS]

commands:
${lines.map(([u, help]) => `  ${u.padEnd(width)}  ${help}`).join('\n')}

ADDR is actor, thread/actor or region/node/thread/actor (a bare actor name is on the main thread).

flags:
  --socket PATH   the admin socket; default $SECBEAT_ADMIN_SOCKET, else [admin] socket_path of the
                  config (--config FILE, else the default config), else ${DEFAULT_SOCKET_PATH}
  --config FILE   read the socket path from this config file
  --json          print the result, or the error object, as one JSON line on stdout
  --timeout MS    how long to wait for the node (default ${DEFAULT_CTL_TIMEOUT_MS}; drain and inject --ask
                  wait at least their own deadline plus ${OWN_DEADLINE_GRACE_MS / 1000} s, config reload the node's
                  ${CONFIG_RELOAD_TIMEOUT_MS / 1000} s plus as much)
  -h, --help      this help

exit codes: 0 ok, 1 the node answered with an error, 2 usage, 3 node unreachable, 4 no reply in time
`;
}
