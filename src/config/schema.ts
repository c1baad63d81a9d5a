// THE node configuration schema (zod 4): every key, its default and its range, in TOML's snake_case.
// load.ts validates files against it; node/, actors/ and proxy/ read the inferred `Config` type.
// Sections use `.prefault({})` so an absent section is parsed like an empty one and gets every inner default.
import { isIPv6 } from 'node:net';
import { z } from 'zod';
import { LOG_LEVELS } from '../messages.ts';

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

const HostPort = z
  .string()
  .max(300)
  .refine((s) => parseHostPort(s) !== null, 'expected "host:port" (IPv6 as "[::1]:port", port 1-65535)');

/** File-system paths: the kernel rejects NUL bytes, and PATH_MAX on Linux is 4096. */
const FilePath = z.string().min(1).max(4096).refine((s) => !s.includes('\0'), 'paths cannot contain NUL bytes');

const Name = z.string().regex(NAME, 'use letters, digits, "_", "." and "-" (1-64 chars)');
const Secret = z.string().min(1).max(4096);
const Int = (min: number, max: number) => z.number().int().min(min).max(max);

function natsUrl(schemes: readonly string[]) {
  return z
    .string()
    .max(300)
    .refine((s) => {
      const scheme = schemes.find((p) => s.startsWith(`${p}://`));
      return scheme !== undefined && parseHostPort(s.slice(scheme.length + 3)) !== null;
    }, `expected ${schemes.map((p) => `${p}://host:port`).join(' or ')}`);
}

const PlatformSchema = z.strictObject({
  region: Name.default('local').describe('Region this node serves; part of every actor address and NATS subject'),
  node_id: Name.default('node-1').describe('Node name, unique within its region'),
  environment: z.enum(['development', 'production']).default('development').describe('Deployment environment'),
});

const ServerSchema = z.strictObject({
  mode: z.enum(['tcp', 'syn', 'l7']).default('tcp').describe('tcp: L4 proxy; syn: XDP SYN proxy; l7: HTTP proxy with WAF'),
  bind_address: HostPort.default('127.0.0.1:8443').describe('Address the proxy listens on'),
  backend_address: HostPort.default('127.0.0.1:8080').describe('Origin the proxy forwards to'),
  worker_threads: Int(1, 64).default(2).describe('Data-plane threads, each with its own listener (reusePort)'),
  max_connections: Int(1, 10_000_000).default(10_000).describe('Open client connections across the node'),
  per_ip_max_connections: Int(0, 1_000_000).default(256).describe('Open connections per client IP; 0 = no limit'),
  connect_timeout_ms: Int(1, 120_000).default(5_000).describe('Backend connect deadline'),
  idle_timeout_ms: Int(1_000, 86_400_000).default(300_000).describe('Close a connection idle in both directions this long'),
  drain_timeout_ms: Int(0, 3_600_000).default(30_000).describe('On shutdown, wait this long for connections to finish'),
  tcp_nodelay: z.boolean().default(true).describe('Disable Nagle on both legs'),
  forwarding: z
    .enum(['auto', 'splice', 'js'])
    .default('auto')
    .describe('TCP byte forwarding: kernel splice through the native addon, JS, or splice when the addon loads'),
});

const TlsSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Terminate TLS at the edge'),
    cert_path: FilePath.optional().describe('PEM certificate chain; required when enabled'),
    key_path: FilePath.optional().describe('PEM private key; required when enabled'),
    min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Oldest protocol version accepted'),
    ciphers: z
      .string()
      .min(1)
      .max(4096)
      .regex(/^[A-Za-z0-9:+!@_.-]+$/, 'expected an OpenSSL cipher list')
      .optional()
      .describe('OpenSSL cipher list; Node defaults when unset'),
  })
  .superRefine((tls, ctx) => {
    if (!tls.enabled) return;
    for (const key of ['cert_path', 'key_path'] as const) {
      if (tls[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'required when tls.enabled = true' });
    }
  });

const SynProxySchema = z.strictObject({
  enabled: z.boolean().default(false).describe('Attach the XDP SYN proxy'),
  // IFNAMSIZ is 16 bytes including the NUL terminator.
  interface: z
    .string()
    .regex(/^[A-Za-z0-9_.:@-]{1,15}$/, 'expected a network interface name (1-15 chars)')
    .default('lo')
    .describe('Network interface the XDP program attaches to'),
  protected_ports: z.array(Int(1, 65_535)).max(1024).default([80, 443]).describe('Destination ports guarded with SYN cookies'),
  xdp_mode: z.enum(['native', 'generic', 'auto']).default('auto').describe('XDP attach mode; auto tries native, then generic'),
});

const WafSchema = z.strictObject({
  enabled: z.boolean().default(false).describe('Run the WAF in l7 mode'),
  mode: z.enum(['off', 'detection', 'blocking']).default('blocking').describe('detection logs matches; blocking also interrupts'),
  paranoia_level: Int(1, 4).default(1).describe('OWASP CRS paranoia level'),
  crs_path: FilePath.default('/usr/share/modsecurity-crs').describe('Directory of the OWASP Core Rule Set'),
  fail_open: z.boolean().default(false).describe('On a WAF error, pass the request (true) or refuse it (false)'),
});

const OrchestratorSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Register with the orchestrator and send heartbeats'),
    url: z
      .url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' })
      .max(2048)
      .optional()
      .describe('Orchestrator base URL; required when enabled'),
    heartbeat_interval_ms: Int(100, 600_000).default(10_000).describe('Interval between heartbeats'),
  })
  .superRefine((o, ctx) => {
    if (o.enabled && o.url === undefined) ctx.addIssue({ code: 'custom', path: ['url'], message: 'required when orchestrator.enabled = true' });
  });

const MetricsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Serve Prometheus metrics'),
  bind_address: HostPort.default('127.0.0.1:9191').describe('Address of the /metrics endpoint'),
});

const LoggingSchema = z.strictObject({
  level: z.enum(LOG_LEVELS).default('info').describe('Minimum level written; changes apply on reload'),
  format: z.enum(['json', 'pretty']).default('json').describe('json for machines, pretty for humans'),
});

const NatsSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Connect to NATS for cross-node messaging'),
    urls: z.array(natsUrl(['nats'])).max(64).default([]).describe('Client URLs of the regional NATS servers'),
    cluster_urls: z.array(natsUrl(['nats', 'nats-route'])).max(64).default([]).describe('Cluster route URLs, for an embedded or co-located server'),
    token: Secret.optional().describe('Auth token; use "${VAR}" to keep it out of the file'),
    user: Secret.optional().describe('User name; goes with password'),
    password: Secret.optional().describe('Password; use "${VAR}" to keep it out of the file'),
    name: z.string().min(1).max(128).optional().describe('Client connection name shown by the server'),
  })
  .superRefine((n, ctx) => {
    if (n.enabled && n.urls.length === 0) ctx.addIssue({ code: 'custom', path: ['urls'], message: 'at least one URL is required when nats.enabled = true' });
    if ((n.user === undefined) !== (n.password === undefined)) {
      ctx.addIssue({ code: 'custom', path: [n.user === undefined ? 'user' : 'password'], message: 'user and password are set together' });
    }
  });

const StateSchema = z.strictObject({
  dir: FilePath.default('.run/state').describe('Directory for persisted node state (relative to the working directory)'),
});

const AdminSchema = z.strictObject({
  socket_path: FilePath.default('.run/secbeat.sock').describe('Unix socket of the admin protocol (mode 0600)'),
  api_token: Secret.optional().describe('Bearer token for the REST API'),
});

const ChaosSchema = z.strictObject({
  enabled: z.boolean().default(false).describe('Allow chaos rules (drop/delay/crash) from the admin socket'),
});

const RuntimeSchema = z
  .strictObject({
    mailbox_capacity: Int(1, 1_000_000).default(1024).describe('Messages queued per actor before overflow'),
    ask_timeout_ms: Int(1, 600_000).default(5_000).describe('Default deadline of an ask'),
    heartbeat_interval_ms: Int(100, 60_000).default(1_000).describe('Worker thread heartbeat interval'),
    heartbeat_timeout_ms: Int(1, 600_000).default(5_000).describe('A thread silent this long is restarted'),
    max_restarts: Int(0, 1000).default(5).describe('Restarts allowed per restart_period_ms before escalating'),
    restart_period_ms: Int(1, 3_600_000).default(10_000).describe('Window of the restart intensity'),
    backoff_initial_ms: Int(0, 600_000).default(100).describe('First restart delay; doubles up to backoff_max_ms'),
    backoff_max_ms: Int(0, 600_000).default(5_000).describe('Longest restart delay'),
    dead_letter_capacity: Int(0, 1_000_000).default(1000).describe('Dead letters kept for inspection'),
  })
  .superRefine((r, ctx) => {
    // Two missed heartbeats must never be enough to declare a thread dead: a GC pause can eat one.
    if (r.heartbeat_timeout_ms <= 2 * r.heartbeat_interval_ms) {
      ctx.addIssue({ code: 'custom', path: ['heartbeat_timeout_ms'], message: `must be greater than 2 * heartbeat_interval_ms (${2 * r.heartbeat_interval_ms})` });
    }
    if (r.backoff_max_ms < r.backoff_initial_ms) {
      ctx.addIssue({ code: 'custom', path: ['backoff_max_ms'], message: `must be at least backoff_initial_ms (${r.backoff_initial_ms})` });
    }
  });

export const ConfigSchema = z.strictObject({
  platform: PlatformSchema.prefault({}),
  server: ServerSchema.prefault({}),
  tls: TlsSchema.prefault({}),
  syn_proxy: SynProxySchema.prefault({}),
  waf: WafSchema.prefault({}),
  orchestrator: OrchestratorSchema.prefault({}),
  metrics: MetricsSchema.prefault({}),
  logging: LoggingSchema.prefault({}),
  nats: NatsSchema.prefault({}),
  state: StateSchema.prefault({}),
  admin: AdminSchema.prefault({}),
  chaos: ChaosSchema.prefault({}),
  runtime: RuntimeSchema.prefault({}),
});

/** TOML table names of the sections, in schema order. */
export type SectionName = keyof typeof ConfigSchema.shape;

/** The validated configuration, every default filled in. */
export type Config = z.infer<typeof ConfigSchema>;
/** What a file (plus overrides) may contain: every section and key optional. */
export type ConfigInput = z.input<typeof ConfigSchema>;
