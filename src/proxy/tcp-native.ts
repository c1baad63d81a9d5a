// TCP mode's data plane on the native engine (native/src/tcp_engine.cc through src/native/binding.ts): one
// NativeTcpProxy per worker thread, each with its own engine thread and SO_REUSEPORT listener, so the kernel
// spreads connections across threads and a connection never changes thread. The engine accepts, connects
// and splices; this class keeps the policy. Accepted clients arrive in batches (one per engine turn) and are
// judged here against the shared blocklist and connection limits (./conn-limits.ts); finished connections
// arrive the same way and release their limits. A connection therefore costs JS a few hundred nanoseconds
// and no object that outlives the batch, which is what lets TCP mode approach HAProxy per CPU-second and per
// idle connection (docs/bench.md).
//
// Backend connect latency (secbeat_latency_seconds{mode="tcp"}) is observed when a connection's report
// arrives, i.e. at its end: the engine reports each connection once, not once per phase.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { DrainReport, ListenerStats } from '../messages.ts';
import type { AcceptedClient, ClosedConnection, NativeBinding, TcpCloseReason, TcpEngine } from '../native/binding.ts';
import { TcpAccounting, type RefusalReason, type UpstreamErrorKind } from './tcp-accounting.ts';
import { DrainWaiters, listenError, type DataPlane } from './data-plane.ts';
import type { TcpProxyOptions } from './tcp.ts';

export interface NativeTcpProxyOptions extends TcpProxyOptions {
  binding: NativeBinding;
}

/** How often byte totals and batched counters reach the metrics registry (scrapes flush first anyway). */
const SWEEP_MS = 1_000;
const LISTEN_BACKLOG = 4096;

export class NativeTcpProxy implements DataPlane {
  readonly #o: NativeTcpProxyOptions;
  readonly #engine: TcpEngine;
  readonly #accounting: TcpAccounting;
  /** Admitted connections whose closed report has not arrived. */
  #active = 0;
  /** The engine's byte totals already added to the accounting. */
  #addedIn = 0;
  #addedOut = 0;
  #listening = false;
  #draining = false;
  #engineClosed = false;
  readonly #drainWaiters = new DrainWaiters();

  constructor(options: NativeTcpProxyOptions) {
    this.#o = options;
    this.#accounting = new TcpAccounting(options.metrics, options.log);
    this.#engine = new options.binding.TcpEngine((accepted, closed) => this.#onEvents(accepted, closed));
  }

  async listen(): Promise<{ host: string; port: number }> {
    const { listen, backend } = this.#o;
    try {
      // The engine takes numeric addresses only; names are resolved once, here, as node:net would per connect.
      const [host, backendHost] = await Promise.all([numericHost(listen.host), numericHost(backend.host)]);
      const port = this.#engine.listen({
        host,
        port: listen.port,
        backlog: LISTEN_BACKLOG,
        backendHost,
        backendPort: backend.port,
        connectTimeoutMs: this.#o.connectTimeoutMs,
        idleTimeoutMs: this.#o.idleTimeoutMs,
        noDelay: this.#o.noDelay,
      });
      this.#listening = true;
      this.#accounting.startSweeping(SWEEP_MS, () => this.flushMetrics(), () => this.flushMetrics());
      return { host, port };
    } catch (err) {
      this.#closeEngine();
      throw listenError(listen.host, listen.port, err);
    }
  }

  stats(): ListenerStats {
    const { bytesIn, bytesOut } = this.#engine.stats();
    const base = { thread: this.#o.threadName, listening: this.#listening, draining: this.#draining, active: this.#active };
    return this.#accounting.stats(base, bytesIn - this.#addedIn, bytesOut - this.#addedOut);
  }

  flushMetrics(): void {
    const { bytesIn, bytesOut } = this.#engine.stats();
    this.#accounting.addBytes(bytesIn - this.#addedIn, bytesOut - this.#addedOut);
    this.#addedIn = bytesIn;
    this.#addedOut = bytesOut;
    this.#accounting.flush(this.#active);
  }

  async drain(timeoutMs: number): Promise<DrainReport> {
    this.#draining = true;
    if (this.#listening) {
      this.#engine.stopListening();
      this.#listening = false;
    }
    const report = await this.#drainWaiters.drain(() => this.#active, () => this.#engine.removeAll(), timeoutMs);
    this.#accounting.stopSweeping();
    return report;
  }

  async close(): Promise<void> {
    await this.drain(0);
    this.#closeEngine();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #closeEngine(): void {
    if (this.#engineClosed) return;
    this.#engineClosed = true;
    this.#engine.close();
  }

  #onEvents(accepted: AcceptedClient[], closed: ClosedConnection[]): void {
    if (accepted.length > 0) {
      const admit: number[] = [];
      const refuse: number[] = [];
      for (const client of accepted) {
        const refusal = this.#judge(client);
        if (refusal === null) {
          admit.push(client.id);
          this.#active++;
          this.#accounting.admitted();
        } else {
          refuse.push(client.id);
          this.#accounting.refused(client.ip, refusal);
        }
      }
      this.#engine.decide(admit, refuse);
    }
    for (const c of closed) {
      this.#active--;
      this.#o.limits.release(c.ip);
      if (c.connectMs >= 0) this.#accounting.connected(c.connectMs / 1000);
      this.#accounting.finished(failureOf(c.reason), c.durationMs / 1000);
    }
    if (this.#active === 0) this.#drainWaiters.settled();
  }

  /** null admits the client (and holds its connection-limit slots until its closed report). */
  #judge(client: AcceptedClient): RefusalReason | null {
    if (this.#draining) return 'draining';
    if (this.#o.blockList.check(client.ip, client.ipv6 ? 'ipv6' : 'ipv4')) return 'blocklist';
    const outcome = this.#o.limits.tryAcquire(client.ip);
    return outcome === 'ok' ? null : outcome;
  }
}

/** The upstream-error kind a close reason counts as; null for a clean end (a drain's removal included). */
function failureOf(reason: TcpCloseReason): UpstreamErrorKind | null {
  switch (reason) {
    case 'closed':
    case 'removed':
      return null;
    case 'idle':
      return 'idle_timeout';
    case 'reset':
      return 'reset';
    case 'connect_refused':
    case 'connect_timeout':
      return reason;
    default:
      return reason.startsWith('connect_error:') ? 'connect_error' : 'reset';
  }
}

async function numericHost(host: string): Promise<string> {
  if (isIP(host) !== 0) return host;
  return (await lookup(host)).address;
}
