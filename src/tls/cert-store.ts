// Certificates by server name for TLS termination. A node may front 100k domains, and a Node secure context
// holds about 40 KB of OpenSSL state, so certificates are kept as compact PEM bytes (outside the JS heap)
// and turned into secure contexts lazily, for the names handshakes actually ask for, through a bounded LRU.
// Installing, replacing or removing a certificate swaps one map entry: a handshake in flight keeps the
// context it already picked, the next one picks the new certificate, and none fails in between. A whole set
// checked on the main thread is installed from shared memory (./pem-table.ts) without a check per pair.
import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { SecbeatError } from '../errors.ts';
import type { CertificateChanges, PemTable } from '../messages.ts';
import { normalizeName, wildcardOf } from './names.ts';
import { pairCount, pemAt, PemTableBuilder, sameDigest, samePem, type PemBytes } from './pem-table.ts';

export type CertificatePem = PemBytes;

/** What `replaceAll` did, by name. */
export type TableChanges = Omit<CertificateChanges, 'defaultReplaced'>;

export interface InstalledCertificate {
  name: string;
  notAfterMs: number;
  /** Bumped by every install, so a replaced certificate's cached context is never served again. */
  generation: number;
}

/** Protocol settings every context shares; from [tls] in config. */
export interface TlsSettings {
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  maxVersion: 'TLSv1.2' | 'TLSv1.3';
  /** OpenSSL cipher list (TLS 1.2) and TLS 1.3 suites, colon-separated, as Node takes them in one string. */
  ciphers: string;
  /** Contexts kept warm. Each is ~40 KB; 1,000 hot names ≈ 40 MB. */
  contextCacheSize: number;
}

/** Counters the metrics layer reads at scrape time (plain numbers: no metric calls on the handshake path). */
export interface CertStoreStats {
  hits: number;
  misses: number;
  evictions: number;
  defaultServed: number;
  unknownName: number;
}

const TICKET_KEYS_BYTES = 48;

/** A certificate installed by itself (`install`, `setDefault`), checked here. */
interface Entry extends InstalledCertificate {
  pem: CertificatePem;
}

/**
 * A table installed by replaceAll: one Map entry per name (name → pair index) and a generation per pair, no
 * object per name. 100k names then add about 14 MB to a thread's heap, whose full GC (a pause handshakes
 * wait behind) took 11 ms against 3 ms with 50 names.
 */
interface InstalledTable {
  table: PemTable;
  pairByName: Map<string, number>;
  /** Per pair: the generation its bytes were installed under, which a cached context must match. */
  generations: Float64Array;
}

export class CertificateStore {
  readonly stats: CertStoreStats = { hits: 0, misses: 0, evictions: 0, defaultServed: 0, unknownName: 0 };
  readonly #settings: TlsSettings;
  /** Replaced whole by replaceAll, so a lookup never sees a half-applied set. */
  #installed: InstalledTable = { table: new PemTableBuilder().build([]), pairByName: new Map(), generations: new Float64Array(0) };
  /** Names installed one by one; a name is here or in #installed, never both. */
  readonly #single = new Map<string, Entry>();
  /** Insertion order is recency: a hit re-inserts. Keyed by installed name (exact or "*.parent"). */
  readonly #contexts = new Map<string, { generation: number; context: SecureContext }>();
  #default: Entry | null = null;
  #defaultContext: SecureContext | null = null;
  #ticketKeys: Buffer;
  #generation = 0;

  constructor(settings: TlsSettings, ticketKeys: Buffer) {
    if (settings.contextCacheSize < 1) throw new RangeError('contextCacheSize must be at least 1');
    this.#settings = settings;
    this.#ticketKeys = checkTicketKeys(ticketKeys);
  }

  get size(): number {
    return this.#single.size + this.#installed.pairByName.size;
  }

  get cachedContexts(): number {
    return this.#contexts.size;
  }

  /**
   * Installs or replaces the certificate for `name` (a host name or "*.parent"). The pair is checked by
   * building its context once (key matches certificate, PEM parses) and the certificate must cover the
   * name; on any error nothing changes and a SECBEAT_ERR_TLS_CERT error says why.
   */
  install(name: string, pem: CertificatePem): InstalledCertificate {
    const key = installable(name);
    const { entry, context } = this.#check(key, pem);
    this.#single.set(key, entry);
    this.#installed.pairByName.delete(key);
    this.#contexts.delete(key);
    this.#remember(key, entry.generation, context);
    return publicView(entry);
  }

  /**
   * Makes the installed names exactly those of `table`, whose pairs the main thread has already checked
   * (src/tls/certificate-set.ts): nothing is parsed or built here, contexts come on first use. A name whose
   * bytes did not change (same digest) keeps its generation, so its cached context stays warm; a changed
   * one is replaced and its context dropped; names the table lacks, `install`ed ones included, are removed.
   */
  replaceAll(table: PemTable): TableChanges {
    const old = this.#installed;
    const changes: TableChanges = { installed: 0, replaced: 0, removed: 0, unchanged: 0 };
    const pairByName = new Map<string, number>();
    const generations = new Float64Array(pairCount(table));
    table.names.forEach((names, index) => {
      let generation = 0;
      for (const name of names) {
        const was = old.pairByName.get(name);
        if (was !== undefined && sameDigest(old.table, was, table, index)) {
          generation = old.generations[was]!;
          changes.unchanged++;
        } else {
          if (was === undefined && !this.#single.has(name)) changes.installed++;
          else changes.replaced++;
          this.#contexts.delete(name);
        }
        pairByName.set(name, index);
      }
      // A generation is never 0: a pair none of whose names is unchanged gets a new one.
      generations[index] = generation === 0 ? ++this.#generation : generation;
    });
    for (const name of [...old.pairByName.keys(), ...this.#single.keys()]) {
      if (pairByName.has(name)) continue;
      changes.removed++;
      this.#contexts.delete(name);
    }
    this.#single.clear();
    this.#installed = { table, pairByName, generations };
    return changes;
  }

  /**
   * The certificate served when no installed name matches (or the client sends no SNI). The same bytes as
   * the current default change nothing, so its context stays.
   */
  setDefault(pem: CertificatePem): InstalledCertificate {
    if (this.#default !== null && samePem(this.#default.pem, pem)) return publicView(this.#default);
    const { entry, context } = this.#check(null, pem);
    this.#defaultContext = context;
    this.#default = entry;
    return publicView(entry);
  }

  get defaultCertificate(): InstalledCertificate | null {
    return this.#default && publicView(this.#default);
  }

  /**
   * The default certificate's PEM, for the server's own context: Node calls SNICallback only when a client
   * sends a server name, so a client connecting by address is served from the server options instead.
   */
  get defaultPem(): CertificatePem | null {
    return this.#default?.pem ?? null;
  }

  remove(name: string): boolean {
    const key = installable(name);
    this.#contexts.delete(key);
    const single = this.#single.delete(key);
    return this.#installed.pairByName.delete(key) || single;
  }

  get(name: string): InstalledCertificate | undefined {
    const key = installable(name);
    const single = this.#single.get(key);
    if (single !== undefined) return publicView(single);
    const { table, pairByName, generations } = this.#installed;
    const index = pairByName.get(key);
    return index === undefined ? undefined : { name: key, notAfterMs: table.notAfterMs[index]!, generation: generations[index]! };
  }

  /** New keys for session tickets (48 bytes, shared by every thread so resumption works across them). */
  rotateTicketKeys(ticketKeys: Buffer): void {
    this.#ticketKeys = checkTicketKeys(ticketKeys);
    // A context's ticket keys are fixed at creation: rebuild lazily. Tickets under the old keys fall back to
    // a full handshake once, which is what rotation is for.
    this.#contexts.clear();
    if (this.#default) this.#defaultContext = this.#build(this.#default.pem);
  }

  /** The context for an SNI name: exact name, then the wildcard one label up, then the default. */
  contextFor(serverName: string | undefined): SecureContext | undefined {
    const name = serverName === undefined ? null : normalizeName(serverName, false);
    if (name !== null) {
      const context = this.#lookup(name) ?? this.#lookup(wildcardOf(name));
      if (context) return context;
    }
    this.stats.unknownName++;
    if (this.#defaultContext) this.stats.defaultServed++;
    return this.#defaultContext ?? undefined;
  }

  /** For `tls.createServer({ SNICallback })`. */
  readonly sniCallback = (serverName: string, callback: (err: Error | null, ctx?: SecureContext) => void): void => {
    callback(null, this.contextFor(serverName));
  };

  #lookup(key: string | null): SecureContext | undefined {
    if (key === null) return undefined;
    const single = this.#single.get(key);
    if (single !== undefined) return this.#cached(key, single.generation, () => single.pem);
    const { table, pairByName, generations } = this.#installed;
    const index = pairByName.get(key);
    return index === undefined ? undefined : this.#cached(key, generations[index]!, () => pemAt(table, index));
  }

  /** The cached context of `key` when it was built under `generation`, else one built now from `pem()`. */
  #cached(key: string, generation: number, pem: () => PemBytes): SecureContext {
    const cached = this.#contexts.get(key);
    if (cached && cached.generation === generation) {
      this.stats.hits++;
      this.#contexts.delete(key);
      this.#contexts.set(key, cached);
      return cached.context;
    }
    this.stats.misses++;
    const context = this.#build(pem());
    this.#remember(key, generation, context);
    return context;
  }

  #remember(key: string, generation: number, context: SecureContext): void {
    this.#contexts.set(key, { generation, context });
    if (this.#contexts.size > this.#settings.contextCacheSize) {
      const oldest = this.#contexts.keys().next().value as string;
      this.#contexts.delete(oldest);
      this.stats.evictions++;
    }
  }

  #build(pem: CertificatePem): SecureContext {
    const options: SecureContextOptions = {
      cert: pem.cert,
      key: pem.key,
      minVersion: this.#settings.minVersion,
      maxVersion: this.#settings.maxVersion,
      ciphers: this.#settings.ciphers,
      honorCipherOrder: true,
      ticketKeys: this.#ticketKeys,
    };
    return createSecureContext(options);
  }

  /** Building the context is the check that the key belongs to the certificate and both parse. */
  #check(name: string | null, pem: CertificatePem): { entry: Entry; context: SecureContext } {
    let x509: X509Certificate;
    let context: SecureContext;
    try {
      x509 = new X509Certificate(pem.cert);
      context = this.#build(pem);
    } catch (err) {
      throw new SecbeatError('SECBEAT_ERR_TLS_CERT', `certificate${name ? ` for ${name}` : ''} rejected: ${(err as Error).message}`, { cause: err });
    }
    if (name !== null && x509.checkHost(name.startsWith('*.') ? `wildcard-probe${name.slice(1)}` : name, { wildcards: true }) === undefined) {
      throw new SecbeatError('SECBEAT_ERR_TLS_CERT', `certificate does not cover ${name} (subject ${x509.subject.replaceAll('\n', ', ')})`);
    }
    return { entry: { name: name ?? '(default)', notAfterMs: Date.parse(x509.validTo), generation: ++this.#generation, pem }, context };
  }
}

function publicView({ name, notAfterMs, generation }: InstalledCertificate): InstalledCertificate {
  return { name, notAfterMs, generation };
}

function checkTicketKeys(keys: Buffer): Buffer {
  if (keys.length !== TICKET_KEYS_BYTES) throw new RangeError(`ticket keys must be ${TICKET_KEYS_BYTES} bytes, got ${keys.length}`);
  return keys;
}

function installable(name: string): string {
  const key = normalizeName(name, true);
  if (key === null) throw new SecbeatError('SECBEAT_ERR_TLS_CERT', `${JSON.stringify(name)} is not a host name or *.wildcard`);
  return key;
}
