// Every message that crosses an actor mailbox, a thread boundary, the admin socket or (later) NATS is
// declared here, once, as a zod schema with its TypeScript type inferred from it. Untrusted input is decoded
// with the `decode*` functions, which return `{ ok, value | issues }` and never throw.
//
// Rules that hold for every message:
// - Plain data only (JSON- and structured-clone-safe): no class instances, functions or Maps.
// - `type` is a lowercase dot path "<actor>.<verb>".
// - Delivery is at-most-once and FIFO per sender→receiver pair; chaos rules may break both on purpose.
import { z } from 'zod';
import type { ErrorData } from './errors.ts';
import { NAME, type Address } from './address.ts';

// ---------------------------------------------------------------------------------------------------------
// Addresses

export const NameSchema = z.string().regex(NAME, 'names use letters, digits, "_", "." and "-" (1–64 chars)');
export { formatAddress, parseAddress, type Address } from './address.ts';

export const AddressSchema = z.strictObject({
  region: NameSchema,
  node: NameSchema,
  thread: NameSchema,
  actor: NameSchema,
});

// ---------------------------------------------------------------------------------------------------------
// Actor messages, grouped per actor. Messages that expect an answer are listed in `Replies` below.

export const ListenerMsgSchema = z.discriminatedUnion('type', [
  /** Stop accepting, let open connections finish up to `timeoutMs`, then close the rest. Ask → DrainReport. */
  z.strictObject({ type: z.literal('listener.drain'), timeoutMs: z.number().int().min(0).max(3_600_000) }),
  /** Ask → ListenerStats. */
  z.strictObject({ type: z.literal('listener.stats') }),
]);

export const ConfigMsgSchema = z.discriminatedUnion('type', [
  /** Ask → the running config (secrets redacted). */
  z.strictObject({ type: z.literal('config.show') }),
  /** Load and check a file without applying it. Ask → ConfigCheck. */
  z.strictObject({ type: z.literal('config.validate'), file: z.string().min(1).max(4096).optional() }),
  /** Load, check and apply; on any error the running config stays. Ask → ConfigCheck. */
  z.strictObject({ type: z.literal('config.reload'), file: z.string().min(1).max(4096).optional() }),
]);

export const TelemetryMsgSchema = z.discriminatedUnion('type', [
  /** Self-scheduled tick: sample process CPU and memory into the gauges. */
  z.strictObject({ type: z.literal('telemetry.sample') }),
]);

/** Messages every actor understands; handled by the runtime before the behaviour sees anything. */
export const SystemMsgSchema = z.discriminatedUnion('type', [
  /** Ask → 'pong'. Used by health checks and tests to prove an actor is processing. */
  z.strictObject({ type: z.literal('sys.ping') }),
]);

export const AnyMsgSchema = z.union([ListenerMsgSchema, ConfigMsgSchema, TelemetryMsgSchema, SystemMsgSchema]);

export type ListenerMsg = z.infer<typeof ListenerMsgSchema>;
export type ConfigMsg = z.infer<typeof ConfigMsgSchema>;
export type TelemetryMsg = z.infer<typeof TelemetryMsgSchema>;
export type SystemMsg = z.infer<typeof SystemMsgSchema>;
export type AnyMsg = z.infer<typeof AnyMsgSchema>;
export type MsgType = AnyMsg['type'];

export const MESSAGE_TYPES: readonly MsgType[] = [
  ...ListenerMsgSchema.options,
  ...ConfigMsgSchema.options,
  ...TelemetryMsgSchema.options,
  ...SystemMsgSchema.options,
].map((o) => o.shape.type.value);

export interface ListenerStats {
  thread: string;
  listening: boolean;
  draining: boolean;
  active: number;
  accepted: number;
  refused: number;
  bytesIn: number;
  bytesOut: number;
}
export interface DrainReport {
  closedGracefully: number;
  closedForcibly: number;
}
export interface ConfigCheck {
  ok: boolean;
  /** Human-readable problems with file/key/line where known; empty when ok. */
  issues: string[];
  /** Incremented each time a reload applies; unchanged when it fails. */
  version: number;
}

/** What each asked message type answers with. */
export interface Replies {
  'listener.drain': DrainReport;
  'listener.stats': ListenerStats;
  'config.show': unknown;
  'config.validate': ConfigCheck;
  'config.reload': ConfigCheck;
  'sys.ping': 'pong';
}

// ---------------------------------------------------------------------------------------------------------
// Envelopes and delivery

/** One message on its way. `replyTo` is set for asks; the answer travels back as a ReplyEnvelope. */
export interface Envelope<M = AnyMsg> {
  to: Address;
  from: Address | null;
  msg: M;
  /** Correlation id for asks, unique per sending system. */
  askId?: number;
  replyTo?: Address;
}

export interface ReplyEnvelope {
  to: Address;
  askId: number;
  outcome: { ok: true; value: unknown } | { ok: false; error: ErrorData };
}

/** What travels between systems: a message, an ask's answer, or a chaos-injected crash of the receiver. */
export type Delivery<M = AnyMsg> =
  | { kind: 'msg'; envelope: Envelope<M> }
  | { kind: 'reply'; reply: ReplyEnvelope }
  | { kind: 'crash'; to: Address; ruleId: string };

/** Why a message ended in the dead-letter ring. */
export const DEAD_LETTER_REASONS = [
  'mailbox_full',
  'no_such_actor',
  'actor_stopped',
  'no_transport',
  'thread_unavailable',
  'chaos_drop',
  'invalid',
] as const;
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

export interface DeadLetter {
  at: number;
  reason: DeadLetterReason;
  to: string;
  from: string | null;
  type: string;
}

// ---------------------------------------------------------------------------------------------------------
// Chaos rules (drop / delay / duplicate / reorder / crash on message routes)

/** Glob over address strings and message types: `*` matches any run of characters. */
const GlobSchema = z.string().min(1).max(256).regex(/^[A-Za-z0-9_.*/-]+$/, 'globs use name characters and *');

export const ChaosActionSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('drop'), probability: z.number().min(0).max(1) }),
  z.strictObject({
    kind: z.literal('delay'),
    ms: z.number().int().min(0).max(60_000),
    jitterMs: z.number().int().min(0).max(60_000).default(0),
  }),
  z.strictObject({
    kind: z.literal('duplicate'),
    probability: z.number().min(0).max(1),
    copies: z.number().int().min(1).max(10).default(1),
  }),
  /** Hold up to `window` messages (or `maxHoldMs`) and release them in a seeded random order. */
  z.strictObject({
    kind: z.literal('reorder'),
    window: z.number().int().min(2).max(1000),
    maxHoldMs: z.number().int().min(1).max(60_000).default(100),
  }),
  /** Deliver a crash instead of the message: the receiver fails as if its behaviour threw. */
  z.strictObject({ kind: z.literal('crash'), probability: z.number().min(0).max(1) }),
]);

export const ChaosRuleSpecSchema = z.strictObject({
  id: NameSchema,
  match: z
    .strictObject({ from: GlobSchema.optional(), to: GlobSchema.optional(), type: GlobSchema.optional() })
    .default({}),
  action: ChaosActionSchema,
  /** Same seed + same message sequence ⇒ same decisions. */
  seed: z.number().int().min(0).max(0xffff_ffff).default(1),
  /** Rules expire on their own; there is no "forever". */
  ttlMs: z.number().int().min(1).max(24 * 3_600_000).default(60_000),
});

export type ChaosAction = z.infer<typeof ChaosActionSchema>;
export type ChaosRuleSpec = z.infer<typeof ChaosRuleSpecSchema>;
export interface ChaosRule extends ChaosRuleSpec {
  /** Clock time at which the rule stops applying. */
  expiresAt: number;
}

// ---------------------------------------------------------------------------------------------------------
// Introspection data (what `secbeat ctl` shows)

export const ACTOR_STATUSES = ['starting', 'running', 'suspended', 'restarting', 'stopped', 'failed'] as const;
export type ActorStatus = (typeof ACTOR_STATUSES)[number];

export interface ActorInfo {
  address: string;
  behavior: string;
  status: ActorStatus;
  mailboxDepth: number;
  mailboxCapacity: number;
  processed: number;
  dropped: number;
  restarts: number;
  lastError: ErrorData | null;
}

export const THREAD_STATUSES = ['starting', 'running', 'restarting', 'stopped', 'failed'] as const;
export type ThreadStatus = (typeof THREAD_STATUSES)[number];

export interface ThreadInfo {
  thread: string;
  status: ThreadStatus;
  restarts: number;
  threadId: number | null;
  lastHeartbeatAgoMs: number | null;
  actors: number;
}

// ---------------------------------------------------------------------------------------------------------
// Main ⇄ worker thread protocol (runtime-internal, over the worker's MessagePort)

export type ThreadControl =
  | { op: 'actors.list' }
  | { op: 'actor.restart' | 'actor.stop' | 'actor.suspend' | 'actor.resume'; actor: string }
  | { op: 'deadletters.list'; limit: number }
  | { op: 'chaos.set'; rules: ChaosRule[]; enabled: boolean }
  | { op: 'log.level'; level: LogLevel }
  /** → the thread's registry as prom-client JSON, merged by the main thread's telemetry actor. */
  | { op: 'metrics' }
  | { op: 'stop'; reason: string };

export type MainToThread =
  | { kind: 'deliveries'; batch: Delivery[] }
  | { kind: 'control'; id: number; control: ThreadControl };

export type ThreadToMain =
  | { kind: 'ready'; actors: string[] }
  | { kind: 'heartbeat'; seq: number }
  | { kind: 'deliveries'; batch: Delivery[] }
  | { kind: 'control.reply'; id: number; outcome: { ok: true; value: unknown } | { ok: false; error: ErrorData } }
  /** The thread's root supervisor gave up; the main thread restarts the thread. */
  | { kind: 'escalate'; error: ErrorData };

// ---------------------------------------------------------------------------------------------------------
// Admin socket protocol: one JSON object per line, `{ id, cmd, ...args }` → `{ id, ok, result | error }`

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const AddressTextSchema = z.string().min(1).max(300);
const RequestIdSchema = z.union([z.string().max(128), z.number().int().safe()]);
const IpSchema = z.union([z.ipv4(), z.ipv6()]);

export const AdminCommandSchema = z.discriminatedUnion('cmd', [
  z.strictObject({ cmd: z.literal('ping') }),
  z.strictObject({ cmd: z.literal('threads.list') }),
  z.strictObject({ cmd: z.literal('actors.list') }),
  z.strictObject({ cmd: z.literal('actor.inspect'), address: AddressTextSchema }),
  z.strictObject({ cmd: z.literal('actor.restart'), address: AddressTextSchema }),
  z.strictObject({ cmd: z.literal('actor.stop'), address: AddressTextSchema }),
  z.strictObject({ cmd: z.literal('actor.suspend'), address: AddressTextSchema }),
  z.strictObject({ cmd: z.literal('actor.resume'), address: AddressTextSchema }),
  /** `message` is validated against AnyMsgSchema by the node, so the error names the bad field. */
  z.strictObject({
    cmd: z.literal('actor.inject'),
    address: AddressTextSchema,
    message: z.unknown(),
    ask: z.boolean().default(false),
    timeoutMs: z.number().int().min(1).max(60_000).default(5_000),
  }),
  z.strictObject({ cmd: z.literal('thread.restart'), thread: NameSchema }),
  /** Chaos tool (only with [chaos] enabled): kills the thread abruptly, as a crash would. */
  z.strictObject({ cmd: z.literal('thread.terminate'), thread: NameSchema }),
  z.strictObject({ cmd: z.literal('chaos.list') }),
  z.strictObject({ cmd: z.literal('chaos.set'), rule: z.unknown() }),
  /** Without `rule`, clears every chaos rule. */
  z.strictObject({ cmd: z.literal('chaos.clear'), rule: NameSchema.optional() }),
  z.strictObject({ cmd: z.literal('deadletters.list'), limit: z.number().int().min(1).max(10_000).default(100) }),
  z.strictObject({ cmd: z.literal('node.stats') }),
  z.strictObject({ cmd: z.literal('config.show') }),
  z.strictObject({ cmd: z.literal('config.validate'), file: z.string().min(1).max(4096).optional() }),
  z.strictObject({ cmd: z.literal('config.reload'), file: z.string().min(1).max(4096).optional() }),
  z.strictObject({ cmd: z.literal('log.level'), level: z.enum(LOG_LEVELS) }),
  z.strictObject({
    cmd: z.literal('block.add'),
    ip: IpSchema,
    durationSec: z.number().int().min(1).max(365 * 86_400).optional(),
  }),
  z.strictObject({ cmd: z.literal('block.remove'), ip: IpSchema }),
  z.strictObject({ cmd: z.literal('block.list') }),
  z.strictObject({ cmd: z.literal('node.drain'), timeoutMs: z.number().int().min(0).max(3_600_000).default(30_000) }),
  z.strictObject({ cmd: z.literal('node.shutdown'), timeoutMs: z.number().int().min(0).max(3_600_000).default(30_000) }),
]);

export type AdminCommand = z.infer<typeof AdminCommandSchema>;
export type AdminCommandName = AdminCommand['cmd'];
export const ADMIN_COMMANDS: readonly AdminCommandName[] = AdminCommandSchema.options.map((o) => o.shape.cmd.value);

export type AdminRequest = AdminCommand & { id: string | number };
export type AdminResponse =
  | { id: string | number | null; ok: true; result: unknown }
  | { id: string | number | null; ok: false; error: ErrorData };

// ---------------------------------------------------------------------------------------------------------
// Decoders for untrusted input: never throw.

export type Decoded<T> = { ok: true; value: T } | { ok: false; issues: string[] };

function issuesOf(error: z.ZodError): string[] {
  return error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message));
}

export function decodeMsg(input: unknown): Decoded<AnyMsg> {
  const r = AnyMsgSchema.safeParse(input);
  return r.success ? { ok: true, value: r.data } : { ok: false, issues: issuesOf(r.error) };
}

export function decodeChaosRule(input: unknown): Decoded<ChaosRuleSpec> {
  const r = ChaosRuleSpecSchema.safeParse(input);
  return r.success ? { ok: true, value: r.data } : { ok: false, issues: issuesOf(r.error) };
}

/**
 * Decodes one admin request object. The id is recovered even when the rest is bad, so the error reply
 * still correlates; an unknown `cmd` is reported as such rather than as a schema mismatch.
 */
export function decodeAdminRequest(
  input: unknown,
): { ok: true; value: AdminRequest } | { ok: false; id: string | number | null; unknownCommand: boolean; issues: string[] } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, id: null, unknownCommand: false, issues: ['the request must be a JSON object'] };
  }
  const { id: rawId, ...rest } = input as Record<string, unknown>;
  const idParse = RequestIdSchema.safeParse(rawId);
  if (!idParse.success) return { ok: false, id: null, unknownCommand: false, issues: ['id: a string or integer is required'] };
  const id = idParse.data;
  const cmd = rest['cmd'];
  if (typeof cmd !== 'string' || !(ADMIN_COMMANDS as readonly string[]).includes(cmd)) {
    return { ok: false, id, unknownCommand: true, issues: [`cmd: unknown command ${JSON.stringify(cmd)}`] };
  }
  const r = AdminCommandSchema.safeParse(rest);
  return r.success ? { ok: true, value: { ...r.data, id } } : { ok: false, id, unknownCommand: false, issues: issuesOf(r.error) };
}
