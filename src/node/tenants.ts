// The node's side of the fleet's tenant configuration (../crdt/config-doc.ts): customer domains with their
// origins, WAF mode and rate limit, and the fleet's policy (WAF custom rules, exclusions, allows, blocked
// networks), accepted on any node (admin `domains.*` and `policy.*`, in bulk), synced with every other node
// over NATS (../crdt/config-sync.ts), persisted in the state directory and handed over with no restart:
// domains to the L7 data plane as routes, rules, exclusions and allows to every thread's WAF (after the
// policy file's), blocks to the range blocklist every thread checks.
//
// - Every entry is checked when it is applied, local or remote (./fleet-entries.ts: the schema of its kind,
//   a rule compiled alone); an entry that fails keeps its last good value on this node (or stays out) and is
//   counted. A local upload is checked before anything is written, and refused whole when any entry fails.
// - The document is saved to <state.dir>/tenants.automerge (written to a temporary file, then renamed) half a
//   second after a change, and loaded at start: a node restarted with NATS down serves the domains it had.
//   A file that does not load is set aside as .bad and the node starts empty (its peers fill it back in).
//   Beside it, tenants.replica.json keeps what the replica needs across restarts (its actors in this
//   generation, the peers it has heard).
// - The fleet compacts the document when its history outgrows it ([state] compact_after_ops,
//   ../crdt/config-replica.ts); a node moved to a new generation re-checks only the entries whose text differs.
// - Wire format (subjects in ../runtime/subjects.ts), decoded by hand with bounds, malformed counted:
//   hello {from, generation, heads}; sync {from, generation, epoch, seq, data (base64), changes?: true (data
//   is a run of changes, not a sync message)}. A message without a generation is of generation 0 (nodes from
//   before compaction).
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { changeBatches, ConfigDoc, ENTRY_KINDS, isActor, type EntryKind } from '../crdt/config-doc.ts';
import { ConfigReplica, type GenerationChange, type ReplicaState } from '../crdt/config-replica.ts';
import { DEFAULT_CONFIG_SYNC_INTERVAL_MS, type SyncEnvelope } from '../crdt/config-sync.ts';
import { SecbeatError } from '../errors.ts';
import type { L7Update, WafPolicy } from '../messages.ts';
import type { NatsTransport } from '../runtime/nats-transport.ts';
import { configHelloSubject, configSyncSubject } from '../runtime/subjects.ts';
import type { Logger } from '../telemetry/log.ts';
import { metrics } from '../telemetry/metrics.ts';
import { canonicalName, checkEntry, type FleetValues } from './fleet-entries.ts';
import { routeOf } from './l7-settings.ts';
import { writeAtomically } from './state-files.ts';
import type { TenantPem } from './tenant-certificates.ts';

/** The WAF policy the fleet's entries make, to go with the config file's. */
export type FleetPolicy = Pick<WafPolicy, 'rules' | 'exclusions' | 'allowlist'>;

export interface TenantsOptions {
  stateDir: string;
  region: string;
  node: string;
  log: Logger;
  /** The routes of every valid domain, after each change of one (local or remote) and once at start. */
  onRoutes: (routes: L7Update['routes']) => void;
  /** The fleet's WAF rules, exclusions and allows, after each change of one. */
  onPolicy: (policy: FleetPolicy) => void;
  /** The fleet's blocked networks (CIDR → expiry in seconds since the epoch, null: none), after each change of one. */
  onBlocks: (blocks: ReadonlyMap<string, number | null>) => void;
  /** Host → the domain's own certificate, for every domain carrying one, after each change of a domain. */
  onCertificates: (pairs: ReadonlyMap<string, TenantPem>) => void;
  /** History operations beyond twice the entries that start a compaction; 0: only when asked. */
  compactAfterOps: number;
}

const FILE = 'tenants.automerge';
const REPLICA_FILE = 'tenants.replica.json';
const SAVE_DELAY_MS = 500;
/** Entries an upload checks between two turns of the event loop. */
const CHECKS_PER_TURN = 500;
/** Every minute (sync ticks are 500 ms), the leading node drops blocks that expired over an hour ago. */
const PRUNE_EVERY_TICKS = 120;
const PRUNE_GRACE_S = 3_600;
const MAX_HEADS = 256;

interface Good<K extends EntryKind> {
  value: FleetValues[K];
  /** Its text in the document, to tell a changed entry from one carried into a new generation as it was. */
  text: string;
}

export class Tenants {
  readonly #o: TenantsOptions;
  readonly #replica: ConfigReplica;
  /** Per kind, name → the last value that passed the checks. */
  readonly #good: { [K in EntryKind]: Map<string, Good<K>> } = { domain: new Map(), rule: new Map(), exclusion: new Map(), allow: new Map(), block: new Map() };
  /** The document's heads when #good was last brought up to date. */
  #applied: string[] = [];
  #saveTimer: NodeJS.Timeout | null = null;
  #tickTimer: NodeJS.Timeout | null = null;
  #ticks = 0;
  #nats: NatsTransport | null = null;

  constructor(options: TenantsOptions) {
    this.#o = options;
    const doc = loadDoc(options);
    this.#replica = new ConfigReplica({
      name: this.#self,
      doc,
      state: loadReplicaState(options, doc.generation()),
      send: (generation, peer, envelope) => this.#send(generation, peer, envelope),
      announce: (generation, heads) => void this.#nats?.broadcast(configHelloSubject(), JSON.stringify({ from: this.#self, generation, heads })),
      onRemoteChange: () => this.#changed(),
      onGeneration: (change) => this.#onGeneration(change),
      compaction: options.compactAfterOps === 0 ? null : { minOps: options.compactAfterOps, factor: 2 },
      onError: (error) => options.log.error({ err: error }, 'tenants: compaction failed; staying on this generation'),
    });
    this.#apply();
    metrics().tenantGeneration.set(this.#replica.generation);
    if (this.#good.domain.size > 0) options.log.info({ domains: this.#good.domain.size, generation: this.#replica.generation }, 'tenants: serving the saved domains');
  }

  get #self(): string {
    return `${this.#o.region}/${this.#o.node}`;
  }

  /** Syncs over `nats` from now on (null: this node keeps its own document, and still compacts it). */
  attach(nats: NatsTransport | null): void {
    this.#nats = nats;
    if (nats !== null) {
      nats.listen(configHelloSubject(), (text) => this.#onHello(text));
      nats.listen(configSyncSubject(this.#o.region, this.#o.node), (text) => this.#onSync(text));
    }
    this.#tickTimer ??= setInterval(() => this.#tick(), DEFAULT_CONFIG_SYNC_INTERVAL_MS);
    this.#tickTimer.unref();
    this.#tick();
  }

  /** A failure here is Automerge's (its state is not network input): logged, and the next tick tries again. */
  #tick(): void {
    try {
      this.#replica.tick();
      if (++this.#ticks % PRUNE_EVERY_TICKS === 0 && this.#replica.leads) this.#pruneExpiredBlocks();
    } catch (error) {
      this.#o.log.error({ err: error }, 'tenants: sync tick failed');
    }
  }

  /** Blocks that expired over PRUNE_GRACE_S ago leave the document (the leading node does it, for the fleet). */
  #pruneExpiredBlocks(): void {
    const before = Math.floor(Date.now() / 1000) - PRUNE_GRACE_S;
    const expired = [...this.#good.block].flatMap(([name, { value }]) => (value.expires_at !== undefined && value.expires_at < before ? [name] : []));
    if (expired.length === 0) return;
    this.remove('block', expired);
    this.#o.log.info({ blocks: expired.length }, 'tenants: expired fleet blocks removed from the document');
  }

  stop(): void {
    if (this.#tickTimer !== null) clearInterval(this.#tickTimer);
    this.#tickTimer = null;
    if (this.#saveTimer !== null) {
      clearTimeout(this.#saveTimer);
      this.#save();
    }
  }

  get generation(): number {
    return this.#replica.generation;
  }

  /** Starts a new generation of the document now (admin); false when one is already on its way. */
  compact(): Promise<boolean> {
    return this.#replica.compact();
  }

  /**
   * Checks every entry (refusing the call whole, naming up to ten by their place in the request's `field`,
   * when any fails), then writes them all in changes of changeBatches(), the loop free between.
   */
  async upsert(kind: EntryKind, raw: readonly unknown[], field: string): Promise<{ upserted: number; count: number }> {
    const entries: [string, string][] = [];
    const problems: string[] = [];
    const nowSec = Math.floor(Date.now() / 1000);
    for (let i = 0; i < raw.length; i++) {
      // Checking a certificate or compiling a rule takes a fraction of a millisecond: thousands of them must
      // not hold the main thread (worker heartbeats, the admin socket) in one stretch.
      if (i > 0 && i % CHECKS_PER_TURN === 0) await yieldLoop();
      const checked = checkEntry(kind, raw[i], nowSec);
      if (checked.ok) entries.push([checked.name, JSON.stringify(checked.value)]);
      else problems.push(`${field}[${i}]: ${checked.problem}`);
    }
    if (problems.length > 0) {
      const more = problems.length > 10 ? ` (and ${problems.length - 10} more)` : '';
      throw new SecbeatError('SECBEAT_ERR_ADMIN_INVALID_ARGS', `nothing applied, ${problems.length} invalid: ${problems.slice(0, 10).join(' | ')}${more}`);
    }
    for (const [i, batch] of changeBatches(entries).entries()) {
      if (i > 0) await yieldLoop();
      this.#replica.doc.put(kind, batch);
    }
    this.#changed();
    this.#replica.changed();
    return { upserted: entries.length, count: this.#good[kind].size };
  }

  /** Removes the named entries (a host in any case, a network in any spelling); names absent are not counted. */
  remove(kind: EntryKind, names: readonly string[]): { removed: number; count: number } {
    const doc = this.#replica.doc;
    const present = [...new Set(names.map((n) => canonicalName(kind, n)))].filter((n) => doc.has(kind, n));
    if (present.length > 0) {
      doc.remove(kind, present);
      this.#changed();
      this.#replica.changed();
    }
    return { removed: present.length, count: this.#good[kind].size };
  }

  /** How many good entries of `kind` there are, and the first `limit` by name. */
  list<K extends EntryKind>(kind: K, limit: number): { count: number; first: FleetValues[K][] } {
    const good = this.#good[kind] as Map<string, Good<K>>;
    const first = [...good.keys()].sort().slice(0, limit).map((name) => good.get(name)!.value);
    return { count: good.size, first };
  }

  /** The document's state: generation, history, peers. */
  status(): { peers: number; generation: number; history_ops: number; heads: string[] } {
    const doc = this.#replica.doc;
    return { peers: this.#replica.peers, generation: this.#replica.generation, history_ops: doc.historyOps(), heads: doc.heads() };
  }

  #changed(): void {
    this.#apply();
    this.#scheduleSave();
  }

  /**
   * The entries changed since the last call, checked one by one (a large sync must not hold the main thread:
   * checking all 10,000 domains each time did, long enough to miss worker heartbeats), and what they feed
   * brought up to date.
   */
  #apply(): void {
    const touched = new Set<EntryKind>();
    let invalid = 0;
    for (const change of this.#replica.doc.changes(this.#applied)) {
      touched.add(change.kind);
      if (!this.#take(change.kind, change.name, change.text)) invalid++;
    }
    this.#publish(touched, invalid);
  }

  /** A new generation: every entry compared by text with what is in use, only those that differ checked. */
  #onGeneration(change: GenerationChange): void {
    const doc = this.#replica.doc;
    let invalid = 0;
    for (const kind of ENTRY_KINDS) {
      const entries = doc.entries(kind);
      const good = this.#good[kind];
      for (const name of good.keys()) if (!entries.has(name)) good.delete(name);
      for (const [name, text] of entries) if (good.get(name)?.text !== text && !this.#take(kind, name, text)) invalid++;
    }
    this.#publish(new Set(ENTRY_KINDS), invalid);
    metrics().tenantGeneration.set(change.generation);
    metrics().tenantCompactions.inc({ kind: change.merged ? 'merged' : 'snapshot' });
    const log = change.merged || change.othersLeft > 0 ? this.#o.log.warn.bind(this.#o.log) : this.#o.log.info.bind(this.#o.log);
    log({ ...change, domains: this.#good.domain.size, history_ops: doc.historyOps() }, change.merged ? 'tenants: a document of another lineage merged into the new generation' : 'tenants: moved to a new generation of the document');
    // At once, not after SAVE_DELAY_MS: a crash must not bring back the old generation and its own changes.
    this.#save();
  }

  /** One entry's text (null: removed) taken in; false when it fails the checks and keeps its last good value. */
  #take(kind: EntryKind, name: string, text: string | null): boolean {
    const good = this.#good[kind] as Map<string, Good<EntryKind>>;
    if (text === null) {
      good.delete(name);
      return true;
    }
    // A stored block holds its expiry already: no duration to turn into one, so the clock does not matter.
    const checked = checkEntry(kind, parseJson(text), 0);
    if (!checked.ok || checked.name !== name) return false;
    good.set(name, { value: checked.value, text });
    return true;
  }

  /** What the touched kinds feed: routes for domains, the WAF policy for rules, exclusions and allows, the blocklist for blocks. */
  #publish(touched: ReadonlySet<EntryKind>, invalid: number): void {
    this.#applied = this.#replica.doc.heads();
    if (invalid > 0) {
      metrics().tenantInvalidEntries.inc(invalid);
      this.#o.log.warn({ invalid }, 'tenants: entries that fail the checks keep their last good value');
    }
    metrics().tenantHistoryOps.set(this.#replica.doc.historyOps());
    if (touched.has('domain')) {
      const domains = [...this.#good.domain.values()].map((g) => g.value);
      this.#o.onRoutes(domains.map((d) => routeOf({ ...d, hosts: [d.host] })));
      this.#o.onCertificates(new Map(domains.flatMap((d) => (d.tls === undefined ? [] : [[d.host, d.tls] as const]))));
    }
    if (touched.has('rule') || touched.has('exclusion') || touched.has('allow')) {
      this.#o.onPolicy({
        rules: [...this.#good.rule.values()].map((g) => g.value),
        exclusions: [...this.#good.exclusion.values()].map(({ value: { name: _, ...exclusion } }) => exclusion),
        allowlist: [...this.#good.allow.values()].map(({ value: { name: _, ...allow } }) => allow),
      });
    }
    if (touched.has('block')) this.#o.onBlocks(new Map([...this.#good.block.values()].map(({ value: b }) => [b.cidr, b.expires_at ?? null])));
  }

  #scheduleSave(): void {
    this.#saveTimer ??= setTimeout(() => {
      this.#saveTimer = null;
      this.#save();
    }, SAVE_DELAY_MS);
  }

  #save(): void {
    const path = join(this.#o.stateDir, FILE);
    try {
      mkdirSync(this.#o.stateDir, { recursive: true });
      // The replica's state first: actors it names but the document lacks are harmless, the reverse is not.
      writeAtomically(join(this.#o.stateDir, REPLICA_FILE), JSON.stringify({ generation: this.#replica.generation, ...this.#replica.state() }));
      writeAtomically(path, this.#replica.doc.save());
    } catch (error) {
      this.#o.log.error({ err: error, path }, 'tenants: cannot save the document; changes live in memory only');
    }
  }

  #send(generation: number, peer: string, envelope: SyncEnvelope): void {
    const [region, node] = splitPeer(peer);
    const data = Buffer.from(envelope.data).toString('base64');
    const text = JSON.stringify({ from: this.#self, generation, epoch: envelope.epoch, seq: envelope.seq, data, ...(envelope.changes === true ? { changes: true } : {}) });
    this.#nats?.broadcast(configSyncSubject(region, node), text);
  }

  #onHello(text: string): void {
    const hello = parseJson(text) as { from?: unknown; generation?: unknown; heads?: unknown } | null;
    const from = hello?.from;
    const heads = hello?.heads;
    const generation = generationOf(hello?.generation);
    if (!isPeer(from) || generation === null || !Array.isArray(heads) || heads.length > MAX_HEADS || !heads.every(isHead)) return void metrics().tenantSyncMalformed.inc();
    this.#replica.hello(from, generation, heads as string[]);
  }

  #onSync(text: string): void {
    const m = parseJson(text) as { from?: unknown; generation?: unknown; epoch?: unknown; seq?: unknown; data?: unknown; changes?: unknown } | null;
    const generation = generationOf(m?.generation);
    // Its size is bounded already: the transport drops inbound payloads past 1 MiB unread.
    if (
      m === null ||
      generation === null ||
      !isPeer(m.from) ||
      !Number.isSafeInteger(m.epoch) ||
      !Number.isSafeInteger(m.seq) ||
      typeof m.data !== 'string' ||
      (m.changes !== undefined && m.changes !== true)
    ) {
      return void metrics().tenantSyncMalformed.inc();
    }
    const envelope = { epoch: m.epoch as number, seq: m.seq as number, data: Buffer.from(m.data, 'base64'), changes: m.changes === true };
    if (!this.#replica.receive(m.from, generation, envelope)) metrics().tenantSyncMalformed.inc();
  }
}

/** A message's generation: absent is 0 (nodes from before compaction), anything but a count is malformed. */
function generationOf(value: unknown): number | null {
  if (value === undefined) return 0;
  return Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : null;
}

/** The replica's saved state when it belongs to the document's generation; none otherwise (or unreadable). */
function loadReplicaState(o: TenantsOptions, generation: number): ReplicaState | undefined {
  const path = join(o.stateDir, REPLICA_FILE);
  if (!existsSync(path)) return undefined;
  const raw = parseJson(readFileSync(path, 'utf8')) as { generation?: unknown; actors?: unknown; roster?: unknown } | null;
  const actors = raw?.actors;
  const roster = raw?.roster;
  if (
    raw?.generation !== generation ||
    !Array.isArray(actors) ||
    !actors.every(isActor) ||
    typeof roster !== 'object' ||
    roster === null ||
    !Object.entries(roster).every(([peer, at]) => isPeer(peer) && Number.isSafeInteger(at))
  ) {
    o.log.warn({ path }, 'tenants: replica state does not match the document; own changes of earlier runs will not be carried into a new generation');
    return undefined;
  }
  return { actors: actors as string[], roster: roster as Record<string, number> };
}

function loadDoc(o: TenantsOptions): ConfigDoc {
  const path = join(o.stateDir, FILE);
  if (!existsSync(path)) return ConfigDoc.create();
  try {
    const doc = ConfigDoc.load(readFileSync(path));
    o.log.info({ path }, 'tenants: loaded the saved document');
    return doc;
  } catch (error) {
    o.log.error({ err: error, path }, 'tenants: the saved document does not load; set aside as .bad, starting empty');
    try {
      renameSync(path, `${path}.bad`);
    } catch {
      // Left where it is: the next save replaces it.
    }
    return ConfigDoc.create();
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

const PEER = /^[A-Za-z0-9_.-]{1,64}\/[A-Za-z0-9_.-]{1,64}$/;

function isPeer(value: unknown): value is string {
  return typeof value === 'string' && PEER.test(value);
}

function isHead(value: unknown): boolean {
  return typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);
}

function splitPeer(peer: string): [string, string] {
  const slash = peer.indexOf('/');
  return [peer.slice(0, slash), peer.slice(slash + 1)];
}
