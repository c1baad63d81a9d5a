// THE node configuration schema (valibot): every key, its default and its range, in TOML's snake_case.
// load.ts validates files against it; node/, actors/ and proxy/ read the inferred `Config` type.
// Sections default to `{}`, which valibot parses like a written empty table, so every inner default applies.
import { isIPv6 } from 'node:net';
import * as v from 'valibot';
import { LOG_LEVELS } from '../messages.ts';
import { parseCidr } from '../net/cidr.ts';
import { int, strictObject } from '../validation.ts';

/** Region and node names become NATS subject tokens and log fields, so they share the actor-name alphabet. */
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const PORT = /^[0-9]{1,5}$/;

/**
 * Splits "host:port" (IPv6 as "[::1]:port") into its parts; null when malformed or the port is outside
 * 1–65535. The host comes back without brackets, ready for `net.createServer().listen` and `net.connect`.
 * Unbracketed IPv6 is refused because "::1:8080" is ambiguous.
 */
export function parseHostPort(text: string): { host: string; port: number } | null {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return null;
  const rawHost = text.slice(0, colon);
  const rawPort = text.slice(colon + 1);
  if (!PORT.test(rawPort)) return null;
  const port = Number(rawPort);
  if (port < 1 || port > 65_535) return null;
  if (rawHost.startsWith('[')) {
    if (!rawHost.endsWith(']')) return null;
    const host = rawHost.slice(1, -1);
    return isIPv6(host) ? { host, port } : null;
  }
  return HOSTNAME.test(rawHost) ? { host: rawHost, port } : null;
}

const HostPort = v.pipe(
  v.string(),
  v.maxLength(300),
  v.check((s) => parseHostPort(s) !== null, 'expected "host:port" (IPv6 as "[::1]:port", port 1-65535)'),
);

/** File-system paths: the kernel rejects NUL bytes, and PATH_MAX on Linux is 4096. */
const FilePath = v.pipe(v.string(), v.minLength(1), v.maxLength(4096), v.check((s) => !s.includes('\0'), 'paths cannot contain NUL bytes'));

const Name = v.pipe(v.string(), v.regex(NAME, 'use letters, digits, "_", "." and "-" (1-64 chars)'));
const Secret = v.pipe(v.string(), v.minLength(1), v.maxLength(4096));

function natsUrl(schemes: readonly string[]) {
  return v.pipe(
    v.string(),
    v.maxLength(300),
    v.check((s) => {
      const scheme = schemes.find((p) => s.startsWith(`${p}://`));
      return scheme !== undefined && parseHostPort(s.slice(scheme.length + 3)) !== null;
    }, `expected ${schemes.map((p) => `${p}://host:port`).join(' or ')}`),
  );
}

/**
 * An http(s) URL, read as zod's z.url({ protocol: /^https?$/ }) read it, so configs that loaded before still
 * load: surrounding whitespace is trimmed, "http:host" without "//" is refused, and the URL parser has the
 * final say. The tabs and newlines that parser would skip are removed from the value kept. The metadata
 * puts `format: "uri"` into the generated JSON Schema, where the check itself cannot go.
 */
const HttpUrl = v.pipe(
  v.string(),
  v.check((s) => /^https?:\/\//i.test(s.trim()) && URL.canParse(s.trim()), 'expected an http:// or https:// URL'),
  v.transform((s) => s.trim().replace(/[\t\n\r]/g, '')),
  v.maxLength(2048),
  v.metadata({ format: 'uri' }),
);

const PlatformSchema = strictObject({
  region: v.optional(v.pipe(Name, v.description('Region this node serves; part of every actor address and NATS subject')), 'local'),
  node_id: v.optional(v.pipe(Name, v.description('Node name, unique within its region')), 'node-1'),
  environment: v.optional(v.pipe(v.picklist(['development', 'production']), v.description('Deployment environment')), 'development'),
});

const ServerSchema = strictObject({
  mode: v.optional(v.pipe(v.picklist(['tcp', 'syn', 'l7']), v.description('tcp: L4 proxy; syn: XDP SYN proxy; l7: HTTP proxy with WAF')), 'tcp'),
  bind_address: v.optional(v.pipe(HostPort, v.description('Address the proxy listens on')), '127.0.0.1:8443'),
  backend_address: v.optional(v.pipe(HostPort, v.description('Origin the proxy forwards to')), '127.0.0.1:8080'),
  worker_threads: v.optional(v.pipe(int(1, 64), v.description('Data-plane threads, each with its own listener (reusePort)')), 2),
  max_connections: v.optional(v.pipe(int(1, 10_000_000), v.description('Open client connections across the node')), 10_000),
  per_ip_max_connections: v.optional(v.pipe(int(0, 1_000_000), v.description('Open connections per client IP; 0 = no limit')), 256),
  connect_timeout_ms: v.optional(v.pipe(int(1, 120_000), v.description('Backend connect deadline')), 5_000),
  idle_timeout_ms: v.optional(v.pipe(int(1_000, 86_400_000), v.description('Close a connection idle in both directions this long')), 300_000),
  drain_timeout_ms: v.optional(v.pipe(int(0, 3_600_000), v.description('On shutdown, wait this long for connections to finish')), 30_000),
  tcp_nodelay: v.optional(v.pipe(v.boolean(), v.description('Disable Nagle on both legs')), true),
  forwarding: v.optional(
    v.pipe(
      v.picklist(['auto', 'splice', 'js']),
      v.description('TCP data plane: the native engine (accept, connect, splice(2)), JS forwarding, or native when the addon loads'),
    ),
    'auto',
  ),
});

const TlsSchema = v.pipe(
  strictObject({
    enabled: v.optional(v.pipe(v.boolean(), v.description('Terminate TLS at the edge')), false),
    cert_path: v.optional(v.pipe(FilePath, v.description('PEM certificate chain; required when enabled'))),
    key_path: v.optional(v.pipe(FilePath, v.description('PEM private key; required when enabled'))),
    certificates_dir: v.optional(
      v.pipe(
        FilePath,
        v.description('Directory of certificates, one subdirectory each with fullchain.pem and privkey.pem (certbot live/ layout), served for their DNS names'),
      ),
    ),
    min_version: v.optional(v.pipe(v.picklist(['TLSv1.2', 'TLSv1.3']), v.description('Oldest protocol version accepted')), 'TLSv1.2'),
    ciphers: v.optional(
      v.pipe(
        v.string(),
        v.minLength(1),
        v.maxLength(4096),
        v.regex(/^[A-Za-z0-9:+!@_.-]+$/, 'expected an OpenSSL cipher list'),
        v.description('OpenSSL cipher list; Node defaults when unset'),
      ),
    ),
  }),
  v.forward(
    v.partialCheck([['enabled'], ['cert_path']], (t) => !t.enabled || t.cert_path !== undefined, 'required when tls.enabled = true'),
    ['cert_path'],
  ),
  v.forward(
    v.partialCheck([['enabled'], ['key_path']], (t) => !t.enabled || t.key_path !== undefined, 'required when tls.enabled = true'),
    ['key_path'],
  ),
);

/** A host a route answers for: a DNS name, or "*." and a parent name for its direct subdomains. */
const RouteHost = v.pipe(
  v.string(),
  v.regex(
    /^(?:\*\.)?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/,
    'expected a host name or "*.parent" (letters, digits, "-", dots)',
  ),
  v.maxLength(253),
);

/** An origin of a route: http://host:port, or https://host:port for TLS to the origin (verified: see origin_ca_path). */
const OriginUrl = v.pipe(
  v.string(),
  v.check((s) => /^https?:\/\/[^/?#]+\/?$/i.test(s) && URL.canParse(s), 'expected "http://host:port" or "https://host:port" (no path)'),
  v.maxLength(2048),
);

const WafModeSchema = v.picklist(['off', 'detection', 'blocking']);

/** A route's own rate limit: requests a client may make per [rate_limit] window (its fleet-wide count) on it. */
const RouteRateLimitSchema = strictObject({
  requests: v.pipe(int(1, 10_000_000), v.description('Requests per client and window on these hosts, instead of [rate_limit] requests')),
});

/** A customer domain in the fleet's tenant configuration (src/node/tenants.ts): admin `domains.upsert`. */
export const TenantDomainSchema = strictObject({
  host: v.pipe(v.string(), v.regex(/^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/, 'expected a host name'), v.maxLength(253)),
  origins: v.pipe(v.array(OriginUrl), v.minLength(1), v.maxLength(64)),
  waf_mode: v.optional(WafModeSchema),
  rate_limit: v.optional(RouteRateLimitSchema),
  /** The domain's own certificate (PEM chain, leaf first) and key, served for its host on every node with TLS on. */
  tls: v.optional(
    strictObject({
      cert: v.pipe(v.string(), v.startsWith('-----BEGIN CERTIFICATE-----', 'expected a PEM certificate chain'), v.maxLength(65_536)),
      key: v.pipe(v.string(), v.regex(/^-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'expected a PEM private key'), v.maxLength(16_384)),
    }),
  ),
});
export type TenantDomain = v.InferOutput<typeof TenantDomainSchema>;

const RouteSchema = strictObject({
  hosts: v.pipe(v.array(RouteHost), v.minLength(1), v.maxLength(1000), v.description('Host names (Host / :authority / SNI) this route serves')),
  origins: v.pipe(v.array(OriginUrl), v.minLength(1), v.maxLength(64), v.description('Origins, used round robin with passive health checks')),
  cert_path: v.optional(v.pipe(FilePath, v.description('PEM certificate chain for these hosts (TLS listener)'))),
  key_path: v.optional(v.pipe(FilePath, v.description('PEM private key for cert_path'))),
  waf_mode: v.optional(v.pipe(WafModeSchema, v.description('WAF mode for these hosts; default [waf] mode'))),
  rate_limit: v.optional(v.pipe(RouteRateLimitSchema, v.description('Rate limit for these hosts when [rate_limit] is enabled; default [rate_limit] requests'))),
});

const L7Schema = strictObject({
  tls_bind_address: v.optional(
    v.pipe(HostPort, v.description('TLS listener (ALPN h2 and http/1.1) when tls.enabled; server.bind_address is the plain HTTP one')),
    '127.0.0.1:9443',
  ),
  routes: v.optional(
    v.pipe(v.array(RouteSchema), v.maxLength(100_000), v.description('Routes by host; unmatched hosts go to server.backend_address')),
    [],
  ),
  trusted_proxies: v.optional(
    v.pipe(
      v.array(v.pipe(v.string(), v.maxLength(64))),
      v.maxLength(1024),
      v.description('CIDRs whose X-Forwarded-For is believed (walked from the right through trusted hops)'),
    ),
    [],
  ),
  proxy_protocol: v.optional(
    v.pipe(v.boolean(), v.description('Expect a PROXY protocol v1/v2 header on both L7 listeners, from trusted_proxies only')),
    false,
  ),
  header_timeout_ms: v.optional(v.pipe(int(100, 300_000), v.description('A request\'s headers must arrive within this (slowloris)')), 10_000),
  request_timeout_ms: v.optional(v.pipe(int(100, 3_600_000), v.description('A whole request (headers and body) must arrive within this')), 60_000),
  keepalive_timeout_ms: v.optional(v.pipe(int(100, 600_000), v.description('Close a keep-alive connection idle this long')), 5_000),
  max_header_bytes: v.optional(v.pipe(int(1024, 1_048_576), v.description('Request line and headers together (431 beyond)')), 16_384),
  max_headers: v.optional(v.pipe(int(8, 10_000), v.description('Header fields per request (431 beyond)')), 100),
  max_body_bytes: v.optional(v.pipe(int(0, 2 ** 40), v.description('Request body size limit (413 beyond); 0 = no limit')), 10 * 1024 * 1024),
  max_requests_per_connection: v.optional(v.pipe(int(0, 1_000_000), v.description('Requests served on one keep-alive connection; 0 = no limit')), 1000),
  max_concurrent_streams: v.optional(v.pipe(int(1, 10_000), v.description('HTTP/2 streams open at once per connection')), 100),
  min_body_rate: v.optional(
    v.pipe(int(0, 1_073_741_824), v.description('Slow POST: after header_timeout_ms of grace, a request body must keep arriving at this many bytes/s (408 below); 0 = off')),
    1_024,
  ),
  h2_reset_burst: v.optional(v.pipe(int(1, 100_000), v.description('HTTP/2 rapid reset: streams a client may cancel in a burst before GOAWAY')), 200),
  h2_reset_rate: v.optional(v.pipe(int(1, 100_000), v.description('HTTP/2 rapid reset: cancellations per second the burst refills at')), 20),
  upstream_timeout_ms: v.optional(v.pipe(int(100, 3_600_000), v.description('Origin response headers deadline (504 beyond)')), 30_000),
  upstream_connections: v.optional(v.pipe(int(1, 100_000), v.description('Keep-alive connections per origin per thread')), 64),
  eject_after_failures: v.optional(v.pipe(int(1, 1000), v.description('Consecutive failures that eject an origin')), 5),
  eject_ms: v.optional(v.pipe(int(100, 3_600_000), v.description('How long an ejected origin sits out')), 10_000),
  origin_ca_path: v.optional(v.pipe(FilePath, v.description('PEM CA bundle https:// origins must chain to (default: Node\'s bundled root CAs)'))),
  origin_tls_verify: v.optional(
    v.pipe(v.boolean(), v.description('Verify https:// origins\' certificates and host names; false only for self-signed origins you cannot give a CA for')),
    true,
  ),
});

/** An IPv4 or IPv6 network (`203.0.113.0/24`, `2001:db8::/32`) or a bare address, host bits zero. */
const CidrText = v.pipe(
  v.string(),
  v.maxLength(64),
  v.check((s) => parseCidr(s).ok, (issue) => {
    const parsed = parseCidr(String(issue.input));
    return parsed.ok ? 'expected a CIDR range' : parsed.reason;
  }),
);

const SynProxySchema = strictObject({
  enabled: v.optional(
    v.pipe(v.boolean(), v.description('Attach the XDP program in tcp or l7 mode too (syn mode always attaches it)')),
    false,
  ),
  // IFNAMSIZ is 16 bytes including the NUL terminator.
  interface: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[A-Za-z0-9_.:@-]{1,15}$/, 'expected a network interface name (1-15 chars)'),
      v.description('Network interface the XDP program attaches to'),
    ),
    'lo',
  ),
  protected_ports: v.optional(
    v.pipe(
      v.array(int(1, 65_535)),
      v.maxLength(1024),
      v.description('Destination ports guarded with SYN cookies (in syn mode, server.bind_address\'s port is always one)'),
    ),
    [80, 443],
  ),
  xdp_mode: v.optional(
    v.pipe(v.picklist(['native', 'generic', 'auto']), v.description('XDP attach mode; auto tries native, then generic')),
    'auto',
  ),
  allowlist: v.optional(
    v.pipe(v.array(CidrText), v.maxLength(65_536), v.description('Sources the XDP program always passes (wins over every other check)')),
    [],
  ),
  blocklist: v.optional(
    v.pipe(v.array(CidrText), v.maxLength(262_144), v.description('Sources dropped in XDP, besides the node\'s block-ip and emergency-block entries')),
    [],
  ),
  udp_open_ports: v.optional(v.pipe(v.array(int(1, 65_535)), v.maxLength(1024), v.description('UDP ports the node serves')), []),
  drop_closed_udp: v.optional(
    v.pipe(v.boolean(), v.description('Drop UDP to ports not in udp_open_ports that is not a reply to the node\'s own traffic')),
    false,
  ),
  source_pps: v.optional(v.pipe(int(0, 100_000_000), v.description('Packets per second per source past the SYN-cookie path; 0 = no limit')), 0),
  source_burst: v.optional(v.pipe(int(1, 100_000_000), v.description('Packets a source may send at once above source_pps')), 1_000),
  icmp_pps: v.optional(v.pipe(int(0, 100_000_000), v.description('ICMP packets per second for the node (neighbour discovery excepted); 0 = no limit')), 1_000),
  icmp_burst: v.optional(v.pipe(int(1, 100_000_000), v.description('ICMP packets at once above icmp_pps')), 200),
  source_entries: v.optional(v.pipe(int(1_024, 16_777_216), v.description('Sources the rate limiter tracks (LRU), per address family')), 65_536),
  mss: v.optional(v.pipe(int(536, 9_000), v.description('MSS the cookie SYN-ACK advertises over IPv4 (IPv6: 20 less)')), 1_460),
  wscale: v.optional(v.pipe(int(0, 14), v.description('Window scale the cookie SYN-ACK advertises')), 7),
  netfilter: v.optional(
    v.pipe(
      v.boolean(),
      v.description('Install the nftables SYNPROXY table that completes cookie handshakes (off only when the host configures it)'),
    ),
    true,
  ),
  pin_dir: v.optional(v.pipe(FilePath, v.description('bpffs directory where the program\'s maps are pinned per node (reused on restart)')), '/sys/fs/bpf/secbeat'),
  sync_interval_ms: v.optional(v.pipe(int(100, 60_000), v.description('How often blocklists are mirrored into XDP and its counters exported')), 1_000),
});

const WafSchema = strictObject({
  enabled: v.optional(v.pipe(v.boolean(), v.description('Run the WAF in l7 mode')), false),
  mode: v.optional(
    v.pipe(WafModeSchema, v.description('Default for routes without waf_mode: detection logs matches (shadow mode); blocking also refuses')),
    'blocking',
  ),
  paranoia_level: v.optional(v.pipe(int(1, 4), v.description('OWASP CRS paranoia level')), 1),
  crs_path: v.optional(v.pipe(FilePath, v.description('Directory of the OWASP Core Rule Set (its rules/ holds the *.conf and *.data files)')), '/usr/share/modsecurity-crs'),
  crs_setup_path: v.optional(v.pipe(FilePath, v.description('The CRS setup file loaded before the rules')), '/etc/modsecurity/crs/crs-setup.conf'),
  anomaly_threshold: v.optional(v.pipe(int(1, 10_000), v.description('CRS inbound anomaly score at which a request is refused')), 5),
  supplement: v.optional(
    v.pipe(
      v.boolean(),
      v.description('Also run SecBeat\'s rules for what the CRS misses (config/waf: SSRF, NoSQL, prototype pollution, template injection, XXE, JNDI lookups, re-encoded payloads)'),
    ),
    true,
  ),
  rules_path: v.optional(v.pipe(FilePath, v.description('SecLang file of local rules and exclusions, loaded after the CRS (Include allowed)'))),
  policy_path: v.optional(v.pipe(FilePath, v.description('JSON policy: custom rules, exclusions by rule, path and parameter, allowlist (docs/waf.md)'))),
  fail_open: v.optional(v.pipe(v.boolean(), v.description('When a request\'s evaluation budget runs out or the engine fails: pass it (true) or refuse it (false)')), false),
  evaluation_budget: v.optional(
    v.pipe(int(1024, 2 ** 40), v.description('Bytes all rule operators together may scan for one request (bounds the CPU an attacker can cost)')),
    64 * 1024 * 1024,
  ),
  evaluation_time_ms: v.optional(
    v.pipe(int(1, 60_000), v.description('Milliseconds the rules may run per request phase; past it the request is handled as over budget')),
    50,
  ),
  inspect_body_bytes: v.optional(v.pipe(int(0, 64 * 1024 * 1024), v.description('Request body bytes held for inspection')), 131_072),
  body_over_limit: v.optional(
    v.pipe(v.picklist(['partial', 'reject']), v.description('A larger body: inspect its first inspect_body_bytes (partial) or refuse it with 413 (reject)')),
    'partial',
  ),
  challenge_secret: v.optional(
    v.pipe(
      v.string(),
      v.minLength(32),
      v.description('Key of the challenge clearances (32+ characters; the same on every node lets a clearance from one serve on all); random per process when absent'),
    ),
  ),
  challenge_difficulty_bits: v.optional(
    v.pipe(int(1, 24), v.description('Leading zero bits of the proof of work a challenge page computes: 2^bits hashes on average')),
    14,
  ),
  challenge_ttl_seconds: v.optional(v.pipe(int(60, 7 * 86_400), v.description('How long a challenge clearance lasts')), 3600),
  match_log: v.optional(
    v.pipe(v.boolean(), v.description('Also log each matched rule as one line in ModSecurity\'s error-log format (event waf.rule), as log tooling written for ModSecurity reads it')),
    false,
  ),
});

const OrchestratorSchema = v.pipe(
  strictObject({
    enabled: v.optional(v.pipe(v.boolean(), v.description('Register with the orchestrator and send heartbeats')), false),
    url: v.optional(v.pipe(HttpUrl, v.description('Orchestrator base URL; required when enabled'))),
    heartbeat_interval_ms: v.optional(v.pipe(int(100, 600_000), v.description('Interval between heartbeats')), 10_000),
  }),
  v.forward(
    v.partialCheck([['enabled'], ['url']], (o) => !o.enabled || o.url !== undefined, 'required when orchestrator.enabled = true'),
    ['url'],
  ),
);

const RateLimitSchema = strictObject({
  enabled: v.optional(v.pipe(v.boolean(), v.description('Limit requests per client IP in l7 mode, counted across the node\'s threads and, with [nats], the fleet')), false),
  requests: v.optional(v.pipe(int(1, 1_000_000_000), v.description('Requests a client IP may make per window; more are answered 429')), 100),
  window_seconds: v.optional(
    v.pipe(v.picklist([1, 2, 5, 10, 15, 30, 60]), v.description('Length of the fixed counting window (a divisor of a day, so every node agrees where windows start)')),
    1,
  ),
  block_seconds: v.optional(
    v.pipe(int(0, 86_400), v.description('A client over the limit is blocked on every node for this long (0: only its requests over the limit are refused)')),
    60,
  ),
  sync_interval_ms: v.optional(v.pipe(int(10, 10_000), v.description('How often a node publishes its counts and merges the others\'')), 100),
  max_counter_age_seconds: v.optional(v.pipe(int(1, 3_600), v.description('Counts of windows older than this are dropped')), 10),
  clients_per_thread: v.optional(
    v.pipe(int(1_024, 4_194_304), v.description('Client IPs each thread counts per window (shared-memory slots); beyond it a client is let through uncounted')),
    65_536,
  ),
});

const MetricsSchema = strictObject({
  enabled: v.optional(v.pipe(v.boolean(), v.description('Serve Prometheus metrics')), true),
  bind_address: v.optional(v.pipe(HostPort, v.description('Address of /metrics, /health and the REST API (/api/v1/)')), '127.0.0.1:9191'),
});

const LoggingSchema = strictObject({
  level: v.optional(v.pipe(v.picklist(LOG_LEVELS), v.description('Minimum level written; changes apply on reload')), 'info'),
  format: v.optional(v.pipe(v.picklist(['json', 'pretty']), v.description('json for machines, pretty for humans')), 'json'),
});

const NatsSchema = v.pipe(
  strictObject({
    enabled: v.optional(v.pipe(v.boolean(), v.description('Connect to NATS for cross-node messaging')), false),
    urls: v.optional(v.pipe(v.array(natsUrl(['nats'])), v.maxLength(64), v.description('Client URLs of the regional NATS servers')), []),
    cluster_urls: v.optional(
      v.pipe(
        v.array(natsUrl(['nats', 'nats-route'])),
        v.maxLength(64),
        v.description('Cluster route URLs, for an embedded or co-located server'),
      ),
      [],
    ),
    token: v.optional(v.pipe(Secret, v.description('Auth token; use "${VAR}" to keep it out of the file'))),
    user: v.optional(v.pipe(Secret, v.description('User name; goes with password'))),
    password: v.optional(v.pipe(Secret, v.description('Password; use "${VAR}" to keep it out of the file'))),
    name: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(128), v.description('Client connection name shown by the server'))),
  }),
  v.forward(
    v.partialCheck([['enabled'], ['urls']], (n) => !n.enabled || n.urls.length > 0, 'at least one URL is required when nats.enabled = true'),
    ['urls'],
  ),
  // The issue goes to whichever of the pair is missing.
  v.forward(
    v.partialCheck([['user'], ['password']], (n) => n.user !== undefined || n.password === undefined, 'user and password are set together'),
    ['user'],
  ),
  v.forward(
    v.partialCheck([['user'], ['password']], (n) => n.password !== undefined || n.user === undefined, 'user and password are set together'),
    ['password'],
  ),
);

const StateSchema = strictObject({
  dir: v.optional(
    v.pipe(FilePath, v.description('Directory for persisted node state (relative to the working directory)')),
    '.run/state',
  ),
  compact_after_ops: v.optional(
    v.pipe(
      int(0, 100_000_000),
      v.description('The tenant document is compacted fleet-wide once its history holds this many operations beyond twice its entries (0: only when asked)'),
    ),
    20_000,
  ),
});

const AdminSchema = strictObject({
  socket_path: v.optional(v.pipe(FilePath, v.description('Unix socket of the admin protocol (mode 0600)')), '.run/secbeat.sock'),
  api_token: v.optional(
    v.pipe(Secret, v.description('Bearer token of the REST API (/api/v1/ on the metrics listener); unset = the API answers 403; use "${VAR}"')),
  ),
});

const ChaosSchema = strictObject({
  enabled: v.optional(v.pipe(v.boolean(), v.description('Allow chaos rules (drop/delay/crash) from the admin socket')), false),
});

const RuntimeSchema = v.pipe(
  strictObject({
    mailbox_capacity: v.optional(v.pipe(int(1, 1_000_000), v.description('Messages queued per actor before overflow')), 1024),
    ask_timeout_ms: v.optional(v.pipe(int(1, 600_000), v.description('Default deadline of an ask')), 5_000),
    heartbeat_interval_ms: v.optional(v.pipe(int(100, 60_000), v.description('Worker thread heartbeat interval')), 1_000),
    heartbeat_timeout_ms: v.optional(v.pipe(int(1, 600_000), v.description('A thread silent this long is restarted')), 5_000),
    max_restarts: v.optional(v.pipe(int(0, 1000), v.description('Restarts allowed per restart_period_ms before escalating')), 5),
    restart_period_ms: v.optional(v.pipe(int(1, 3_600_000), v.description('Window of the restart intensity')), 10_000),
    backoff_initial_ms: v.optional(v.pipe(int(0, 600_000), v.description('First restart delay; doubles up to backoff_max_ms')), 100),
    backoff_max_ms: v.optional(v.pipe(int(0, 600_000), v.description('Longest restart delay')), 5_000),
    dead_letter_capacity: v.optional(v.pipe(int(0, 1_000_000), v.description('Dead letters kept for inspection')), 1000),
  }),
  // Two missed heartbeats must never be enough to declare a thread dead: a GC pause can eat one.
  v.forward(
    v.partialCheck(
      [['heartbeat_timeout_ms'], ['heartbeat_interval_ms']],
      (r) => r.heartbeat_timeout_ms > 2 * r.heartbeat_interval_ms,
      (issue) => `must be greater than 2 * heartbeat_interval_ms (${2 * issue.input.heartbeat_interval_ms})`,
    ),
    ['heartbeat_timeout_ms'],
  ),
  v.forward(
    v.partialCheck(
      [['backoff_max_ms'], ['backoff_initial_ms']],
      (r) => r.backoff_max_ms >= r.backoff_initial_ms,
      (issue) => `must be at least backoff_initial_ms (${issue.input.backoff_initial_ms})`,
    ),
    ['backoff_max_ms'],
  ),
);

export const ConfigSchema = strictObject({
  platform: v.optional(PlatformSchema, {}),
  server: v.optional(ServerSchema, {}),
  tls: v.optional(TlsSchema, {}),
  l7: v.optional(L7Schema, {}),
  syn_proxy: v.optional(SynProxySchema, {}),
  waf: v.optional(WafSchema, {}),
  rate_limit: v.optional(RateLimitSchema, {}),
  orchestrator: v.optional(OrchestratorSchema, {}),
  metrics: v.optional(MetricsSchema, {}),
  logging: v.optional(LoggingSchema, {}),
  nats: v.optional(NatsSchema, {}),
  state: v.optional(StateSchema, {}),
  admin: v.optional(AdminSchema, {}),
  chaos: v.optional(ChaosSchema, {}),
  runtime: v.optional(RuntimeSchema, {}),
});

/** TOML table names of the sections, in schema order. */
export type SectionName = keyof typeof ConfigSchema.entries;

/** The validated configuration, every default filled in. */
export type Config = v.InferOutput<typeof ConfigSchema>;
/** What a file (plus overrides) may contain: every section and key optional. */
export type ConfigInput = v.InferInput<typeof ConfigSchema>;
