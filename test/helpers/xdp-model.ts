// A TypeScript reference model of bpf/secbeat.bpf.c's verdict: the reason the program counts for a frame, given
// its configuration and the contents of its allowlist and blocklist. Written from the order of checks
// and the program's documented rules, not from its code paths, so that the property test
// (test/property/xdp-verdict.prop.test.ts) compares two readings of the same specification. It covers the
// stateless paths; rate limits, which depend on time and history, are tested with fixtures.
import { inNetwork, parseCidr } from '../../src/net/cidr.ts';
import { internetChecksum, pseudoHeaderSum } from '../../src/syn/packet.ts';

export interface ModelConfig {
  protectedTcpPorts: ReadonlySet<number>;
  openUdpPorts: ReadonlySet<number>;
  dropClosedUdp: boolean;
}

export interface ModelLists {
  allow: readonly string[];
  /** CIDR → whether its block is in force (false: expired). A later entry for the same CIDR replaces an earlier one. */
  block: ReadonlyMap<string, boolean>;
}

const REFLECTORS = new Set([17, 19, 53, 123, 137, 161, 389, 1900, 3702, 5353, 11211]);
const VLAN_TYPES = new Set([0x8100, 0x88a8]);
const IPV6_SKIPPED = new Set([0, 43, 60]);

function words(address: Buffer): Uint32Array {
  const out = new Uint32Array(4);
  if (address.length === 4) {
    out[2] = 0xffff;
    out[3] = address.readUInt32BE(0);
  } else {
    for (let w = 0; w < 4; w++) out[w] = address.readUInt32BE(4 * w);
  }
  return out;
}

/** The prefix length of `cidr` when it contains `source`, else -1. */
function containment(cidr: string, source: Uint32Array): number {
  const parsed = parseCidr(cidr);
  if (!parsed.ok) throw new Error(parsed.reason);
  return inNetwork(source, parsed.words, 0, parsed.prefix) ? parsed.prefix : -1;
}

export function modelReason(frame: Buffer, config: ModelConfig, lists: ModelLists): string {
  const len = frame.length;
  if (len < 14) return 'malformed';
  let off = 14;
  let type = frame.readUInt16BE(12);
  for (let tag = 0; tag < 2 && VLAN_TYPES.has(type); tag++) {
    if (off + 4 > len) return 'malformed';
    type = frame.readUInt16BE(off + 2);
    off += 4;
  }
  if (VLAN_TYPES.has(type)) return 'malformed';
  const l2 = off;

  // What the network layer makes of the frame: the source (null before it is known), a verdict reached before the
  // transport layer (fragment, malformed), and where the transport header starts.
  let source: Buffer;
  let early: string | null = null;
  let protocol: number;
  let l4: number;
  let v4: boolean;
  let segmentLength: number;
  if (type === 0x0800) {
    if (off + 20 > len) return 'malformed';
    const ihl = (frame[off]! & 0x0f) * 4;
    const total = frame.readUInt16BE(off + 2);
    if (frame[off]! >> 4 !== 4 || ihl < 20 || total < ihl || off + total > len) return 'malformed';
    v4 = true;
    source = frame.subarray(off + 12, off + 16);
    protocol = frame[off + 9]!;
    l4 = off + ihl;
    segmentLength = total - ihl;
    if ((frame.readUInt16BE(off + 6) & 0x3fff) !== 0) early = 'fragment';
  } else if (type === 0x86dd) {
    if (off + 40 > len) return 'malformed';
    const payload = frame.readUInt16BE(off + 4);
    if (frame[off]! >> 4 !== 6 || off + 40 + payload > len) return 'malformed';
    v4 = false;
    source = frame.subarray(off + 8, off + 24);
    let next = frame[off + 6]!;
    off += 40;
    for (let i = 0; i < 4 && early === null; i++) {
      if (next === 44) {
        early = 'fragment';
        break;
      }
      if (!IPV6_SKIPPED.has(next)) break;
      if (off + 2 > len) {
        early = 'malformed';
        break;
      }
      const hdrlen = frame[off + 1]!;
      next = frame[off]!;
      off += (hdrlen + 1) * 8;
    }
    if (early === null && (IPV6_SKIPPED.has(next) || next === 44)) early = 'malformed';
    protocol = next;
    l4 = off;
    segmentLength = (payload - (off - l2 - 40)) >>> 0;
  } else {
    return 'pass';
  }

  // The lists, as soon as the source is known: the allowlist wins; the blocklist's longest matching prefix decides.
  const src = words(source);
  if (lists.allow.some((cidr) => containment(cidr, src) >= 0)) return 'allowlist';
  let longest = -1;
  let inForce = false;
  for (const [cidr, active] of lists.block) {
    const prefix = containment(cidr, src);
    if (prefix > longest) {
      longest = prefix;
      inForce = active;
    }
  }
  if (longest >= 0 && inForce) return 'blocklist';
  if (early !== null) return early;

  if (protocol === 6) {
    if (l4 + 20 > len) return 'malformed';
    const doff = (frame[l4 + 12]! >> 4) * 4;
    const flags = frame[l4 + 13]!;
    if (doff < 20) return 'malformed';
    const syn = (flags & 0x02) !== 0;
    const fin = (flags & 0x01) !== 0;
    const rst = (flags & 0x04) !== 0;
    if ((syn && (fin || rst)) || (fin && rst) || (flags & 0x3f) === 0) return 'malformed';
    const dport = frame.readUInt16BE(l4 + 2);
    if (!config.protectedTcpPorts.has(dport)) return 'pass';
    if ((flags & 0x12) === 0x02) {
      if (l4 + doff > len) return 'malformed';
      if (v4 && (frame[l2]! & 0x0f) === 5 && internetChecksum(frame.subarray(l2, l2 + 20)) !== 0) return 'bad_checksum';
      if (segmentLength === doff) {
        const destination = v4 ? frame.subarray(l2 + 16, l2 + 20) : frame.subarray(l2 + 24, l2 + 40);
        if (internetChecksum(frame.subarray(l4, l4 + doff), pseudoHeaderSum(source, destination, 6, doff)) !== 0) return 'bad_checksum';
      }
      return 'synack';
    }
    // No conntrack flow and no valid cookie for arbitrary frames (a forged cookie passes with odds of ~2^-30).
    return 'ack_flood';
  }
  if (protocol === 17) {
    if (l4 + 8 > len || frame.readUInt16BE(l4 + 4) < 8) return 'malformed';
    if (config.openUdpPorts.has(frame.readUInt16BE(l4 + 2))) return 'pass';
    if (REFLECTORS.has(frame.readUInt16BE(l4))) return 'udp_amplification';
    return config.dropClosedUdp ? 'udp_closed' : 'pass';
  }
  if ((v4 && protocol === 1) || (!v4 && protocol === 58)) {
    if (l4 + 4 > len) return 'malformed';
    return 'pass';
  }
  return 'pass';
}

