// Origins for L7 mode, one set per data-plane thread: an undici Pool per origin URL (keep-alive
// connections, no pipelining: one request per connection at a time, so a slow response never holds up the
// next; https:// origins over TLS, verified against the system's CAs or [l7] origin_ca_path, SNI = the
// URL's host name), shared by every route naming that origin, with passive health: an origin that fails
// `ejectAfterFailures` times in a row sits out `ejectMs`, and round robin skips it meanwhile. Nothing here
// is per request but the pick and the outcome report.
import { Pool } from 'undici';

export interface UpstreamSettings {
  connectTimeoutMs: number;
  /** Response headers deadline (undici headersTimeout). */
  headersTimeoutMs: number;
  /** Idle time between body chunks before the exchange fails (undici bodyTimeout); 0 = none. */
  bodyTimeoutMs: number;
  connectionsPerOrigin: number;
  ejectAfterFailures: number;
  ejectMs: number;
  /** PEM CA bundle that https:// origins' certificates must chain to; null = Node's bundled root CAs. */
  originCa: Uint8Array | null;
  /** false only for origins with self-signed certificates one cannot distribute (not recommended). */
  verifyOrigins: boolean;
}

export class Origin {
  readonly url: string;
  readonly pool: Pool;
  /** Failures in a row; any success resets it. */
  failures = 0;
  /** performance.now() until which the origin is ejected; 0 = in rotation. */
  ejectedUntil = 0;

  constructor(url: string, pool: Pool) {
    this.url = url;
    this.pool = pool;
  }
}

/** The origins of one route and its round-robin cursor. */
export class OriginSet {
  readonly origins: readonly Origin[];
  #next = 0;

  constructor(origins: readonly Origin[]) {
    this.origins = origins;
  }

  /**
   * The next origin in rotation that is not ejected and not `exclude` (the one a retry just failed on).
   * When every origin is ejected the least recently ejected one is tried anyway: refusing all traffic
   * because health checks are pessimistic would turn a blip into an outage (Envoy's panic threshold).
   */
  pick(now: number, exclude: Origin | null = null): Origin | null {
    const n = this.origins.length;
    let fallback: Origin | null = null;
    for (let i = 0; i < n; i++) {
      const origin = this.origins[(this.#next + i) % n]!;
      if (origin === exclude) continue;
      if (origin.ejectedUntil <= now) {
        this.#next = (this.#next + i + 1) % n;
        return origin;
      }
      if (fallback === null || origin.ejectedUntil < fallback.ejectedUntil) fallback = origin;
    }
    return fallback;
  }
}

export class Upstreams implements AsyncDisposable {
  readonly #settings: UpstreamSettings;
  readonly #origins = new Map<string, Origin>();

  constructor(settings: UpstreamSettings) {
    this.#settings = settings;
  }

  /** The origin set for a route's URLs; pools are created once per URL and shared. */
  set(urls: readonly string[]): OriginSet {
    return new OriginSet(urls.map((url) => this.#origin(url)));
  }

  succeeded(origin: Origin): void {
    origin.failures = 0;
    origin.ejectedUntil = 0;
  }

  /** Counts a connection-level failure (refused, reset, timeout); returns true when it ejected the origin. */
  failed(origin: Origin, now: number): boolean {
    origin.failures++;
    if (origin.failures < this.#settings.ejectAfterFailures) return false;
    origin.failures = 0;
    origin.ejectedUntil = now + this.#settings.ejectMs;
    return true;
  }

  async close(): Promise<void> {
    const pools = [...this.#origins.values()].map((o) => o.pool.close());
    this.#origins.clear();
    await Promise.allSettled(pools);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #origin(url: string): Origin {
    const key = new URL(url).origin;
    let origin = this.#origins.get(key);
    if (origin === undefined) {
      const s = this.#settings;
      origin = new Origin(
        key,
        new Pool(key, {
          connections: s.connectionsPerOrigin,
          pipelining: 1,
          connectTimeout: s.connectTimeoutMs,
          headersTimeout: s.headersTimeoutMs,
          bodyTimeout: s.bodyTimeoutMs,
          // Used only by https:// origins; undici sends the URL's host name as SNI and checks the certificate against it.
          connect: { rejectUnauthorized: s.verifyOrigins, ...(s.originCa === null ? {} : { ca: Buffer.from(s.originCa) }) },
        }),
      );
      this.#origins.set(key, origin);
    }
    return origin;
  }
}
