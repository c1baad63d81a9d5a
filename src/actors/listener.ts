// The TCP-mode listener actor: one per data-plane worker thread, each owning a TcpProxy bound to the same
// port with reusePort, so the kernel spreads connections over threads and no connection ever hops threads.
// Control messages only: drain and stats.
import { assertNever } from '../errors.ts';
import type { ListenerMsg } from '../messages.ts';
import { SharedIpSet } from '../blocklist/shared-ip-set.ts';
import { loadNative } from '../native/binding.ts';
import { Splicer } from '../native/splicer.ts';
import { ConnLimits } from '../proxy/conn-limits.ts';
import { TcpProxy } from '../proxy/tcp.ts';
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
  proxy: TcpProxy;
  splicer: Splicer | null;
}

export const listener: Behavior<ListenerState, ListenerMsg, ListenerInput> = {
  name: 'listener',
  async init(ctx, input) {
    const splicer = kernelForwarding(input.forwarding, ctx.log);
    const proxy = new TcpProxy({
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
      splicer,
    });
    try {
      const bound = await proxy.listen();
      ctx.log.info({ listen: bound, backend: input.backend, forwarding: splicer ? 'splice' : 'js' }, 'tcp listener ready');
    } catch (err) {
      splicer?.close();
      throw err;
    }
    return { proxy, splicer };
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
    state.splicer?.close();
  },
};

/** The splice engine for this thread, or null for JS forwarding ("auto" falls back with one log line). */
function kernelForwarding(mode: ListenerInput['forwarding'], log: Logger): Splicer | null {
  if (mode === 'js') return null;
  const native = loadNative();
  if (native.ok) return new Splicer(native.binding);
  if (mode === 'splice') throw native.error;
  log.warn({ reason: native.error.message }, 'native addon unavailable; forwarding TCP in JS');
  return null;
}
