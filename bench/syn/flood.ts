// The bench's SYN-flood generator (bpf/flood.bpf.c through BPF_PROG_TEST_RUN in live-frames mode), run inside the
// attacker's namespace: for SECONDS, SYNs from random IPv4 sources (or, with `fixed`, all from SRC_IP) to
// DST_IP:DST_PORT out of IFNAME, addressed to DST_MAC, at RATE packets a second (0: as fast as it can). Prints
// one JSON line: packets sent and seconds taken.
//
//   node bench/syn/flood.ts IFNAME DST_MAC DST_IP DST_PORT SECONDS RATE [fixed SRC_IP]
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadXdpAddon } from '../../src/native/xdp.ts';
import { internetChecksum, TCP, tcpFrame } from '../../src/syn/packet.ts';

const [ifname, dstMac, dstIp, dstPort, secondsText, rateText, mode, fixedSource] = process.argv.slice(2) as [string, string, string, string, string, string, string?, string?];
/** The IP id that tells bpf/flood.bpf.c to keep the template's source. */
const FIXED_SOURCE_ID = 0x5346;
const OBJECT = resolve(import.meta.dirname, '../../bpf/build/flood.bpf.o');
/** Frames per batch; at a set rate, BPF_PROG_TEST_RUN calls are paced every SLOT_MS, else CHUNK frames each. */
const BATCH = 64;
// Short slots keep each burst under a veth's 256-frame ring.
const SLOT_MS = 1;
const CHUNK = 262_144;

const addon = loadXdpAddon();
if (!addon.ok) throw addon.error;
const ifindex = addon.binding.ifindex(ifname);
const srcMac = readFileSync(`/sys/class/net/${ifname}/address`, 'utf8').trim();
// What Linux puts in a SYN, so the cookie path parses real options.
const template = tcpFrame({
  src: mode === 'fixed' ? fixedSource! : '1.0.0.1',
  dst: dstIp,
  srcMac,
  dstMac,
  sport: 40000,
  dport: Number(dstPort),
  flags: TCP.SYN,
  seq: 12345,
  options: { mss: 1460, sackPermitted: true, timestamp: [1, 0], wscale: 7 },
});
if (mode === 'fixed') {
  // The IP id, then the header checksum again (IP header at 14, checksum at 24).
  template.writeUInt16BE(FIXED_SOURCE_ID, 18);
  template.writeUInt16BE(0, 24);
  template.writeUInt16BE(internetChecksum(template.subarray(14, 34)), 24);
}
const generator = new addon.binding.XdpObject(OBJECT, '', 0, 'secbeat_flood');
generator.load();
const started = performance.now();
const until = started + Number(secondsText) * 1000;
const rate = Number(rateText);
let sent = 0;
while (performance.now() < until) {
  if (rate === 0) {
    generator.testRun(template, CHUNK, ifindex, BATCH);
    sent += CHUNK;
    continue;
  }
  // Frames due by now at RATE, sent in one call; then sleep to the next slot.
  const due = Math.floor(((performance.now() - started) / 1000) * rate) - sent;
  if (due > 0) {
    generator.testRun(template, due, ifindex, BATCH);
    sent += due;
  }
  await new Promise((r) => setTimeout(r, SLOT_MS));
}
generator.close();
process.stdout.write(`${JSON.stringify({ sent, seconds: (performance.now() - started) / 1000 })}\n`);
