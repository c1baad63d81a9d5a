// L7 mode's data plane: one L7Proxy per worker thread, with a plain HTTP/1.1 listener and a TLS listener
// (ALPN h2 and http/1.1, certificate by SNI from the CertificateStore), both bound with reusePort so the
// kernel spreads connections over threads and a request never changes thread. Each request runs the phases
// of ./phases.ts as plain calls: route by host (./routes.ts), client identity (./client-ip.ts), limits, the
// WAF (in the thread's inspection turn, ./inspection-turn.ts), then a dispatch to an origin's keep-alive pool
// (./upstream.ts, ./origin-pool.ts) whose handler writes the response straight into the client's response
// object: no stream pipeline and no per-chunk promise, since CPU per request is the limit.
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerOptions, type ServerResponse } from 'node:http';
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type SecureServerOptions,
  type ServerHttp2Session,
} from 'node:http2';
import { createServer as createNetServer, isIPv6, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import type { DrainReport, ListenerStats } from '../messages.ts';
import type { CidrSet } from '../net/cidr.ts';
import { parseProxyHeader, PROXY_HEADER_MAX_BYTES } from '../net/proxy-protocol.ts';
import type { ConnLimits } from '../proxy/conn-limits.ts';
import { DrainWaiters, listenError, type DataPlane, type IpBlockCheck } from '../proxy/data-plane.ts';
import { logSecurityEvent, type Logger } from '../telemetry/log.ts';
import { beforeCollect, type Metrics } from '../telemetry/metrics.ts';
import { RequestTally } from '../telemetry/request-tally.ts';
import type { CertificateStore } from '../tls/cert-store.ts';
import { clientIp } from './client-ip.ts';
import { L7_ERRORS, type L7ErrorStatus } from './phases.ts';
import { InspectionTurn } from './inspection-turn.ts';
import type { WafCheck, WafGate, WafVerdict } from './waf-gate.ts';
import type { RateCounter } from '../ratelimit/shared-counters.ts';
import type { Route, RouteTable } from './routes.ts';
import { OriginError, type OriginCall, type OriginHandler, type OriginRequest } from './origin-pool.ts';
import type { Origin, OriginSet, Upstreams } from './upstream.ts';

export interface L7Limits {
  headerTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxHeaderBytes: number;
  maxHeaders: number;
  /** 0 = no limit. */
  maxBodyBytes: number;
  /** 0 = no limit. */
  maxRequestsPerConnection: number;
  maxConcurrentStreams: number;
  /** Bytes/s a request body must keep up after headerTimeoutMs of grace (Apache mod_reqtimeout's MinRate); 0 = off. */
  minBodyRate: number;
  /** HTTP/2 streams a client may cancel at once (a token bucket's size) before the session gets GOAWAY. */
  h2ResetBurst: number;
  /** Cancellations per second the bucket refills at. */
  h2ResetRate: number;
}

export interface L7TlsOptions {
  listen: { host: string; port: number };
  certs: CertificateStore;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  ciphers: string | undefined;
}

export interface L7ProxyOptions {
  listen: { host: string; port: number };
  tls: L7TlsOptions | null;
  routes: RouteTable;
  upstreams: Upstreams;
  trustedProxies: CidrSet;
  /** Both listeners expect a PROXY protocol v1/v2 header first, and only from `trustedProxies`. */
  proxyProtocol: boolean;
  limits: L7Limits;
  connLimits: ConnLimits;
  blockList: IpBlockCheck;
  /** The WAF phases; null when [waf] is disabled. */
  waf: WafGate | null;
  /** Requests per client and window across the fleet (../ratelimit/shared-counters.ts); null when disabled. */
  rateLimit: { counter: RateCounter; requests: number } | null;
  metrics: Metrics;
  log: Logger;
  threadName: string;
}

/** Hop-by-hop fields (RFC 9110 §7.6.1) and HTTP/2 connection-specific ones (RFC 9113 §8.2.2): never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  // Answered by the proxy itself (Node sends 100 Continue before the request reaches the handler).
  'expect',
  // Rewritten by the proxy from what it saw itself.
  'host',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
]);

/**
 * Request bodies up to this size are read whole before an origin connection is taken (see #handle). 64 KiB
 * covers form posts and API calls; with 10,000 client connections at most 640 MB could wait in memory,
 * which the connection caps bound.
 */
const REQUEST_BUFFER_BYTES = 64 * 1024;

/** Methods retried once on another origin after a connection-level failure (RFC 9110 §9.2.2) when the body can be sent again. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

const H2_ENHANCE_YOUR_CALM = 0xb;

type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

/** What the proxy uses of a response, HTTP/1.1 and HTTP/2 alike (their overloads do not unify in TS). */
interface ClientResponse {
  readonly headersSent: boolean;
  /** True once end() was called. (`destroyed` and `writableFinished` do not mean the same on both: unused.) */
  readonly writableEnded: boolean;
  /** HTTP/1.1 takes a flat [name, value, ...] list too; HTTP/2 only the object. */
  writeHead(status: number, headers: Record<string, string | string[] | number> | string[]): unknown;
  write(chunk: Buffer): boolean;
  end(body?: string): unknown;
  destroy(): unknown;
  once(event: 'close' | 'drain', listener: () => void): unknown;
}

class BodyTooLarge extends Error {}

/**
 * Running totals behind the proxy's batched counters. The hot paths only bump plain numbers (or, for the
 * context cache, the CertificateStore does); flushMetrics() adds what grew since the last flush.
 */
interface Totals {
  bytesIn: number;
  bytesOut: number;
  handshakesOk: number;
  handshakesFailed: number;
  cacheHits: number;
  cacheMisses: number;
  cacheEvictions: number;
}

export class L7Proxy implements DataPlane {
  readonly #o: L7ProxyOptions;
  /** Starts as options.routes; setRoutes swaps it whole (a config reload). */
  #routes: RouteTable;
  readonly #plain: HttpServer;
  readonly #secure: Http2SecureServer | null;
  readonly #sockets = new Set<Socket>();
  /** Sockets refused at accept: on the TLS listener their TLSSocket still reports a client error, not a failed handshake. */
  readonly #refusedSockets = new WeakSet<Socket>();
  readonly #drainWaiters = new DrainWaiters();
  readonly #routeOrigins = new WeakMap<object, OriginSet>();
  #listening = false;
  #draining = false;
  #accepted = 0;
  #refused = 0;
  #tlsPort = 0;
  /** Raw listeners that read a PROXY protocol header before handing sockets to the HTTP servers. */
  readonly #fronts: NetServer[] = [];
  /** Open HTTP/2 sessions and their guards: a drain sends them GOAWAY, and destroys them at the deadline. */
  readonly #sessions = new Map<ServerHttp2Session, H2Guard>();
  /** Requests whose body is still arriving, checked against min_body_rate (and, on HTTP/2, request_timeout_ms). */
  readonly #bodies = new Set<Exchange>();
  #bodySweep: NodeJS.Timeout | undefined;
  /** Client addresses from PROXY headers, by TCP socket. */
  readonly #proxied = new WeakMap<Socket, string>();
  #handshakesOk = 0;
  #handshakesFailed = 0;
  /** Wire bytes of closed client connections; open ones are read off their sockets when needed. */
  #closedBytesIn = 0;
  #closedBytesOut = 0;
  /** What the registry has been given so far. */
  #flushed: Totals = { bytesIn: 0, bytesOut: 0, handshakesOk: 0, handshakesFailed: 0, cacheHits: 0, cacheMisses: 0, cacheEvictions: 0 };
  #unhookCollect: () => void = ignore;
  readonly #tally: RequestTally;
  /** WAF phases of the requests parsed in one event-loop turn, run back to back (./inspection-turn.ts). */
  readonly #inspections = new InspectionTurn();

  constructor(options: L7ProxyOptions) {
    this.#o = options;
    this.#routes = options.routes;
    this.#tally = new RequestTally(options.metrics, 'l7');
    const l = options.limits;
    const onRequest = (req: AnyRequest, res: AnyResponse): void => {
      // A throw here would be uncaught and end the thread with every connection on it: whatever a request
      // meets, it costs that request only.
      try {
        this.#handle(req, res as ClientResponse);
      } catch (err) {
        this.#internalError(res as ClientResponse, err, performance.now());
      }
    };
    this.#plain = createHttpServer(http1Options(l), onRequest);
    this.#secure = options.tls === null ? null : this.#secureServer(options.tls, onRequest);
    // Http2SecureServer has both HTTP/1.1 members at run time (allowHTTP1); @types/node leaves them out.
    for (const server of (this.#secure === null ? [this.#plain] : [this.#plain, this.#secure]) as HttpServer[]) {
      // HTTP/1.1 over TLS (allowHTTP1) is served by Node's HTTP/1.1 code with the same limits and the same
      // handlers: malformed requests get their status, upgrades are joined the same way.
      server.maxRequestsPerSocket = l.maxRequestsPerConnection;
      server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.#clientError(err, socket));
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head));
      server.on('connect', (req: IncomingMessage, socket: Duplex) => this.#connect(req, socket));
    }
    this.#plain.on('connection', (socket: Socket) => this.#accept(socket));
  }

  /** Binds both listeners with reusePort; resolves with the plain one's address. Rejects with SECBEAT_ERR_PROXY_LISTEN. */
  async listen(): Promise<{ host: string; port: number }> {
    const plain = await listenOn(this.#front(this.#plain), this.#o.listen);
    if (this.#secure !== null && this.#o.tls !== null) this.#tlsPort = (await listenOn(this.#front(this.#secure), this.#o.tls.listen)).port;
    this.#listening = true;
    this.#bodySweep = setInterval(() => this.#sweepBodies(), bodySweepMs(this.#o.limits)).unref();
    // Scrapes flush first, so no sweep timer is needed: nothing here ages out between scrapes.
    this.#unhookCollect = beforeCollect(() => this.flushMetrics());
    return plain;
  }

  /**
   * Serves every request from now on with `routes`; requests already routed finish on their old route. Origin
   * pools are per URL (./upstream.ts), so routes naming the same origins keep their connections.
   */
  setRoutes(routes: RouteTable): void {
    this.#routes = routes;
  }

  /** After the store's default certificate changed (a reload): clients that send no SNI get the new one too. */
  refreshDefaultCertificate(): void {
    if (this.#secure !== null && this.#o.tls !== null) this.#secure.setSecureContext(noSniContext(this.#o.tls));
  }

  /** The TLS listener's bound port (0 when there is none). */
  get tlsPort(): number {
    return this.#tlsPort;
  }

  stats(): ListenerStats {
    const { bytesIn, bytesOut } = this.#bytes();
    return {
      thread: this.#o.threadName,
      listening: this.#listening,
      draining: this.#draining,
      active: this.#sockets.size,
      accepted: this.#accepted,
      refused: this.#refused,
      bytesIn,
      bytesOut,
    };
  }

  /** Adds requests, client bytes, TLS handshakes and context-cache counts since the last flush. */
  flushMetrics(): void {
    const m = this.#o.metrics;
    this.#tally.flush();
    const was = this.#flushed;
    const now = this.#totals();
    // A counter must never step back (prom-client throws, failing the scrape). Socket counts only grow, but
    // that is how Node implements them rather than a documented promise: hold the high-water mark.
    this.#flushed = { ...now, bytesIn: Math.max(now.bytesIn, was.bytesIn), bytesOut: Math.max(now.bytesOut, was.bytesOut) };
    m.l7Bytes.inc({ direction: 'in' }, this.#flushed.bytesIn - was.bytesIn);
    m.l7Bytes.inc({ direction: 'out' }, this.#flushed.bytesOut - was.bytesOut);
    if (this.#o.tls === null) return;
    m.tlsHandshakes.inc({ result: 'ok' }, now.handshakesOk - was.handshakesOk);
    m.tlsHandshakes.inc({ result: 'failed' }, now.handshakesFailed - was.handshakesFailed);
    m.tlsContextCacheLookups.inc({ result: 'hit' }, now.cacheHits - was.cacheHits);
    m.tlsContextCacheLookups.inc({ result: 'miss' }, now.cacheMisses - was.cacheMisses);
    m.tlsContextCacheEvictions.inc(now.cacheEvictions - was.cacheEvictions);
  }

  async drain(timeoutMs: number): Promise<DrainReport> {
    this.#draining = true;
    clearInterval(this.#bodySweep);
    const closed = [this.#plain, this.#secure, ...this.#fronts].map((server) => (server === null ? Promise.resolve() : closeServer(server)));
    this.#listening = false;
    // Idle keep-alive connections go now; busy ones finish their request (Node then closes them). HTTP/2
    // sessions get GOAWAY: no new streams, open ones finish. The HTTP/2 server's close() waits for its
    // sessions, which destroying the TCP sockets under them does not end: the deadline destroys them too.
    for (const server of [this.#plain, this.#secure]) (server as HttpServer | null)?.closeIdleConnections();
    for (const session of this.#sessions.keys()) session.close();
    const report = await this.#drainWaiters.drain(
      () => this.#sockets.size,
      () => {
        for (const session of this.#sessions.keys()) session.destroy();
        for (const socket of this.#sockets) socket.destroy();
      },
      timeoutMs,
    );
    await Promise.all(closed);
    // A drained proxy counts nothing more: one last flush, then scrapes leave it alone.
    this.#unhookCollect();
    this.flushMetrics();
    return report;
  }

  async close(): Promise<void> {
    await this.drain(0);
    await this.#o.upstreams.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #secureServer(tls: L7TlsOptions, onRequest: (req: AnyRequest, res: AnyResponse) => void): Http2SecureServer {
    const l = this.#o.limits;
    const server = createSecureServer(
      {
        allowHTTP1: true,
        ...http1Options(l),
        // A TLS handshake is part of a request's headers as far as a slowloris client is concerned (Node's default is 120 s).
        handshakeTimeout: l.headerTimeoutMs,
        SNICallback: tls.certs.sniCallback,
        ...noSniContext(tls),
        maxSessionInvalidFrames: 100,
        maxSessionRejectedStreams: 100,
        // nghttp2's own rapid-reset bucket counts every RST_STREAM, streams never handed to JS included: a
        // backstop at twice the proxy's (#h2StreamAbandoned), which names the attack and sends ENHANCE_YOUR_CALM.
        streamResetBurst: 2 * l.h2ResetBurst,
        streamResetRate: 2 * l.h2ResetRate,
        settings: { maxConcurrentStreams: l.maxConcurrentStreams, maxHeaderListSize: l.maxHeaderBytes },
        maxSendHeaderBlockLength: l.maxHeaderBytes,
      } as SecureServerOptions,
      onRequest,
    );
    // 'connection' fires for the raw TCP socket before the handshake: admission happens before any TLS work.
    server.on('connection', (socket: Socket) => this.#accept(socket));
    server.on('secureConnection', () => this.#handshakesOk++);
    server.on('tlsClientError', (_err: Error, tlsSocket: TLSSocket) => {
      // Failed handshakes (no common protocol, no certificate, client gone) end the socket; nothing to answer,
      // only to count. `_parent`, the raw socket a server-side TLSSocket wraps, is internal but long-standing.
      if (!this.#refusedSockets.has((tlsSocket as TLSSocket & { _parent: Socket })._parent)) this.#handshakesFailed++;
    });
    server.on('sessionError', (err: NodeJS.ErrnoException, session: ServerHttp2Session) => this.#h2SessionError(err, session));
    server.on('session', (session: ServerHttp2Session) => {
      const guard = new H2Guard(session, this.#peerOf(session.socket), l.h2ResetBurst, performance.now());
      this.#sessions.set(session, guard);
      session.once('close', () => this.#sessions.delete(session));
      // An HTTP/2 connection with no stream open is an idle keep-alive connection: same limit as HTTP/1.1.
      // One with streams open waits for them (their origin has its own deadlines); activity re-arms the timer.
      session.setTimeout(l.keepAliveTimeoutMs, () => {
        if (guard.streams === 0) session.close();
      });
    });
    return server;
  }

  /**
   * The server to bind for `server`: itself, or with PROXY protocol a raw listener that reads the header
   * first (#proxyHeader) and then hands the socket over as if `server` had accepted it.
   */
  #front(server: HttpServer | Http2SecureServer): NetServer {
    if (!this.#o.proxyProtocol) return server;
    const front = createNetServer({ pauseOnConnect: true }, (socket) => this.#proxyHeader(socket, server));
    this.#fronts.push(front);
    return front;
  }

  /**
   * Phase accept, with PROXY protocol: only a trusted proxy may send the header, it must come whole within
   * header_timeout_ms and PROXY_HEADER_MAX_BYTES, and the address it names is the client from then on
   * (admission, X-Forwarded-For, Forwarded). Anything else is refused before a byte of HTTP is parsed.
   */
  #proxyHeader(socket: Socket, server: HttpServer | Http2SecureServer): void {
    socket.on('error', ignore);
    const sender = socket.remoteAddress ?? '';
    if (!this.#o.trustedProxies.containsText(sender)) return this.#refuse(socket, sender, 'proxy_protocol');
    let received: Buffer = Buffer.alloc(0);
    const stop = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', stop);
    };
    const timer = setTimeout(() => {
      stop();
      this.#refuse(socket, sender, 'proxy_protocol');
    }, this.#o.limits.headerTimeoutMs);
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const header = parseProxyHeader(received);
      if (header.kind === 'incomplete' && received.length < PROXY_HEADER_MAX_BYTES) return;
      stop();
      if (header.kind !== 'header') return this.#refuse(socket, sender, 'proxy_protocol');
      socket.pause();
      if (header.length < received.length) socket.unshift(received.subarray(header.length));
      // LOCAL (a health check of the proxy itself) and UNKNOWN keep the connection's own address.
      if (header.addresses !== null) this.#proxied.set(socket, header.addresses.sourceAddress);
      server.emit('connection', socket);
      // The HTTP/1.1 server reads through 'data' events and needs the socket flowing again. The TLS server
      // must not: it takes the TCP handle natively and replays what is buffered (the unshifted bytes) on its
      // next tick, and a flowing socket would emit those bytes to no one first.
      if (server === this.#plain) socket.resume();
    };
    socket.on('data', onData);
    socket.on('close', stop);
    socket.resume();
  }

  /** The client address of a request's connection: the PROXY header's when there was one. */
  #peerOf(socket: Socket | Duplex): string {
    // TLS and HTTP/2 requests see the TLSSocket; the header was read on the TCP socket under it.
    const raw = (socket as Socket & { _parent?: Socket })._parent ?? socket;
    return this.#proxied.get(raw as Socket) ?? (socket as Socket).remoteAddress ?? '';
  }

  #refuse(socket: Socket, ip: string, reason: 'blocklist' | 'max_connections' | 'per_ip_limit' | 'draining' | 'proxy_protocol'): void {
    this.#refused++;
    if (this.#secure !== null) this.#refusedSockets.add(socket);
    this.#o.metrics.attacksBlocked.inc({ mode: 'l7', reason });
    logSecurityEvent(this.#o.log, { event: 'conn.refused', mode: 'l7', reason, clientIp: ip });
    socket.resetAndDestroy();
  }

  /** Phase accept: draining, blocklist and connection caps, before a byte is parsed. */
  #accept(socket: Socket): void {
    const ip = this.#proxied.get(socket) ?? socket.remoteAddress;
    if (ip === undefined) {
      socket.destroy();
      return;
    }
    const refusal = this.#draining
      ? 'draining'
      : this.#o.blockList.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4')
        ? 'blocklist'
        : this.#o.connLimits.tryAcquire(ip);
    if (refusal !== 'ok') {
      socket.on('error', ignore);
      return this.#refuse(socket, ip, refusal);
    }
    this.#accepted++;
    this.#sockets.add(socket);
    socket.setNoDelay(true);
    socket.once('close', () => {
      // The raw TCP socket's counts: TLS records and HTTP/2 frames included, however the stream was consumed.
      this.#closedBytesIn += socket.bytesRead;
      this.#closedBytesOut += bytesSent(socket);
      this.#sockets.delete(socket);
      this.#o.connLimits.release(ip);
      if (this.#sockets.size === 0) this.#drainWaiters.settled();
    });
  }

  /** Client wire bytes so far: closed connections' totals plus what open ones have moved. */
  #bytes(): { bytesIn: number; bytesOut: number } {
    let bytesIn = this.#closedBytesIn;
    let bytesOut = this.#closedBytesOut;
    for (const socket of this.#sockets) {
      bytesIn += socket.bytesRead;
      bytesOut += bytesSent(socket);
    }
    return { bytesIn, bytesOut };
  }

  #totals(): Totals {
    const cache = this.#o.tls?.certs.stats;
    return {
      ...this.#bytes(),
      handshakesOk: this.#handshakesOk,
      handshakesFailed: this.#handshakesFailed,
      cacheHits: cache?.hits ?? 0,
      cacheMisses: cache?.misses ?? 0,
      cacheEvictions: cache?.evictions ?? 0,
    };
  }

  /**
   * Malformed HTTP/1.1 (parser errors, header overflow, timeouts): the right status, an id, then close. Bytes
   * that follow a complete request and are no request (a body longer than its Content-Length, a body on a
   * request that declared none) fail only once the request before them has had its answer, as a pipeline.
   */
  #clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const status: L7ErrorStatus =
      err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'HPE_HEADERS_TIMEOUT' ? 408 : 400;
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (inFlight === null || inFlight === undefined) return this.#rawFail(socket, status, err.code ?? err.message);
    if (status === 408) return void socket.destroy();
    socket.on('error', ignore);
    inFlight.once('finish', () => this.#rawFail(socket, status, err.code ?? err.message));
    inFlight.once('close', () => {
      if (!inFlight.writableFinished) socket.destroy();
    });
  }

  /**
   * CONNECT asks for a tunnel, which a reverse proxy does not open: 405, or 400 when the target is not the
   * authority form (host:port) CONNECT requires (RFC 9112 §3.2.3).
   */
  #connect(req: IncomingMessage, socket: Duplex): void {
    socket.on('error', ignore);
    const route = this.#routes.lookup(req.headers.host);
    const client = clientIp(this.#peerOf(req.socket), req.headers['x-forwarded-for'], this.#o.trustedProxies).address;
    if (this.#wafRefusesRaw(req, route, client, socket)) return;
    const authorityForm = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s/:@]+):\d{1,5}$/.test(req.url ?? '');
    this.#rawFail(socket, authorityForm ? 405 : 400, authorityForm ? 'connect_not_supported' : 'connect_target_invalid');
  }

  /** Phases request_headers → response for one request. */
  #handle(req: AnyRequest, res: ClientResponse): void {
    const startedAt = performance.now();
    const headerCount = req.rawHeaders.length / 2;
    if (headerCount > this.#o.limits.maxHeaders) return this.#fail(res, 431, 'too_many_headers', startedAt);
    const authority = 'authority' in req ? req.authority : req.headers.host;
    const route = this.#routes.lookup(authority);
    const contentLength = req.headers['content-length'];
    const max = this.#o.limits.maxBodyBytes;
    if (max > 0 && contentLength !== undefined && Number(contentLength) > max) return this.#fail(res, 413, 'content_length_over_limit', startedAt);

    const peer = this.#peerOf(req.socket);
    const client = clientIp(peer, req.headers['x-forwarded-for'], this.#o.trustedProxies).address;
    if (this.#o.rateLimit !== null && this.#rateLimited(res, client, route, startedAt, !('stream' in req))) return;
    const waf = this.#o.waf?.begin(req, route.waf, authority ?? '', client) ?? null;
    const tls = 'encrypted' in req.socket && req.socket.encrypted === true;
    const headers = upstreamHeaders(req, authority ?? '', peer, client, tls, this.#o.trustedProxies.containsText(peer));
    const method = req.method ?? 'GET';
    // HTTP/2 says "no body" with END_STREAM on the HEADERS frame; HTTP/1.1 with neither length nor chunking.
    const hasBody =
      contentLength !== undefined ? contentLength !== '0' : 'stream' in req ? !req.stream.endAfterHeaders : req.headers['transfer-encoding'] !== undefined;
    const guard = 'stream' in req ? (this.#sessions.get(req.stream.session as ServerHttp2Session) ?? null) : null;
    // Made before the WAF runs: it watches for the client leaving while the request waits for its turn.
    const exchange = new Exchange(this, req, res, this.#originsOf(route), req.url ?? '/', method, headers, startedAt, guard);
    if (hasBody) return this.#requestBody(exchange, contentLength, waf);
    if (waf === null) return this.#send(exchange);
    this.#inspect(exchange, waf, null, false);
  }

  /**
   * The WAF's phases request_headers and request_body on a request read whole (its body, or as much of it as
   * the WAF inspects), in the thread's inspection turn (./inspection-turn.ts); then upstream, or the WAF's
   * answer. Both phases run together once the body is in, so that a transaction lives for one turn, not while
   * a body arrives: a request its headers refuse has its body read first (no more than the WAF would read).
   */
  #inspect(exchange: Exchange, waf: WafCheck, body: Buffer | null, partial: boolean): void {
    let verdict: WafVerdict | null = null;
    this.#inspections.add({
      inspect: () => {
        verdict = waf.headers() ?? waf.body(body, partial);
      },
      proceed: () => {
        if (exchange.stopped) return;
        if (verdict === null) return this.#send(exchange);
        exchange.abort();
        this.bodyEnded(exchange);
        // The rest of a body read in part is read and dropped, so the client sees the answer (closing on
        // unread bytes would reset the connection under it); Node's request_timeout_ms bounds how long.
        if (partial) exchange.req.resume();
        this.#wafRefuse(exchange.res, verdict, exchange.startedAt);
      },
      failed: (err) => this.#handlerFailed(exchange, err),
    });
  }

  /**
   * Phase request_body, then upstream. A body that fits REQUEST_BUFFER_BYTES (or what the WAF inspects, if
   * more) is read whole before any origin connection is taken (nginx's proxy_request_buffering): a client
   * dribbling a small body holds a client socket, never an origin connection, so slow POSTs cannot drain the
   * pools. Larger bodies stream; the WAF sees their first bytes, or refuses them (bodyOverLimit).
   */
  #requestBody(exchange: Exchange, contentLength: string | undefined, waf: WafCheck | null): void {
    const { req, res, startedAt } = exchange;
    const max = this.#o.limits.maxBodyBytes;
    const guard = exchange.h2;
    this.#bodies.add(exchange);
    const declared = contentLength === undefined ? -1 : Number(contentLength);
    exchange.options.bodyLength = declared;
    const buffered = waf === null ? REQUEST_BUFFER_BYTES : Math.max(REQUEST_BUFFER_BYTES, waf.inspectBodyBytes);
    if (waf !== null && declared > buffered && waf.bodyOverLimit === 'reject') {
      this.bodyEnded(exchange);
      return this.#fail(res, 413, 'body_over_waf_inspection_limit', startedAt, guard === null);
    }
    if (declared > buffered && waf === null) {
      exchange.options.body = streamOn(exchange, [], max);
      exchange.retriable = false;
      return this.#send(exchange);
    }
    bufferedBody(exchange, buffered, max, waf !== null).then(
      (body) => {
        exchange.options.body = body;
        // A body held in memory can be sent again; a streamed one cannot.
        exchange.retriable &&= Buffer.isBuffer(body);
        if (waf === null) return this.#send(exchange);
        const whole = Buffer.isBuffer(body);
        if (!whole && waf.bodyOverLimit === 'reject') {
          exchange.abort();
          this.bodyEnded(exchange);
          return this.#fail(res, 413, 'body_over_waf_inspection_limit', startedAt, guard === null);
        }
        this.#inspect(exchange, waf, whole ? body : exchange.bodyHead, !whole);
        exchange.bodyHead = null;
      },
      (err: unknown) => {
        this.bodyEnded(exchange);
        if (err instanceof BodyTooLarge) this.#fail(res, 413, 'body_over_limit', startedAt);
        // Already answered (408 from the body sweep): the client's rest is not worth reading.
        else if (!res.headersSent) res.destroy();
      },
    );
  }

  /** A request's handling threw after its Exchange was made (see the constructor's onRequest). */
  #handlerFailed(exchange: Exchange, err: unknown): void {
    exchange.abort();
    this.bodyEnded(exchange);
    this.#internalError(exchange.res, err, exchange.startedAt);
  }

  /** A request's handling threw: logged, and answered 500 (that request only). */
  #internalError(res: ClientResponse, err: unknown, startedAt: number): void {
    this.#o.log.error({ err }, 'l7 request handler failed');
    this.#fail(res, 500, 'internal_error', startedAt);
  }

  /** Phase upstream, first attempt: the next origin in rotation. */
  #send(x: Exchange): void {
    const first = x.origins.pick(x.startedAt);
    if (first === null) return this.#fail(x.res, 503, 'no_origin', x.startedAt);
    this.#dispatch(x, first);
  }

  /** Phase upstream: sends the exchange to `origin`; the exchange handles its response. */
  #dispatch(x: Exchange, origin: Origin): void {
    x.origin = origin;
    x.call = origin.pool.dispatch(x.options, x);
  }

  /**
   * An HTTP/1.1 Upgrade (WebSocket): the same route, identity and headers as a request, then, once the origin
   * answers 101, the two sockets are joined and bytes flow both ways untouched until either side ends.
   */
  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const startedAt = performance.now();
    socket.on('error', ignore);
    const route = this.#routes.lookup(req.headers.host);
    const origins = this.#originsOf(route);
    const origin = origins.pick(startedAt);
    const peer = this.#peerOf(req.socket);
    const upgrade = req.headers.upgrade;
    if (origin === null || upgrade === undefined) return this.#rawFail(socket, origin === null ? 503 : 400, 'upgrade_without_origin_or_protocol');
    const client = clientIp(peer, req.headers['x-forwarded-for'], this.#o.trustedProxies).address;
    if (this.#wafRefusesRaw(req, route, client, socket)) return;
    const tls = 'encrypted' in req.socket && req.socket.encrypted === true;
    const headers = upstreamHeaders(req, req.headers.host ?? '', peer, client, tls, this.#o.trustedProxies.containsText(peer));
    // Hop-by-hop fields are not forwarded, save the pair that asks the origin for this very upgrade.
    headers.push('connection', 'upgrade', 'upgrade', upgrade);
    const call = origin.pool.dispatch({ path: req.url ?? '/', method: req.method ?? 'GET', headers, body: null, bodyLength: -1 }, {
      onUpgrade: (statusCode, resHeaders, upstream, rest) => {
        this.responded(startedAt, statusCode, origin);
        if (socket.destroyed) return void upstream.destroy();
        let response = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`;
        for (let i = 0; i < resHeaders.length; i += 2) response += `${resHeaders[i]}: ${resHeaders[i + 1]}\r\n`;
        socket.write(`${response}\r\n`);
        if (rest.length > 0) socket.write(rest);
        if (head.length > 0) upstream.write(head);
        upstream.on('error', ignore);
        upstream.pipe(socket);
        socket.pipe(upstream);
        upstream.resume();
        // Either side's end or error ends both: an upgraded connection has no message boundary to stop at.
        socket.once('close', () => upstream.destroy());
        upstream.once('close', () => socket.destroy());
      },
      onResponseStart: (statusCode) => {
        // The origin refused the upgrade with a normal response: pass on a gateway error, not its body.
        call.abort();
        this.#rawFail(socket, 502, `origin answered an upgrade with ${statusCode}`);
      },
      onResponseData: () => false,
      onResponseEnd: ignore,
      onResponseError: (err: OriginError) => {
        if (err.connectionFailure) this.#o.upstreams.failed(origin, performance.now());
        this.#rawFail(socket, err.timeout ? 504 : 502, err.message);
      },
    });
  }

  /** An error status on a socket that has no response object (client errors, refused upgrades). */
  #rawFail(socket: Duplex, status: L7ErrorStatus, reason: string): void {
    const id = errorId();
    this.#o.log.info({ errorId: id, status, reason }, 'l7 request failed');
    this.#tally.count(status);
    if (!socket.writable) return void socket.destroy();
    const body = errorBody(status, id);
    socket.end(`HTTP/1.1 ${status} ${statusText(status)}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nx-secbeat-error-id: ${id}\r\nconnection: close\r\n\r\n${body}`);
  }

  #originsOf(route: Route): OriginSet {
    let origins = this.#routeOrigins.get(route);
    if (origins === undefined) {
      origins = this.#o.upstreams.set(route.origins);
      this.#routeOrigins.set(route, origins);
    }
    return origins;
  }

  /** @internal The origin answered (its health is good whatever the status): count the request. */
  responded(startedAt: number, status: number, origin: Origin | null = null): void {
    if (origin !== null) this.#o.upstreams.succeeded(origin);
    this.#tally.record(status, (performance.now() - startedAt) / 1000);
  }

  /** @internal The request body has ended (or failed): the body sweep stops watching it. */
  bodyEnded(x: Exchange): void {
    this.#bodies.delete(x);
  }

  /**
   * @internal An HTTP/2 stream closed by the client before its response ended. One costs an origin request
   * started for nothing; a stream of them is the rapid-reset attack (CVE-2023-44487): past the session's
   * burst the client gets GOAWAY(ENHANCE_YOUR_CALM) and the connection is closed.
   */
  h2StreamAbandoned(guard: H2Guard): void {
    const session = guard.session;
    // A whole session going away closes its streams too: that is one disconnect, not a burst of resets.
    if (session.closed || session.destroyed) return;
    const l = this.#o.limits;
    if (guard.take(performance.now(), l.h2ResetRate, l.h2ResetBurst)) return;
    this.#o.metrics.attacksBlocked.inc({ mode: 'l7', reason: 'h2_rapid_reset' });
    logSecurityEvent(this.#o.log, { event: 'h2.goaway', reason: 'h2_rapid_reset', clientIp: guard.clientIp, detail: `more than ${l.h2ResetBurst} streams cancelled` });
    guard.calmedDown = true;
    session.destroy(new Error('HTTP/2 rapid reset'), H2_ENHANCE_YOUR_CALM);
  }

  /**
   * nghttp2 ended a session for a protocol violation: its flood guards (CONTINUATION floods, CVE-2024-27983;
   * resets past its own bucket; invalid frames) or a malformed frame. Socket errors are not attacks: skipped.
   */
  #h2SessionError(err: NodeJS.ErrnoException, session: ServerHttp2Session): void {
    const guard = this.#sessions.get(session);
    // calmedDown: the proxy's own GOAWAY (h2StreamAbandoned) surfaces here too, already counted.
    if (!err.code?.startsWith('ERR_HTTP2_') || guard?.calmedDown === true) return;
    const reason = /CONTINUATION/i.test(err.message) ? 'h2_continuation_flood' : 'h2_protocol_error';
    this.#o.metrics.attacksBlocked.inc({ mode: 'l7', reason });
    // The session is torn down by now (its socket gone): the address was noted when it began.
    logSecurityEvent(this.#o.log, { event: 'h2.goaway', reason, clientIp: guard?.clientIp ?? '', detail: err.message });
  }

  /**
   * Slow POST: a body must arrive at minBodyRate after headerTimeoutMs of grace (the deadline moves one
   * second later per minBodyRate bytes received), and an HTTP/2 request within requestTimeoutMs in all
   * (Node enforces that one itself for HTTP/1.1). A late one is answered 408, or cut if the response began.
   */
  #sweepBodies(): void {
    const now = performance.now();
    const l = this.#o.limits;
    for (const x of this.#bodies) {
      const slow = l.minBodyRate > 0 && now > x.startedAt + l.headerTimeoutMs + (x.bodyBytes * 1000) / l.minBodyRate;
      if (!slow && !(x.h2 !== null && now > x.startedAt + l.requestTimeoutMs)) continue;
      this.#bodies.delete(x);
      const reason = slow ? 'min_body_rate' : 'request_timeout';
      this.#o.metrics.attacksBlocked.inc({ mode: 'l7', reason: 'slow_body' });
      logSecurityEvent(this.#o.log, { event: 'request.slow', mode: 'l7', reason, clientIp: this.#peerOf(x.req.socket), bytes: x.bodyBytes });
      x.abort();
      if (x.res.headersSent) x.res.destroy();
      else this.#fail(x.res, 408, reason, x.startedAt, x.h2 === null);
    }
  }

  /** @internal The exchange failed before response headers: retry, or answer with an error status. */
  failed(x: Exchange, err: OriginError): void {
    // Stopped: the client left, or the proxy answered on its own (408 from the body sweep). Nothing to do.
    if (x.stopped) return;
    if (x.res.headersSent || x.req.destroyed && !x.req.complete) {
      x.res.destroy();
      return;
    }
    if (err.cause instanceof BodyTooLarge) return this.#fail(x.res, 413, 'body_over_limit', x.startedAt);
    // A failing request body is the client's doing (it went away or sent garbage), not the origin's.
    if (err.kind !== 'request_body') this.#o.metrics.upstreamErrors.inc({ mode: 'l7', kind: err.kind });
    if (err.connectionFailure && x.origin !== null) {
      this.#o.upstreams.failed(x.origin, performance.now());
      const other = x.retriable ? x.origins.pick(performance.now(), x.origin) : null;
      if (other !== null) {
        x.retriable = false;
        this.#dispatch(x, other);
        return;
      }
    }
    this.#fail(x.res, err.timeout ? 504 : err.kind === 'request_body' ? 400 : 502, `${err.kind}: ${err.message}`, x.startedAt);
  }

  /**
   * The WAF on a request answered on its raw socket (an upgrade, CONNECT): phases 1 and 2 with no body (an
   * upgraded connection's bytes are no request body). True when it refused the request, which is then answered.
   */
  #wafRefusesRaw(req: IncomingMessage, route: Route, client: string, socket: Duplex): boolean {
    const waf = this.#o.waf?.begin(req, route.waf, req.headers.host ?? '', client) ?? null;
    const hit = waf === null ? null : (waf.headers() ?? waf.body(null, false));
    if (hit === null) return false;
    if (hit.action === 'drop') socket.destroy();
    else this.#rawFail(socket, hit.status in L7_ERRORS ? (hit.status as L7ErrorStatus) : 403, 'waf');
    return true;
  }

  /**
   * A WAF verdict in blocking mode: `challenge` answers with the challenge page, `drop` closes the connection,
   * `redirect` answers with its Location, `deny` with its status (an error body naming the error id, as every
   * refusal of the proxy's own).
   */
  #wafRefuse(res: ClientResponse, hit: WafVerdict, startedAt: number): void {
    if (hit.action === 'challenge') {
      this.#tally.record(hit.status, (performance.now() - startedAt) / 1000);
      res.writeHead(hit.status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(hit.page) });
      res.end(hit.page);
      return;
    }
    if (hit.action === 'drop') {
      this.#tally.record(403, (performance.now() - startedAt) / 1000);
      res.destroy();
      return;
    }
    if (hit.action === 'redirect' && hit.url !== null) {
      this.#tally.record(hit.status, (performance.now() - startedAt) / 1000);
      res.writeHead(hit.status, { location: hit.url, 'content-length': 0 });
      res.end();
      return;
    }
    this.#fail(res, hit.status in L7_ERRORS ? (hit.status as L7ErrorStatus) : 403, 'waf', startedAt);
  }

  /**
   * Phase request_headers, rate limit: the request counts for its client (the address X-Forwarded-For gives
   * from a trusted proxy, else the peer's); over the limit (the route's, else [rate_limit]'s) it gets 429. A client the fleet blocked
   * gets 429 and, over HTTP/1.1, the connection closed: the next one is refused at accept, and a client
   * behind a trusted proxy, whose connections come from the proxy, is still refused request by request.
   */
  #rateLimited(res: ClientResponse, client: string, route: Route, startedAt: number, h1: boolean): boolean {
    const limit = this.#o.rateLimit!;
    if (client !== '' && this.#o.blockList.check(client)) {
      this.#o.metrics.rateLimited.inc({ reason: 'blocked' });
      this.#fail(res, 429, 'client_blocked', startedAt, h1);
      return true;
    }
    const total = limit.counter.hit(client, Date.now());
    if (total <= (route.rateLimit ?? limit.requests)) return false;
    this.#o.metrics.rateLimited.inc({ reason: 'over_limit' });
    this.#fail(res, 429, 'rate_limited', startedAt);
    return true;
  }

  /** `closeConnection` (HTTP/1.1 only: HTTP/2 forbids the field) when the rest of the request will not be read. */
  #fail(res: ClientResponse, status: L7ErrorStatus, reason: string, startedAt: number, closeConnection = false): void {
    const id = errorId();
    this.#o.log.info({ errorId: id, status, reason }, 'l7 request failed');
    this.#tally.record(status, (performance.now() - startedAt) / 1000);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = errorBody(status, id);
    const headers: Record<string, string | number> = { 'content-type': 'text/plain', 'content-length': body.length, 'x-secbeat-error-id': id };
    if (closeConnection) headers['connection'] = 'close';
    res.writeHead(status, headers);
    res.end(body);
  }
}

/**
 * One request on its way through the upstream phase (and a retry), and the origin pool's handler for it:
 * response headers and body chunks go straight to the client's response, pausing the origin connection
 * while the client's buffer is full (backpressure without a stream pipeline). One object per request: CPU
 * per request is the limit, so the exchange, its origin request and its handler are not three allocations.
 */
class Exchange implements OriginHandler {
  readonly proxy: L7Proxy;
  readonly req: AnyRequest;
  readonly res: ClientResponse;
  readonly origins: OriginSet;
  origin: Origin | null = null;
  readonly options: OriginRequest;
  retriable: boolean;
  readonly startedAt: number;
  /** The HTTP/2 session's guard; null on HTTP/1.1. */
  readonly h2: H2Guard | null;
  /** Request body bytes received so far (the body is awaited from startedAt on). */
  bodyBytes = 0;
  /** The first bytes of a body too large to hold whole, kept for the WAF until it has read them. */
  bodyHead: Buffer | null = null;
  /** The current attempt at the origin. */
  call: OriginCall | null = null;
  /** No more origin work wanted: the client went away before the response was written, or the proxy answered itself. */
  #stopped = false;
  #resume: (() => void) | null = null;

  constructor(
    proxy: L7Proxy,
    req: AnyRequest,
    res: ClientResponse,
    origins: OriginSet,
    path: string,
    method: string,
    headers: string[],
    startedAt: number,
    h2: H2Guard | null,
  ) {
    this.proxy = proxy;
    this.req = req;
    this.res = res;
    this.origins = origins;
    this.options = { path, method, headers, body: null, bodyLength: -1 };
    this.retriable = IDEMPOTENT.has(method);
    this.startedAt = startedAt;
    this.h2 = h2;
    if (h2 !== null) h2.streams++;
    // A client gone before its response is written stops the exchange, queued or under way, so the origin
    // connection is not held (and paused on a 'drain' that never comes) for nothing.
    res.once('close', this.#onClientClose);
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  readonly #onClientClose = (): void => {
    if (this.h2 !== null) this.h2.streams--;
    // Both response kinds emit 'close' after a normal end too; HTTP/2's also reports writableFinished once
    // its stream is reset, so only "end() was called" tells a finished response from an abandoned one.
    if (this.res.writableEnded) return;
    this.proxy.bodyEnded(this);
    this.abort();
    if (this.h2 !== null) this.proxy.h2StreamAbandoned(this.h2);
  };

  /** Stops the origin exchange, queued or under way; no callback comes after. */
  abort(): void {
    this.#stopped = true;
    this.call?.abort();
  }

  onResponseStart(status: number, headers: string[]): void {
    this.proxy.responded(this.startedAt, status, this.origin);
    if (this.#stopped) return void this.call?.abort();
    const res = this.res;
    if (this.h2 === null) {
      // HTTP/1.1 takes the flat [name, value, ...] list as it is: no object per response.
      const out: string[] = [];
      for (let i = 0; i < headers.length; i += 2) if (!HOP_BY_HOP.has(headers[i]!.toLowerCase())) out.push(headers[i]!, headers[i + 1]!);
      res.writeHead(status, out);
      return;
    }
    const out: Record<string, string | string[]> = {};
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      if (HOP_BY_HOP.has(name)) continue;
      const had = out[name];
      out[name] = had === undefined ? headers[i + 1]! : Array.isArray(had) ? [...had, headers[i + 1]!] : [had, headers[i + 1]!];
    }
    res.writeHead(status, out);
  }

  onResponseData(chunk: Buffer): boolean {
    if (this.res.write(chunk) || this.#stopped) return true;
    this.#resume ??= () => this.call?.resume();
    this.res.once('drain', this.#resume);
    return false;
  }

  onResponseEnd(): void {
    this.res.end();
  }

  onResponseError(err: OriginError): void {
    this.proxy.failed(this, err);
  }

  /** An origin that switches protocols on a request that asked for none is broken. */
  onUpgrade(_status: number, _headers: string[], socket: Socket): void {
    socket.destroy();
    this.proxy.failed(this, new OriginError('bad_response', '101 Switching Protocols to a request that asked for no upgrade'));
  }
}

/** Per HTTP/2 session: open exchanges, and the token bucket of stream cancellations it may still make. */
class H2Guard {
  /** Kept here: a stream's own `session` is gone once the stream is destroyed, when cancellations are counted. */
  readonly session: ServerHttp2Session;
  readonly clientIp: string;
  streams = 0;
  /** Sent GOAWAY(ENHANCE_YOUR_CALM) for rapid reset. */
  calmedDown = false;
  #tokens: number;
  #refilledAt: number;

  constructor(session: ServerHttp2Session, clientIp: string, burst: number, now: number) {
    this.session = session;
    this.clientIp = clientIp;
    this.#tokens = burst;
    this.#refilledAt = now;
  }

  /** Takes one cancellation; false once the bucket is empty. */
  take(now: number, ratePerSecond: number, burst: number): boolean {
    this.#tokens = Math.min(burst, this.#tokens + ((now - this.#refilledAt) * ratePerSecond) / 1000);
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }
}

/** The HTTP/1.1 server settings both listeners share (the TLS one for clients that negotiate http/1.1). */
function http1Options(l: L7Limits): ServerOptions {
  return {
    headersTimeout: l.headerTimeoutMs,
    requestTimeout: l.requestTimeoutMs,
    // Node enforces both timeouts from a periodic check, every 30 s by default: a slowloris client would
    // hold its socket up to 30 s past header_timeout_ms. A quarter of the timeout keeps the overshoot small.
    connectionsCheckingInterval: bodySweepMs(l),
    keepAliveTimeout: l.keepAliveTimeoutMs,
    maxHeaderSize: l.maxHeaderBytes,
    requireHostHeader: true,
    joinDuplicateHeaders: true,
  };
}

/**
 * The server's own context: clients that send no SNI (connecting by address) never reach SNICallback and
 * are served from it, with the store's default certificate.
 */
function noSniContext(tls: L7TlsOptions): SecureContextOptions {
  return { ...(tls.certs.defaultPem ?? {}), minVersion: tls.minVersion, ...(tls.ciphers === undefined ? {} : { ciphers: tls.ciphers }) };
}

/** How often deadlines are checked: a quarter of the header timeout, between 50 ms and 1 s. */
function bodySweepMs(l: L7Limits): number {
  return Math.min(1_000, Math.max(50, Math.floor(l.headerTimeoutMs / 4)));
}

/** Request headers for the origin: the client's, less hop-by-hop ones, plus Host and the forwarding set. */
function upstreamHeaders(req: AnyRequest, authority: string, peer: string, client: string, tls: boolean, peerTrusted: boolean): string[] {
  const raw = req.rawHeaders;
  const connectionTokens = connectionOptions(req.headers.connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 0x3a /* ':' HTTP/2 pseudo-header */) continue;
    const lower = name.toLowerCase();
    // Content-Length too: the origin pool frames the body it actually sends (./origin-pool.ts).
    if (HOP_BY_HOP.has(lower) || lower === 'content-length' || (connectionTokens !== null && connectionTokens.has(lower))) continue;
    out.push(name, raw[i + 1]!);
  }
  // A trusted hop's X-Forwarded-For is extended; an untrusted peer's is replaced, so no client can inject
  // addresses for the origin to believe.
  const xff = req.headers['x-forwarded-for'];
  const forwardedFor = peerTrusted && xff !== undefined ? `${xff}, ${peer}` : peer;
  const proto = tls ? 'https' : 'http';
  out.push('host', authority, 'x-forwarded-for', forwardedFor, 'x-forwarded-proto', proto, 'x-forwarded-host', authority);
  out.push('forwarded', `for=${forwardedNode(client)};proto=${proto}${authority ? `;host="${authority.replaceAll('"', '')}"` : ''}`);
  return out;
}

/** Header names a Connection header lists as hop-by-hop for this message (RFC 9110 §7.6.1). */
function connectionOptions(value: string | string[] | undefined): Set<string> | null {
  if (value === undefined) return null;
  const text = Array.isArray(value) ? value.join(',') : value;
  const set = new Set<string>();
  for (const token of text.split(',', 32)) {
    const t = token.trim().toLowerCase();
    if (t) set.add(t);
  }
  return set;
}

/** RFC 7239 §6: IPv6 in brackets and quotes. */
function forwardedNode(ip: string): string {
  return ip.includes(':') ? `"[${ip}]"` : ip;
}

/**
 * Reads a request body into memory while it stays within `bufferBytes`: one Buffer once it has ended. Past
 * that, the rest streams on behind what was read, stopped at `max` bytes (0 = no limit), and with `keepHead`
 * what was read is also kept whole in `x.bodyHead` for the WAF. Rejects with BodyTooLarge over `max`, with
 * another error when the client goes away first.
 */
function bufferedBody(x: Exchange, bufferBytes: number, max: number, keepHead: boolean): Promise<Buffer | AsyncGenerator<Buffer>> {
  const req = x.req;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const detach = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      x.bodyBytes = size;
      chunks.push(chunk);
      if (max > 0 && size > max) {
        detach();
        reject(new BodyTooLarge(`request body over ${max} bytes`));
      } else if (size > bufferBytes) {
        detach();
        req.pause();
        if (keepHead) x.bodyHead = Buffer.concat(chunks, size);
        resolve(streamOn(x, chunks, max));
      }
    };
    const onEnd = (): void => {
      detach();
      x.proxy.bodyEnded(x);
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onClose = (): void => {
      detach();
      reject(new Error('client went away before its body ended'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
  });
}

/** The rest of a request body, behind what was read already, counted for the body sweep and stopped at `max`. */
async function* streamOn(x: Exchange, prefix: Buffer[], max: number): AsyncGenerator<Buffer> {
  try {
    yield* prefix;
    for await (const chunk of x.req as AsyncIterable<Buffer>) {
      x.bodyBytes += chunk.length;
      if (max > 0 && x.bodyBytes > max) throw new BodyTooLarge(`request body over ${max} bytes`);
      yield chunk;
    }
  } finally {
    x.proxy.bodyEnded(x);
  }
}


function statusText(status: L7ErrorStatus): string {
  return L7_ERRORS[status].split('_').map((w) => w[0]!.toUpperCase() + w.slice(1)).join(' ');
}

/** Short, random: matches the log line, reveals nothing. */
function errorId(): string {
  return randomBytes(6).toString('hex');
}

function errorBody(status: L7ErrorStatus, id: string): string {
  return `${status} ${L7_ERRORS[status]}\nerror id: ${id}\n`;
}

function ignore(): void {}

/** What was handed to the OS: `bytesWritten` also counts what still waits in the socket's buffer, which a destroy drops. */
function bytesSent(socket: Socket): number {
  return socket.bytesWritten - socket.writableLength;
}

function listenOn(server: NetServer, address: { host: string; port: number }): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(listenError(address.host, address.port, err));
    server.once('error', onError);
    server.listen({ host: address.host, port: address.port, reusePort: true, backlog: 4096 }, () => {
      server.off('error', onError);
      const bound = server.address();
      resolve(typeof bound === 'object' && bound !== null ? { host: bound.address, port: bound.port } : address);
    });
  });
}

function closeServer(server: NetServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}
