// The names certificates are installed and looked up under: RFC 6066 host names, lower case, no trailing
// dot, and "*.parent" for wildcards (one label, as RFC 6125 §6.4.3 lets clients match them). The store
// (./cert-store.ts) and the main thread's loader (./certificate-set.ts) both go through here, so a name the
// loader accepts is one the store can look up.

/** LDH labels; a leading "*." only on installed names (wildcards), never in SNI. */
const HOST_NAME = /^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Lower case without a trailing dot, or null when it is not a host name (`installing` false: SNI) or not a
 * host name or "*.parent" (`installing` true).
 */
export function normalizeName(name: string, installing: boolean): string | null {
  let n = name.length > 0 && name.length <= 254 ? name.toLowerCase() : '';
  if (n.endsWith('.')) n = n.slice(0, -1);
  return n.length > 0 && n.length <= 253 && HOST_NAME.test(n) && (installing || !n.startsWith('*.')) ? n : null;
}

/** "a.b.example.com" → "*.b.example.com"; a wildcard covers exactly one label. */
export function wildcardOf(name: string): string | null {
  const dot = name.indexOf('.');
  return dot === -1 ? null : `*${name.slice(dot)}`;
}

/** Whether a certificate for `dnsNames` (its subjectAltName DNS entries) covers `name` (a host or "*.parent"). */
export function covers(dnsNames: readonly string[], name: string): boolean {
  return dnsNames.includes(name) || (!name.startsWith('*.') && dnsNames.includes(wildcardOf(name) ?? ''));
}
