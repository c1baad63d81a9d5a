// PROXY protocol v1 (text) and v2 (binary) headers, as a load balancer in front of SecBeat sends them to
// pass on the client's address (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt). A listener
// accepts them only where config says so and only from trusted senders: from anyone else the header is a
// spoof. The parser is incremental and bounded: the caller feeds what arrived so far and gets `incomplete`
// until a whole header is there, never reading past it (the bytes after belong to the proxied stream).
import { formatIp, parseIp } from './ip.ts';

/** Section 2.1: the longest v1 line, "PROXY TCP6 <39> <39> 65535 65535\r\n". */
export const V1_MAX_BYTES = 107;
/** v2 fixed part: signature, version/command, family, length. */
const V2_FIXED_BYTES = 16;
/**
 * The v2 length field allows 64 KiB of addresses and TLVs; the TLVs a sender adds (ALPN, authority, SSL
 * details, unique id) fit in far less. Longer headers are refused so that a peer cannot make a connection
 * buffer 64 KiB before it is even proxied.
 */
export const V2_MAX_BYTES = V2_FIXED_BYTES + 2048;
/** The longest prefix worth buffering before a verdict. */
export const PROXY_HEADER_MAX_BYTES = V2_MAX_BYTES;

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');

export interface ProxiedAddresses {
  family: 'ipv4' | 'ipv6';
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
}

export type ProxyHeaderResult =
  /** Not enough bytes yet to decide; feed more (up to PROXY_HEADER_MAX_BYTES). */
  | { kind: 'incomplete' }
  /** Not a valid header: the connection must be closed (the bytes are not a proxied stream either). */
  | { kind: 'invalid'; reason: string }
  /**
   * A header of `length` bytes. `addresses` is null for v2 LOCAL (the sender's own health check) and v1
   * UNKNOWN: the connection's own addresses then stand.
   */
  | { kind: 'header'; version: 1 | 2; length: number; addresses: ProxiedAddresses | null };

const INCOMPLETE: ProxyHeaderResult = { kind: 'incomplete' };

/** Decides on the first bytes of a connection. `data` may hold more than the header. */
export function parseProxyHeader(data: Buffer): ProxyHeaderResult {
  if (data.length === 0) return INCOMPLETE;
  if (data[0] === V2_SIGNATURE[0]) return parseV2(data);
  if (data[0] === V1_PREFIX[0]) return parseV1(data);
  return { kind: 'invalid', reason: 'the connection does not start with a PROXY protocol header' };
}

function startsWithPrefix(data: Buffer, prefix: Buffer): boolean | null {
  const n = Math.min(data.length, prefix.length);
  if (data.compare(prefix, 0, n, 0, n) !== 0) return false;
  return n === prefix.length ? true : null;
}

function parseV1(data: Buffer): ProxyHeaderResult {
  const prefix = startsWithPrefix(data, V1_PREFIX);
  if (prefix === false) return { kind: 'invalid', reason: 'bad PROXY v1 signature' };
  const end = data.indexOf('\r\n', 0, 'latin1');
  if (end === -1) {
    if (data.length >= V1_MAX_BYTES) return { kind: 'invalid', reason: `PROXY v1 line longer than ${V1_MAX_BYTES} bytes` };
    return prefix === null || data.indexOf(0x0a) === -1 ? INCOMPLETE : { kind: 'invalid', reason: 'PROXY v1 line ends without CR' };
  }
  const length = end + 2;
  if (length > V1_MAX_BYTES) return { kind: 'invalid', reason: `PROXY v1 line longer than ${V1_MAX_BYTES} bytes` };
  const fields = data.toString('latin1', V1_PREFIX.length, end).split(' ');
  if (fields[0] === 'UNKNOWN') return { kind: 'header', version: 1, length, addresses: null };
  if (fields.length !== 5) return { kind: 'invalid', reason: 'PROXY v1 needs protocol, two addresses and two ports' };
  const [proto, src, dst, sport, dport] = fields as [string, string, string, string, string];
  const family = proto === 'TCP4' ? 'ipv4' : proto === 'TCP6' ? 'ipv6' : null;
  if (family === null) return { kind: 'invalid', reason: `PROXY v1 protocol ${JSON.stringify(proto)} is not TCP4, TCP6 or UNKNOWN` };
  const sourcePort = v1Port(sport);
  const destinationPort = v1Port(dport);
  if (sourcePort < 0 || destinationPort < 0) return { kind: 'invalid', reason: 'PROXY v1 port is not 0–65535' };
  if (!isAddress(src, family) || !isAddress(dst, family)) return { kind: 'invalid', reason: `PROXY v1 address is not ${proto}` };
  return { kind: 'header', version: 1, length, addresses: { family, sourceAddress: src, sourcePort, destinationAddress: dst, destinationPort } };
}

/** Decimal 0–65535 without leading zeros, or -1. */
function v1Port(text: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return -1;
  const port = Number(text);
  return port <= 65_535 ? port : -1;
}

const scratch = new Uint32Array(4);

function isAddress(text: string, family: 'ipv4' | 'ipv6'): boolean {
  return (family === 'ipv4') === (text.indexOf(':') === -1) && parseIp(text, scratch);
}

function parseV2(data: Buffer): ProxyHeaderResult {
  const prefix = startsWithPrefix(data, V2_SIGNATURE);
  if (prefix === false) return { kind: 'invalid', reason: 'bad PROXY v2 signature' };
  if (prefix === null || data.length < V2_FIXED_BYTES) return INCOMPLETE;
  const versionCommand = data[12]!;
  if (versionCommand >> 4 !== 2) return { kind: 'invalid', reason: `PROXY v2 version ${versionCommand >> 4} is not 2` };
  const command = versionCommand & 0x0f;
  if (command > 1) return { kind: 'invalid', reason: `PROXY v2 command ${command} is neither LOCAL nor PROXY` };
  const length = V2_FIXED_BYTES + data.readUInt16BE(14);
  if (length > V2_MAX_BYTES) return { kind: 'invalid', reason: `PROXY v2 header of ${length} bytes exceeds ${V2_MAX_BYTES}` };
  if (data.length < length) return INCOMPLETE;
  if (command === 0) return { kind: 'header', version: 2, length, addresses: null };
  const familyTransport = data[13]!;
  const family = familyTransport >> 4;
  const transport = familyTransport & 0x0f;
  // UNSPEC, UNIX or datagram: nothing a TCP listener can use as a client address; keep the connection's own.
  if (family === 0 || family === 3 || transport !== 1) {
    if (family > 3 || transport > 2) return { kind: 'invalid', reason: `PROXY v2 family/transport 0x${familyTransport.toString(16)} is unknown` };
    return { kind: 'header', version: 2, length, addresses: null };
  }
  // Section 2.2: source address, destination address, source port, destination port.
  const block = family === 1 ? V2_INET : family === 2 ? V2_INET6 : null;
  if (block === null) return { kind: 'invalid', reason: `PROXY v2 address family ${family} is unknown` };
  const at = V2_FIXED_BYTES;
  const size = block.addressBytes;
  if (length < at + 2 * size + 4) return { kind: 'invalid', reason: `PROXY v2 ${block.name} block is truncated` };
  return {
    kind: 'header',
    version: 2,
    length,
    addresses: {
      family: block.family,
      sourceAddress: block.text(data, at),
      destinationAddress: block.text(data, at + size),
      sourcePort: data.readUInt16BE(at + 2 * size),
      destinationPort: data.readUInt16BE(at + 2 * size + 2),
    },
  };
}

interface V2AddressBlock {
  family: ProxiedAddresses['family'];
  name: string;
  addressBytes: number;
  text: (data: Buffer, at: number) => string;
}

const V2_INET: V2AddressBlock = { family: 'ipv4', name: 'IPv4', addressBytes: 4, text: ipv4Text };
const V2_INET6: V2AddressBlock = { family: 'ipv6', name: 'IPv6', addressBytes: 16, text: ipv6Text };

function ipv4Text(data: Buffer, at: number): string {
  return `${data[at]}.${data[at + 1]}.${data[at + 2]}.${data[at + 3]}`;
}

/** RFC 5952 text; an IPv4-mapped address prints as IPv4, the client it stands for. */
function ipv6Text(data: Buffer, at: number): string {
  for (let w = 0; w < 4; w++) scratch[w] = data.readUInt32BE(at + w * 4);
  return formatIp(scratch);
}
