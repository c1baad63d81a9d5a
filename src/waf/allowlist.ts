// The policy's allowlist: requests it matches skip the WAF altogether, before any rule runs, so an entry
// always wins over the CRS and custom rules alike. An entry matches when every field it has matches (client
// range, path prefix, host); the list matches when any entry does.
import type { WafPolicy } from '../messages.ts';
import { CidrSet } from '../net/cidr.ts';

interface Entry {
  cidrs: CidrSet | null;
  path: string | null;
  domains: ReadonlySet<string> | null;
}

export class Allowlist {
  readonly #entries: readonly Entry[];

  /** Throws RangeError on a malformed CIDR; the config loader checked them first. */
  constructor(entries: WafPolicy['allowlist']) {
    this.#entries = entries.map((e) => ({
      cidrs: e.cidr === undefined ? null : new CidrSet([e.cidr]),
      path: e.path ?? null,
      domains: e.domains === undefined ? null : new Set(e.domains.map((d) => d.toLowerCase())),
    }));
  }

  get size(): number {
    return this.#entries.length;
  }

  /** `host` lower-case without its port; `target` the request target as sent (the query is ignored). */
  allows(clientIp: string, host: string, target: string): boolean {
    for (const e of this.#entries) {
      if (e.domains !== null && !e.domains.has(host)) continue;
      if (e.path !== null && !pathOf(target).startsWith(e.path)) continue;
      if (e.cidrs !== null && !e.cidrs.containsText(clientIp)) continue;
      return true;
    }
    return false;
  }
}

/**
 * The path to compare with an entry's prefix, or '' (which no prefix matches) when the path is not plain: an
 * escape, a dot segment or a backslash could make `/health/..%2Fadmin` begin like `/health` and reach the
 * origin as `/admin`, so only paths that mean what they say skip inspection.
 */
function pathOf(target: string): string {
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  return PLAIN_PATH.test(path) && !path.includes('/.') && !path.includes('//') ? path : '';
}

const PLAIN_PATH = /^\/[A-Za-z0-9/_.~-]*$/;
