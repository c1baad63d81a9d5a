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
// - Wire format (subjects in ../runtime/subjects.ts), decoded by hand with bounds, malformed counted:
//   hello {from, heads}; sync {from, epoch, seq, data (base64)}.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import * as v from 'valibot';
import { ConfigDoc, MAX_ENTRIES_PER_CHANGE } from '../crdt/config-doc.ts';
import { ConfigSync, type SyncEnvelope } from '../crdt/config-sync.ts';
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
}

const FILE = 'tenants.automerge';
const SAVE_DELAY_MS = 500;
const MAX_HEADS = 256;

export class Tenants {
  readonly #o: TenantsOptions;
  readonly #doc: ConfigDoc;
  readonly #sync: ConfigSync;
  /** host → the last settings that passed the checks. */
  readonly #good = new Map<string, TenantDomain>();
  /** The document's heads when #good was last brought up to date. */
  #applied: string[] = [];
  #saveTimer: NodeJS.Timeout | null = null;
  #nats: NatsTransport | null = null;

  constructor(options: TenantsOptions) {
    this.#o = options;
    this.#doc = loadDoc(options);
    this.#sync = new ConfigSync({
      doc: this.#doc,
      send: (peer, envelope) => this.#send(peer, envelope),
      announce: (heads) => void this.#nats?.broadcast(configHelloSubject(), JSON.stringify({ from: this.#self, heads })),
      onRemoteChange: () => this.#changed(),
    });
    this.#apply();
    if (this.#good.size > 0) options.log.info({ domains: this.#good.size }, 'tenants: serving the saved domains');
  }

  get #self(): string {
    return `${this.#o.region}/${this.#o.node}`;
  }

  /** Syncs over `nats` from now on (absent: this node keeps its own document). */
  attach(nats: NatsTransport | null): void {
    this.#nats = nats;
    if (nats === null) return;
    nats.listen(configHelloSubject(), (text) => this.#onHello(text));
    nats.listen(configSyncSubject(this.#o.region, this.#o.node), (text) => this.#onSync(text));
    this.#sync.start();
  }

  stop(): void {
    this.#sync.stop();
    if (this.#saveTimer !== null) {
      clearTimeout(this.#saveTimer);
      this.#save();
    }
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
      this.#doc.upsertDomains(entries.slice(i, i + MAX_ENTRIES_PER_CHANGE));
    }
    this.#changed();
    this.#sync.changed();
    return { upserted: entries.length, domains: this.#good.size };
  }

  remove(hosts: readonly string[]): { removed: number; domains: number } {
    const present = hosts.map((h) => h.toLowerCase()).filter((h) => this.#doc.hasDomain(h));
    if (present.length > 0) {
      this.#doc.removeDomains(present);
      this.#changed();
      this.#sync.changed();
    }
    return { removed: present.length, domains: this.#good.size };
  }

  list(limit: number): { domains: number; peers: number; heads: string[]; first: TenantDomain[] } {
    const first = [...this.#good].sort(([a], [b]) => (a < b ? -1 : 1)).slice(0, limit).map(([, d]) => d);
    return { domains: this.#good.size, peers: this.#sync.peers, heads: this.#doc.heads(), first };
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
    let invalid = 0;
    for (const [host, text] of this.#doc.changedDomains(this.#applied)) {
      if (text === null) {
        this.#good.delete(host);
        continue;
      }
      const checked = v.safeParse(TenantDomainSchema, parseJson(text));
      if (checked.success && checked.output.host.toLowerCase() === host) this.#good.set(host, checked.output);
      else invalid++;
    }
    this.#applied = this.#doc.heads();
    if (invalid > 0) {
      metrics().tenantInvalidEntries.inc(invalid);
      this.#o.log.warn({ invalid }, 'tenants: entries that fail the checks keep their last good value');
    }
    this.#o.onRoutes([...this.#good.values()].map((d) => (d.waf_mode === undefined ? { hosts: [d.host], origins: d.origins } : { hosts: [d.host], origins: d.origins, waf: d.waf_mode })));
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
      writeFileSync(`${path}.tmp`, this.#doc.save());
      renameSync(`${path}.tmp`, path);
    } catch (error) {
      this.#o.log.error({ err: error, path }, 'tenants: cannot save the document; changes live in memory only');
    }
  }

  #send(peer: string, envelope: SyncEnvelope): void {
    const [region, node] = splitPeer(peer);
    const text = JSON.stringify({ from: this.#self, epoch: envelope.epoch, seq: envelope.seq, data: Buffer.from(envelope.data).toString('base64') });
    this.#nats?.broadcast(configSyncSubject(region, node), text);
  }

  #onHello(text: string): void {
    const hello = parseJson(text) as { from?: unknown; heads?: unknown } | null;
    const from = hello?.from;
    const heads = hello?.heads;
    if (!isPeer(from) || !Array.isArray(heads) || heads.length > MAX_HEADS || !heads.every(isHead)) return void metrics().tenantSyncMalformed.inc();
    if (from !== this.#self) this.#sync.hello(from, heads as string[]);
  }

  #onSync(text: string): void {
    const m = parseJson(text) as { from?: unknown; epoch?: unknown; seq?: unknown; data?: unknown } | null;
    // Its size is bounded already: the transport drops inbound payloads past 1 MiB unread.
    if (m === null || !isPeer(m.from) || !Number.isSafeInteger(m.epoch) || !Number.isSafeInteger(m.seq) || typeof m.data !== 'string') {
      return void metrics().tenantSyncMalformed.inc();
    }
    if (!this.#sync.receive(m.from, { epoch: m.epoch as number, seq: m.seq as number, data: Buffer.from(m.data, 'base64') })) metrics().tenantSyncMalformed.inc();
  }
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
