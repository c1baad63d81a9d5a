// L7 mode's per-thread settings, derived from config on the main thread: addresses, limits, routes, and every
// certificate, read and checked here once (src/tls/certificate-set.ts) into shared memory the threads install
// from, so worker threads open no files and parse no certificates. An unusable certificate stops the start
// (and validate-config) with the loader's message naming its files. The same settings go to every thread,
// ticket keys included, so a TLS session resumes on whichever thread the kernel hands the next connection to.
// A reload (`update`) re-derives routes and certificates only; every other L7 setting waits for a restart.
import { randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SecbeatError } from '../errors.ts';
import { parseHostPort, type Config } from '../config/schema.ts';
import { checkDefaultCertificate, type L7TlsSettings } from '../http/certificates.ts';
import { withUpdate } from '../http/reload.ts';
import type { L7Settings } from '../http/setup.ts';
import { compileWaf, type WafMode } from '../http/waf-gate.ts';
import { WafPolicySchema, type CertificateList, type CertificateSet, type L7Update, type WafPolicy, type WafSettings } from '../messages.ts';
import { parseCidr } from '../net/cidr.ts';
import { decode } from '../validation.ts';
import { CertificateLoader, type CertificateSources, type PairFiles } from '../tls/certificate-set.ts';
import { expiringFirst, pairCount } from '../tls/pem-table.ts';
import type { FleetPolicy } from './tenants.ts';

/** Secure contexts kept warm per thread; each is ~40 KB (docs/rationale.md). */
const TLS_CONTEXT_CACHE_SIZE = 1_000;
const TICKET_KEYS_BYTES = 48;

/** The settings threads boot with, kept current by reloads. */
export class L7SettingsSource {
  readonly #cwd: string;
  readonly #certificates: CertificateLoader;
  #settings: L7Settings;
  /** Routes from [[l7.routes]], and from the fleet's tenant configuration: threads get both, file first. */
  #configRoutes: L7Update['routes'];
  #tenantRoutes: L7Update['routes'] = [];
  /** [waf] as the config file sets it (its policy file's rules only), and the fleet's policy to go with it. */
  #fileWaf: WafSettings | null;
  #fleetPolicy: FleetPolicy = { rules: [], exclusions: [], allowlist: [] };
  /** Where the config file's certificates come from (null: TLS off), and the tenant domains' own. */
  #sources: CertificateSources | null;
  #tenantCertificates: readonly { host: string; files: PairFiles }[] = [];

  private constructor(cwd: string, certificates: CertificateLoader, settings: L7Settings, config: Readonly<Config>) {
    this.#cwd = cwd;
    this.#certificates = certificates;
    this.#settings = settings;
    this.#configRoutes = routesOf(config);
    this.#fileWaf = settings.waf;
    this.#sources = certificateSources(config, cwd);
  }

  /** Reads and checks every certificate; rejects with SECBEAT_ERR_TLS_CERT or SECBEAT_ERR_CONFIG_INVALID. */
  static async load(config: Readonly<Config>, cwd: string): Promise<L7SettingsSource> {
    const certificates = new CertificateLoader();
    return new L7SettingsSource(cwd, certificates, await initialSettings(config, cwd, certificates), config);
  }

  get settings(): L7Settings {
    return this.#settings;
  }

  /** Config keys a reload applies live (everything else in [l7] and [tls] needs a restart). */
  get liveKeys(): readonly string[] {
    return this.#settings.tls === null ? ['l7.routes'] : ['l7.routes', 'tls.cert_path', 'tls.key_path', 'tls.certificates_dir'];
  }

  /**
   * The routes and certificates of `config`, as an update for running threads; pairs checked by an earlier
   * load with the same bytes are not checked again. Rejects like `load`, and then nothing changes;
   * otherwise threads started from now on boot with the update too.
   */
  async update(config: Readonly<Config>): Promise<L7Update> {
    const tls = this.#settings.tls;
    // TLS turned off is a restart-only change: until then, the running certificates stay.
    const sources = tls === null ? null : certificateSources(config, this.#cwd);
    const certificates = tls === null ? null : sources === null ? tls.certificates : await loadCertificates(this.#certificates, tls, this.#withTenants(sources));
    if (sources !== null) this.#sources = sources;
    this.#configRoutes = routesOf(config);
    this.#fileWaf = this.#settings.waf === null ? null : checkedWaf(config, this.#cwd);
    const update: L7Update = { routes: [...this.#configRoutes, ...this.#tenantRoutes], certificates, waf: this.#mergedWaf() };
    this.#settings = withUpdate(this.#settings, update);
    return update;
  }

  /**
   * The fleet's tenant domains (./tenants.ts) as routes after the config file's own, as an update for running
   * threads (certificates and WAF rules unchanged); threads started from now on boot with them too.
   */
  tenantUpdate(routes: L7Update['routes']): L7Update {
    this.#tenantRoutes = routes;
    const update: L7Update = { routes: [...this.#configRoutes, ...routes], certificates: null, waf: null };
    this.#settings = withUpdate(this.#settings, update);
    return update;
  }

  /**
   * The fleet's WAF policy (./tenants.ts) after the config file's, as an update for running threads (each
   * compiles its rule set again); null when the WAF is off on this node, where it has nothing to change.
   */
  fleetPolicyUpdate(policy: FleetPolicy): L7Update | null {
    this.#fleetPolicy = policy;
    const waf = this.#mergedWaf();
    if (waf === null) return null;
    const update: L7Update = { routes: [...this.#configRoutes, ...this.#tenantRoutes], certificates: null, waf };
    this.#settings = withUpdate(this.#settings, update);
    return update;
  }

  /**
   * The tenant domains' own certificates (./tenant-certificates.ts writes their files) with the config
   * file's, as an update for running threads; null with TLS off, where there is nothing to serve them on.
   * Rejects as a reload does (SECBEAT_ERR_TLS_CERT) and then changes nothing.
   */
  async tenantCertificatesUpdate(pairs: readonly { host: string; files: PairFiles }[]): Promise<L7Update | null> {
    const tls = this.#settings.tls;
    if (tls === null || this.#sources === null) return null;
    const certificates = await loadCertificates(this.#certificates, tls, this.#withTenants(this.#sources, pairs));
    this.#tenantCertificates = pairs;
    const update: L7Update = { routes: [...this.#configRoutes, ...this.#tenantRoutes], certificates, waf: null };
    this.#settings = withUpdate(this.#settings, update);
    return update;
  }

  /** The config file's certificate sources with the tenants' first: a route of the file naming the same host wins. */
  #withTenants(sources: CertificateSources, tenants = this.#tenantCertificates): CertificateSources {
    return { ...sources, routes: [...tenants.map(({ host, files }) => ({ hosts: [host], files })), ...sources.routes] };
  }

  /** Fleet rules whose id a rule of the policy file holds (the file's wins). */
  get shadowedFleetRules(): number[] {
    const fileIds = new Set(this.#fileWaf?.policy.rules.map((r) => r.id) ?? []);
    return this.#fleetPolicy.rules.filter((r) => fileIds.has(r.id)).map((r) => r.id);
  }

  #mergedWaf(): WafSettings | null {
    const file = this.#fileWaf;
    if (file === null) return null;
    const fleet = this.#fleetPolicy;
    const fileIds = new Set(file.policy.rules.map((r) => r.id));
    const policy: WafPolicy = {
      rules: [...file.policy.rules, ...fleet.rules.filter((r) => !fileIds.has(r.id))],
      exclusions: [...file.policy.exclusions, ...fleet.exclusions],
      allowlist: [...file.policy.allowlist, ...fleet.allowlist],
      rule_modes: file.policy.rule_modes,
    };
    return { ...file, policy };
  }

  /** The installed names that expire first (`certs.list`), with the counts. */
  list(limit: number): CertificateList {
    const set = this.#settings.tls?.certificates;
    if (set === undefined) return { names: 0, certificates: 0, defaultNotAfterMs: null, expiringFirst: [] };
    return {
      names: set.table.names.reduce((n, names) => n + names.length, 0),
      certificates: pairCount(set.table),
      defaultNotAfterMs: new X509Certificate(set.defaultCert.cert).validToDate.getTime(),
      expiringFirst: expiringFirst(set.table, limit),
    };
  }
}

async function initialSettings(config: Readonly<Config>, cwd: string, loader: CertificateLoader): Promise<L7Settings> {
  const { server, tls, l7 } = config;
  const listen = address(server.bind_address, 'server.bind_address');
  const backend = address(server.backend_address, 'server.backend_address');
  const sources = certificateSources(config, cwd);
  let tlsSettings: L7TlsSettings | null = null;
  if (sources !== null) {
    const base = {
      listen: address(l7.tls_bind_address, 'l7.tls_bind_address'),
      minVersion: tls.min_version,
      ciphers: tls.ciphers,
      ticketKeys: randomBytes(TICKET_KEYS_BYTES),
      contextCacheSize: TLS_CONTEXT_CACHE_SIZE,
    };
    tlsSettings = { ...base, certificates: await loadCertificates(loader, base, sources) };
  }
  return {
    listen,
    tls: tlsSettings,
    routes: routesOf(config),
    defaultOrigins: [`http://${backend.host.includes(':') ? `[${backend.host}]` : backend.host}:${backend.port}`],
    trustedProxies: l7.trusted_proxies,
    proxyProtocol: l7.proxy_protocol,
    limits: {
      headerTimeoutMs: l7.header_timeout_ms,
      requestTimeoutMs: l7.request_timeout_ms,
      keepAliveTimeoutMs: l7.keepalive_timeout_ms,
      maxHeaderBytes: l7.max_header_bytes,
      maxHeaders: l7.max_headers,
      maxBodyBytes: l7.max_body_bytes,
      maxRequestsPerConnection: l7.max_requests_per_connection,
      maxConcurrentStreams: l7.max_concurrent_streams,
      minBodyRate: l7.min_body_rate,
      h2ResetBurst: l7.h2_reset_burst,
      h2ResetRate: l7.h2_reset_rate,
    },
    waf: config.waf.enabled ? checkedWaf(config, cwd) : null,
    rateLimit: config.rate_limit.enabled ? { requests: config.rate_limit.requests, windowMs: config.rate_limit.window_seconds * 1000 } : null,
    upstream: {
      connectTimeoutMs: server.connect_timeout_ms,
      headersTimeoutMs: l7.upstream_timeout_ms,
      bodyTimeoutMs: server.idle_timeout_ms,
      connectionsPerOrigin: l7.upstream_connections,
      ejectAfterFailures: l7.eject_after_failures,
      ejectMs: l7.eject_ms,
      originCa: l7.origin_ca_path === undefined ? null : readOriginCa(resolve(cwd, l7.origin_ca_path)),
      verifyOrigins: l7.origin_tls_verify,
    },
  };
}

/** Loads the set and checks its default pair under `tls`'s protocol settings (those stay until a restart). */
async function loadCertificates(loader: CertificateLoader, tls: Omit<L7TlsSettings, 'certificates'>, sources: CertificateSources): Promise<CertificateSet> {
  const certificates = await loader.load(sources);
  checkDefaultCertificate({ ...tls, certificates });
  return certificates;
}

/** Where the certificates of `config` come from; null when TLS is off. Paths resolve against `cwd`. */
function certificateSources(config: Readonly<Config>, cwd: string): CertificateSources | null {
  const { tls, l7 } = config;
  if (!tls.enabled || tls.cert_path === undefined || tls.key_path === undefined) return null;
  const files = (cert: string, key: string) => ({ cert: resolve(cwd, cert), key: resolve(cwd, key) });
  return {
    defaultCert: files(tls.cert_path, tls.key_path),
    routes: l7.routes.flatMap((r) => (r.cert_path !== undefined && r.key_path !== undefined ? [{ hosts: r.hosts, files: files(r.cert_path, r.key_path) }] : [])),
    dir: tls.certificates_dir === undefined ? null : resolve(cwd, tls.certificates_dir),
  };
}

/** The challenge key when [waf] challenge_secret is not set: one per process, so reloads keep clearances valid. */
const processChallengeSecret = randomBytes(32).toString('base64url');

function routesOf(config: Readonly<Config>): L7Update['routes'] {
  return config.l7.routes.map(routeOf);
}

/** A route of the config file or a tenant domain, as threads take it (optional settings only when set). */
export function routeOf(r: { hosts: string[]; origins: string[]; waf_mode?: WafMode | undefined; rate_limit?: { requests: number } | undefined }): L7Update['routes'][number] {
  return {
    hosts: r.hosts,
    origins: r.origins,
    ...(r.waf_mode === undefined ? {} : { waf: r.waf_mode }),
    ...(r.rate_limit === undefined ? {} : { rateLimit: r.rate_limit.requests }),
  };
}

/**
 * [waf] as thread settings, compiled once here so a rule file with errors stops the start (and
 * validate-config, and a reload, which then changes nothing) with every error's file and line, as
 * ModSecurity refuses to start on one; threads compile the same files again for themselves.
 */
function checkedWaf(config: Readonly<Config>, cwd: string): WafSettings {
  const w = config.waf;
  const settings: WafSettings = {
    mode: w.mode,
    paranoiaLevel: w.paranoia_level as WafSettings['paranoiaLevel'],
    crsSetupPath: resolve(cwd, w.crs_setup_path),
    crsRulesDir: resolve(cwd, w.crs_path, 'rules'),
    supplement: w.supplement,
    anomalyThreshold: w.anomaly_threshold,
    rulesPath: w.rules_path === undefined ? null : resolve(cwd, w.rules_path),
    failOpen: w.fail_open,
    evaluationBudget: w.evaluation_budget,
    evaluationTimeMs: w.evaluation_time_ms,
    inspectBodyBytes: w.inspect_body_bytes,
    bodyOverLimit: w.body_over_limit,
    matchLog: w.match_log,
    challenge: { secret: w.challenge_secret ?? processChallengeSecret, difficultyBits: w.challenge_difficulty_bits, ttlSeconds: w.challenge_ttl_seconds },
    policy: w.policy_path === undefined ? { rules: [], exclusions: [], allowlist: [], rule_modes: [] } : readPolicy(resolve(cwd, w.policy_path)),
  };
  const { errors } = compileWaf(settings);
  if (errors.length > 0) {
    const shown = errors.slice(0, 10).map((e) => `${e.file}:${e.line}: ${e.message}`);
    const more = errors.length > shown.length ? `\n(${errors.length - shown.length} more)` : '';
    throw new SecbeatError('SECBEAT_ERR_CONFIG_INVALID', `waf: the rules have ${errors.length} error(s):\n${shown.join('\n')}${more}`);
  }
  return settings;
}

/** [waf] policy_path's JSON, checked; a file that cannot be read or does not fit the schema stops the start (and a reload). */
function readPolicy(file: string): WafPolicy {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new SecbeatError('SECBEAT_ERR_CONFIG_INVALID', `waf.policy_path: cannot read ${file} as JSON: ${(err as Error).message}`, { cause: err });
  }
  const decoded = decode(WafPolicySchema, json);
  if (!decoded.ok) throw new SecbeatError('SECBEAT_ERR_CONFIG_INVALID', `waf.policy_path: ${file}: ${decoded.issues.join('; ')}`);
  for (const entry of decoded.value.allowlist) {
    if (entry.cidr !== undefined && !parseCidr(entry.cidr).ok) throw new SecbeatError('SECBEAT_ERR_CONFIG_INVALID', `waf.policy_path: ${file}: allowlist cidr ${JSON.stringify(entry.cidr)} is not a CIDR`);
  }
  return decoded.value;
}

/** The CA bundle https:// origins must chain to; a missing or unreadable file stops the start. */
function readOriginCa(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new SecbeatError('SECBEAT_ERR_CONFIG_INVALID', `l7.origin_ca_path: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function address(text: string, key: string): { host: string; port: number } {
  const parsed = parseHostPort(text);
  if (parsed === null) throw new SecbeatError('SECBEAT_ERR_CONFIG_INVALID', `${key} must be host:port`);
  return parsed;
}
