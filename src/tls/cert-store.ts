// Certificates by server name for TLS termination. A node may front 100k domains, and a Node secure context
// holds about 40 KB of OpenSSL state, so certificates are kept as compact PEM bytes (outside the JS heap)
// and turned into secure contexts lazily, for the names handshakes actually ask for, through a bounded LRU.
// Installing, replacing or removing a certificate swaps one map entry: a handshake in flight keeps the
// context it already picked, the next one picks the new certificate, and none fails in between.
import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { SecbeatError } from '../errors.ts';

export interface CertificatePem {
  /** Leaf first, then intermediates. */
  cert: Buffer;
  key: Buffer;
}

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

/** RFC 6066 host_name: LDH labels; a leading "*." only on installed names (wildcards), never in SNI. */
const HOST_NAME = /^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const TICKET_KEYS_BYTES = 48;

interface Entry extends InstalledCertificate {
  pem: CertificatePem;
}

export class CertificateStore {
  readonly stats: CertStoreStats = { hits: 0, misses: 0, evictions: 0, defaultServed: 0, unknownName: 0 };
  readonly #settings: TlsSettings;
  readonly #entries = new Map<string, Entry>();
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
    return this.#entries.size;
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
    const key = normalizeName(name, true);
    const { entry, context } = this.#check(key, pem);
    this.#entries.set(key, entry);
    this.#contexts.delete(key);
    this.#remember(key, entry, context);
    return publicView(entry);
  }

  /** The certificate served when no installed name matches (or the client sends no SNI). */
  setDefault(pem: CertificatePem): InstalledCertificate {
    const { entry, context } = this.#check(null, pem);
    this.#defaultContext = context;
    this.#default = entry;
    return publicView(entry);
  }

  /**
   * The default certificate's PEM, for the server's own context: Node calls SNICallback only when a client
   * sends a server name, so a client connecting by address is served from the server options instead.
   */
  get defaultPem(): CertificatePem | null {
    return this.#default?.pem ?? null;
  }

  remove(name: string): boolean {
    const key = normalizeName(name, true);
    this.#contexts.delete(key);
    return this.#entries.delete(key);
  }

  get(name: string): InstalledCertificate | undefined {
    const entry = this.#entries.get(normalizeName(name, true));
    return entry && publicView(entry);
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
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    const cached = this.#contexts.get(key);
    if (cached && cached.generation === entry.generation) {
      this.stats.hits++;
      this.#contexts.delete(key);
      this.#contexts.set(key, cached);
      return cached.context;
    }
    this.stats.misses++;
    const context = this.#build(entry.pem);
    this.#remember(key, entry, context);
    return context;
  }

  #remember(key: string, entry: Entry, context: SecureContext): void {
    this.#contexts.set(key, { generation: entry.generation, context });
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

function publicView({ name, notAfterMs, generation }: Entry): InstalledCertificate {
  return { name, notAfterMs, generation };
}

function checkTicketKeys(keys: Buffer): Buffer {
  if (keys.length !== TICKET_KEYS_BYTES) throw new RangeError(`ticket keys must be ${TICKET_KEYS_BYTES} bytes, got ${keys.length}`);
  return keys;
}

/** Lower case without a trailing dot, or null when it is not a host name (SNI) / installable name. */
function normalizeName(name: string, installing: true): string;
function normalizeName(name: string, installing: false): string | null;
function normalizeName(name: string, installing: boolean): string | null {
  let n = name.length > 0 && name.length <= 254 ? name.toLowerCase() : '';
  if (n.endsWith('.')) n = n.slice(0, -1);
  const ok = n.length > 0 && n.length <= 253 && HOST_NAME.test(n) && (installing || !n.startsWith('*.'));
  if (ok) return n;
  if (installing) throw new SecbeatError('SECBEAT_ERR_TLS_CERT', `${JSON.stringify(name)} is not a host name or *.wildcard`);
  return null;
}

/** "a.b.example.com" → "*.b.example.com"; a wildcard covers exactly one label. */
function wildcardOf(name: string): string | null {
  const dot = name.indexOf('.');
  return dot === -1 ? null : `*${name.slice(dot)}`;
}
