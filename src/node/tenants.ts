// The node's side of the fleet's tenant configuration (../crdt/config-doc.ts): customer domains with their
// origins and WAF mode, accepted on any node (admin `domains.upsert`, in bulk), synced with every other node
// over NATS (../crdt/config-sync.ts), persisted in the state directory and handed to the L7 data plane as
// routes, with no restart.
//
// - Every entry is checked when it is applied, local or remote, with the config schema's TenantDomainSchema;
//   an entry that fails keeps its last good value on this node (or stays out) and is counted. A local upload
//   is checked before anything is written, and refused whole when any entry fails.
// - The document is saved to <state.dir>/tenants.automerge (written to a temporary file, then renamed) half a
//   second after a change, and loaded at start: a node restarted with NATS down serves the domains it had.
//   A file that does not load is set aside as .bad and the node starts empty (its peers fill it back in).
//   Beside it, tenants.replica.json keeps what the replica needs across restarts (its actors in this
//   generation, the peers it has heard).
// - The fleet compacts the document when its history outgrows it ([state] compact_after_ops,
//   ../crdt/config-replica.ts); a node moved to a new generation re-checks only the entries whose text differs.
// - Wire format (subjects in ../runtime/subjects.ts), decoded by hand with bounds, malformed counted:
//   hello {from, generation, heads}; sync {from, generation, epoch, seq, data (base64)}. A message without a
//   generation is of generation 0 (nodes from before compaction).
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import * as v from 'valibot';
import { ConfigDoc, MAX_ENTRIES_PER_CHANGE } from '../crdt/config-doc.ts';
import { ConfigReplica, type GenerationChange, type ReplicaState } from '../crdt/config-replica.ts';
import { DEFAULT_CONFIG_SYNC_INTERVAL_MS, type SyncEnvelope } from '../crdt/config-sync.ts';
import { TenantDomainSchema, type TenantDomain } from '../config/schema.ts';
import { SecbeatError } from '../errors.ts';
import type { L7Update } from '../messages.ts';
import type { NatsTransport } from '../runtime/nats-transport.ts';
import { configHelloSubject, configSyncSubject } from '../runtime/subjects.ts';
import type { Logger } from '../telemetry/log.ts';
import { metrics } from '../telemetry/metrics.ts';

export interface TenantsOptions {
  stateDir: string;
  region: string;
  node: string;
  log: Logger;
  /** The routes of every valid domain, after each change (local or remote) and once at start. */
  onRoutes: (routes: L7Update['routes']) => void;
  /** History operations beyond twice the entries that start a compaction; 0: only when asked. */
  compactAfterOps: number;
}

const FILE = 'tenants.automerge';
const REPLICA_FILE = 'tenants.replica.json';
const SAVE_DELAY_MS = 500;
const MAX_HEADS = 256;

export class Tenants {
  readonly #o: TenantsOptions;
  readonly #replica: ConfigReplica;
  /** host → the last settings that passed the checks, and their text. */
  readonly #good = new Map<string, { domain: TenantDomain; text: string }>();
  /** The document's heads when #good was last brought up to date. */
  #applied: string[] = [];
  #saveTimer: NodeJS.Timeout | null = null;
  #tickTimer: NodeJS.Timeout | null = null;
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
    });
    this.#apply();
    metrics().tenantGeneration.set(this.#replica.generation);
    if (this.#good.size > 0) options.log.info({ domains: this.#good.size, generation: this.#replica.generation }, 'tenants: serving the saved domains');
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
    this.#tickTimer ??= setInterval(() => this.#replica.tick(), DEFAULT_CONFIG_SYNC_INTERVAL_MS);
    this.#tickTimer.unref();
    this.#replica.tick();
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

  /** Checks every entry, then writes them all (in changes of MAX_ENTRIES_PER_CHANGE, the loop free between). */
  async upsert(raw: readonly unknown[]): Promise<{ upserted: number; domains: number }> {
    const entries: [string, string][] = [];
    const problems: string[] = [];
    raw.forEach((item, i) => {
      const checked = v.safeParse(TenantDomainSchema, item);
      if (checked.success) entries.push([checked.output.host.toLowerCase(), JSON.stringify(settingsOf(checked.output))]);
      else problems.push(`domains[${i}]: ${checked.issues.map((x) => `${v.getDotPath(x) ?? ''} ${x.message}`.trim()).join('; ')}`);
    });
    if (problems.length > 0) {
      const more = problems.length > 10 ? ` (and ${problems.length - 10} more)` : '';
      throw new SecbeatError('SECBEAT_ERR_ADMIN_INVALID_ARGS', `nothing applied, ${problems.length} invalid: ${problems.slice(0, 10).join(' | ')}${more}`);
    }
    for (let i = 0; i < entries.length; i += MAX_ENTRIES_PER_CHANGE) {
      if (i > 0) await yieldLoop();
      this.#replica.doc.upsertDomains(entries.slice(i, i + MAX_ENTRIES_PER_CHANGE));
    }
    this.#changed();
    this.#replica.changed();
    return { upserted: entries.length, domains: this.#good.size };
  }

  remove(hosts: readonly string[]): { removed: number; domains: number } {
    const doc = this.#replica.doc;
    const present = hosts.map((h) => h.toLowerCase()).filter((h) => doc.hasDomain(h));
    if (present.length > 0) {
      doc.removeDomains(present);
      this.#changed();
      this.#replica.changed();
    }
    return { removed: present.length, domains: this.#good.size };
  }

  list(limit: number): { domains: number; peers: number; generation: number; history_ops: number; heads: string[]; first: TenantDomain[] } {
    const first = [...this.#good].sort(([a], [b]) => (a < b ? -1 : 1)).slice(0, limit).map(([, g]) => g.domain);
    const doc = this.#replica.doc;
    return { domains: this.#good.size, peers: this.#replica.peers, generation: this.#replica.generation, history_ops: doc.historyOps(), heads: doc.heads(), first };
  }

  #changed(): void {
    this.#apply();
    this.#scheduleSave();
  }

  /**
   * The entries changed since the last call, checked one by one (a large sync must not hold the main thread:
   * checking all 10,000 domains each time did, long enough to miss worker heartbeats); the routes of every
   * good one to the data plane.
   */
  #apply(): void {
    const doc = this.#replica.doc;
    let invalid = 0;
    for (const [host, text] of doc.changedDomains(this.#applied)) if (!this.#take(host, text)) invalid++;
    this.#publish(invalid);
  }

  /** A new generation: every entry compared by text with what is in use, only those that differ checked. */
  #onGeneration(change: GenerationChange): void {
    const domains = this.#replica.doc.domains();
    let invalid = 0;
    for (const host of this.#good.keys()) if (!domains.has(host)) this.#good.delete(host);
    for (const [host, text] of domains) if (this.#good.get(host)?.text !== text && !this.#take(host, text)) invalid++;
    this.#publish(invalid);
    metrics().tenantGeneration.set(change.generation);
    metrics().tenantCompactions.inc({ kind: change.merged ? 'merged' : 'snapshot' });
    const log = change.merged || change.othersLeft > 0 ? this.#o.log.warn.bind(this.#o.log) : this.#o.log.info.bind(this.#o.log);
    log({ ...change, domains: this.#good.size, history_ops: this.#replica.doc.historyOps() }, change.merged ? 'tenants: a document of another lineage merged into the new generation' : 'tenants: moved to a new generation of the document');
    this.#scheduleSave();
  }

  /** One entry's text (null: removed) taken in; false when it fails the checks and keeps its last good value. */
  #take(host: string, text: string | null): boolean {
    if (text === null) {
      this.#good.delete(host);
      return true;
    }
    const checked = v.safeParse(TenantDomainSchema, parseJson(text));
    if (!checked.success || checked.output.host.toLowerCase() !== host) return false;
    this.#good.set(host, { domain: checked.output, text });
    return true;
  }

  #publish(invalid: number): void {
    this.#applied = this.#replica.doc.heads();
    if (invalid > 0) {
      metrics().tenantInvalidEntries.inc(invalid);
      this.#o.log.warn({ invalid }, 'tenants: entries that fail the checks keep their last good value');
    }
    metrics().tenantHistoryOps.set(this.#replica.doc.historyOps());
    this.#o.onRoutes(
      [...this.#good.values()].map(({ domain: d }) => (d.waf_mode === undefined ? { hosts: [d.host], origins: d.origins } : { hosts: [d.host], origins: d.origins, waf: d.waf_mode })),
    );
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
    const text = JSON.stringify({ from: this.#self, generation, epoch: envelope.epoch, seq: envelope.seq, data: Buffer.from(envelope.data).toString('base64') });
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
    const m = parseJson(text) as { from?: unknown; generation?: unknown; epoch?: unknown; seq?: unknown; data?: unknown } | null;
    const generation = generationOf(m?.generation);
    // Its size is bounded already: the transport drops inbound payloads past 1 MiB unread.
    if (m === null || generation === null || !isPeer(m.from) || !Number.isSafeInteger(m.epoch) || !Number.isSafeInteger(m.seq) || typeof m.data !== 'string') {
      return void metrics().tenantSyncMalformed.inc();
    }
    const envelope = { epoch: m.epoch as number, seq: m.seq as number, data: Buffer.from(m.data, 'base64') };
    if (!this.#replica.receive(m.from, generation, envelope)) metrics().tenantSyncMalformed.inc();
  }
}

/** A message's generation: absent is 0 (nodes from before compaction), anything but a count is malformed. */
function generationOf(value: unknown): number | null {
  if (value === undefined) return 0;
  return Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : null;
}

function writeAtomically(path: string, data: string | Uint8Array): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
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
    !actors.every((a) => typeof a === 'string' && /^[0-9a-f]{2,64}$/.test(a)) ||
    typeof roster !== 'object' ||
    roster === null ||
    !Object.entries(roster).every(([peer, at]) => isPeer(peer) && Number.isSafeInteger(at))
  ) {
    o.log.warn({ path }, 'tenants: replica state does not match the document; own changes of earlier runs will not be carried into a new generation');
    return undefined;
  }
  return { actors: actors as string[], roster: roster as Record<string, number> };
}

function settingsOf(d: TenantDomain): TenantDomain {
  return d.waf_mode === undefined ? { host: d.host.toLowerCase(), origins: d.origins } : { host: d.host.toLowerCase(), origins: d.origins, waf_mode: d.waf_mode };
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
