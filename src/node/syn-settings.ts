// The SYN-proxy actor's settings (src/actors/syn-proxy.ts) from the config's [syn_proxy] and [server] sections.
import type { SynProxySettings } from '../actors/syn-proxy.ts';
import { parseHostPort, type Config } from '../config/schema.ts';

/** IPv6 headers take 20 bytes more than IPv4's: the same segment size fits in 20 bytes less of MSS. */
const IPV6_MSS_DIFFERENCE = 20;

/** Whether this config runs the XDP program: syn mode always, other modes when [syn_proxy] enabled. */
export function runsSynProxy(config: Readonly<Config>): boolean {
  return config.server.mode === 'syn' || config.syn_proxy.enabled;
}

/**
 * [syn_proxy] keys a reload applies live (the SYN-proxy actor reads the settings at every sync tick); the
 * interface, the attach mode, the pinned maps' place and size, and whether nftables is managed need a restart.
 */
export const SYN_PROXY_LIVE_KEYS: readonly string[] = [
  'protected_ports',
  'allowlist',
  'blocklist',
  'udp_open_ports',
  'drop_closed_udp',
  'source_pps',
  'source_burst',
  'icmp_pps',
  'icmp_burst',
  'mss',
  'wscale',
  'sync_interval_ms',
].map((key) => `syn_proxy.${key}`);

export function synProxySettings(config: Readonly<Config>): SynProxySettings {
  const syn = config.syn_proxy;
  const ports = new Set(syn.protected_ports);
  // In syn mode the node's own listener is what the program protects, whatever the list says.
  const listen = parseHostPort(config.server.bind_address);
  if (config.server.mode === 'syn' && listen !== null) ports.add(listen.port);
  return {
    interface: syn.interface,
    xdpMode: syn.xdp_mode,
    xdp: {
      protectedTcpPorts: [...ports].sort((a, b) => a - b),
      openUdpPorts: syn.udp_open_ports,
      dropClosedUdp: syn.drop_closed_udp,
      sourcePps: syn.source_pps,
      sourceBurst: syn.source_burst,
      icmpPps: syn.icmp_pps,
      icmpBurst: syn.icmp_burst,
      mss4: syn.mss,
      mss6: syn.mss - IPV6_MSS_DIFFERENCE,
      wscale: syn.wscale,
      ttl: 64,
    },
    allowlist: syn.allowlist,
    blocklist: syn.blocklist,
    netfilter: syn.netfilter,
    pinDir: syn.pin_dir,
    sourceEntries: syn.source_entries,
    syncIntervalMs: syn.sync_interval_ms,
  };
}
