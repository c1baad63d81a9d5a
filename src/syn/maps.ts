// The byte layouts of the XDP program's maps (bpf/secbeat.h), written and read from TypeScript: LPM keys for the
// allowlist and blocklist, blocklist values, and the configuration record. Little-endian host order for the
// program's integers (x86-64 and arm64), network order for addresses and nothing else.
import { formatCidr, parseCidr } from '../net/cidr.ts';

/** struct secbeat_lpm_key: u32 prefix length, then the 16-byte address (IPv4 mapped: ::ffff:a.b.c.d/96+n). */
export const LPM_KEY_BYTES = 20;
/** struct secbeat_block: u64 monotonic expiry in ns, 0 for never. */
export const BLOCK_VALUE_BYTES = 8;
export const PORT_BITMAP_BYTES = 8192;
/** struct secbeat_config: four u64, two u16, four u8 (the last the list bits), two port bitmaps. */
export const CONFIG_BYTES = 40 + 2 * PORT_BITMAP_BYTES;

/** The LPM key of a CIDR (`10.0.0.0/8`, `2001:db8::/32`, or a bare address); throws on anything else. */
export function lpmKey(cidr: string): Buffer {
  const parsed = parseCidr(cidr);
  if (!parsed.ok) throw new RangeError(`not a CIDR range: ${parsed.reason}`);
  const key = Buffer.alloc(LPM_KEY_BYTES);
  key.writeUInt32LE(parsed.prefix, 0);
  for (let w = 0; w < 4; w++) key.writeUInt32BE(parsed.words[w]!, 4 + 4 * w);
  return key;
}

/** The canonical CIDR text of an LPM key (IPv4 ranges as a.b.c.d/n). */
export function cidrOfKey(key: Buffer): string {
  const words = new Uint32Array(4);
  for (let w = 0; w < 4; w++) words[w] = key.readUInt32BE(4 + 4 * w);
  return formatCidr(words, key.readUInt32LE(0));
}

export function blockValue(expiresMonotonicNs: bigint): Buffer {
  const value = Buffer.alloc(BLOCK_VALUE_BYTES);
  value.writeBigUInt64LE(expiresMonotonicNs, 0);
  return value;
}

/** What the program is told, in units a person configures; encodeConfig turns rates into per-packet costs. */
export interface XdpSettings {
  /** TCP ports that get SYN cookies and ACK validation. */
  protectedTcpPorts: readonly number[];
  /** UDP ports the node serves; UDP to others is dropped when `dropClosedUdp`, and reflector traffic always. */
  openUdpPorts: readonly number[];
  dropClosedUdp: boolean;
  /** Packets per second each source may send past the cookie path (0: no limit), and the burst it may bank. */
  sourcePps: number;
  sourceBurst: number;
  /** ICMP packets per second for the whole node (0: no limit) and burst. */
  icmpPps: number;
  icmpBurst: number;
  /** What the cookie SYN-ACK advertises; the SYNPROXY rule must say the same. */
  mss4: number;
  mss6: number;
  wscale: number;
  ttl: number;
}

const NS_PER_S = 1_000_000_000n;

/** A rate as a per-packet cost and a bucket size, in ns of credit; [0, 0] turns the limit off. */
function bucket(pps: number, burst: number, shares = 1): [bigint, bigint] {
  if (pps <= 0) return [0n, 0n];
  const cost = (NS_PER_S * BigInt(shares)) / BigInt(Math.max(1, Math.round(pps)));
  return [cost, cost * BigInt(Math.max(1, Math.round(burst)))];
}

function setPort(bitmap: Buffer, offset: number, port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`not a port: ${port}`);
  bitmap[offset + (port >> 3)]! |= 1 << (port & 7);
}

/** Which of the program's lists hold entries (struct secbeat_config.lists): an empty one is not looked up. */
export interface ListPresence {
  allow: boolean;
  block: boolean;
}

const LIST_ALLOW = 1;
const LIST_BLOCK = 2;

/** struct secbeat_config. `cpus`: the ICMP budget is kept per CPU, so each CPU gets its share of the rate. */
export function encodeConfig(settings: XdpSettings, cpus: number, lists: ListPresence): Buffer {
  const out = Buffer.alloc(CONFIG_BYTES);
  const [rateCost, rateCapacity] = bucket(settings.sourcePps, settings.sourceBurst);
  const [icmpCost, icmpCapacity] = bucket(settings.icmpPps, settings.icmpBurst, cpus);
  out.writeBigUInt64LE(rateCost, 0);
  out.writeBigUInt64LE(rateCapacity, 8);
  out.writeBigUInt64LE(icmpCost, 16);
  out.writeBigUInt64LE(icmpCapacity, 24);
  out.writeUInt16LE(settings.mss4, 32);
  out.writeUInt16LE(settings.mss6, 34);
  out.writeUInt8(settings.wscale, 36);
  out.writeUInt8(settings.ttl, 37);
  out.writeUInt8(settings.dropClosedUdp ? 1 : 0, 38);
  out.writeUInt8((lists.allow ? LIST_ALLOW : 0) | (lists.block ? LIST_BLOCK : 0), 39);
  for (const port of settings.protectedTcpPorts) setPort(out, 40, port);
  for (const port of settings.openUdpPorts) setPort(out, 40 + PORT_BITMAP_BYTES, port);
  return out;
}
