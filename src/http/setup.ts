// Builds a thread's L7Proxy from plain settings (what crosses into a worker thread: structured-clone data,
// certificates in shared memory) and the thread's shared-state views, and applies what a config reload
// changes. The listener actor calls both; the main thread derives the settings from config
// (src/node/l7-settings.ts).
import { CidrSet } from '../net/cidr.ts';
import type { ConnLimits } from '../proxy/conn-limits.ts';
import type { RateCounter } from '../ratelimit/shared-counters.ts';
import type { IpBlockCheck } from '../proxy/data-plane.ts';
import type { Logger } from '../telemetry/log.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { L7Applied, L7Update, WafSettings } from '../messages.ts';
import { applyCertificates, certificateStore, type L7TlsSettings } from './certificates.ts';
import { L7Proxy, type L7Limits } from './proxy.ts';
import { RouteTable, type RouteConfig } from './routes.ts';
import { Upstreams, type UpstreamSettings } from './upstream.ts';
import { compileWaf, WafGate, warmUp, type WafRules } from './waf-gate.ts';
import { Challenge } from './challenge.ts';

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
  /** null: the WAF is disabled. */
  waf: WafSettings | null;
  /** null: no rate limit ([rate_limit] disabled). */
  rateLimit: { requests: number; windowMs: number } | null;
}

export interface L7Deps {
  connLimits: ConnLimits;
  blockList: IpBlockCheck;
  /** This thread's view of the node's shared rate counters; null when settings.rateLimit is. */
  rateCounter: RateCounter | null;
  metrics: Metrics;
  log: Logger;
  threadName: string;
}

/** A thread's L7 data plane and the one thing a reload does to it. */
export interface L7DataPlane {
  proxy: L7Proxy;
  /**
   * Swaps the route table and brings the certificates to the update's set, in one synchronous step: no
   * request or handshake on this thread runs in between, so none sees half of it.
   */
  reconfigure(update: L7Update): L7Applied;
}

export function buildL7Proxy(settings: L7Settings, deps: L7Deps): L7DataPlane {
  const trusted = new CidrSet(settings.trustedProxies);
  const waf = settings.waf === null ? null : wafGate(settings.waf, deps);
  const tls = settings.tls === null ? null : { listen: settings.tls.listen, certs: certificateStore(settings.tls), minVersion: settings.tls.minVersion, ciphers: settings.tls.ciphers };
  const proxy = new L7Proxy({
    listen: settings.listen,
    tls,
    routes: new RouteTable(settings.routes, settings.defaultOrigins),
    upstreams: new Upstreams(settings.upstream),
    trustedProxies: trusted,
    proxyProtocol: settings.proxyProtocol,
    limits: settings.limits,
    connLimits: deps.connLimits,
    blockList: deps.blockList,
    waf,
    rateLimit: settings.rateLimit === null || deps.rateCounter === null ? null : { counter: deps.rateCounter, requests: settings.rateLimit.requests },
    metrics: deps.metrics,
    log: deps.log,
    threadName: deps.threadName,
  });
  return {
    proxy,
    reconfigure(update) {
      // The default route follows server.backend_address, which a reload does not change.
      proxy.setRoutes(new RouteTable(update.routes, settings.defaultOrigins));
      const certificates = tls === null || update.certificates === null ? null : applyCertificates(tls.certs, update.certificates);
      if (certificates?.defaultReplaced === true) proxy.refreshDefaultCertificate();
      // Turning the WAF on or off, and its mode and limits, wait for a restart; its rules are swapped now.
      if (waf !== null && update.waf !== null) waf.swap(compiledRules(update.waf, deps));
      return { routes: update.routes.length, certificates, wafRules: waf === null ? null : waf.ruleCount };
    },
  };
}

function wafGate(settings: WafSettings, deps: L7Deps): WafGate {
  return new WafGate({
    rules: compiledRules(settings, deps),
    mode: settings.mode,
    inspectBodyBytes: settings.inspectBodyBytes,
    bodyOverLimit: settings.bodyOverLimit,
    matchLog: settings.matchLog,
    challenge: new Challenge(settings.challenge),
    log: deps.log,
    metrics: deps.metrics,
  });
}

/** The main thread compiled the same settings before sending them (src/node/l7-settings.ts): errors here are files changed since. */
function compiledRules(settings: WafSettings, deps: L7Deps): WafRules {
  const { rules, errors } = compileWaf(settings);
  if (errors.length > 0) deps.log.warn({ errors: errors.slice(0, 20), count: errors.length }, 'waf rules have errors; those rules are left out');
  warmUp(rules.ruleSet);
  return rules;
}
