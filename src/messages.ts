// Every message that crosses an actor mailbox, a thread boundary, the admin socket or (later) NATS is
// declared here, once, as a valibot schema with its TypeScript type inferred from it. Untrusted input is
// decoded with the `decode*` functions, which return `{ ok, value | issues }` and never throw.
//
// Rules that hold for every message:
// - Plain data only (JSON- and structured-clone-safe): no class instances, functions or Maps.
// - `type` is a lowercase dot path "<actor>.<verb>".
// - Delivery is at-most-once and FIFO per sender→receiver pair; chaos rules may break both on purpose.
import * as v from 'valibot';
import { isErrorCode, type ErrorData } from './errors.ts';
import { NAME, type Address } from './address.ts';
import { decode, int, refuseArrays, strictObject, type Decoded } from './validation.ts';

// ---------------------------------------------------------------------------------------------------------
// Addresses

export const NameSchema = v.pipe(v.string(), v.regex(NAME, 'names use letters, digits, "_", "." and "-" (1–64 chars)'));
import { ASK_ACTOR } from './address.ts';
export { formatAddress, parseAddress, type Address } from './address.ts';
export type { Decoded } from './validation.ts';

export const AddressSchema = strictObject({
  region: NameSchema,
  node: NameSchema,
  thread: NameSchema,
  actor: NameSchema,
});

// ---------------------------------------------------------------------------------------------------------
// Actor messages, grouped per actor. Messages that expect an answer are listed in `Replies` below.

/** A config file path as the operator wrote it; the loader resolves and reads it. */
const FileSchema = v.pipe(v.string(), v.minLength(1), v.maxLength(4096));

/** A typed array over shared memory: what threads read in place (a copy would defeat the point). */
function sharedArray<T extends Uint32Array<SharedArrayBuffer> | Float64Array<SharedArrayBuffer>>(type: { new (...args: never[]): T; name: string }) {
  return v.custom<T>((x) => x instanceof type && x.buffer instanceof SharedArrayBuffer, `expected a ${type.name} over a SharedArrayBuffer`);
}

/**
 * Certificate pairs the main thread read and checked once, packed into shared memory that every worker thread
 * installs from without copying (layout and readers: src/tls/pem-table.ts).
 */
const PemTableSchema = strictObject({
  /** PEM bytes, each pair's certificate chain then its key; a pair never spans two chunks. */
  chunks: v.array(v.instance(SharedArrayBuffer)),
  /** Four numbers per pair: chunk index, byte offset, certificate length, key length. */
  slots: sharedArray<Uint32Array<SharedArrayBuffer>>(Uint32Array),
  /** Per pair: the leaf's notAfter, ms since the epoch. */
  notAfterMs: sharedArray<Float64Array<SharedArrayBuffer>>(Float64Array),
  /** Per pair, eight words: SHA-256 of its bytes, so a reload tells unchanged pairs apart without reading them. */
  digests: sharedArray<Uint32Array<SharedArrayBuffer>>(Uint32Array),
  /** Per pair: the names it is served for (host names or "*.parent", lower case, checked). */
  names: v.array(v.array(v.string())),
});

const PemBytesSchema = v.custom<Uint8Array>((x) => x instanceof Uint8Array, 'expected PEM bytes (a Uint8Array)');
const PemPairSchema = strictObject({ cert: PemBytesSchema, key: PemBytesSchema });

/** Every certificate of the L7 TLS listener: the default (no SNI, unknown names) and the table of the rest. */
const CertificateSetSchema = strictObject({ defaultCert: PemPairSchema, table: PemTableSchema });

/**
 * What a config reload changes on a running L7 listener, all at once: the route table and the certificate set
 * (null without a TLS listener). Built by src/node/l7-settings.ts. It holds SharedArrayBuffers, which JSON
 * cannot carry, so only the node itself can send it (`actor.inject` cannot).
 */
const WafModeSchema = v.picklist(['off', 'detection', 'blocking']);

const PolicyDomainsSchema = v.optional(v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(253))), v.minLength(1), v.maxLength(10_000)));
const PolicyPathSchema = v.optional(v.pipe(v.string(), v.startsWith('/', 'expected a path beginning with "/"'), v.maxLength(2048)));

/** A custom rule of the platform's JSON format (docs/waf.md). */
export const WafRuleSchema = strictObject({
  id: int(1, 99_999),
  name: v.pipe(v.string(), v.minLength(1), v.maxLength(200)),
  pattern: v.pipe(v.string(), v.minLength(1), v.maxLength(4096)),
  action: v.picklist(['block', 'log', 'challenge']),
  severity: v.optional(v.picklist(['critical', 'error', 'warning', 'notice']), 'critical'),
  targets: v.pipe(v.array(v.picklist(['args', 'args_names', 'path', 'uri', 'query', 'body', 'headers', 'cookies', 'method', 'user_agent', 'ip'])), v.minLength(1)),
  domains: PolicyDomainsSchema,
});

/** Rules left out by path, parameter and domain. */
export const WafExclusionSchema = strictObject({
  rule_ids: v.pipe(v.array(int(1, 999_999)), v.minLength(1), v.maxLength(1000)),
  path: PolicyPathSchema,
  parameter: v.optional(v.pipe(v.string(), v.regex(/^[\w.\-[\]]{1,128}$/, 'expected an argument name (letters, digits, _ . - [ ])'))),
  domains: PolicyDomainsSchema,
});

/** Requests the WAF never inspects: by client range, path and domain. */
export const WafAllowSchema = strictObject({ cidr: v.optional(v.pipe(v.string(), v.maxLength(64))), path: PolicyPathSchema, domains: PolicyDomainsSchema });

/** The platform's WAF policy file (`[waf] policy_path`, JSON): custom rules, exclusions, allowlist (docs/waf.md). */
export const WafPolicySchema = strictObject({
  rules: v.optional(v.pipe(v.array(WafRuleSchema), v.maxLength(10_000)), []),
  exclusions: v.optional(v.pipe(v.array(WafExclusionSchema), v.maxLength(10_000)), []),
  allowlist: v.optional(v.pipe(v.array(WafAllowSchema), v.maxLength(10_000)), []),
  /** Per rule (CRS or local): detection logs its matches but adds nothing to the score; off removes it. */
  rule_modes: v.optional(
    v.pipe(
      v.array(strictObject({ rule_ids: v.pipe(v.array(int(1, 999_999)), v.minLength(1), v.maxLength(1000)), mode: v.picklist(['detection', 'off']) })),
      v.maxLength(1000),
    ),
    [],
  ),
});
export type WafPolicy = v.InferOutput<typeof WafPolicySchema>;

/** The WAF of L7 mode as plain data ([waf] of the config); each thread compiles its own rule set from it. */
const WafSettingsSchema = strictObject({
  mode: WafModeSchema,
  paranoiaLevel: v.picklist([1, 2, 3, 4]),
  crsSetupPath: v.string(),
  crsRulesDir: v.string(),
  /** Run SecBeat's supplement rules (../config/waf) with the CRS. */
  supplement: v.boolean(),
  anomalyThreshold: v.number(),
  rulesPath: v.nullable(v.string()),
  failOpen: v.boolean(),
  evaluationBudget: v.number(),
  evaluationTimeMs: v.number(),
  inspectBodyBytes: v.number(),
  bodyOverLimit: v.picklist(['partial', 'reject']),
  matchLog: v.boolean(),
  challenge: strictObject({ secret: v.string(), difficultyBits: v.number(), ttlSeconds: v.number() }),
  policy: WafPolicySchema,
});
export type WafSettings = v.InferOutput<typeof WafSettingsSchema>;

const L7UpdateSchema = strictObject({
  routes: v.array(strictObject({ hosts: v.array(v.string()), origins: v.array(v.string()), waf: v.optional(WafModeSchema), rateLimit: v.optional(v.number()) })),
  certificates: v.nullable(CertificateSetSchema),
  /** null: the WAF is disabled. Always recompiled on a reload: its rule files may have changed. */
  waf: v.nullable(WafSettingsSchema),
});

export const ListenerMsgSchema = v.variant('type', [
  /** Stop accepting, let open connections finish up to `timeoutMs`, then close the rest. Ask → DrainReport. */
  strictObject({ type: v.literal('listener.drain'), timeoutMs: int(0, 3_600_000) }),
  /** Ask → ListenerStats. */
  strictObject({ type: v.literal('listener.stats') }),
  /**
   * Swap routes and certificates (L7 mode) in one synchronous step, so no request or handshake sees half of
   * it; certificates whose bytes did not change keep their warm contexts. Idempotent. Ask → L7Applied.
   */
  strictObject({ type: v.literal('listener.reconfigure'), l7: L7UpdateSchema }),
]);

export const ConfigMsgSchema = v.variant('type', [
  /** Ask → the running config (secrets redacted). */
  strictObject({ type: v.literal('config.show') }),
  /** Load and check a file without applying it. Ask → ConfigCheck. */
  strictObject({ type: v.literal('config.validate'), file: v.optional(FileSchema) }),
  /** Load, check and apply; on any error the running config stays. Ask → ConfigCheck. */
  strictObject({ type: v.literal('config.reload'), file: v.optional(FileSchema) }),
]);

export const TelemetryMsgSchema = v.variant('type', [
  /** Self-scheduled tick: sample process CPU and memory into the gauges. */
  strictObject({ type: v.literal('telemetry.sample') }),
]);

export const SynProxyMsgSchema = v.variant('type', [
  /** Self-scheduled tick: settings and blocklists mirrored into the XDP program, its counters exported. */
  strictObject({ type: v.literal('syn.sync') }),
  /** Ask → SynStatus. */
  strictObject({ type: v.literal('syn.status') }),
]);

/** Messages every actor understands; handled by the runtime before the behaviour sees anything. */
export const SystemMsgSchema = v.variant('type', [
  /** Ask → 'pong'. Used by health checks and tests to prove an actor is processing. */
  strictObject({ type: v.literal('sys.ping') }),
]);

/** The per-actor variants nest, so a bad message is blamed on its `type` or on the field that is wrong. */
export const AnyMsgSchema = refuseArrays(v.variant('type', [ListenerMsgSchema, ConfigMsgSchema, TelemetryMsgSchema, SynProxyMsgSchema, SystemMsgSchema]));

export type PemTable = v.InferOutput<typeof PemTableSchema>;
export type PemPair = v.InferOutput<typeof PemPairSchema>;
export type CertificateSet = v.InferOutput<typeof CertificateSetSchema>;
export type L7Update = v.InferOutput<typeof L7UpdateSchema>;
export type ListenerMsg = v.InferOutput<typeof ListenerMsgSchema>;
export type ConfigMsg = v.InferOutput<typeof ConfigMsgSchema>;
export type TelemetryMsg = v.InferOutput<typeof TelemetryMsgSchema>;
export type SynProxyMsg = v.InferOutput<typeof SynProxyMsgSchema>;
export type SystemMsg = v.InferOutput<typeof SystemMsgSchema>;
export type AnyMsg = v.InferOutput<typeof AnyMsgSchema>;
export type MsgType = AnyMsg['type'];

export const MESSAGE_TYPES: readonly MsgType[] = [
  ...ListenerMsgSchema.options,
  ...ConfigMsgSchema.options,
  ...TelemetryMsgSchema.options,
  ...SynProxyMsgSchema.options,
  ...SystemMsgSchema.options,
].map((o) => o.entries.type.literal);

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
/** What a certificate-set swap did on one thread; names are counted, a pair may serve several. */
export interface CertificateChanges {
  installed: number;
  replaced: number;
  removed: number;
  /** Same bytes as before: the entry and its cached secure context were left alone. */
  unchanged: number;
  defaultReplaced: boolean;
}
export interface L7Applied {
  routes: number;
  /** null without a TLS listener. */
  certificates: CertificateChanges | null;
  /** Rules in the WAF's new rule set; null when the WAF is disabled. */
  wafRules: number | null;
}
/** One installed name (`certs.list`). */
export interface CertificateInfo {
  name: string;
  notAfterMs: number;
}
export interface CertificateList {
  /** Names installed (a certificate with several names counts once per name), and distinct certificates. */
  names: number;
  certificates: number;
  /** notAfter of the default certificate; null without a TLS listener. */
  defaultNotAfterMs: number | null;
  /** The `limit` names that expire first, soonest first (then by name). */
  expiringFirst: CertificateInfo[];
}
export interface ConfigCheck {
  ok: boolean;
  /** Human-readable problems with file/key/line where known; empty when ok. */
  issues: string[];
  /** Incremented each time a reload applies; unchanged when it fails. */
  version: number;
}

/** SYN mode's XDP program as the SYN-proxy actor sees it (`syn.status`). */
export interface SynStatus {
  interface: string;
  /** null while not attached. */
  mode: 'native' | 'generic' | null;
  programId: number;
  protectedPorts: number[];
  allowlist: number;
  blocklist: number;
  /** Packets per reason (bpf/secbeat.h), since the program's counters were created (pinned: across restarts). */
  packets: Record<string, number>;
}

/** What each asked message type answers with. */
export interface Replies {
  'syn.status': SynStatus;
  'listener.drain': DrainReport;
  'listener.stats': ListenerStats;
  'listener.reconfigure': L7Applied;
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

/** An address as a delivery carries it: a reply goes to the sender's ask pseudo-actor. */
const DeliveryAddressSchema = strictObject({ ...AddressSchema.entries, actor: v.union([NameSchema, v.literal(ASK_ACTOR)]) });

/** The wire form of a Delivery between nodes (src/runtime/nats-transport.ts), checked on arrival. */
const ErrorDataSchema = strictObject({ code: v.custom<ErrorData['code']>(isErrorCode, 'unknown error code'), message: v.string() });
export const DeliverySchema = v.variant('kind', [
  strictObject({
    kind: v.literal('msg'),
    envelope: strictObject({
      to: DeliveryAddressSchema,
      from: v.nullable(DeliveryAddressSchema),
      msg: AnyMsgSchema,
      askId: v.optional(int(0, Number.MAX_SAFE_INTEGER)),
      replyTo: v.optional(DeliveryAddressSchema),
    }),
  }),
  strictObject({
    kind: v.literal('reply'),
    reply: strictObject({
      to: DeliveryAddressSchema,
      askId: int(0, Number.MAX_SAFE_INTEGER),
      outcome: v.variant('ok', [strictObject({ ok: v.literal(true), value: v.unknown() }), strictObject({ ok: v.literal(false), error: ErrorDataSchema })]),
    }),
  }),
  strictObject({ kind: v.literal('crash'), to: DeliveryAddressSchema, ruleId: v.pipe(v.string(), v.maxLength(128)) }),
]);

/** An inbound delivery from another node; never throws. */
export function decodeDelivery(input: unknown): Decoded<Delivery> {
  return decode(DeliverySchema, input) as Decoded<Delivery>;
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
const GlobSchema = v.pipe(v.string(), v.minLength(1), v.maxLength(256), v.regex(/^[A-Za-z0-9_.*/-]+$/, 'globs use name characters and *'));
const Probability = v.pipe(v.number(), v.minValue(0), v.maxValue(1));

export const ChaosActionSchema = refuseArrays(
  v.variant('kind', [
    strictObject({ kind: v.literal('drop'), probability: Probability }),
    strictObject({
      kind: v.literal('delay'),
      ms: int(0, 60_000),
      jitterMs: v.optional(int(0, 60_000), 0),
    }),
    strictObject({
      kind: v.literal('duplicate'),
      probability: Probability,
      copies: v.optional(int(1, 10), 1),
    }),
    /** Hold up to `window` messages (or `maxHoldMs`) and release them in a seeded random order. */
    strictObject({
      kind: v.literal('reorder'),
      window: int(2, 1000),
      maxHoldMs: v.optional(int(1, 60_000), 100),
    }),
    /** Deliver a crash instead of the message: the receiver fails as if its behaviour threw. */
    strictObject({ kind: v.literal('crash'), probability: Probability }),
  ]),
);

export const ChaosRuleSpecSchema = strictObject({
  id: NameSchema,
  match: v.optional(strictObject({ from: v.optional(GlobSchema), to: v.optional(GlobSchema), type: v.optional(GlobSchema) }), {}),
  action: ChaosActionSchema,
  /** Same seed + same message sequence ⇒ same decisions. */
  seed: v.optional(int(0, 0xffff_ffff), 1),
  /** Rules expire on their own; there is no "forever". */
  ttlMs: v.optional(int(1, 24 * 3_600_000), 60_000),
});

export type ChaosAction = v.InferOutput<typeof ChaosActionSchema>;
export type ChaosRuleSpec = v.InferOutput<typeof ChaosRuleSpecSchema>;
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
  /** → the thread's newest `limit` security events that pass `filter` (src/telemetry/events.ts), oldest first. */
  | { op: 'events.list'; limit: number; filter: EventFilter }
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

const AddressTextSchema = v.pipe(v.string(), v.minLength(1), v.maxLength(300));
const RequestIdSchema = v.union([v.pipe(v.string(), v.maxLength(128)), v.pipe(v.number(), v.safeInteger())]);

const IPV6_CHARS = /^[0-9a-fA-F:.]+$/;
/**
 * IPv6 text as the WHATWG URL parser reads a host in brackets: every RFC 4291 form including an embedded
 * IPv4 tail, no zone id. v.ipv6()'s regex would refuse "1:2:3:4:5:6:1.2.3.4" and accept "fe80::1%eth0".
 */
const isIpv6 = (s: string): boolean => IPV6_CHARS.test(s) && URL.canParse(`http://[${s}]`);
const Ipv4Schema = v.pipe(v.string(), v.ipv4());
const IpSchema = v.union([Ipv4Schema, v.pipe(v.string(), v.check(isIpv6))]);

/**
 * A network as address/prefix, IPv4 (/0–32) or IPv6 (/0–128). The node also refuses host bits set after the
 * prefix (src/net/cidr.ts names the network meant), which this shape check leaves to it.
 */
const isCidr = (s: string): boolean => {
  const slash = s.indexOf('/');
  const bits = s.slice(slash + 1);
  if (slash === -1 || !/^(0|[1-9][0-9]{0,2})$/.test(bits)) return false;
  const address = s.slice(0, slash);
  return address.includes(':') ? isIpv6(address) && Number(bits) <= 128 : v.is(Ipv4Schema, address) && Number(bits) <= 32;
};
const CidrSchema = v.pipe(v.string(), v.maxLength(64), v.check(isCidr, 'expected a network like 203.0.113.0/24 or 2001:db8::/32'));

/** Which security events `events.list` returns: every kind, or those `src/telemetry/events.ts` counts as attack. */
export const EVENT_FILTERS = ['all', 'attack'] as const;
export type EventFilter = (typeof EVENT_FILTERS)[number];

/** Kinds of fleet policy entry (`policy.*`); domains have their own commands. */
export const POLICY_KINDS = ['rule', 'exclusion', 'allow', 'block'] as const;
const PolicyKindSchema = v.picklist(POLICY_KINDS);

/** Domains one `domains.upsert` or `domains.remove` call may carry (a 20,000-domain upload is about 1.4 MB of JSON). */
export const MAX_DOMAINS_PER_CALL = 20_000;

export const AdminCommandSchema = v.variant('cmd', [
  strictObject({ cmd: v.literal('ping') }),
  strictObject({ cmd: v.literal('threads.list') }),
  strictObject({ cmd: v.literal('actors.list') }),
  strictObject({ cmd: v.literal('actor.inspect'), address: AddressTextSchema }),
  strictObject({ cmd: v.literal('actor.restart'), address: AddressTextSchema }),
  strictObject({ cmd: v.literal('actor.stop'), address: AddressTextSchema }),
  strictObject({ cmd: v.literal('actor.suspend'), address: AddressTextSchema }),
  strictObject({ cmd: v.literal('actor.resume'), address: AddressTextSchema }),
  /** `message` is validated against AnyMsgSchema by the node, so the error names the bad field. */
  strictObject({
    cmd: v.literal('actor.inject'),
    address: AddressTextSchema,
    message: v.unknown(),
    ask: v.optional(v.boolean(), false),
    timeoutMs: v.optional(int(1, 60_000), 5_000),
  }),
  strictObject({ cmd: v.literal('thread.restart'), thread: NameSchema }),
  /** Chaos tool (only with [chaos] enabled): kills the thread abruptly, as a crash would. */
  strictObject({ cmd: v.literal('thread.terminate'), thread: NameSchema }),
  strictObject({ cmd: v.literal('chaos.list') }),
  strictObject({ cmd: v.literal('chaos.set'), rule: v.unknown() }),
  /** Without `rule`, clears every chaos rule. */
  strictObject({ cmd: v.literal('chaos.clear'), rule: v.optional(NameSchema) }),
  strictObject({ cmd: v.literal('deadletters.list'), limit: v.optional(int(1, 10_000), 100) }),
  strictObject({ cmd: v.literal('node.stats') }),
  strictObject({ cmd: v.literal('config.show') }),
  strictObject({ cmd: v.literal('config.validate'), file: v.optional(FileSchema) }),
  strictObject({ cmd: v.literal('config.reload'), file: v.optional(FileSchema) }),
  strictObject({ cmd: v.literal('log.level'), level: v.picklist(LOG_LEVELS) }),
  strictObject({
    cmd: v.literal('block.add'),
    ip: IpSchema,
    durationSec: v.optional(int(1, 365 * 86_400)),
  }),
  strictObject({ cmd: v.literal('block.remove'), ip: IpSchema }),
  strictObject({ cmd: v.literal('block.list') }),
  /** Emergency range blocks (src/blocklist/shared-cidr-table.ts), beside the exact addresses of block.*. */
  strictObject({
    cmd: v.literal('cidr.block'),
    cidr: CidrSchema,
    durationSec: v.optional(int(1, 365 * 86_400)),
  }),
  strictObject({ cmd: v.literal('cidr.unblock'), cidr: CidrSchema }),
  strictObject({ cmd: v.literal('cidr.list') }),
  /** Recent security events of every thread, merged by time; `limit` applies after the filter. */
  strictObject({
    cmd: v.literal('events.list'),
    type: v.optional(v.picklist(EVENT_FILTERS), 'all'),
    limit: v.optional(int(1, 10_000), 100),
  }),
  /** The fleet's tenant configuration (src/node/tenants.ts): each domain is checked there, the batch refused whole on an error. */
  strictObject({ cmd: v.literal('domains.upsert'), domains: v.pipe(v.array(v.unknown()), v.minLength(1), v.maxLength(MAX_DOMAINS_PER_CALL)) }),
  strictObject({ cmd: v.literal('domains.remove'), hosts: v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(253))), v.minLength(1), v.maxLength(MAX_DOMAINS_PER_CALL)) }),
  strictObject({ cmd: v.literal('domains.list'), limit: v.optional(int(1, 10_000), 100) }),
  /** Starts the next generation of the fleet's tenant document now (src/crdt/config-replica.ts). */
  strictObject({ cmd: v.literal('domains.compact') }),
  /** The fleet's WAF rules, exclusions, allows and blocked networks (src/node/fleet-entries.ts checks each entry). */
  strictObject({ cmd: v.literal('policy.upsert'), kind: PolicyKindSchema, entries: v.pipe(v.array(v.unknown()), v.minLength(1), v.maxLength(MAX_DOMAINS_PER_CALL)) }),
  strictObject({ cmd: v.literal('policy.remove'), kind: PolicyKindSchema, names: v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(253))), v.minLength(1), v.maxLength(MAX_DOMAINS_PER_CALL)) }),
  strictObject({ cmd: v.literal('policy.list'), limit: v.optional(int(1, 10_000), 100) }),
  /** SYN mode's XDP program: attachment, protected ports, list sizes, packets per reason (src/actors/syn-proxy.ts). */
  strictObject({ cmd: v.literal('syn.status') }),
  /** L7 mode's installed certificate names, soonest expiry first; bounded by `limit` (the counts cover all). */
  strictObject({ cmd: v.literal('certs.list'), limit: v.optional(int(1, 10_000), 100) }),
  strictObject({ cmd: v.literal('node.drain'), timeoutMs: v.optional(int(0, 3_600_000), 30_000) }),
  strictObject({ cmd: v.literal('node.shutdown'), timeoutMs: v.optional(int(0, 3_600_000), 30_000) }),
]);

/**
 * How long the node gives `config.reload`, and ctl waits for it (plus a grace): an L7 node re-stats every
 * certificate file, seconds for 100k certificates (bench/l7/certs.ts). Below the admin socket's own request
 * deadline (src/admin/server.ts, 65 s).
 */
export const CONFIG_RELOAD_TIMEOUT_MS = 60_000;

export type AdminCommand = v.InferOutput<typeof AdminCommandSchema>;
export type AdminCommandName = AdminCommand['cmd'];
export const ADMIN_COMMANDS: readonly AdminCommandName[] = AdminCommandSchema.options.map((o) => o.entries.cmd.literal);

export type AdminRequest = AdminCommand & { id: string | number };
export type AdminResponse =
  | { id: string | number | null; ok: true; result: unknown }
  | { id: string | number | null; ok: false; error: ErrorData };

// ---------------------------------------------------------------------------------------------------------
// Decoders for untrusted input: never throw.

export function decodeMsg(input: unknown): Decoded<AnyMsg> {
  return decode(AnyMsgSchema, input);
}

export function decodeChaosRule(input: unknown): Decoded<ChaosRuleSpec> {
  return decode(ChaosRuleSpecSchema, input);
}

/** Checks a command and fills its defaults; `secbeat ctl` runs it before sending. */
export function decodeAdminCommand(input: unknown): Decoded<AdminCommand> {
  return decode(AdminCommandSchema, input);
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
  if (!v.is(RequestIdSchema, rawId)) return { ok: false, id: null, unknownCommand: false, issues: ['id: a string or integer is required'] };
  const id = rawId;
  const cmd = rest['cmd'];
  if (typeof cmd !== 'string' || !(ADMIN_COMMANDS as readonly string[]).includes(cmd)) {
    return { ok: false, id, unknownCommand: true, issues: [`cmd: unknown command ${JSON.stringify(cmd)}`] };
  }
  const r = decodeAdminCommand(rest);
  return r.ok ? { ok: true, value: { ...r.value, id } } : { ok: false, id, unknownCommand: false, issues: r.issues };
}
