// The TCP-mode listener actor: one per data-plane worker thread, each owning a TcpProxy bound to the same
// port with reusePort, so the kernel spreads connections over threads and no connection ever hops threads.
// Control messages only: drain and stats.
import { assertNever } from '../errors.ts';
import type { ListenerMsg } from '../messages.ts';
import { SharedIpSet } from '../blocklist/shared-ip-set.ts';
import { loadNative, type NativeBinding } from '../native/binding.ts';
import { ConnLimits } from '../proxy/conn-limits.ts';
import { TcpProxy, type TcpProxyOptions } from '../proxy/tcp.ts';
import type { TcpDataPlane } from '../proxy/tcp-data-plane.ts';
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
  /** Shared with every thread: connection counts and the blocklist. */
  connLimitsState: SharedArrayBuffer;
  blocklistState: SharedArrayBuffer;
}

interface ListenerState {
  proxy: TcpDataPlane;
}

export const listener: Behavior<ListenerState, ListenerMsg, ListenerInput> = {
  name: 'listener',
  async init(ctx, input) {
    const binding = nativeEngine(input.forwarding, ctx.log);
    const options: TcpProxyOptions = {
      listen: input.listen,
      backend: input.backend,
      connectTimeoutMs: input.connectTimeoutMs,
      idleTimeoutMs: input.idleTimeoutMs,
      noDelay: input.noDelay,
      limits: new ConnLimits(input.connLimitsState, input.threadIndex),
      blockList: new SharedIpSet(input.blocklistState),
      metrics: metrics(),
      log: ctx.log,
      threadName: ctx.self.thread,
    };
    const proxy = binding === null ? new TcpProxy(options) : new NativeTcpProxy({ ...options, binding });
    const bound = await proxy.listen();
    ctx.log.info({ listen: bound, backend: input.backend, forwarding: binding === null ? 'js' : 'splice' }, 'tcp listener ready');
    return { proxy };
  },
  async receive(state, msg, ctx) {
    switch (msg.type) {
      case 'listener.stats':
        ctx.reply(state.proxy.stats());
        return state;
      case 'listener.drain':
        ctx.reply(await state.proxy.drain(msg.timeoutMs));
        return state;
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
