// Origins for L7 mode, one set per data-plane thread: an OriginPool per origin URL (./origin-pool.ts:
// keep-alive connections, one request per connection at a time; https:// origins over TLS, verified against
// Node's bundled CAs or [l7] origin_ca_path, SNI = the URL's host name), shared by every route naming that origin, with passive health: an origin that fails
// `ejectAfterFailures` times in a row sits out `ejectMs`, and round robin skips it meanwhile. Nothing here
// is per request but the pick and the outcome report.
import { OriginPool } from './origin-pool.ts';

export interface UpstreamSettings {
  connectTimeoutMs: number;
  /** Response head deadline, from the request's last byte sent. */
  headersTimeoutMs: number;
  /** Idle time between response body chunks before the exchange fails; 0 = none. */
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
  readonly pool: OriginPool;
  /** Failures in a row; any success resets it. */
  failures = 0;
  /** performance.now() until which the origin is ejected; 0 = in rotation. */
  ejectedUntil = 0;

  constructor(url: string, pool: OriginPool) {
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

  /** Closes every origin connection now: the proxy has drained its clients first. */
  async close(): Promise<void> {
    for (const origin of this.#origins.values()) origin.pool.close();
    this.#origins.clear();
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
        new OriginPool(new URL(key), {
          connections: s.connectionsPerOrigin,
          connectTimeoutMs: s.connectTimeoutMs,
          headersTimeoutMs: s.headersTimeoutMs,
          bodyTimeoutMs: s.bodyTimeoutMs,
          ca: s.originCa === null ? null : Buffer.from(s.originCa),
          verify: s.verifyOrigins,
        }),
      );
      this.#origins.set(key, origin);
    }
    return origin;
  }
}
