// TCP mode's data plane: one TcpProxy per worker thread, all bound to the same port with reusePort so the
// kernel spreads connections across threads and a connection never changes thread. Each accepted connection
// is checked against the shared blocklist and connection limits (./conn-limits.ts), connected to the
// backend, then forwarded both ways with backpressure and half-close, by the kernel (splice, through the
// native addon in src/native/) when a Splicer is given, else by JS. The listener actor
// (src/actors/listener.ts) owns one; nothing here knows about actors.
//
// CPU per connection and per byte is the limit (bench/tcp/), so the hot paths allocate nothing they can
// avoid: one small Conn record per connection, tagged onto both sockets, and module-level handlers that find
// it there (no closures per connection or per chunk, no stream.pipe). Timeouts of established connections
// and metric updates are batched into one sweep per proxy (see #sweep) instead of a timer per socket and a
// registry call per chunk or per connection.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { SecbeatError } from '../errors.ts';
import type { DrainReport, ListenerStats } from '../messages.ts';
import type { Splicer } from '../native/splicer.ts';
import { logSecurityEvent, type Logger, type SecurityEvent } from '../telemetry/log.ts';
import { beforeCollect, type Metrics } from '../telemetry/metrics.ts';
import type { ConnLimits } from './conn-limits.ts';

/** What the proxy needs of a blocklist: net.BlockList and SharedIpSet (src/blocklist/) both fit. */
export interface IpBlockCheck {
  check(address: string, family?: string): boolean;
}

export interface TcpProxyOptions {
  listen: { host: string; port: number };
  backend: { host: string; port: number };
  /** Backend connect deadline (a socket timer: exact). */
  connectTimeoutMs: number;
  /** Close a connection after this long without a byte in either direction; 0 = never. Checked by the sweep. */
  idleTimeoutMs: number;
  /** TCP_NODELAY on both legs. */
  noDelay: boolean;
  limits: ConnLimits;
  blockList: IpBlockCheck;
  metrics: Metrics;
  log: Logger;
  threadName: string;
  /** Kernel forwarding; null forwards in JS. */
  splicer: Splicer | null;
}

export type RefusalReason = Extract<SecurityEvent, { event: 'conn.refused' }>['reason'];
const REFUSAL_REASONS = ['blocklist', 'max_connections', 'per_ip_limit', 'draining'] as const satisfies readonly RefusalReason[];

/** `kind` label values of secbeat_upstream_errors_total{mode="tcp"}. */
const UPSTREAM_ERROR_KINDS = ['connect_refused', 'connect_timeout', 'connect_error', 'reset', 'idle_timeout'] as const;
export type UpstreamErrorKind = (typeof UPSTREAM_ERROR_KINDS)[number];

/** Refusal log lines per second per thread; the rest are counted and summarised (a flood must not flood logs). */
const REFUSAL_LOGS_PER_SECOND = 10;
/**
 * Longest sweep interval. The sweep runs every idleTimeoutMs / 4 (at most this, at least SWEEP_MIN_MS), so an
 * idle connection closes between idleTimeoutMs and idleTimeoutMs + interval, and metrics lag by at most this.
 */
const SWEEP_MAX_MS = 1_000;
const SWEEP_MIN_MS = 10;

// Conn.flags bits.
const CONNECTED = 1;
const CLIENT_CLOSED = 2;
const UPSTREAM_CLOSED = 4;
/** The splice engine owns (or is being handed) the pair; JS does not forward or time it out. */
const SPLICED = 8;
/** The engine gave the pair back (its `closed` settled), so its byte counts are final. */
const SPLICE_DONE = 16;
const UPSTREAM_ERROR = 32;

const CONN = Symbol('secbeat.tcp.conn');

/**
 * One proxied connection: both sockets and their counters, shared by the module-level handlers through a
 * symbol property on each socket. Numbers only besides the references, so V8 keeps it one small object.
 */
interface Conn {
  readonly proxy: TcpProxy;
  readonly client: Socket;
  readonly upstream: Socket;
  readonly ip: string;
  readonly startedAt: number;
  flags: number;
  /** Bytes read from the client (forwarded to the backend) and from the backend. */
  bytesIn: number;
  bytesOut: number;
  /** The part of bytesIn/bytesOut already added to the proxy's totals and metrics. */
  flushedIn: number;
  flushedOut: number;
  /** Sweeps in a row that saw no byte move. */
  idleSweeps: number;
  /** Splice engine id once handed off, else 0. */
  spliceId: number;
}

type Tagged = Socket & { [CONN]: Conn };

/** Counter increments gathered between sweeps, so accept/refuse/close cost no registry call. */
interface Pending {
  /** Last bytes of connections closed since the sweep (open ones are read off their Conn). */
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
    refused: { blocklist: 0, max_connections: 0, per_ip_limit: 0, draining: 0 },
    upstreamErrors: { connect_refused: 0, connect_timeout: 0, connect_error: 0, reset: 0, idle_timeout: 0 },
  };
}

export class TcpProxy implements AsyncDisposable {
  readonly #o: TcpProxyOptions;
  readonly #server: Server;
  readonly #open = new Set<Conn>();
  readonly #sweepMs: number;
  /** Sweeps without traffic after which a connection is idle; Infinity when idleTimeoutMs is 0. */
  readonly #idleSweeps: number;
  #sweepTimer: NodeJS.Timeout | null = null;
  /** Scrapes flush the batched counters first, so /metrics never lags the sweep. */
  #unhookCollect: () => void = () => {};
  #listening = false;
  #draining = false;
  #accepted = 0;
  #refused = 0;
  /** Bytes of closed connections plus what open ones had moved at the last sweep. */
  #bytesIn = 0;
  #bytesOut = 0;
  #pending: Pending = emptyPending();
  /** Open connections already reflected in the active-connections gauge. */
  #reportedActive = 0;
  #refusalLogWindow = 0;
  #refusalLogsInWindow = 0;
  #refusalLogsSuppressed = 0;
  #idleWaiters: (() => void)[] = [];
  #closed: Promise<void> = Promise.resolve();

  constructor(options: TcpProxyOptions) {
    this.#o = options;
    this.#sweepMs = options.idleTimeoutMs > 0 ? Math.max(SWEEP_MIN_MS, Math.min(SWEEP_MAX_MS, Math.floor(options.idleTimeoutMs / 4))) : SWEEP_MAX_MS;
    this.#idleSweeps = options.idleTimeoutMs > 0 ? Math.ceil(options.idleTimeoutMs / this.#sweepMs) : Infinity;
    // pauseOnConnect: nothing is read from a client until its backend has accepted, so nothing is buffered in
    // user space meanwhile; the kernel's receive window holds early bytes and TCP flow control does the rest.
    this.#server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: options.noDelay }, (client) => this.#accept(client));
  }

  /** Binds with reusePort (other threads bind the same port). Rejects with SECBEAT_ERR_PROXY_LISTEN. */
  listen(): Promise<{ host: string; port: number }> {
    const { host, port } = this.#o.listen;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void =>
        reject(new SecbeatError('SECBEAT_ERR_PROXY_LISTEN', `cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
      this.#server.once('error', onError);
      this.#server.listen({ host, port, reusePort: true, backlog: 4096 }, () => {
        this.#server.off('error', onError);
        this.#server.on('error', (err) => this.#o.log.error({ err }, 'tcp listener error'));
        this.#listening = true;
        this.#sweepTimer = setInterval(() => this.#sweep(), this.#sweepMs);
        this.#sweepTimer.unref();
        this.#unhookCollect = beforeCollect(() => this.flushMetrics());
        const address = this.#server.address();
        resolve(typeof address === 'object' && address !== null ? { host: address.address, port: address.port } : { host, port });
      });
    });
  }

  stats(): ListenerStats {
    let bytesIn = this.#bytesIn;
    let bytesOut = this.#bytesOut;
    for (const c of this.#open) {
      bytesIn += c.bytesIn - c.flushedIn;
      bytesOut += c.bytesOut - c.flushedOut;
    }
    return {
      thread: this.#o.threadName,
      listening: this.#listening,
      draining: this.#draining,
      active: this.#open.size,
      accepted: this.#accepted,
      refused: this.#refused,
      bytesIn,
      bytesOut,
    };
  }

  /**
   * Adds the counts gathered since the last sweep to the metrics registry now. The sweep calls it; so do
   * drain/close, and anything that reads the registry and cannot wait up to SWEEP_MAX_MS (tests).
   */
  flushMetrics(): void {
    const m = this.#o.metrics;
    let dIn = 0;
    let dOut = 0;
    for (const c of this.#open) {
      if (c.bytesIn === c.flushedIn && c.bytesOut === c.flushedOut) continue;
      // Traffic since the last flush: not idle (the sweep compares against the flushed counts).
      c.idleSweeps = 0;
      dIn += c.bytesIn - c.flushedIn;
      dOut += c.bytesOut - c.flushedOut;
      c.flushedIn = c.bytesIn;
      c.flushedOut = c.bytesOut;
    }
    this.#bytesIn += dIn;
    this.#bytesOut += dOut;
    const p = this.#pending;
    this.#pending = emptyPending();
    // Closed connections left their last bytes in p (socketClosed); open ones were just folded in above.
    if (dIn + p.bytesIn > 0) m.tcpBytes.inc({ direction: 'in' }, dIn + p.bytesIn);
    if (dOut + p.bytesOut > 0) m.tcpBytes.inc({ direction: 'out' }, dOut + p.bytesOut);
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
    const active = this.#open.size;
    if (active !== this.#reportedActive) {
      m.tcpConnectionsActive.inc(active - this.#reportedActive);
      this.#reportedActive = active;
    }
  }

  /** Stops accepting; open connections may finish until `timeoutMs`, then the rest are closed. */
  async drain(timeoutMs: number): Promise<DrainReport> {
    this.#draining = true;
    // server.close() calls back only once every connection has ended, so it is awaited after they are.
    const closed = this.#stopListening();
    const before = this.#open.size;
    if (before > 0 && timeoutMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.#idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const forced = this.#open.size;
    for (const c of [...this.#open]) this.#abort(c);
    // Aborted sockets report 'close' on a later turn; the report is final once every limit is released.
    if (this.#open.size > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    await closed;
    this.#unhookCollect();
    if (this.#sweepTimer !== null) {
      clearInterval(this.#sweepTimer);
      this.#sweepTimer = null;
    }
    this.flushMetrics();
    this.#flushRefusalSummary();
    return { closedGracefully: before - forced, closedForcibly: forced };
  }

  /** Closes the listener and every open connection at once. */
  async close(): Promise<void> {
    await this.drain(0);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #stopListening(): Promise<void> {
    if (!this.#listening) return this.#closed;
    this.#listening = false;
    this.#closed = new Promise((resolve) => this.#server.close(() => resolve()));
    return this.#closed;
  }

  #accept(client: Socket): void {
    const ip = client.remoteAddress;
    if (ip === undefined) {
      // Reset by the peer before we got here: nothing to admit or count.
      client.destroy();
      return;
    }
    if (this.#draining) return this.#refuse(client, ip, 'draining');
    if (this.#o.blockList.check(ip, client.remoteFamily === 'IPv6' ? 'ipv6' : 'ipv4')) return this.#refuse(client, ip, 'blocklist');
    const admitted = this.#o.limits.tryAcquire(ip);
    if (admitted !== 'ok') return this.#refuse(client, ip, admitted);

    this.#accepted++;
    this.#pending.accepted++;
    const upstream = connect({ host: this.#o.backend.host, port: this.#o.backend.port, allowHalfOpen: true, noDelay: this.#o.noDelay });
    const conn: Conn = {
      proxy: this,
      client,
      upstream,
      ip,
      startedAt: performance.now(),
      flags: 0,
      bytesIn: 0,
      bytesOut: 0,
      flushedIn: 0,
      flushedOut: 0,
      idleSweeps: 0,
      spliceId: 0,
    };
    (client as Tagged)[CONN] = conn;
    (upstream as Tagged)[CONN] = conn;
    this.#open.add(conn);
    client.on('error', onSocketError);
    upstream.on('error', onUpstreamError);
    client.on('close', onClose);
    upstream.on('close', onClose);
    upstream.on('connect', onUpstreamConnect);
    upstream.on('timeout', onConnectTimeout);
    upstream.setTimeout(this.#o.connectTimeoutMs);
  }

  #refuse(client: Socket, ip: string, reason: RefusalReason): void {
    this.#refused++;
    this.#pending.refused[reason]++;
    // RST rather than FIN: the client learns at once, and no TIME_WAIT is left on our side.
    client.on('error', onSocketError);
    client.resetAndDestroy();
    const second = Math.floor(performance.now() / 1000);
    if (second !== this.#refusalLogWindow) {
      this.#flushRefusalSummary();
      this.#refusalLogWindow = second;
    }
    if (this.#refusalLogsInWindow++ < REFUSAL_LOGS_PER_SECOND) {
      logSecurityEvent(this.#o.log, { event: 'conn.refused', mode: 'tcp', reason, clientIp: ip });
    } else {
      this.#refusalLogsSuppressed++;
    }
  }

  #flushRefusalSummary(): void {
    if (this.#refusalLogsSuppressed > 0) {
      this.#o.log.warn({ security: true, event: 'conn.refused', suppressed: this.#refusalLogsSuppressed }, 'conn.refused lines suppressed (rate limit)');
    }
    this.#refusalLogsInWindow = 0;
    this.#refusalLogsSuppressed = 0;
  }

  /**
   * Every sweep: fold byte counts and pending counters into the metrics, close idle JS-forwarded connections
   * (the splice engine times out its own), and end a refusal-log window that no new refusal closed.
   */
  #sweep(): void {
    for (const c of this.#open) {
      if (c.bytesIn !== c.flushedIn || c.bytesOut !== c.flushedOut) continue; // moved: flushMetrics resets
      if ((c.flags & (CONNECTED | SPLICED)) === CONNECTED && ++c.idleSweeps >= this.#idleSweeps) {
        this.upstreamError(c, 'idle_timeout');
        c.client.destroy();
        c.upstream.destroy();
      }
    }
    this.flushMetrics();
    if (Math.floor(performance.now() / 1000) !== this.#refusalLogWindow) this.#flushRefusalSummary();
  }

  /** @internal The module's socket handlers only: backend connected, hand the pair to the kernel or forward in JS. */
  connected(c: Conn): void {
    c.flags |= CONNECTED;
    this.#o.metrics.latency.observe({ mode: 'tcp' }, (performance.now() - c.startedAt) / 1000);
    c.upstream.setTimeout(0);
    const splicer = this.#o.splicer;
    if (splicer === null) return forwardInJs(c);
    c.flags |= SPLICED;
    splicer.splice(c.client, c.upstream, this.#o.idleTimeoutMs).then(
      ({ id, closed }) => {
        c.spliceId = id;
        void closed.then((event) => {
          c.bytesIn = event.bytesAtoB;
          c.bytesOut = event.bytesBtoA;
          if (event.reason === 'reset' || event.reason.startsWith('error:')) this.upstreamError(c, 'reset');
          else if (event.reason === 'idle') this.upstreamError(c, 'idle_timeout');
          c.flags |= SPLICE_DONE;
          this.socketClosed(c, 0);
        });
      },
      (err: unknown) => {
        // The pair is intact and readable again: forward it in JS instead.
        this.#o.log.debug({ err }, 'splice hand-off failed; forwarding in JS');
        c.flags &= ~SPLICED;
        if (!c.client.destroyed && !c.upstream.destroyed) forwardInJs(c);
      },
    );
  }

  /** @internal Counts the connection's first failure (later ones are consequences of it). */
  upstreamError(c: Conn, kind: UpstreamErrorKind): void {
    if ((c.flags & UPSTREAM_ERROR) !== 0) return;
    c.flags |= UPSTREAM_ERROR;
    this.#pending.upstreamErrors[kind]++;
  }

  /** @internal Marks sockets closed; the connection is finished when both are (and the kernel let go of them). */
  socketClosed(c: Conn, closedFlag: number): void {
    c.flags |= closedFlag;
    const f = c.flags;
    if ((f & (CLIENT_CLOSED | UPSTREAM_CLOSED)) !== (CLIENT_CLOSED | UPSTREAM_CLOSED)) return;
    if ((f & (SPLICED | SPLICE_DONE)) === SPLICED || !this.#open.delete(c)) return;
    this.#o.limits.release(c.ip);
    this.#o.metrics.tcpConnectionDuration.observe((performance.now() - c.startedAt) / 1000);
    const p = this.#pending;
    if ((f & UPSTREAM_ERROR) !== 0) p.upstreamError++;
    else p.ok++;
    p.bytesIn += c.bytesIn - c.flushedIn;
    p.bytesOut += c.bytesOut - c.flushedOut;
    this.#bytesIn += c.bytesIn - c.flushedIn;
    this.#bytesOut += c.bytesOut - c.flushedOut;
    if (this.#open.size === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  #abort(c: Conn): void {
    if ((c.flags & SPLICED) !== 0 && c.spliceId !== 0 && (c.flags & SPLICE_DONE) === 0 && this.#o.splicer?.remove(c.spliceId)) return;
    c.client.destroy();
    c.upstream.destroy();
  }
}

function conn(socket: Socket): Conn {
  return (socket as Tagged)[CONN];
}

function onUpstreamConnect(this: Socket): void {
  const c = conn(this);
  c.proxy.connected(c);
}

/** Fires only while connecting: the timer is cleared on connect (idle is the sweep's job). */
function onConnectTimeout(this: Socket): void {
  const c = conn(this);
  if ((c.flags & CONNECTED) !== 0) return;
  c.proxy.upstreamError(c, 'connect_timeout');
  c.upstream.destroy();
  c.client.resetAndDestroy();
}

function onUpstreamError(this: Socket, err: NodeJS.ErrnoException): void {
  const c = conn(this);
  const kind = (c.flags & CONNECTED) !== 0 ? 'reset' : err.code === 'ECONNREFUSED' ? 'connect_refused' : 'connect_error';
  c.proxy.upstreamError(c, kind);
}

function onSocketError(this: Socket): void {
  // Reported through 'close' (hadError); the proxy keeps no error state of its own for client sockets.
}

/**
 * A socket closed. If it failed, or closed before the backend connected, the other side goes too: a reset
 * travels on as a reset, since a clean FIN could pass a truncated stream off as complete.
 */
function onClose(this: Socket, hadError: boolean): void {
  const c = conn(this);
  const isClient = this === c.client;
  if ((c.flags & SPLICED) === 0 && (hadError || (c.flags & CONNECTED) === 0)) {
    const other = isClient ? c.upstream : c.client;
    // An unconnected backend socket is destroyed, not reset: resetAndDestroy() would wait for it to connect.
    if (other.destroyed) {
      // Already gone; nothing to propagate.
    } else if (other === c.upstream && (c.flags & CONNECTED) === 0) other.destroy();
    else other.resetAndDestroy();
  }
  c.proxy.socketClosed(c, isClient ? CLIENT_CLOSED : UPSTREAM_CLOSED);
}

// ---------------------------------------------------------------------------------------------------------
// JS forwarding: 'data' handlers move chunks and pause the source while the destination's buffer is full
// (write() returned false) until that destination emits 'drain'; a FIN is passed on with end() and, with
// allowHalfOpen on both sockets, each socket closes once it has both read and written its end.

function forwardInJs(c: Conn): void {
  c.client.on('data', onClientData);
  c.upstream.on('data', onUpstreamData);
  c.client.on('drain', onClientDrain);
  c.upstream.on('drain', onUpstreamDrain);
  c.client.on('end', onClientEnd);
  c.upstream.on('end', onUpstreamEnd);
  c.client.resume();
}

function onClientData(this: Socket, chunk: Buffer): void {
  const c = conn(this);
  c.bytesIn += chunk.length;
  if (!c.upstream.write(chunk)) this.pause();
}

function onUpstreamData(this: Socket, chunk: Buffer): void {
  const c = conn(this);
  c.bytesOut += chunk.length;
  if (!c.client.write(chunk)) this.pause();
}

function onClientDrain(this: Socket): void {
  conn(this).upstream.resume();
}

function onUpstreamDrain(this: Socket): void {
  conn(this).client.resume();
}

function onClientEnd(this: Socket): void {
  conn(this).upstream.end();
}

function onUpstreamEnd(this: Socket): void {
  conn(this).client.end();
}
