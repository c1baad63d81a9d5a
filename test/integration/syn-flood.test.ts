// SYN mode in the kernel, end to end, in network namespaces this test creates (test/helpers/netns.ts): a SecBeat
// node in syn mode on the server, its XDP program on the server's veth (native mode), an echo origin behind it;
// hping3 floods SYNs from random sources on the attacker while the client keeps connecting through SecBeat.
// Checks the bar (legitimate success ≥ 99 %, no XDP_ABORTED), that the flood was answered with cookies
// in XDP, and that stopping the node, and killing it, leaves no XDP attachment behind. Needs root, BPF, hping3,
// ethtool and nftables (scripts/setup.sh); fails without them. Every process, namespace and attachment is
// removed at the end, also when an assertion fails.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SynStatus } from '../../src/messages.ts';
import { createTestBed, startEcho, xdpAttachments, type TestBed } from '../helpers/netns.ts';
import { startNode, type NodeProcess } from '../helpers/node-process.ts';

const CLIENTS = resolve(import.meta.dirname, '../helpers/bin/tcp-clients.ts');
const BACKEND_PORT = 9000;
/**
 * Maps are pinned on a bpffs of the test's own, mounted where the node's namespace sees it too (`ip netns exec`
 * replaces /sys, and the host's /sys/fs/bpf with it).
 */
const PIN_DIR = `/tmp/secbeat-bpffs-${process.pid}`;
/** The flood: a bounded count, paced by hping3 (-i u20: up to 50,000 SYNs a second). */
const FLOOD_PACKETS = 60_000;
const LEGIT_CONNECTIONS = 400;
const BLOCKED_IN_CONFIG = '192.0.2.99';

interface ClientReport {
  attempted: number;
  ok: number;
  failures: Record<string, number>;
  connectMs: number[];
}

beforeAll(() => {
  mkdirSync(PIN_DIR, { recursive: true });
  execFileSync('mount', ['-t', 'bpf', 'bpf', PIN_DIR]);
});
afterAll(() => {
  execFileSync('umount', [PIN_DIR]);
  rmSync(PIN_DIR, { recursive: true, force: true });
});

async function startSynNode(bed: TestBed): Promise<NodeProcess> {
  return startNode({
    mode: 'syn',
    netns: bed.server.ns,
    host: bed.server.ip,
    backendPort: BACKEND_PORT,
    extraToml: `
[syn_proxy]
interface = "${bed.server.dev}"
xdp_mode = "native"
pin_dir = "${PIN_DIR}"
sync_interval_ms = 200
# Named as a bare address: the maps give it back as 192.0.2.99/32, and a restart must keep it.
blocklist = ["${BLOCKED_IN_CONFIG}"]
`,
  });
}

/** The program's status as an operator reads it: `secbeat ctl --json syn`. */
async function synStatus(node: NodeProcess): Promise<SynStatus> {
  const r = await node.ctl('--json', 'syn');
  if (r.code !== 0) throw new Error(`ctl syn exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as SynStatus;
}

/** Entries of a pinned map, as bpftool reads them. */
function pinnedEntries(map: string): number {
  return (JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', `${PIN_DIR}/it-node/${map}`], { encoding: 'utf8' })) as unknown[]).length;
}

async function clients(bed: TestBed, port: number, count: number): Promise<ClientReport> {
  const { stdout } = await bed.exec(bed.client, process.execPath, [CLIENTS, bed.server.ip, String(port), String(count), '4', '3000'], 120_000);
  return JSON.parse(stdout) as ClientReport;
}

describe('SYN mode under a SYN flood, in network namespaces', () => {
  it('keeps legitimate clients connecting through SecBeat while hping3 floods from random sources', async () => {
    await using bed = await createTestBed(77);
    await startEcho(bed, '127.0.0.1', BACKEND_PORT);
    await using node = await startSynNode(bed);
    const before = await synStatus(node);
    expect(before.mode).toBe('native');
    expect(before.protectedPorts).toContain(node.port);
    expect(await xdpAttachments(bed.server.ns)).toEqual([String(before.programId)]);

    const flood = bed.exec(bed.attacker, 'hping3', ['-q', '-S', '-p', String(node.port), '--rand-source', '-i', 'u20', '-c', String(FLOOD_PACKETS), bed.server.ip], 120_000);
    const legit = await clients(bed, node.port, LEGIT_CONNECTIONS);
    await flood.catch((err: { code?: number }) => {
      // hping3 exits 1 when no reply came back to it (the flood's SYN-ACKs go to addresses it made up).
      if (err.code !== 1) throw err;
    });
    const after = await synStatus(node);

    const success = legit.ok / LEGIT_CONNECTIONS;
    expect(success, `legitimate success ${legit.ok}/${LEGIT_CONNECTIONS}, failures ${JSON.stringify(legit.failures)}`).toBeGreaterThanOrEqual(0.99);
    const moved = (reason: string): number => (after.packets[reason] ?? 0) - (before.packets[reason] ?? 0);
    expect(moved('aborted')).toBe(0);
    // Every flood SYN and every legitimate SYN was answered in XDP: none of them reached the server's stack.
    expect(moved('synack')).toBeGreaterThanOrEqual(0.99 * FLOOD_PACKETS);
    expect(moved('cookie_ack')).toBeGreaterThanOrEqual(legit.ok);
    expect(moved('flow')).toBeGreaterThan(0);
    const nstat = await bed.exec(bed.server, 'nstat', ['-az', 'TcpExtListenOverflows', 'TcpExtSyncookiesSent']);
    expect(nstat.stdout).toMatch(/TcpExtSyncookiesSent\s+0\s/);

    expect(await node.stop('SIGTERM')).toBe(0);
    expect(node.output()).toContain('XDP SYN proxy detached');
    expect(await xdpAttachments(bed.server.ns)).toEqual([]);
    const tables = await bed.exec(bed.server, 'nft', ['list', 'tables']);
    expect(tables.stdout).not.toContain('secbeat_syn_');
  }, 240_000);

  it('leaves no XDP attachment behind when the node is killed, and a new node takes over', async () => {
    await using bed = await createTestBed(78);
    await startEcho(bed, '127.0.0.1', BACKEND_PORT);
    const first = await startSynNode(bed);
    try {
      expect((await synStatus(first)).mode).toBe('native');
      await first.stop('SIGKILL');
    } finally {
      await first[Symbol.asyncDispose]();
    }
    // The program hung on a BPF link owned by the killed process: the kernel detached it with the process.
    expect(await xdpAttachments(bed.server.ns)).toEqual([]);
    // Its pinned maps stay (the blocklist and counters survive a restart) and the next node reuses them.
    expect(readdirSync(`${PIN_DIR}/it-node`).sort()).toContain('sb_blocklist');
    expect(pinnedEntries('sb_blocklist')).toBe(1);
    await using second = await startSynNode(bed);
    expect((await synStatus(second)).mode).toBe('native');
    // After the second node's first sync, the config's block is still in the kernel's list, once.
    await new Promise((r) => setTimeout(r, 500));
    expect(pinnedEntries('sb_blocklist')).toBe(1);
    const legit = await clients(bed, second.port, 50);
    expect(legit.ok).toBe(50);
  }, 120_000);
});
