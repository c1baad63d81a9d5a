// What the listener actor (src/actors/listener.ts) needs of a data plane, whichever it is: TCP mode's native
// engine (./tcp-native.ts) or JS forwarding (./tcp.ts), or L7 mode's proxy (src/http/proxy.ts); and what
// they share.
import { SecbeatError } from '../errors.ts';
import type { DrainReport, ListenerStats } from '../messages.ts';

/** What a data plane needs of a blocklist: net.BlockList and SharedIpSet (src/blocklist/) both fit. */
export interface IpBlockCheck {
  check(address: string, family?: string): boolean;
}

export interface DataPlane extends AsyncDisposable {
  /** Binds with reusePort (other threads bind the same port). Rejects with SECBEAT_ERR_PROXY_LISTEN. */
  listen(): Promise<{ host: string; port: number }>;
  stats(): ListenerStats;
  /** Adds the counts gathered since the last sweep to the metrics registry now. */
  flushMetrics(): void;
  /** Stops accepting; open connections may finish until `timeoutMs`, then the rest are closed. */
  drain(timeoutMs: number): Promise<DrainReport>;
  /** Closes the listener and every open connection at once. */
  close(): Promise<void>;
}

/**
 * The shared end of a drain: waits until `open()` reaches zero or `timeoutMs` passes, then `forceClose()`s
 * the rest and waits for their reports, so that the report is final once every limit is released. The
 * data plane calls `settled()` whenever its open count reaches zero.
 */
export class DrainWaiters {
  #waiters: (() => void)[] = [];

  async drain(open: () => number, forceClose: () => void, timeoutMs: number): Promise<DrainReport> {
    const before = open();
    if (before > 0 && timeoutMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const forced = open();
    if (forced > 0) {
      forceClose();
      // Closed connections report on a later turn.
      if (open() > 0) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return { closedGracefully: before - forced, closedForcibly: forced };
  }

  settled(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

export function listenError(host: string, port: number, cause: unknown): SecbeatError {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new SecbeatError('SECBEAT_ERR_PROXY_LISTEN', `cannot listen on ${host}:${port}: ${message}`, { cause });
}
