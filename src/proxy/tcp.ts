// TCP mode's data plane: one TcpProxy per worker thread, all bound to the same port with reusePort so the
// kernel spreads connections across threads. Each accepted connection is checked against the shared
// blocklist and connection limits, connected to the backend, then forwarded both ways with backpressure and
// half-close, by the kernel (splice, through the native addon) when available, else by JS.
// The listener actor (src/actors/listener.ts) owns one; nothing here knows about actors.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { SecbeatError } from '../errors.ts';
import type { DrainReport, ListenerStats } from '../messages.ts';
import type { Splicer } from '../native/splicer.ts';
import { logSecurityEvent, type Logger, type SecurityEvent } from '../telemetry/log.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { ConnLimits } from './conn-limits.ts';

/** What the proxy needs of a blocklist: net.BlockList and SharedIpSet both fit. */
export interface IpBlockCheck {
  check(address: string, family?: string): boolean;
}

export interface TcpProxyOptions {
  listen: { host: string; port: number };
  backend: { host: string; port: number };
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  noDelay: boolean;
  limits: ConnLimits;
  blockList: IpBlockCheck;
  metrics: Metrics;
  log: Logger;
  threadName: string;
  /** Kernel forwarding; null forwards in JS. */
  splicer: Splicer | null;
}

type RefusalReason = Extract<SecurityEvent, { event: 'conn.refused' }>['reason'];
type UpstreamErrorKind = 'connect_refused' | 'connect_timeout' | 'connect_error' | 'reset' | 'idle_timeout';

/** Refusal log lines per second per thread; the rest are counted and summarised (a flood must not flood logs). */
const REFUSAL_LOGS_PER_SECOND = 10;

const CONN = Symbol('secbeat.conn');

/** One proxied connection: both sockets and their counters, shared by module-level handlers (no closures). */
interface Conn {
  proxy: TcpProxy;
  client: Socket;
  upstream: Socket;
  ip: string;
  startedAt: number;
  connected: boolean;
  bytesIn: number;
  bytesOut: number;
  closes: number;
  /** Set while the kernel owns the pair; 0 before the hand-off and for JS forwarding. */
  spliceId: number;
  spliced: boolean;
  spliceDone: boolean;
  outcome: 'ok' | 'upstream_error';
}

type Tagged = Socket & { [CONN]: Conn };

export class TcpProxy implements AsyncDisposable {
  readonly #o: TcpProxyOptions;
  readonly #server: Server;
  readonly #open = new Set<Conn>();
  #listening = false;
  #draining = false;
  #accepted = 0;
  #refused = 0;
  #bytesInClosed = 0;
  #bytesOutClosed = 0;
  #refusalLogWindow = 0;
  #refusalLogsInWindow = 0;
  #refusalLogsSuppressed = 0;
  #idleWaiters: (() => void)[] = [];
  #closed: Promise<void> = Promise.resolve();

  constructor(options: TcpProxyOptions) {
    this.#o = options;
    // pauseOnConnect: nothing is read from a client until its backend is connected, so no buffering.
    this.#server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: options.noDelay }, (client) => this.#accept(client));
  }

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
        const address = this.#server.address();
        resolve(typeof address === 'object' && address !== null ? { host: address.address, port: address.port } : { host, port });
      });
    });
  }

  stats(): ListenerStats {
    let bytesIn = this.#bytesInClosed;
    let bytesOut = this.#bytesOutClosed;
    for (const c of this.#open) {
      bytesIn += c.bytesIn;
      bytesOut += c.bytesOut;
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

  /** Stops accepting; open connections may finish until `timeoutMs`, then the rest are closed. */
  async drain(timeoutMs: number): Promise<DrainReport> {
    this.#draining = true;
    // server.close() calls back only once every connection has ended, so it is awaited after they are.
    const closed = this.#stopListening();
    const before = this.#open.size;
    if (before > 0 && timeoutMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        timer.unref();
        this.#idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const forced = this.#open.size;
    for (const c of [...this.#open]) this.#abort(c);
    await closed;
    return { closedGracefully: before - forced, closedForcibly: forced };
  }

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
      client.destroy();
      return;
    }
    if (this.#draining) return this.#refuse(client, ip, 'draining');
    if (this.#o.blockList.check(ip, client.remoteFamily === 'IPv6' ? 'ipv6' : 'ipv4')) return this.#refuse(client, ip, 'blocklist');
    const admitted = this.#o.limits.tryAcquire(ip);
    if (admitted !== 'ok') return this.#refuse(client, ip, admitted);

    this.#accepted++;
    this.#o.metrics.packetsProcessed.inc({ mode: 'tcp' });
    this.#o.metrics.tcpConnectionsActive.inc();
    const upstream = connect({ host: this.#o.backend.host, port: this.#o.backend.port, allowHalfOpen: true, noDelay: this.#o.noDelay });
    const conn: Conn = {
      proxy: this,
      client,
      upstream,
      ip,
      startedAt: performance.now(),
      connected: false,
      bytesIn: 0,
      bytesOut: 0,
      closes: 0,
      spliceId: 0,
      spliced: false,
      spliceDone: false,
      outcome: 'ok',
    };
    (client as Tagged)[CONN] = conn;
    (upstream as Tagged)[CONN] = conn;
    this.#open.add(conn);
    client.on('error', onSocketError);
    upstream.on('error', onUpstreamError);
    client.once('close', onClose);
    upstream.once('close', onClose);
    upstream.once('connect', onUpstreamConnect);
    upstream.setTimeout(this.#o.connectTimeoutMs, onConnectTimeout);
  }

  #refuse(client: Socket, ip: string, reason: RefusalReason): void {
    this.#refused++;
    this.#o.metrics.attacksBlocked.inc({ mode: 'tcp', reason });
    this.#o.metrics.requests.inc({ mode: 'tcp', status_class: 'refused' });
    client.on('error', noop);
    client.resetAndDestroy();
    const second = Math.floor(performance.now() / 1000);
    if (second !== this.#refusalLogWindow) {
      if (this.#refusalLogsSuppressed > 0) {
        this.#o.log.warn({ suppressed: this.#refusalLogsSuppressed }, 'conn.refused lines suppressed (rate limit)');
      }
      this.#refusalLogWindow = second;
      this.#refusalLogsInWindow = 0;
      this.#refusalLogsSuppressed = 0;
    }
    if (this.#refusalLogsInWindow++ < REFUSAL_LOGS_PER_SECOND) {
      logSecurityEvent(this.#o.log, { event: 'conn.refused', mode: 'tcp', reason, clientIp: ip });
    } else {
      this.#refusalLogsSuppressed++;
    }
  }

  /** Backend connected: hand the pair to the kernel, or forward in JS. */
  connected(conn: Conn): void {
    conn.connected = true;
    this.#o.metrics.latency.observe({ mode: 'tcp' }, (performance.now() - conn.startedAt) / 1000);
    conn.upstream.setTimeout(0);
    const splicer = this.#o.splicer;
    if (splicer === null) return forwardInJs(conn, this.#o.idleTimeoutMs);
    conn.spliced = true;
    splicer.splice(conn.client, conn.upstream, this.#o.idleTimeoutMs).then(
      ({ id, closed }) => {
        conn.spliceId = id;
        void closed.then((event) => {
          conn.bytesIn = event.bytesAtoB;
          conn.bytesOut = event.bytesBtoA;
          if (event.reason === 'reset' || event.reason.startsWith('error:')) this.upstreamError(conn, 'reset');
          else if (event.reason === 'idle') this.upstreamError(conn, 'idle_timeout');
          conn.spliceDone = true;
          this.socketClosed(conn, 0);
        });
      },
      (err: unknown) => {
        // The pair is intact and readable again: forward it in JS instead.
        this.#o.log.debug({ err }, 'splice hand-off failed; forwarding in JS');
        conn.spliced = false;
        if (!conn.client.destroyed && !conn.upstream.destroyed) forwardInJs(conn, this.#o.idleTimeoutMs);
      },
    );
  }

  upstreamError(conn: Conn, kind: UpstreamErrorKind): void {
    if (conn.outcome === 'upstream_error') return;
    conn.outcome = 'upstream_error';
    this.#o.metrics.upstreamErrors.inc({ mode: 'tcp', kind });
  }

  /** Counts socket closes; the connection is finished when both are closed (and the kernel let go). */
  socketClosed(conn: Conn, closes: number): void {
    conn.closes += closes;
    if (conn.closes < 2 || (conn.spliced && !conn.spliceDone) || !this.#open.delete(conn)) return;
    this.#o.limits.release(conn.ip);
    const m = this.#o.metrics;
    m.tcpConnectionsActive.dec();
    m.tcpConnectionDuration.observe((performance.now() - conn.startedAt) / 1000);
    if (conn.bytesIn > 0) m.tcpBytes.inc({ direction: 'in' }, conn.bytesIn);
    if (conn.bytesOut > 0) m.tcpBytes.inc({ direction: 'out' }, conn.bytesOut);
    m.requests.inc({ mode: 'tcp', status_class: conn.outcome });
    this.#bytesInClosed += conn.bytesIn;
    this.#bytesOutClosed += conn.bytesOut;
    if (this.#open.size === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  #abort(conn: Conn): void {
    if (conn.spliced && conn.spliceId !== 0 && !conn.spliceDone && this.#o.splicer?.remove(conn.spliceId)) return;
    conn.client.destroy();
    conn.upstream.destroy();
  }
}

function noop(): void {}

function conn(socket: Socket): Conn {
  return (socket as Tagged)[CONN];
}

function onUpstreamConnect(this: Socket): void {
  const c = conn(this);
  c.proxy.connected(c);
}

function onConnectTimeout(this: Socket): void {
  const c = conn(this);
  if (c.connected) return;
  c.proxy.upstreamError(c, 'connect_timeout');
  c.upstream.destroy();
  c.client.resetAndDestroy();
}

function onUpstreamError(this: Socket, err: NodeJS.ErrnoException): void {
  const c = conn(this);
  c.proxy.upstreamError(c, c.connected ? 'reset' : err.code === 'ECONNREFUSED' ? 'connect_refused' : 'connect_error');
}

function onSocketError(this: Socket): void {
  // Reported through 'close' (hadError); the listener keeps no error state of its own.
}

/** A socket closed: if it failed, the other side is reset too (a reset must not pass as a clean end). */
function onClose(this: Socket, hadError: boolean): void {
  const c = conn(this);
  if (!c.spliced) {
    const other = this === c.client ? c.upstream : c.client;
    if (hadError || !c.connected) {
      if (!other.destroyed) other.resetAndDestroy();
    }
  }
  c.proxy.socketClosed(c, 1);
}

// ---------------------------------------------------------------------------------------------------------
// JS forwarding: data handlers move chunks and pause the source while the destination's buffer is full.

function forwardInJs(c: Conn, idleTimeoutMs: number): void {
  c.client.on('data', onClientData);
  c.upstream.on('data', onUpstreamData);
  c.client.on('drain', onClientDrain);
  c.upstream.on('drain', onUpstreamDrain);
  c.client.once('end', onClientEnd);
  c.upstream.once('end', onUpstreamEnd);
  c.client.setTimeout(idleTimeoutMs, onIdle);
  c.upstream.setTimeout(idleTimeoutMs, onIdle);
  c.client.resume();
  c.upstream.resume();
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

function onIdle(this: Socket): void {
  const c = conn(this);
  c.proxy.upstreamError(c, 'idle_timeout');
  c.client.destroy();
  c.upstream.destroy();
}
