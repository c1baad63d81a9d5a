// Building and reading the Ethernet frames SYN mode's tests and tools feed the XDP program through
// BPF_PROG_TEST_RUN: Ethernet with up to two VLAN tags, IPv4 or IPv6, TCP (with options), UDP, ICMP, each with
// correct checksums unless a test asks otherwise, and a reader for the SYN-ACKs the program sends back.
import { isIPv4 } from 'node:net';
import { parseIp } from '../net/ip.ts';

export interface TcpOptions {
  mss?: number;
  sackPermitted?: boolean;
  /** [tsval, tsecr]. */
  timestamp?: [number, number];
  wscale?: number;
}

export interface FrameSpec {
  src: string;
  dst: string;
  /** VLAN ids, outermost first (802.1Q tags). */
  vlans?: readonly number[];
  srcMac?: string;
  dstMac?: string;
  ttl?: number;
  /** IPv4: the More Fragments flag and the fragment offset (in 8-byte units). */
  moreFragments?: boolean;
  fragmentOffset?: number;
}

export interface TcpSpec extends FrameSpec {
  sport: number;
  dport: number;
  /** FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20 ECE 0x40 CWR 0x80. */
  flags: number;
  seq?: number;
  ack?: number;
  window?: number;
  options?: TcpOptions;
  payload?: Buffer;
  /** Added to the computed TCP checksum (a test's corruption). */
  checksumDelta?: number;
}

export const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 } as const;

function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => Number.parseInt(h, 16)));
}

function addressBytes(ip: string): Buffer {
  const words = new Uint32Array(4);
  if (!parseIp(ip, words)) throw new RangeError(`not an IP address: ${ip}`);
  const out = Buffer.alloc(16);
  for (let w = 0; w < 4; w++) out.writeUInt32BE(words[w]!, 4 * w);
  return isIPv4(ip) ? out.subarray(12) : out;
}

/** The Internet checksum's one's-complement sum, not yet folded or inverted. */
function sum16(bytes: Buffer, start = 0): number {
  let sum = start;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += bytes.readUInt16BE(i);
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1]! << 8;
  return sum;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

export function internetChecksum(bytes: Buffer, start = 0): number {
  return fold(sum16(bytes, start));
}

/** The TCP/UDP/ICMPv6 pseudo-header's sum (addresses of 4 or 16 bytes), the start of a segment's checksum. */
export function pseudoHeaderSum(src: Buffer, dst: Buffer, protocol: number, length: number): number {
  const header = Buffer.alloc(src.length * 2 + 8);
  src.copy(header, 0);
  dst.copy(header, src.length);
  header.writeUInt32BE(length, src.length * 2);
  header.writeUInt32BE(protocol, src.length * 2 + 4);
  return sum16(header);
}

function tcpOptionBytes(options: TcpOptions | undefined): Buffer {
  const parts: number[] = [];
  if (options?.mss !== undefined) parts.push(2, 4, options.mss >> 8, options.mss & 0xff);
  if (options?.sackPermitted) parts.push(4, 2);
  if (options?.timestamp !== undefined) {
    const ts = Buffer.alloc(10);
    ts[0] = 8;
    ts[1] = 10;
    ts.writeUInt32BE(options.timestamp[0] >>> 0, 2);
    ts.writeUInt32BE(options.timestamp[1] >>> 0, 6);
    parts.push(...ts);
  }
  if (options?.wscale !== undefined) parts.push(1, 3, 3, options.wscale);
  while (parts.length % 4 !== 0) parts.push(1);
  return Buffer.from(parts);
}

function tcpSegment(spec: TcpSpec, src: Buffer, dst: Buffer): Buffer {
  const options = tcpOptionBytes(spec.options);
  const payload = spec.payload ?? Buffer.alloc(0);
  const segment = Buffer.alloc(20 + options.length + payload.length);
  segment.writeUInt16BE(spec.sport, 0);
  segment.writeUInt16BE(spec.dport, 2);
  segment.writeUInt32BE((spec.seq ?? 1000) >>> 0, 4);
  segment.writeUInt32BE((spec.ack ?? 0) >>> 0, 8);
  segment[12] = ((20 + options.length) / 4) << 4;
  segment[13] = spec.flags;
  segment.writeUInt16BE(spec.window ?? 64240, 14);
  options.copy(segment, 20);
  payload.copy(segment, 20 + options.length);
  const check = internetChecksum(segment, pseudoHeaderSum(src, dst, 6, segment.length));
  segment.writeUInt16BE((check + (spec.checksumDelta ?? 0)) & 0xffff, 16);
  return segment;
}

/** Ethernet (and VLAN tags) + IP around a transport segment. */
export function frame(spec: FrameSpec, protocol: number, segment: Buffer): Buffer {
  const src = addressBytes(spec.src);
  const dst = addressBytes(spec.dst);
  const v4 = src.length === 4;
  const vlans = spec.vlans ?? [];
  const l2 = Buffer.alloc(14 + 4 * vlans.length);
  macBytes(spec.dstMac ?? '02:00:00:00:00:02').copy(l2, 0);
  macBytes(spec.srcMac ?? '02:00:00:00:00:01').copy(l2, 6);
  let at = 12;
  for (const vlan of vlans) {
    l2.writeUInt16BE(0x8100, at);
    l2.writeUInt16BE(vlan & 0x0fff, at + 2);
    at += 4;
  }
  l2.writeUInt16BE(v4 ? 0x0800 : 0x86dd, at);
  let ip: Buffer;
  if (v4) {
    ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + segment.length, 2);
    ip.writeUInt16BE(0x1234, 4);
    ip.writeUInt16BE((spec.moreFragments ? 0x2000 : 0) | (spec.fragmentOffset ?? 0), 6);
    ip[8] = spec.ttl ?? 64;
    ip[9] = protocol;
    src.copy(ip, 12);
    dst.copy(ip, 16);
    ip.writeUInt16BE(internetChecksum(ip), 10);
  } else {
    ip = Buffer.alloc(40);
    ip.writeUInt32BE(0x60000000, 0);
    ip.writeUInt16BE(segment.length, 4);
    ip[6] = protocol;
    ip[7] = spec.ttl ?? 64;
    src.copy(ip, 8);
    dst.copy(ip, 24);
  }
  return Buffer.concat([l2, ip, segment]);
}

export function tcpFrame(spec: TcpSpec): Buffer {
  return frame(spec, 6, tcpSegment(spec, addressBytes(spec.src), addressBytes(spec.dst)));
}

export function udpFrame(spec: FrameSpec & { sport: number; dport: number; payload?: Buffer }): Buffer {
  const payload = spec.payload ?? Buffer.alloc(8);
  const segment = Buffer.alloc(8 + payload.length);
  segment.writeUInt16BE(spec.sport, 0);
  segment.writeUInt16BE(spec.dport, 2);
  segment.writeUInt16BE(segment.length, 4);
  payload.copy(segment, 8);
  const src = addressBytes(spec.src);
  const dst = addressBytes(spec.dst);
  segment.writeUInt16BE(internetChecksum(segment, pseudoHeaderSum(src, dst, 17, segment.length)) || 0xffff, 6);
  return frame(spec, 17, segment);
}

/** An echo request (ICMP for IPv4, ICMPv6 for IPv6), or another ICMPv6 `type`. */
export function icmpFrame(spec: FrameSpec & { type?: number }): Buffer {
  const v4 = isIPv4(spec.src);
  const segment = Buffer.alloc(16);
  segment[0] = spec.type ?? (v4 ? 8 : 128);
  segment.writeUInt16BE(1, 4);
  segment.writeUInt16BE(1, 6);
  const start = v4 ? 0 : pseudoHeaderSum(addressBytes(spec.src), addressBytes(spec.dst), 58, segment.length);
  segment.writeUInt16BE(internetChecksum(segment, start), 2);
  return frame(spec, v4 ? 1 : 58, segment);
}

/** A TCP segment read back from a frame (a SYN-ACK the program built). */
export interface ParsedTcp {
  vlans: number[];
  srcMac: string;
  dstMac: string;
  src: string;
  dst: string;
  ttl: number;
  /** IPv4 header checksum valid (true for IPv6, which has none). */
  ipChecksumOk: boolean;
  tcpChecksumOk: boolean;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  options: TcpOptions;
}

function formatMac(bytes: Buffer): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

function formatAddress(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

function readTcpOptions(bytes: Buffer): TcpOptions {
  const options: TcpOptions = {};
  let at = 0;
  while (at < bytes.length) {
    const kind = bytes[at]!;
    if (kind === 0) break;
    if (kind === 1) {
      at++;
      continue;
    }
    const size = bytes[at + 1] ?? 0;
    if (size < 2 || at + size > bytes.length) break;
    if (kind === 2 && size === 4) options.mss = bytes.readUInt16BE(at + 2);
    if (kind === 3 && size === 3) options.wscale = bytes[at + 2]!;
    if (kind === 4 && size === 2) options.sackPermitted = true;
    if (kind === 8 && size === 10) options.timestamp = [bytes.readUInt32BE(at + 2), bytes.readUInt32BE(at + 6)];
    at += size;
  }
  return options;
}

/** Reads an Ethernet/[VLAN]/IP/TCP frame; null when it is not one. */
export function parseTcpFrame(buf: Buffer): ParsedTcp | null {
  let at = 12;
  const vlans: number[] = [];
  let type = buf.readUInt16BE(at);
  while (type === 0x8100 || type === 0x88a8) {
    vlans.push(buf.readUInt16BE(at + 2) & 0x0fff);
    at += 4;
    type = buf.readUInt16BE(at);
  }
  at += 2;
  let src: Buffer, dst: Buffer, ttl: number, ipChecksumOk: boolean, segment: Buffer;
  if (type === 0x0800) {
    const ihl = (buf[at]! & 0x0f) * 4;
    if (buf[at + 9] !== 6) return null;
    src = buf.subarray(at + 12, at + 16);
    dst = buf.subarray(at + 16, at + 20);
    ttl = buf[at + 8]!;
    ipChecksumOk = internetChecksum(buf.subarray(at, at + ihl)) === 0;
    segment = buf.subarray(at + ihl, at + buf.readUInt16BE(at + 2));
  } else if (type === 0x86dd) {
    if (buf[at + 6] !== 6) return null;
    src = buf.subarray(at + 8, at + 24);
    dst = buf.subarray(at + 24, at + 40);
    ttl = buf[at + 7]!;
    ipChecksumOk = true;
    segment = buf.subarray(at + 40, at + 40 + buf.readUInt16BE(at + 4));
  } else {
    return null;
  }
  const doff = (segment[12]! >> 4) * 4;
  return {
    vlans,
    dstMac: formatMac(buf.subarray(0, 6)),
    srcMac: formatMac(buf.subarray(6, 12)),
    src: formatAddress(src),
    dst: formatAddress(dst),
    ttl,
    ipChecksumOk,
    tcpChecksumOk: internetChecksum(segment, pseudoHeaderSum(src, dst, 6, segment.length)) === 0,
    sport: segment.readUInt16BE(0),
    dport: segment.readUInt16BE(2),
    seq: segment.readUInt32BE(4),
    ack: segment.readUInt32BE(8),
    flags: segment[13]!,
    window: segment.readUInt16BE(14),
    options: readTcpOptions(segment.subarray(20, doff)),
  };
}
