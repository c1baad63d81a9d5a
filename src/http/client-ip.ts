// The client address of an HTTP request behind proxies. X-Forwarded-For is a list every hop appends to, so
// only its right end is trustworthy: starting from the connection's peer, each hop that is a trusted proxy
// vouches for the entry to its left, and the first address a trusted hop did not itself come from is the
// client. An untrusted peer's header is ignored whole, so a client cannot spoof its address by sending one.
// (Same walk as nginx `real_ip_recursive on`, Envoy `xff_num_trusted_hops` by range, Caddy trusted_proxies.)
import type { CidrSet } from '../net/cidr.ts';
import { parseIp } from '../net/ip.ts';

/**
 * Entries examined before giving up: a real chain has a handful of hops, and the walk must stay bounded
 * whatever a client piles up at the left end (which, past the trusted hops, is never read anyway).
 */
export const MAX_FORWARDED_HOPS = 32;

export interface ClientIp {
  /** The client address as it appeared (peer address, or the X-Forwarded-For entry without port/brackets). */
  address: string;
  /** Hops walked through X-Forwarded-For: 0 when the peer itself is the client. */
  hops: number;
}

const scratch = new Uint32Array(4);

/**
 * `peer` is the connection's remote address; `xff` the X-Forwarded-For header value(s) in arrival order
 * (Node joins repeated headers with ", ", which is the list semantics of RFC 9110 §5.3).
 */
export function clientIp(peer: string, xff: string | readonly string[] | undefined, trusted: CidrSet): ClientIp {
  if (xff === undefined || trusted.size === 0 || !trusted.containsText(peer)) return { address: peer, hops: 0 };
  const header = typeof xff === 'string' ? xff : xff.join(',');
  let address = peer;
  let hops = 0;
  let end = header.length;
  while (end > 0 && hops < MAX_FORWARDED_HOPS) {
    const comma = header.lastIndexOf(',', end - 1);
    const entry = forwardedAddress(header, comma + 1, end);
    end = comma === -1 ? 0 : comma;
    // An empty or malformed entry was written (or let through) by the trusted hop to its right; nothing
    // to its left can be vouched for, so that hop is the client.
    if (entry === null) break;
    address = entry;
    hops++;
    if (!trusted.contains(scratch)) break;
  }
  return { address, hops };
}

/**
 * The address in header[start, end): trimmed, without `[...]` around IPv6 or a `:port` after IPv4, parsed
 * into `scratch`. Null when it is not an address (`unknown`, an obfuscated identifier, garbage).
 */
function forwardedAddress(header: string, start: number, end: number): string | null {
  while (start < end && isSpace(header.charCodeAt(start))) start++;
  while (end > start && isSpace(header.charCodeAt(end - 1))) end--;
  if (end - start < 2 || end - start > 53) return null; // "[" 45 "]:" 5 at most
  let text: string;
  if (header.charCodeAt(start) === 91 /* [ */) {
    const close = header.indexOf(']', start);
    if (close === -1 || close >= end) return null;
    if (close + 1 !== end && !isPortSuffix(header, close + 1, end)) return null;
    text = header.slice(start + 1, close);
  } else {
    const colon = header.indexOf(':', start);
    const lastColon = header.lastIndexOf(':', end - 1);
    // One colon within the entry: IPv4 with a port. More: a bare IPv6 address.
    text = colon !== -1 && colon < end && colon === lastColon ? header.slice(start, colon) : header.slice(start, end);
    if (text.length !== end - start && !isPortSuffix(header, colon, end)) return null;
  }
  return parseIp(text, scratch) ? text : null;
}

function isPortSuffix(header: string, colon: number, end: number): boolean {
  if (header.charCodeAt(colon) !== 58 || end - colon < 2 || end - colon > 6) return false;
  for (let i = colon + 1; i < end; i++) {
    const c = header.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9;
}
