// The XDP program in the kernel, through BPF_PROG_TEST_RUN: that this kernel's verifier accepts the object, then a
// fixture table of crafted frames → expected verdict, expected counter deltas and, for SYNs, the SYN-ACK the
// program sends back (flags, addresses, the cookie the returning ACK must carry, options as the kernel would
// send them). Needs root and BPF (scripts/setup.sh builds the object and the addon); without them these tests
// fail, never skip.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XDP_ACTION } from '../../../src/native/xdp.ts';
import type { XdpSettings } from '../../../src/syn/maps.ts';
import { icmpFrame, parseTcpFrame, TCP, tcpFrame, udpFrame, type TcpSpec } from '../../../src/syn/packet.ts';
import { XdpProgram, type ReasonCounters } from '../../../src/syn/program.ts';

const PORT = 8443;
const SETTINGS: XdpSettings = {
  protectedTcpPorts: [PORT],
  openUdpPorts: [5353 + 1],
  dropClosedUdp: true,
  sourcePps: 0,
  sourceBurst: 0,
  icmpPps: 0,
  icmpBurst: 0,
  mss4: 1460,
  mss6: 1440,
  wscale: 7,
  ttl: 64,
};

/** What Linux puts in a SYN: MSS, SACK permitted, timestamps, window scale. */
const LINUX_SYN_OPTIONS = { mss: 1460, sackPermitted: true, timestamp: [123456, 0] as [number, number], wscale: 7 };

function syn(overrides: Partial<TcpSpec> = {}): Buffer {
  return tcpFrame({ src: '198.51.100.7', dst: '203.0.113.1', sport: 40000, dport: PORT, flags: TCP.SYN, seq: 1_000_000, options: LINUX_SYN_OPTIONS, ...overrides });
}

let program: XdpProgram;

beforeAll(() => {
  program = XdpProgram.open({ pinDir: null, sourceEntries: 0 });
  program.configure(SETTINGS);
});
afterAll(() => program?.close());

/** Runs one frame; the action, the frame out and which counters moved by how many packets. */
function run(frame: Buffer): { action: number; out: Buffer; moved: Record<string, number> } {
  const before = program.counters();
  const { action, packet } = program.testRun(frame);
  return { action, out: packet, moved: delta(before, program.counters()) };
}

function delta(before: ReasonCounters, after: ReasonCounters): Record<string, number> {
  const moved: Record<string, number> = {};
  for (const [reason, { packets }] of Object.entries(after)) {
    const d = Number(packets - before[reason]!.packets);
    if (d !== 0) moved[reason] = d;
  }
  return moved;
}

describe('the XDP object', () => {
  it('passes this kernel\'s verifier and counts every reason bpf/secbeat.h defines', () => {
    // open() loaded it (BPF_PROG_LOAD ran the verifier); the reasons come from the shared header, in order.
    expect(program.reasons[0]).toBe('pass');
    expect(program.reasons).toContain('synack');
    expect(program.reasons).toContain('ack_flood');
    expect(Object.keys(program.counters())).toEqual([...program.reasons]);
  });
});

describe('SYN cookies', () => {
  it('answers a SYN on a protected port with a SYN-ACK built as the kernel builds one', () => {
    const { action, out, moved } = run(syn());
    expect(action).toBe(XDP_ACTION.TX);
    expect(moved).toEqual({ synack: 1 });
    const reply = parseTcpFrame(out)!;
    expect(reply).not.toBeNull();
    expect(reply.flags).toBe(TCP.SYN | TCP.ACK);
    expect([reply.srcMac, reply.dstMac]).toEqual(['02:00:00:00:00:02', '02:00:00:00:00:01']);
    expect([reply.src, reply.dst, reply.sport, reply.dport]).toEqual(['203.0.113.1', '198.51.100.7', PORT, 40000]);
    expect(reply.ack).toBe(1_000_001);
    expect(reply.ipChecksumOk && reply.tcpChecksumOk).toBe(true);
    expect(reply.ttl).toBe(64);
    expect(reply.options.mss).toBe(1460);
    expect(reply.options.sackPermitted).toBe(true);
    expect(reply.options.wscale).toBe(7);
    // Our tsval carries the client's options (kernel cookie_init_timestamp); the tsecr echoes its tsval.
    const [tsval, tsecr] = reply.options.timestamp!;
    expect(tsecr).toBe(123456);
    expect(tsval & 0xf).toBe(7);
    expect(tsval & 0x10).toBe(0x10);
    expect(out.length).toBe(14 + 20 + 40);
  });

  it('answers a SYN without options with MSS alone (grown at the head from a 54-byte frame)', () => {
    const frame = syn({ options: {} });
    expect(frame.length).toBe(54);
    const { action, out } = run(frame);
    expect(action).toBe(XDP_ACTION.TX);
    const reply = parseTcpFrame(out)!;
    expect(reply.options).toEqual({ mss: 1460 });
    expect(reply.tcpChecksumOk).toBe(true);
    expect(out.length).toBe(14 + 20 + 24);
  });

  it('reads options in any layout: timestamps without SACK, and no timestamp (no room to carry window scale)', () => {
    // Not Linux's exact layout, so the program walks the options one by one.
    const noSack = parseTcpFrame(run(syn({ options: { mss: 1400, timestamp: [777, 0], wscale: 9 } })).out)!;
    expect(noSack.options.sackPermitted).toBeUndefined();
    expect(noSack.options.wscale).toBe(7);
    expect(noSack.options.timestamp![1]).toBe(777);
    expect(noSack.options.timestamp![0] & 0x1f).toBe(9);
    const windowsLike = parseTcpFrame(run(syn({ options: { mss: 1460, wscale: 8, sackPermitted: true } })).out)!;
    expect(windowsLike.options).toEqual({ mss: 1460 });
    expect(windowsLike.tcpChecksumOk).toBe(true);
  });

  it('keeps VLAN tags and answers IPv6', () => {
    const tagged = parseTcpFrame(run(syn({ vlans: [100, 200] })).out)!;
    expect(tagged.vlans).toEqual([100, 200]);
    expect(tagged.flags).toBe(TCP.SYN | TCP.ACK);
    const v6 = run(syn({ src: '2001:db8::7', dst: '2001:db8::1' }));
    expect(v6.action).toBe(XDP_ACTION.TX);
    const reply = parseTcpFrame(v6.out)!;
    expect([reply.src, reply.dst]).toEqual(['2001:db8::1', '2001:db8::7']);
    expect(reply.options.mss).toBe(1440);
    expect(reply.tcpChecksumOk).toBe(true);
  });

  it('passes the ACK that returns a valid cookie and drops one with a forged cookie', () => {
    const reply = parseTcpFrame(run(syn({ sport: 40001 })).out)!;
    const ack = (ackNumber: number): Buffer =>
      tcpFrame({ src: '198.51.100.7', dst: '203.0.113.1', sport: 40001, dport: PORT, flags: TCP.ACK, seq: 1_000_001, ack: ackNumber, options: { timestamp: [123457, reply.options.timestamp![0]] } });
    const valid = run(ack(reply.seq + 1));
    expect(valid.action).toBe(XDP_ACTION.PASS);
    expect(valid.moved).toEqual({ cookie_ack: 1 });
    const forged = run(ack((reply.seq + 0x10000) >>> 0));
    expect(forged.action).toBe(XDP_ACTION.DROP);
    expect(forged.moved).toEqual({ ack_flood: 1 });
  });

  it('drops a SYN whose checksum is wrong, and leaves SYNs to unprotected ports to the kernel', () => {
    expect(run(syn({ checksumDelta: 1 }))).toMatchObject({ action: XDP_ACTION.DROP, moved: { bad_checksum: 1 } });
    expect(run(syn({ dport: 22 }))).toMatchObject({ action: XDP_ACTION.PASS, moved: { pass: 1 } });
  });
});

describe('filtering', () => {
  it('drops fragments, truncated headers and impossible TCP flags', () => {
    expect(run(udpFrame({ src: '198.51.100.9', dst: '203.0.113.1', sport: 1000, dport: 2000, moreFragments: true }))).toMatchObject({ action: XDP_ACTION.DROP, moved: { fragment: 1 } });
    expect(run(syn().subarray(0, 14 + 20 + 10))).toMatchObject({ action: XDP_ACTION.DROP, moved: { malformed: 1 } });
    expect(run(syn().subarray(0, 14 + 8))).toMatchObject({ action: XDP_ACTION.DROP, moved: { malformed: 1 } });
    expect(run(syn({ flags: TCP.SYN | TCP.FIN }))).toMatchObject({ action: XDP_ACTION.DROP, moved: { malformed: 1 } });
    expect(run(syn({ flags: 0 }))).toMatchObject({ action: XDP_ACTION.DROP, moved: { malformed: 1 } });
  });

  it('drops blocklisted sources until their block expires; the allowlist wins over the blocklist', () => {
    program.block([{ cidr: '192.0.2.0/24', expiresAtMs: null }, { cidr: '2001:db8:bad::/48', expiresAtMs: null }, { cidr: '198.18.0.1', expiresAtMs: Date.now() - 1 }]);
    try {
      expect(run(syn({ src: '192.0.2.55' }))).toMatchObject({ action: XDP_ACTION.DROP, moved: { blocklist: 1 } });
      expect(run(syn({ src: '2001:db8:bad::9', dst: '2001:db8::1' }))).toMatchObject({ action: XDP_ACTION.DROP, moved: { blocklist: 1 } });
      expect(run(syn({ src: '198.18.0.1' }))).toMatchObject({ action: XDP_ACTION.TX, moved: { synack: 1 } });
      program.allow(['192.0.2.55']);
      expect(run(syn({ src: '192.0.2.55' }))).toMatchObject({ action: XDP_ACTION.PASS, moved: { allowlist: 1 } });
      expect(run(syn({ src: '192.0.2.56' }))).toMatchObject({ action: XDP_ACTION.DROP, moved: { blocklist: 1 } });
      expect(program.sweepExpired()).toEqual(['198.18.0.1/32']);
      expect([...program.entries('block').keys()].sort()).toEqual(['192.0.2.0/24', '2001:db8:bad::/48']);
    } finally {
      program.disallow(['192.0.2.55']);
      expect(program.unblock(['192.0.2.0/24', '2001:db8:bad::/48', '198.18.0.1'])).toBe(2);
    }
  });

  it('drops UDP from reflector ports and to closed ports, passes it to open ones', () => {
    const udp = (sport: number, dport: number) => udpFrame({ src: '198.51.100.20', dst: '203.0.113.1', sport, dport });
    expect(run(udp(53, 40000))).toMatchObject({ action: XDP_ACTION.DROP, moved: { udp_amplification: 1 } });
    expect(run(udp(11211, 40000))).toMatchObject({ action: XDP_ACTION.DROP, moved: { udp_amplification: 1 } });
    expect(run(udp(40000, 9999))).toMatchObject({ action: XDP_ACTION.DROP, moved: { udp_closed: 1 } });
    expect(run(udp(53, 5354))).toMatchObject({ action: XDP_ACTION.PASS, moved: { pass: 1 } });
  });

  it('drops an ACK flood to a protected port and passes other protocols', () => {
    const stray = tcpFrame({ src: '198.51.100.30', dst: '203.0.113.1', sport: 5555, dport: PORT, flags: TCP.ACK, seq: 1, ack: 2 });
    expect(run(stray)).toMatchObject({ action: XDP_ACTION.DROP, moved: { ack_flood: 1 } });
    const arp = Buffer.alloc(42);
    arp.writeUInt16BE(0x0806, 12);
    expect(run(arp)).toMatchObject({ action: XDP_ACTION.PASS, moved: { pass: 1 } });
  });

  it('limits each source to its packet budget and ICMP to the node\'s', () => {
    program.configure({ ...SETTINGS, sourcePps: 1, sourceBurst: 2, icmpPps: 1, icmpBurst: 1 });
    try {
      const from = (src: string) => udpFrame({ src, dst: '203.0.113.1', sport: 40000, dport: 5354 });
      const verdicts = [1, 2, 3].map(() => run(from('198.51.100.40')).action);
      expect(verdicts).toEqual([XDP_ACTION.PASS, XDP_ACTION.PASS, XDP_ACTION.DROP]);
      expect(run(from('198.51.100.41')).action).toBe(XDP_ACTION.PASS);
      expect(run(from('198.51.100.40')).moved).toEqual({ rate_limit: 1 });
      // ICMP: one per second across the node (a budget per CPU: this test's runs share one CPU).
      const pings = [1, 2, 3].map((i) => run(icmpFrame({ src: `198.51.100.${50 + i}`, dst: '203.0.113.1' })).moved);
      expect(pings.filter((m) => m['icmp_rate'] === 1).length).toBeGreaterThanOrEqual(1);
      // Neighbour discovery is never rationed.
      const nd = [1, 2, 3].map((i) => run(icmpFrame({ src: `2001:db8::${60 + i}`, dst: '2001:db8::1', type: 135 })).action);
      expect(nd).toEqual([XDP_ACTION.PASS, XDP_ACTION.PASS, XDP_ACTION.PASS]);
    } finally {
      program.configure(SETTINGS);
    }
  });

  it('passes a limited source again once its bucket refills or its budget is raised, and judges a source sharing its deny slot by its own bucket', async () => {
    // 10 packets a second: a packet costs 100 ms of credit, a burst of one.
    program.configure({ ...SETTINGS, sourcePps: 10, sourceBurst: 1 });
    try {
      const from = (src: string) => udpFrame({ src, dst: '203.0.113.1', sport: 40000, dport: 5354 });
      // The program's deny slot: Fibonacci hash of the address's four 32-bit words (IPv4 mapped), as the CPU loads them.
      const slot = (ipv4: string) => Math.imul(0xffff0000 ^ Buffer.from(ipv4.split('.').map(Number)).readUInt32LE(0), 0x9e3779b1) >>> 24;
      const first = '198.51.100.70';
      const sharing = Array.from({ length: 254 }, (_, i) => `203.0.113.${i + 1}`).find((ip) => slot(ip) === slot(first));
      expect(sharing).toBeDefined();
      for (const source of [first, '2001:db8::70']) {
        const frame = source.includes(':') ? udpFrame({ src: source, dst: '2001:db8::1', sport: 40000, dport: 5354 }) : from(source);
        expect([1, 2, 3].map(() => run(frame).action)).toEqual([XDP_ACTION.PASS, XDP_ACTION.DROP, XDP_ACTION.DROP]);
        // 100 ms of refill and the clock's coarse tick (at most 10 ms at HZ=100) later, the bucket holds a packet again.
        await new Promise((r) => setTimeout(r, 150));
        expect([1, 2].map(() => run(frame).action)).toEqual([XDP_ACTION.PASS, XDP_ACTION.DROP]);
      }
      // A budget raised live applies at once: the slot's entry was made under the old packet cost.
      expect([1, 2].map(() => run(from('198.51.100.71')).action)).toEqual([XDP_ACTION.PASS, XDP_ACTION.DROP]);
      program.configure({ ...SETTINGS, sourcePps: 1_000, sourceBurst: 1 });
      await new Promise((r) => setTimeout(r, 20));
      expect(run(from('198.51.100.71')).action).toBe(XDP_ACTION.PASS);
      program.configure({ ...SETTINGS, sourcePps: 10, sourceBurst: 1 });
      // `first` is denied again (and in its slot); `sharing` lands in the same slot, passes on its own full bucket,
      // then is denied and takes the slot over; `first` stays denied by its bucket.
      expect([1, 2].map(() => run(from(first)).action)).toEqual([XDP_ACTION.PASS, XDP_ACTION.DROP]);
      expect(run(from(sharing!)).action).toBe(XDP_ACTION.PASS);
      expect(run(from(sharing!)).action).toBe(XDP_ACTION.DROP);
      expect(run(from(first)).moved).toEqual({ rate_limit: 1 });
    } finally {
      program.configure(SETTINGS);
    }
  });
});
