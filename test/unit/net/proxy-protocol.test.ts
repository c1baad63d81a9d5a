import { describe, expect, it } from 'vitest';
import { parseProxyHeader, V1_MAX_BYTES, V2_MAX_BYTES } from '../../../src/net/proxy-protocol.ts';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

function v2(command: number, familyTransport: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x20 | command;
  head[1] = familyTransport;
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIG, head, body]);
}

function ipv4Block(): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from([203, 0, 113, 9]).copy(b, 0);
  Buffer.from([10, 0, 0, 1]).copy(b, 4);
  b.writeUInt16BE(51_234, 8);
  b.writeUInt16BE(443, 10);
  return b;
}

describe('PROXY protocol v1', () => {
  it.each([
    ['PROXY TCP4 203.0.113.9 10.0.0.1 51234 443\r\n', { family: 'ipv4', sourceAddress: '203.0.113.9', sourcePort: 51_234, destinationAddress: '10.0.0.1', destinationPort: 443 }],
    ['PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n', { family: 'ipv6', sourceAddress: '2001:db8::1', sourcePort: 1, destinationAddress: '2001:db8::2', destinationPort: 65_535 }],
    ['PROXY UNKNOWN\r\n', null],
    ['PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n', null],
  ])('%j', (line, addresses) => {
    const data = Buffer.from(`${line}GET / HTTP/1.1\r\n`, 'latin1');
    expect(parseProxyHeader(data)).toEqual({ kind: 'header', version: 1, length: line.length, addresses });
  });

  it.each([
    ['PROXY TCP4 203.0.113.9 10.0.0.1 51234\r\n', /two addresses and two ports/],
    ['PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n', /address is not TCP4/],
    ['PROXY TCP6 203.0.113.9 2001:db8::2 1 2\r\n', /address is not TCP6/],
    ['PROXY TCP4 203.0.113.9 10.0.0.1 65536 1\r\n', /port/],
    ['PROXY TCP4 203.0.113.9 10.0.0.1 0443 1\r\n', /port/],
    ['PROXY TCP4 203.0.113.256 10.0.0.1 1 1\r\n', /address/],
    ['PROXY UDP4 203.0.113.9 10.0.0.1 1 1\r\n', /protocol "UDP4"/],
    ['PROXY TCP4  203.0.113.9 10.0.0.1 1 1\r\n', /two addresses/],
    ['PROXY TCP4 203.0.113.9 10.0.0.1 1 1\n', /without CR/],
    ['PROXX TCP4\r\n', /signature/],
    ['GET / HTTP/1.1\r\n', /does not start with a PROXY/],
  ])('%j is invalid', (line, reason) => {
    const result = parseProxyHeader(Buffer.from(line, 'latin1'));
    expect(result.kind).toBe('invalid');
    if (result.kind === 'invalid') expect(result.reason).toMatch(reason);
  });

  it('waits for the line, and refuses one longer than the spec allows', () => {
    expect(parseProxyHeader(Buffer.from('PRO'))).toEqual({ kind: 'incomplete' });
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 203.0.113.9 '))).toEqual({ kind: 'incomplete' });
    expect(parseProxyHeader(Buffer.from(`PROXY TCP4 ${'1'.repeat(V1_MAX_BYTES)}`)).kind).toBe('invalid');
  });
});

describe('PROXY protocol v2', () => {
  it('PROXY over TCP/IPv4, with TLVs and stream bytes after', () => {
    const tlv = Buffer.from([0x01, 0x00, 0x02, 0x68, 0x32]); // ALPN "h2"
    const header = v2(1, 0x11, Buffer.concat([ipv4Block(), tlv]));
    const result = parseProxyHeader(Buffer.concat([header, Buffer.from('GET /')]));
    expect(result).toEqual({
      kind: 'header',
      version: 2,
      length: header.length,
      addresses: { family: 'ipv4', sourceAddress: '203.0.113.9', sourcePort: 51_234, destinationAddress: '10.0.0.1', destinationPort: 443 },
    });
  });

  it('PROXY over TCP/IPv6 prints RFC 5952 text, IPv4-mapped as IPv4', () => {
    const b = Buffer.alloc(36);
    Buffer.from('20010db8000000000000000000000001', 'hex').copy(b, 0);
    Buffer.from('00000000000000000000ffffc6336401', 'hex').copy(b, 16);
    b.writeUInt16BE(1, 32);
    b.writeUInt16BE(2, 34);
    const result = parseProxyHeader(v2(1, 0x21, b));
    expect(result.kind === 'header' && result.addresses).toEqual({
      family: 'ipv6',
      sourceAddress: '2001:db8::1',
      sourcePort: 1,
      destinationAddress: '198.51.100.1',
      destinationPort: 2,
    });
  });

  it('LOCAL, UNSPEC, UNIX and UDP keep the connection addresses', () => {
    for (const [command, ft] of [
      [0, 0x11],
      [1, 0x00],
      [1, 0x31],
      [1, 0x12],
    ] as const) {
      const result = parseProxyHeader(v2(command, ft, Buffer.alloc(ft >> 4 === 3 ? 216 : 12)));
      expect(result).toMatchObject({ kind: 'header', version: 2, addresses: null });
    }
  });

  it('is incomplete byte by byte until the whole header is there', () => {
    const header = v2(1, 0x11, ipv4Block());
    for (let n = 1; n < header.length; n++) expect(parseProxyHeader(header.subarray(0, n))).toEqual({ kind: 'incomplete' });
    expect(parseProxyHeader(header).kind).toBe('header');
  });

  it.each([
    ['version 1', Buffer.concat([SIG, Buffer.from([0x11, 0x11, 0, 12]), ipv4Block()]), /version 1 is not 2/],
    ['command 2', Buffer.concat([SIG, Buffer.from([0x22, 0x11, 0, 12]), ipv4Block()]), /command 2/],
    ['truncated IPv4', v2(1, 0x11, Buffer.alloc(8)), /IPv4 block is truncated/],
    ['truncated IPv6', v2(1, 0x21, Buffer.alloc(20)), /IPv6 block is truncated/],
    ['family 5', v2(1, 0x51, Buffer.alloc(12)), /unknown/],
    ['too long', Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0xff, 0xff])]), new RegExp(`exceeds ${V2_MAX_BYTES}`)],
    ['bad signature', Buffer.from('0d0a0d0a000d0a51554954ff', 'hex'), /signature/],
  ])('%s is invalid', (_name, data, reason) => {
    const result = parseProxyHeader(data);
    expect(result.kind).toBe('invalid');
    if (result.kind === 'invalid') expect(result.reason).toMatch(reason);
  });
});
