// TCP mode's data plane in JS, used where the native engine (./tcp-native.ts) is unavailable or
// `forwarding = "js"`: one TcpProxy per worker thread, all bound to the same port with reusePort so the
// kernel spreads connections across threads and a connection never changes thread. Each accepted connection
// is checked against the shared blocklist and connection limits (./conn-limits.ts), connected to the
// backend, then forwarded both ways with backpressure and half-close. The listener actor
// (src/actors/listener.ts) owns one; nothing here knows about actors.
//
// CPU per connection and per byte is the limit (bench/tcp/), so the hot paths allocate nothing they can
// avoid: one small Conn record per connection, tagged onto both sockets, and module-level handlers that find
// it there (no closures per connection or per chunk, no stream.pipe). Timeouts of established connections
// and metric updates are batched into one sweep per proxy (see #sweep) instead of a timer per socket and a
// registry call per chunk or per connection.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { DrainReport, ListenerStats } from '../messages.ts';
import type { Logger } from '../telemetry/log.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { ConnLimits } from './conn-limits.ts';
import { TcpAccounting, type RefusalReason, type UpstreamErrorKind } from './tcp-accounting.ts';
import { DrainWaiters, listenError, type DataPlane, type IpBlockCheck } from './data-plane.ts';

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
}

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
const UPSTREAM_ERROR = 8;

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
  /** First failure, counted when the connection finishes. */
  error: UpstreamErrorKind | null;
  /** Bytes read from the client (forwarded to the backend) and from the backend. */
  bytesIn: number;
  bytesOut: number;
  /** The part of bytesIn/bytesOut already added to the accounting. */
  flushedIn: number;
  flushedOut: number;
  /** Sweeps in a row that saw no byte move. */
  idleSweeps: number;
}

type Tagged = Socket & { [CONN]: Conn };

export class TcpProxy implements DataPlane {
  readonly #o: TcpProxyOptions;
  readonly #server: Server;
  readonly #open = new Set<Conn>();
  readonly #accounting: TcpAccounting;
  readonly #sweepMs: number;
  /** Sweeps without traffic after which a connection is idle; Infinity when idleTimeoutMs is 0. */
  readonly #idleSweeps: number;
  readonly #drainWaiters = new DrainWaiters();
  #listening = false;
  #draining = false;
  #closed: Promise<void> = Promise.resolve();

  constructor(options: TcpProxyOptions) {
    this.#o = options;
    this.#accounting = new TcpAccounting(options.metrics, options.log);
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
      const onError = (err: Error): void => reject(listenError(host, port, err));
      this.#server.once('error', onError);
      this.#server.listen({ host, port, reusePort: true, backlog: 4096 }, () => {
        this.#server.off('error', onError);
        this.#server.on('error', (err) => this.#o.log.error({ err }, 'tcp listener error'));
        this.#listening = true;
        this.#accounting.startSweeping(this.#sweepMs, () => this.#sweep(), () => this.flushMetrics());
        const address = this.#server.address();
        resolve(typeof address === 'object' && address !== null ? { host: address.address, port: address.port } : { host, port });
      });
    });
  }

  stats(): ListenerStats {
    let unaddedIn = 0;
    let unaddedOut = 0;
    for (const c of this.#open) {
      unaddedIn += c.bytesIn - c.flushedIn;
      unaddedOut += c.bytesOut - c.flushedOut;
    }
    const base = { thread: this.#o.threadName, listening: this.#listening, draining: this.#draining, active: this.#open.size };
    return this.#accounting.stats(base, unaddedIn, unaddedOut);
  }

  /**
   * Adds the counts gathered since the last sweep to the metrics registry now. The sweep calls it; so do
   * drain/close, and anything that reads the registry and cannot wait up to SWEEP_MAX_MS (tests).
   */
  flushMetrics(): void {
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
    this.#accounting.addBytes(dIn, dOut);
    this.#accounting.flush(this.#open.size);
  }

  /** Stops accepting; open connections may finish until `timeoutMs`, then the rest are closed. */
  async drain(timeoutMs: number): Promise<DrainReport> {
    this.#draining = true;
    // server.close() calls back only once every connection has ended, so it is awaited after they are.
    const closed = this.#stopListening();
    const report = await this.#drainWaiters.drain(
      () => this.#open.size,
      () => {
        for (const c of this.#open) {
          c.client.destroy();
          c.upstream.destroy();
        }
      },
      timeoutMs,
    );
    await closed;
    this.#accounting.stopSweeping();
    return report;
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

    this.#accounting.admitted();
    const upstream = connect({ host: this.#o.backend.host, port: this.#o.backend.port, allowHalfOpen: true, noDelay: this.#o.noDelay });
    const conn: Conn = {
      proxy: this,
      client,
      upstream,
      ip,
      startedAt: performance.now(),
      flags: 0,
      error: null,
      bytesIn: 0,
      bytesOut: 0,
      flushedIn: 0,
      flushedOut: 0,
      idleSweeps: 0,
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
    // RST rather than FIN: the client learns at once, and no TIME_WAIT is left on our side.
    client.on('error', onSocketError);
    client.resetAndDestroy();
    this.#accounting.refused(ip, reason);
  }

  /** Every sweep: fold byte counts and pending counters into the metrics, and close idle connections. */
  #sweep(): void {
    for (const c of this.#open) {
      if (c.bytesIn !== c.flushedIn || c.bytesOut !== c.flushedOut) continue; // moved: flushMetrics resets
      if ((c.flags & CONNECTED) !== 0 && ++c.idleSweeps >= this.#idleSweeps) {
        upstreamError(c, 'idle_timeout');
        c.client.destroy();
        c.upstream.destroy();
      }
    }
    this.flushMetrics();
  }

  /** @internal The module's socket handlers only: backend connected, forward both ways. */
  connected(c: Conn): void {
    c.flags |= CONNECTED;
    this.#accounting.connected((performance.now() - c.startedAt) / 1000);
    c.upstream.setTimeout(0);
    forwardInJs(c);
  }

  /** @internal Marks sockets closed; the connection is finished when both are. */
  socketClosed(c: Conn, closedFlag: number): void {
    c.flags |= closedFlag;
    if ((c.flags & (CLIENT_CLOSED | UPSTREAM_CLOSED)) !== (CLIENT_CLOSED | UPSTREAM_CLOSED) || !this.#open.delete(c)) return;
    this.#o.limits.release(c.ip);
    this.#accounting.addBytes(c.bytesIn - c.flushedIn, c.bytesOut - c.flushedOut);
    this.#accounting.finished(c.error, (performance.now() - c.startedAt) / 1000);
    if (this.#open.size === 0) this.#drainWaiters.settled();
  }
}

function conn(socket: Socket): Conn {
  return (socket as Tagged)[CONN];
}

/** Keeps the connection's first failure (later ones are consequences of it). */
function upstreamError(c: Conn, kind: UpstreamErrorKind): void {
  if ((c.flags & UPSTREAM_ERROR) !== 0) return;
  c.flags |= UPSTREAM_ERROR;
  c.error = kind;
}

function onUpstreamConnect(this: Socket): void {
  const c = conn(this);
  c.proxy.connected(c);
}

/** Fires only while connecting: the timer is cleared on connect (idle is the sweep's job). */
function onConnectTimeout(this: Socket): void {
  const c = conn(this);
  if ((c.flags & CONNECTED) !== 0) return;
  upstreamError(c, 'connect_timeout');
  c.upstream.destroy();
  c.client.resetAndDestroy();
}

function onUpstreamError(this: Socket, err: NodeJS.ErrnoException): void {
  const c = conn(this);
  upstreamError(c, (c.flags & CONNECTED) !== 0 ? 'reset' : err.code === 'ECONNREFUSED' ? 'connect_refused' : 'connect_error');
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
  if (hadError || (c.flags & CONNECTED) === 0) {
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
