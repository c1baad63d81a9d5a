// What both TCP data planes (the native one, ./tcp-native.ts, and JS forwarding, ./tcp.ts) count and log
// the same way: admissions and refusals with rate-limited security events, outcomes of finished
// connections, byte totals, and the batched metric updates a sweep or a scrape flushes. Counter increments
// gather in plain numbers between flushes, so accepting, refusing or closing a connection costs no
// registry call.
import type { ListenerStats } from '../messages.ts';
import { logSecurityEvent, type Logger, type SecurityEvent } from '../telemetry/log.ts';
import { beforeCollect, type Metrics } from '../telemetry/metrics.ts';

export type RefusalReason = Extract<SecurityEvent, { event: 'conn.refused' }>['reason'];
const REFUSAL_REASONS = ['blocklist', 'max_connections', 'per_ip_limit', 'draining', 'proxy_protocol'] as const satisfies readonly RefusalReason[];

/** `kind` label values of secbeat_upstream_errors_total{mode="tcp"}. */
const UPSTREAM_ERROR_KINDS = ['connect_refused', 'connect_timeout', 'connect_error', 'reset', 'idle_timeout'] as const;
export type UpstreamErrorKind = (typeof UPSTREAM_ERROR_KINDS)[number];

/** Refusal log lines per second per thread; the rest are counted and summarised (a flood must not flood logs). */
const REFUSAL_LOGS_PER_SECOND = 10;

/** Counter increments gathered between flushes. */
interface Pending {
  bytesIn: number;
  bytesOut: number;
  accepted: number;
  ok: number;
  upstreamError: number;
  refused: Record<RefusalReason, number>;
  upstreamErrors: Record<UpstreamErrorKind, number>;
}

function emptyPending(): Pending {
  return {
    bytesIn: 0,
    bytesOut: 0,
    accepted: 0,
    ok: 0,
    upstreamError: 0,
    refused: { blocklist: 0, max_connections: 0, per_ip_limit: 0, draining: 0, proxy_protocol: 0 },
    upstreamErrors: { connect_refused: 0, connect_timeout: 0, connect_error: 0, reset: 0, idle_timeout: 0 },
  };
}

export class TcpAccounting {
  readonly #metrics: Metrics;
  readonly #log: Logger;
  #accepted = 0;
  #refused = 0;
  /** Bytes already handed to add(): of closed connections, and what open ones had moved by then. */
  #bytesIn = 0;
  #bytesOut = 0;
  #pending: Pending = emptyPending();
  /** Open connections already reflected in the active-connections gauge. */
  #reportedActive = 0;
  #refusalLogWindow = 0;
  #refusalLogsInWindow = 0;
  #refusalLogsSuppressed = 0;
  #sweepTimer: NodeJS.Timeout | null = null;
  #unhookCollect: () => void = () => {};
  #flushAll: () => void = () => {};

  constructor(metrics: Metrics, log: Logger) {
    this.#metrics = metrics;
    this.#log = log;
  }

  /**
   * Runs `sweep` every `intervalMs` (it should end in flush()), and `flushAll` (the data plane's full flush)
   * before every scrape, so /metrics never lags the sweep. Until stopSweeping().
   */
  startSweeping(intervalMs: number, sweep: () => void, flushAll: () => void): void {
    this.#sweepTimer = setInterval(sweep, intervalMs);
    this.#sweepTimer.unref();
    this.#flushAll = flushAll;
    this.#unhookCollect = beforeCollect(flushAll);
  }

  /** Stops the sweep after a last flush and refusal summary (a drained data plane counts nothing more). */
  stopSweeping(): void {
    this.#unhookCollect();
    this.#unhookCollect = () => {};
    if (this.#sweepTimer !== null) {
      clearInterval(this.#sweepTimer);
      this.#sweepTimer = null;
    }
    this.#flushAll();
    this.flushRefusalSummary();
  }

  admitted(): void {
    this.#accepted++;
    this.#pending.accepted++;
  }

  /** Counts a refusal and logs it as a security event, at most REFUSAL_LOGS_PER_SECOND lines a second. */
  refused(ip: string, reason: RefusalReason): void {
    this.#refused++;
    this.#pending.refused[reason]++;
    const second = Math.floor(performance.now() / 1000);
    if (second !== this.#refusalLogWindow) {
      this.flushRefusalSummary();
      this.#refusalLogWindow = second;
    }
    if (this.#refusalLogsInWindow++ < REFUSAL_LOGS_PER_SECOND) {
      logSecurityEvent(this.#log, { event: 'conn.refused', mode: 'tcp', reason, clientIp: ip });
    } else {
      this.#refusalLogsSuppressed++;
    }
  }

  /** A connection finished: `error` is its first failure, or null when it ended cleanly. */
  finished(error: UpstreamErrorKind | null, durationS: number): void {
    this.#metrics.tcpConnectionDuration.observe(durationS);
    if (error === null) {
      this.#pending.ok++;
    } else {
      this.#pending.upstreamError++;
      this.#pending.upstreamErrors[error]++;
    }
  }

  /** Time to connect to the backend. */
  connected(seconds: number): void {
    this.#metrics.latency.observe({ mode: 'tcp' }, seconds);
  }

  /** Bytes moved since the last call (client → backend, backend → client). */
  addBytes(bytesIn: number, bytesOut: number): void {
    this.#bytesIn += bytesIn;
    this.#bytesOut += bytesOut;
    this.#pending.bytesIn += bytesIn;
    this.#pending.bytesOut += bytesOut;
  }

  /** The counts behind `ctl stats`; bytes of open connections not yet added are passed in. */
  stats(base: { thread: string; listening: boolean; draining: boolean; active: number }, unaddedIn = 0, unaddedOut = 0): ListenerStats {
    return { ...base, accepted: this.#accepted, refused: this.#refused, bytesIn: this.#bytesIn + unaddedIn, bytesOut: this.#bytesOut + unaddedOut };
  }

  /** Adds what was gathered since the last flush to the metrics registry; `active` sets the gauge. */
  flush(active: number): void {
    const m = this.#metrics;
    const p = this.#pending;
    this.#pending = emptyPending();
    if (p.bytesIn > 0) m.tcpBytes.inc({ direction: 'in' }, p.bytesIn);
    if (p.bytesOut > 0) m.tcpBytes.inc({ direction: 'out' }, p.bytesOut);
    if (p.accepted > 0) m.packetsProcessed.inc({ mode: 'tcp' }, p.accepted);
    if (p.ok > 0) m.requests.inc({ mode: 'tcp', status_class: 'ok' }, p.ok);
    if (p.upstreamError > 0) m.requests.inc({ mode: 'tcp', status_class: 'upstream_error' }, p.upstreamError);
    let refused = 0;
    for (const reason of REFUSAL_REASONS) {
      const n = p.refused[reason];
      if (n === 0) continue;
      refused += n;
      m.attacksBlocked.inc({ mode: 'tcp', reason }, n);
    }
    if (refused > 0) m.requests.inc({ mode: 'tcp', status_class: 'refused' }, refused);
    for (const kind of UPSTREAM_ERROR_KINDS) {
      const n = p.upstreamErrors[kind];
      if (n > 0) m.upstreamErrors.inc({ mode: 'tcp', kind }, n);
    }
    if (active !== this.#reportedActive) {
      m.tcpConnectionsActive.inc(active - this.#reportedActive);
      this.#reportedActive = active;
    }
    if (Math.floor(performance.now() / 1000) !== this.#refusalLogWindow) this.flushRefusalSummary();
  }

  /** Ends the current refusal-log window: one summary line for the lines it suppressed. */
  flushRefusalSummary(): void {
    if (this.#refusalLogsSuppressed > 0) {
      this.#log.warn({ security: true, event: 'conn.refused', suppressed: this.#refusalLogsSuppressed }, 'conn.refused lines suppressed (rate limit)');
    }
    this.#refusalLogsInWindow = 0;
    this.#refusalLogsSuppressed = 0;
  }
}
