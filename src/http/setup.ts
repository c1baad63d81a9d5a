// Builds a thread's L7Proxy from plain settings (what crosses into a worker thread: structured-clone data,
// PEM bytes included) and the thread's shared-state views. The listener actor calls it; the main thread
// derives the settings from config (src/node/node.ts).
import { CidrSet } from '../net/cidr.ts';
import type { ConnLimits } from '../proxy/conn-limits.ts';
import type { IpBlockCheck } from '../proxy/data-plane.ts';
import type { Logger } from '../telemetry/log.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { certificateStore, type L7TlsSettings } from './certificates.ts';
import { L7Proxy, type L7Limits } from './proxy.ts';
import { RouteTable, type RouteConfig } from './routes.ts';
import { Upstreams, type UpstreamSettings } from './upstream.ts';

export interface L7Settings {
  listen: { host: string; port: number };
  tls: L7TlsSettings | null;
  routes: RouteConfig[];
  defaultOrigins: string[];
  trustedProxies: string[];
  /** Both listeners expect a PROXY protocol header first, from a trusted proxy. */
  proxyProtocol: boolean;
  limits: L7Limits;
  upstream: UpstreamSettings;
}

export interface L7Deps {
  connLimits: ConnLimits;
  blockList: IpBlockCheck;
  metrics: Metrics;
  log: Logger;
  threadName: string;
}

export function buildL7Proxy(settings: L7Settings, deps: L7Deps): L7Proxy {
  const trusted = new CidrSet(settings.trustedProxies);
  return new L7Proxy({
    listen: settings.listen,
    tls: settings.tls === null ? null : { listen: settings.tls.listen, certs: certificateStore(settings.tls), minVersion: settings.tls.minVersion, ciphers: settings.tls.ciphers },
    routes: new RouteTable(settings.routes, settings.defaultOrigins),
    upstreams: new Upstreams(settings.upstream),
    trustedProxies: trusted,
    proxyProtocol: settings.proxyProtocol,
    limits: settings.limits,
    connLimits: deps.connLimits,
    blockList: deps.blockList,
    metrics: deps.metrics,
    log: deps.log,
    threadName: deps.threadName,
  });
}
