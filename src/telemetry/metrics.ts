// Every Prometheus metric SecBeat exports is declared here (Envoy's ALL_*_STATS idea): name, help, labels,
// buckets and how per-thread values aggregate. Each thread owns a registry built by `createMetrics`; the
// telemetry actor on the main thread merges them with AggregatorRegistry.aggregate().
// Labels stay low-cardinality: mode, actor (behaviour name, not address), reason, kind. Never IPs or domains.
import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';

// prom-client's index also loads the push gateway (node:http, node:https) and default metrics: about 10 MB
// of heap in every thread that imports it. Threads take just the classes they use; the aggregator (whose
// module loads node:cluster only when its cluster mode is used, which it is not here) is loaded on the main
// thread only, when a scrape first needs it.
const require = createRequire(import.meta.url);
const Counter = require('prom-client/lib/counter') as typeof Prom.Counter;
const Gauge = require('prom-client/lib/gauge') as typeof Prom.Gauge;
const Histogram = require('prom-client/lib/histogram') as typeof Prom.Histogram;
const Registry = require('prom-client/lib/registry') as typeof Prom.Registry;
type Aggregator = Prom.Aggregator;
type Registry = Prom.Registry;

export const LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const CONNECTION_DURATION_BUCKETS_S = [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800, 3600];

export function createMetrics(registry: Registry = new Registry()) {
  const r = { registers: [registry] };
  const sum: { aggregator: Aggregator } = { aggregator: 'sum' };
  return {
    registry,

    // Platform-wide (names from the seed's dashboards).
    packetsProcessed: new Counter({
      name: 'secbeat_packets_processed_total',
      help: 'Units of traffic processed by the data plane (TCP connections, HTTP requests, XDP packets)',
      labelNames: ['mode'] as const,
      ...r,
      ...sum,
    }),
    attacksBlocked: new Counter({
      name: 'secbeat_attacks_blocked_total',
      help: 'Traffic refused as an attack or by policy, by reason',
      labelNames: ['mode', 'reason'] as const,
      ...r,
      ...sum,
    }),
    latency: new Histogram({
      name: 'secbeat_latency_seconds',
      help: 'Time to serve one unit of traffic (TCP: backend connect; HTTP: request to response headers)',
      labelNames: ['mode'] as const,
      buckets: LATENCY_BUCKETS_S,
      ...r,
      ...sum,
    }),
    requests: new Counter({
      name: 'secbeat_requests_total',
      help: 'Requests (L7) or connections (TCP) handled, by outcome class',
      labelNames: ['mode', 'status_class'] as const,
      ...r,
      ...sum,
    }),
    // Process-wide readings: only the main thread sets them, so "max" keeps its value through aggregation.
    cpuUsage: new Gauge({
      name: 'secbeat_cpu_usage_percent',
      help: 'Process CPU use over the last sampling interval, percent of one core',
      ...r,
      aggregator: 'max',
    }),
    memoryUsage: new Gauge({
      name: 'secbeat_memory_usage_bytes',
      help: 'Process memory by kind (rss, heap_used, external)',
      labelNames: ['kind'] as const,
      ...r,
      aggregator: 'max',
    }),

    // Actor runtime.
    mailboxDepth: new Gauge({
      name: 'secbeat_actor_mailbox_depth',
      help: 'Messages waiting in actor mailboxes, by behaviour',
      labelNames: ['actor'] as const,
      ...r,
      ...sum,
    }),
    mailboxDropped: new Counter({
      name: 'secbeat_actor_mailbox_dropped_total',
      help: 'Messages refused or evicted by a full mailbox, by behaviour',
      labelNames: ['actor'] as const,
      ...r,
      ...sum,
    }),
    messagesProcessed: new Counter({
      name: 'secbeat_actor_messages_processed_total',
      help: 'Messages handled by actor behaviours',
      labelNames: ['actor'] as const,
      ...r,
      ...sum,
    }),
    actorRestarts: new Counter({
      name: 'secbeat_actor_restarts_total',
      help: 'Actor restarts by supervisors, by behaviour',
      labelNames: ['actor'] as const,
      ...r,
      ...sum,
    }),
    deadLetters: new Counter({
      name: 'secbeat_dead_letters_total',
      help: 'Messages that could not be delivered, by reason',
      labelNames: ['reason'] as const,
      ...r,
      ...sum,
    }),
    natsConnected: new Gauge({
      name: 'secbeat_nats_connected',
      help: '1 while the node has a NATS connection (only a node with [nats] enabled sets it)',
      ...r,
      aggregator: 'max',
    }),
    natsDeliveries: new Counter({
      name: 'secbeat_nats_deliveries_total',
      help: 'Deliveries between nodes over NATS: sent, received, or dropped on arrival as malformed',
      labelNames: ['result'] as const,
      ...r,
      ...sum,
    }),
    rateLimited: new Counter({
      name: 'secbeat_rate_limited_total',
      help: 'Requests answered 429: over the rate limit, or from a client the fleet blocked',
      labelNames: ['reason'] as const,
      ...r,
      ...sum,
    }),
    rateLimitBlocks: new Counter({
      name: 'secbeat_rate_limit_blocks_total',
      help: 'Clients blocked for going over the rate limit: decided by this node (local) or learnt from another (fleet)',
      labelNames: ['origin'] as const,
      ...r,
      ...sum,
    }),
    rateLimitSyncMalformed: new Counter({
      name: 'secbeat_rate_limit_sync_malformed_total',
      help: 'Rate-limit snapshots from other nodes dropped as malformed',
      ...r,
      ...sum,
    }),
    tenantInvalidEntries: new Counter({
      name: 'secbeat_tenant_invalid_entries_total',
      help: 'Tenant-config entries that failed the checks when applied (each keeps its last good value)',
      ...r,
      ...sum,
    }),
    tenantSyncMalformed: new Counter({
      name: 'secbeat_tenant_sync_malformed_total',
      help: 'Tenant-config sync messages and announcements dropped: malformed, stale or unreadable',
      ...r,
      ...sum,
    }),
    tenantGeneration: new Gauge({
      name: 'secbeat_tenant_generation',
      help: 'Generation of the tenant-config document this node holds (each compaction starts the next)',
      ...r,
      ...sum,
    }),
    tenantHistoryOps: new Gauge({
      name: 'secbeat_tenant_history_ops',
      help: 'Operations in the tenant-config document history (Automerge keeps them until the next compaction)',
      ...r,
      ...sum,
    }),
    tenantCompactions: new Counter({
      name: 'secbeat_tenant_compactions_total',
      help: 'Moves to a new generation of the tenant-config document, by kind (snapshot: own changes made again; merged: another lineage merged whole)',
      labelNames: ['kind'] as const,
      ...r,
      ...sum,
    }),
    // SYN mode's XDP program (main thread only: the SYN-proxy actor reads the kernel's per-CPU counters).
    xdpPackets: new Counter({
      name: 'secbeat_xdp_packets_total',
      help: 'Packets the XDP program judged, by reason (bpf/secbeat.h: pass, flow, cookie_ack, synack, and the drop reasons)',
      labelNames: ['reason'] as const,
      ...r,
      ...sum,
    }),
    xdpBytes: new Counter({
      name: 'secbeat_xdp_bytes_total',
      help: 'Bytes of the packets the XDP program judged, by reason',
      labelNames: ['reason'] as const,
      ...r,
      ...sum,
    }),
    xdpAttached: new Gauge({
      name: 'secbeat_xdp_attached',
      help: '1 while the XDP program is attached, by attach mode (native, generic)',
      labelNames: ['mode'] as const,
      ...r,
      ...sum,
    }),
    xdpListEntries: new Gauge({
      name: 'secbeat_xdp_list_entries',
      help: 'Ranges in the XDP program\'s allowlist and blocklist',
      labelNames: ['list'] as const,
      ...r,
      ...sum,
    }),
    threadRestarts: new Counter({
      name: 'secbeat_thread_restarts_total',
      help: 'Worker thread restarts (crash, exit or missed heartbeats)',
      labelNames: ['cause'] as const,
      ...r,
      ...sum,
    }),
    chaosInjected: new Counter({
      name: 'secbeat_chaos_injected_total',
      help: 'Faults injected by chaos rules, by action',
      labelNames: ['action'] as const,
      ...r,
      ...sum,
    }),

    // TCP mode.
    tcpConnectionsActive: new Gauge({
      name: 'secbeat_tcp_connections_active',
      help: 'Proxied TCP connections currently open',
      ...r,
      ...sum,
    }),
    tcpBytes: new Counter({
      name: 'secbeat_tcp_bytes_total',
      help: 'Bytes forwarded by TCP mode (in = client to backend, out = backend to client)',
      labelNames: ['direction'] as const,
      ...r,
      ...sum,
    }),
    tcpConnectionDuration: new Histogram({
      name: 'secbeat_tcp_connection_duration_seconds',
      help: 'Lifetime of proxied TCP connections',
      buckets: CONNECTION_DURATION_BUCKETS_S,
      ...r,
      ...sum,
    }),
    upstreamErrors: new Counter({
      name: 'secbeat_upstream_errors_total',
      help: 'Backend (origin) failures by kind: connect_refused, connect_timeout, connect_error, reset, idle_timeout (TCP); headers_timeout, body_timeout, bad_response (L7)',
      labelNames: ['mode', 'kind'] as const,
      ...r,
      ...sum,
    }),

    // L7 mode. Its own name rather than secbeat_tcp_bytes_total{…}: those are bytes TCP mode forwards
    // untouched, these are the client side of HTTP connections (TLS records and HTTP framing included).
    l7Bytes: new Counter({
      name: 'secbeat_l7_bytes_total',
      help: 'Bytes on L7 client connections, plain and TLS, as on the wire (in = from clients, out = to clients)',
      labelNames: ['direction'] as const,
      ...r,
      ...sum,
    }),

    // TLS termination (L7 mode).
    tlsHandshakes: new Counter({
      name: 'secbeat_tls_handshakes_total',
      help: 'TLS handshakes on the L7 TLS listener, by result (ok, failed)',
      labelNames: ['result'] as const,
      ...r,
      ...sum,
    }),
    // Lookups and evictions are two metrics, not one label: hits + misses is a meaningful sum, + evictions is not.
    tlsContextCacheLookups: new Counter({
      name: 'secbeat_tls_context_cache_lookups_total',
      help: 'Secure-context lookups for installed SNI names, by result (hit, miss = context built)',
      labelNames: ['result'] as const,
      ...r,
      ...sum,
    }),
    tlsContextCacheEvictions: new Counter({
      name: 'secbeat_tls_context_cache_evictions_total',
      help: 'Secure contexts dropped from the full per-thread cache (least recently used first)',
      ...r,
      ...sum,
    }),

    // WAF (src/http/waf-gate.ts): requests with matches, whether blocked or only detected (shadow mode).
    wafDetections: new Counter({
      name: 'secbeat_waf_detections_total',
      help: 'Requests the WAF matched an attack rule on, by category and the mode they ran in (detection or blocking)',
      labelNames: ['category', 'mode'] as const,
      ...r,
      ...sum,
    }),
    wafChallenges: new Counter({
      name: 'secbeat_waf_challenges_total',
      help: 'Requests a challenge rule matched: sent the challenge page (issued) or carrying a valid clearance (passed)',
      labelNames: ['result'] as const,
      ...r,
      ...sum,
    }),
    wafBudgetExhausted: new Counter({
      name: 'secbeat_waf_budget_exhausted_total',
      help: 'Requests whose WAF evaluation budget ran out (then passed or refused by [waf] fail_open)',
      ...r,
      ...sum,
    }),
    wafPartialBodies: new Counter({
      name: 'secbeat_waf_partial_bodies_total',
      help: 'Request bodies larger than [waf] inspect_body_bytes whose first bytes only were inspected',
      ...r,
      ...sum,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** JSON form of one thread's registry, as it crosses threads. */
export type MetricsJson = Awaited<ReturnType<Prom.Registry['getMetricsAsJSON']>>;

/** Merges per-thread registries into one Prometheus text exposition. */
export async function aggregateMetrics(perThread: MetricsJson[]): Promise<{ contentType: string; body: string }> {
  const AggregatorRegistry = require('prom-client/lib/cluster') as typeof Prom.AggregatorRegistry;
  const merged = AggregatorRegistry.aggregate(perThread);
  return { contentType: merged.contentType, body: await merged.metrics() };
}

let threadMetrics: Metrics | null = null;
const collectHooks = new Set<() => void>();

/**
 * Registers work to run right before this thread's registry is read: gauges that are sampled rather than
 * counted, and counters a data plane batches between sweeps. Returns the unregister function.
 */
export function beforeCollect(hook: () => void): () => void {
  collectHooks.add(hook);
  return () => collectHooks.delete(hook);
}

/** This thread's registry as JSON for aggregation, after running the collect hooks. */
export function collectThreadMetrics(): Promise<MetricsJson> {
  for (const hook of collectHooks) hook();
  return metrics().registry.getMetricsAsJSON();
}

/** The metrics of the current thread (one registry per thread, created on first use). */
export function metrics(): Metrics {
  threadMetrics ??= createMetrics();
  return threadMetrics;
}
