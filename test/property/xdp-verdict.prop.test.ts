// The XDP program in the kernel (BPF_PROG_TEST_RUN) against the reference model (test/helpers/xdp-model.ts) for
// arbitrary frames and map contents: for every frame the program must count the reason the model names, and its
// action must be that reason's (XDP_TX for a SYN-ACK, XDP_PASS for what it lets through, XDP_DROP otherwise, never
// XDP_ABORTED). Frames are built from random headers (VLAN tags, IPv4 with options and fragment bits, IPv6 with
// extension chains, TCP with any flags and options, UDP, ICMP), then damaged at random: cut short, a byte
// flipped, a checksum or length made wrong. Needs root and BPF; fails without them.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XDP_ACTION } from '../../src/native/xdp.ts';
import type { XdpSettings } from '../../src/syn/maps.ts';
import { frame, icmpFrame, tcpFrame, udpFrame, type FrameSpec } from '../../src/syn/packet.ts';
import { XdpProgram } from '../../src/syn/program.ts';
import { fcParams } from '../helpers/fc.ts';
import { modelReason, type ModelConfig, type ModelLists } from '../helpers/xdp-model.ts';

const V4_SOURCES = ['198.51.100.1', '198.51.100.2', '198.51.100.130', '192.0.2.9', '203.0.113.77'];
const V6_SOURCES = ['2001:db8::1', '2001:db8::2', '2001:db8:1::5', '2001:db8:ffff::9'];
const V4_RANGES = ['198.51.100.0/24', '198.51.100.0/25', '198.51.100.128/25', '198.51.100.2', '192.0.2.0/24', '0.0.0.0/0', '203.0.113.0/26'];
const V6_RANGES = ['2001:db8::/32', '2001:db8::/48', '2001:db8::2', '2001:db8:1::/48', '::/0', '2001:db8:ffff::/64'];
const PORTS = [22, 53, 80, 123, 443, 1900, 5353, 8443, 11211, 40000];
/** Half of them reflector ports (amplification), half not (closed-port UDP). */
const REFLECTOR_SOURCES = [53, 123, 11211, 1900, 40000, 50000, 33333, 44444];

const ACTION_OF: Record<string, number> = { pass: XDP_ACTION.PASS, allowlist: XDP_ACTION.PASS, flow: XDP_ACTION.PASS, cookie_ack: XDP_ACTION.PASS, synack: XDP_ACTION.TX };

const addressing = fc.oneof(
  fc.record({ src: fc.constantFrom(...V4_SOURCES), dst: fc.constant('203.0.113.1') }),
  fc.record({ src: fc.constantFrom(...V6_SOURCES), dst: fc.constant('2001:db8::100') }),
);

const frameSpec: fc.Arbitrary<FrameSpec> = fc
  .record({
    addr: addressing,
    vlans: fc.array(fc.integer({ min: 1, max: 4094 }), { maxLength: 3 }),
    moreFragments: fc.oneof({ weight: 7, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    fragmentOffset: fc.oneof({ weight: 7, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x1fff }) }),
  })
  .map(({ addr, vlans, moreFragments, fragmentOffset }) => ({ ...addr, vlans, moreFragments, fragmentOffset }));

const tcpOptions = fc.record(
  { mss: fc.integer({ min: 0, max: 65535 }), sackPermitted: fc.boolean(), timestamp: fc.tuple(fc.nat(), fc.nat()), wscale: fc.integer({ min: 0, max: 20 }) },
  { requiredKeys: [] },
);

const tcpLayer = fc.record({
  kind: fc.constant('tcp' as const),
  sport: fc.constantFrom(...PORTS),
  dport: fc.constantFrom(...PORTS),
  flags: fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(0x02, 0xc2) },
    { weight: 3, arbitrary: fc.constantFrom(0x10, 0x12, 0x18, 0x11, 0x04, 0x03, 0x06, 0x00) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 255 }) },
  ),
  seq: fc.nat(),
  ack: fc.nat(),
  options: tcpOptions,
  // Most SYNs carry no data, and only those have their checksum checked (bad_checksum).
  payload: fc.oneof({ weight: 3, arbitrary: fc.constant(new Uint8Array(0)) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }) }),
  checksumDelta: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 65535 })),
});
const udpLayer = fc.record({ kind: fc.constant('udp' as const), sport: fc.constantFrom(...REFLECTOR_SOURCES), dport: fc.constantFrom(...PORTS), payload: fc.uint8Array({ maxLength: 24 }) });
const icmpLayer = fc.record({ kind: fc.constant('icmp' as const), type: fc.integer({ min: 0, max: 255 }) });
const otherLayer = fc.record({ kind: fc.constant('other' as const), protocol: fc.constantFrom(0, 43, 44, 47, 50, 60, 132, 255), payload: fc.uint8Array({ maxLength: 40 }) });

// TCP weighs most: it has the most paths (cookies, checksums, flags, ACK floods); UDP next (three verdicts).
const l4 = fc.oneof({ weight: 3, arbitrary: tcpLayer }, { weight: 2, arbitrary: udpLayer }, { weight: 1, arbitrary: icmpLayer }, { weight: 1, arbitrary: otherLayer });

/** Damage to a well-formed frame: none (most often), cut short, one byte set. */
const damage = fc.oneof(
  { weight: 5, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('cut' as const), keep: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('poke' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), byte: fc.integer({ min: 0, max: 255 }) }) },
);

type Of<A> = A extends fc.Arbitrary<infer T> ? T : never;

function build(spec: FrameSpec, layer: Of<typeof l4>): Buffer {
  switch (layer.kind) {
    case 'tcp':
      return tcpFrame({ ...spec, ...layer, payload: Buffer.from(layer.payload) });
    case 'udp':
      return udpFrame({ ...spec, sport: layer.sport, dport: layer.dport, payload: Buffer.from(layer.payload) });
    case 'icmp':
      return icmpFrame({ ...spec, type: layer.type });
    default:
      return frame(spec, layer.protocol, Buffer.from(layer.payload));
  }
}

function damaged(bytes: Buffer, hurt: Of<typeof damage>): Buffer {
  if (hurt.kind === 'cut') return bytes.subarray(0, 14 + Math.floor(hurt.keep * (bytes.length - 14)));
  if (hurt.kind === 'poke') {
    const copy = Buffer.from(bytes);
    copy[12 + Math.floor(hurt.at * (copy.length - 12))] = hurt.byte;
    return copy;
  }
  return bytes;
}

const lists = fc.record({
  allow: fc.array(fc.constantFrom(...V4_RANGES, ...V6_RANGES), { maxLength: 2 }),
  block: fc.array(fc.tuple(fc.constantFrom(...V4_RANGES, ...V6_RANGES), fc.constantFrom('never', 'later', 'expired')), { maxLength: 4 }),
});

const settings = fc.record({
  protected: fc.subarray(PORTS, { minLength: 1 }),
  open: fc.subarray(PORTS),
  dropClosedUdp: fc.boolean(),
});

let program: XdpProgram;

beforeAll(() => {
  program = XdpProgram.open({ pinDir: null, sourceEntries: 0 });
});
afterAll(() => program?.close());

function xdpSettings(s: Of<typeof settings>): XdpSettings {
  return { protectedTcpPorts: s.protected, openUdpPorts: s.open, dropClosedUdp: s.dropClosedUdp, sourcePps: 0, sourceBurst: 0, icmpPps: 0, icmpBurst: 0, mss4: 1460, mss6: 1440, wscale: 7, ttl: 64 };
}

describe('the XDP program against its reference model', () => {
  const seen = new Set<string>();

  it('counts the reason the model names, with that reason\'s action, for arbitrary frames and map contents', () => {
    fc.assert(
      fc.property(settings, lists, fc.array(fc.tuple(frameSpec, l4, damage), { minLength: 1, maxLength: 8 }), (s, l, frames) => {
        program.configure(xdpSettings(s));
        const expiries = new Map<string, 'never' | 'later' | 'expired'>();
        for (const [cidr, expiry] of l.block) expiries.set(cidr, expiry);
        const block = new Map([...expiries].map(([cidr, expiry]) => [cidr, expiry !== 'expired']));
        program.allow(l.allow);
        const now = Date.now();
        program.block([...expiries].map(([cidr, expiry]) => ({ cidr, expiresAtMs: expiry === 'never' ? null : expiry === 'later' ? now + 3_600_000 : now - 1_000 })));
        const config: ModelConfig = { protectedTcpPorts: new Set(s.protected), openUdpPorts: new Set(s.open), dropClosedUdp: s.dropClosedUdp };
        const model: ModelLists = { allow: l.allow, block };
        try {
          for (const [spec, layer, hurt] of frames) {
            const bytes = damaged(build(spec, layer), hurt);
            const expected = modelReason(bytes, config, model);
            const before = program.counters();
            const { action } = program.testRun(bytes);
            const after = program.counters();
            const moved = Object.keys(after).filter((r) => after[r]!.packets !== before[r]!.packets);
            const context = `frame ${bytes.toString('hex')}`;
            expect(moved, context).toEqual([expected]);
            expect(action, context).toBe(ACTION_OF[expected] ?? XDP_ACTION.DROP);
            seen.add(expected);
          }
        } finally {
          program.disallow(l.allow);
          program.unblock([...block.keys()]);
        }
      }),
      fcParams(200),
    );
  });

  it('reached every stateless verdict', () => {
    // The generators are meant to reach each reason the model can name; a generator that stops doing so would
    // leave part of the program untested while the property still passed.
    expect([...seen].sort(), `reached: ${[...seen].sort().join(', ')}`).toEqual(['ack_flood', 'allowlist', 'bad_checksum', 'blocklist', 'fragment', 'malformed', 'pass', 'synack', 'udp_amplification', 'udp_closed']);
  });
});
