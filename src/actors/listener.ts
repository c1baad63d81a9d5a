// The listener actor: one per data-plane worker thread, each owning the thread's data plane — TCP mode's
// (native engine or JS forwarding) or L7 mode's (src/http/) — bound to the same port(s) as the other threads
// with reusePort, so the kernel spreads connections over threads and no connection ever hops threads.
// Control messages only: drain, stats, and (L7 mode) a reload's routes and certificates.
import { assertNever, SecbeatError } from '../errors.ts';
import type { L7Applied, L7Update, ListenerMsg } from '../messages.ts';
import { SharedBlocklist } from '../blocklist/shared-blocklist.ts';
import { RateCounter } from '../ratelimit/shared-counters.ts';
import { withUpdate } from '../http/reload.ts';
import type { L7Settings } from '../http/setup.ts';
import { loadNative, type NativeBinding } from '../native/binding.ts';
import { ConnLimits } from '../proxy/conn-limits.ts';
import { TcpProxy, type TcpProxyOptions } from '../proxy/tcp.ts';
import type { DataPlane } from '../proxy/data-plane.ts';
import { NativeTcpProxy } from '../proxy/tcp-native.ts';
import type { Behavior } from '../runtime/actor.ts';
import type { Logger } from '../telemetry/log.ts';
import { metrics } from '../telemetry/metrics.ts';

export interface ListenerInput {
  listen: { host: string; port: number };
  backend: { host: string; port: number };
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  noDelay: boolean;
  forwarding: 'auto' | 'splice' | 'js';
  threadIndex: number;
  /** Shared with every thread: connection counts and the blocklist (exact addresses, then ranges). */
  connLimitsState: SharedArrayBuffer;
  blocklistState: SharedArrayBuffer;
  cidrBlocklistState: SharedArrayBuffer;
  /** Per-client request counts of every thread (../ratelimit/shared-counters.ts); null without [rate_limit]. */
  rateCountersState: SharedArrayBuffer | null;
  /** L7 mode's settings; null in TCP mode. */
  l7: L7Settings | null;
}

interface ListenerState {
  proxy: DataPlane;
  /** L7 mode: applies a reload; null in TCP mode. */
  reconfigure: ((update: L7Update) => L7Applied) | null;
  /** What a restart of this actor re-inits with (the same object): kept current by reconfigure. */
  input: ListenerInput;
}

export const listener: Behavior<ListenerState, ListenerMsg, ListenerInput> = {
  name: 'listener',
  async init(ctx, input) {
    const limits = new ConnLimits(input.connLimitsState, input.threadIndex);
    const blockList = new SharedBlocklist(input.blocklistState, input.cidrBlocklistState);
    if (input.l7 !== null) {
      // Loaded only in L7 mode: node:http, node:http2 and the L7 modules cost a TCP-mode thread megabytes of RSS.
      const { buildL7Proxy } = await import('../http/setup.ts');
      const rate = input.l7.rateLimit;
      const rateCounter = rate === null || input.rateCountersState === null ? null : new RateCounter(input.rateCountersState, input.threadIndex, rate.windowMs);
      const { proxy, reconfigure } = buildL7Proxy(input.l7, { connLimits: limits, blockList, rateCounter, metrics: metrics(), log: ctx.log, threadName: ctx.self.thread });
      const bound = await proxy.listen();
      ctx.log.info({ listen: bound, tlsPort: proxy.tlsPort || null }, 'l7 listener ready');
      return { proxy, reconfigure, input };
    }
    const binding = nativeEngine(input.forwarding, ctx.log);
    const options: TcpProxyOptions = {
      listen: input.listen,
      backend: input.backend,
      connectTimeoutMs: input.connectTimeoutMs,
      idleTimeoutMs: input.idleTimeoutMs,
      noDelay: input.noDelay,
      limits,
      blockList,
      metrics: metrics(),
      log: ctx.log,
      threadName: ctx.self.thread,
    };
    const proxy = binding === null ? new TcpProxy(options) : new NativeTcpProxy({ ...options, binding });
    const bound = await proxy.listen();
    ctx.log.info({ listen: bound, backend: input.backend, forwarding: binding === null ? 'js' : 'splice' }, 'tcp listener ready');
    return { proxy, reconfigure: null, input };
  },
  async receive(state, msg, ctx) {
    switch (msg.type) {
      case 'listener.stats':
        ctx.reply(state.proxy.stats());
        return state;
      case 'listener.drain':
        ctx.reply(await state.proxy.drain(msg.timeoutMs));
        return state;
      case 'listener.reconfigure': {
        if (state.reconfigure === null || state.input.l7 === null) {
          throw new SecbeatError('SECBEAT_ERR_MESSAGE_INVALID', 'listener.reconfigure is for L7 mode; this listener runs TCP mode');
        }
        ctx.reply(state.reconfigure(msg.l7));
        state.input.l7 = withUpdate(state.input.l7, msg.l7);
        return state;
      }
      default:
        return assertNever(msg);
    }
  },
  async stop(state) {
    await state.proxy.close();
  },
};

/** The native engine's binding, or null for JS forwarding ("auto" falls back with one log line). */
function nativeEngine(mode: ListenerInput['forwarding'], log: Logger): NativeBinding | null {
  if (mode === 'js') return null;
  const native = loadNative();
  if (native.ok) return native.binding;
  if (mode === 'splice') throw native.error;
  log.warn({ reason: native.error.message }, 'native addon unavailable; forwarding TCP in JS');
  return null;
}
