// What a config asks of this build and machine beyond the schema: checked by `validate-config` (which binds
// nothing) and again before a node starts, so both refuse the same configs with the same words.
import type { Config } from '../config/schema.ts';
import { loadNative } from '../native/binding.ts';
import { findXdpObject, loadXdpAddon } from '../native/xdp.ts';
import { runsSynProxy } from './syn-settings.ts';

/** Problems that prevent starting `config` here; empty when it can start. */
export function startRequirements(config: Readonly<Config>): string[] {
  const problems: string[] = [];
  if (runsSynProxy(config)) problems.push(...synProxyRequirements(config));
  if (config.server.mode !== 'l7' && config.server.forwarding === 'splice') {
    const native = loadNative();
    if (!native.ok) problems.push(`server.forwarding = "splice" needs the native addon: ${native.error.message}`);
  }
  return problems;
}

/**
 * What attaching the XDP program needs, each missing piece named: root (CAP_BPF and CAP_NET_ADMIN), the built
 * object and addon, the interface. tcp and l7 modes without [syn_proxy] never ask.
 */
function synProxyRequirements(config: Readonly<Config>): string[] {
  const why = config.server.mode === 'syn' ? 'server.mode = "syn"' : '[syn_proxy] enabled';
  const problems: string[] = [];
  if (process.platform !== 'linux') return [`${why} needs Linux (XDP), this is ${process.platform}`];
  if (process.getuid?.() !== 0) problems.push(`${why} needs root (CAP_BPF and CAP_NET_ADMIN to load and attach XDP programs)`);
  const addon = loadXdpAddon();
  if (!addon.ok) problems.push(`${why} needs ${addon.error.message}`);
  const object = findXdpObject();
  if (!object.ok) problems.push(`${why} needs ${object.error.message}`);
  if (addon.ok && addon.binding.ifindex(config.syn_proxy.interface) === 0) {
    problems.push(`${why}: no network interface named ${JSON.stringify(config.syn_proxy.interface)} (syn_proxy.interface)`);
  }
  return problems;
}
