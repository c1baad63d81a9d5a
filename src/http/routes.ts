// Routing by host for L7 mode: the request's Host (HTTP/1.1) or :authority (HTTP/2) picks a route, whose
// origins serve it. Exact names win over "*.parent" wildcards (one label, as in TLS), and hosts no route
// names go to the default route. The table is compiled once per config and swapped whole, so a lookup is two
// Map probes and never sees a half-built table.

import type { WafMode } from './waf-gate.ts';

/** One route as compiled from config: a stable id (for metrics and logs), its origins, its WAF mode and rate limit. */
export interface Route {
  /** "default" or the route's first configured host. */
  readonly id: string;
  readonly origins: readonly string[];
  /** Absent: the [waf] mode. */
  readonly waf?: WafMode | undefined;
  /** Requests a client may make in a rate-limit window (its fleet-wide count) on this route; absent: [rate_limit] requests. */
  readonly rateLimit?: number | undefined;
}

export interface RouteConfig {
  hosts: readonly string[];
  origins: readonly string[];
  waf?: WafMode | undefined;
  rateLimit?: number | undefined;
}

/** Longest host accepted for lookup (RFC 1035 name, plus ":port" and brackets). */
const MAX_HOST_LENGTH = 300;

export class RouteTable {
  readonly #exact = new Map<string, Route>();
  readonly #wildcard = new Map<string, Route>();
  readonly default: Route;

  /** Hosts as the config schema checks them: names or "*.parent", any case, no trailing dot. */
  constructor(routes: readonly RouteConfig[], defaultOrigins: readonly string[]) {
    this.default = { id: 'default', origins: defaultOrigins };
    for (const config of routes) {
      const route: Route = { id: config.hosts[0] ?? 'default', origins: config.origins, waf: config.waf, rateLimit: config.rateLimit };
      for (const name of config.hosts) {
        const host = name.toLowerCase();
        if (host.startsWith('*.')) this.#wildcard.set(host.slice(2), route);
        else this.#exact.set(host, route);
      }
    }
  }

  /** The route for a Host header or :authority value (port and trailing dot ignored, any case). */
  lookup(hostHeader: string | undefined): Route {
    if (hostHeader === undefined || hostHeader.length === 0 || hostHeader.length > MAX_HOST_LENGTH) return this.default;
    const host = hostName(hostHeader);
    const exact = this.#exact.get(host);
    if (exact !== undefined) return exact;
    const dot = host.indexOf('.');
    return (dot === -1 ? undefined : this.#wildcard.get(host.slice(dot + 1))) ?? this.default;
  }
}

/** "Example.COM.:8443" → "example.com"; "[::1]:80" → "[::1]" (an IP literal matches no route name). */
export function hostName(hostHeader: string): string {
  let end = hostHeader.length;
  if (hostHeader.charCodeAt(0) === 0x5b /* [ */) {
    const close = hostHeader.indexOf(']');
    end = close === -1 ? end : close + 1;
  } else {
    const colon = hostHeader.lastIndexOf(':');
    if (colon !== -1) end = colon;
  }
  if (end > 0 && hostHeader.charCodeAt(end - 1) === 0x2e /* . */) end--;
  const host = hostHeader.slice(0, end);
  // Most clients already send lower case: skip the copy then.
  return host === host.toLowerCase() ? host : host.toLowerCase();
}
