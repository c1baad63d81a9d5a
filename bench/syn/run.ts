// SYN-flood benchmark, as issue 6 asks: on the test bed of test/helpers/netns.ts (attacker, client and server
// namespaces joined by a bridge), in one run, four ways of keeping the server alive under a random-source SYN
// flood while a legitimate client keeps connecting:
//
//   none        the kernel with tcp_syncookies = 0
//   syncookies  the kernel's own SYN cookies (tcp_syncookies = 1, the default)
//   synproxy    iptables SYNPROXY (raw CT --notrack, INPUT -m state INVALID,UNTRACKED -j SYNPROXY), tcp_loose = 0
//   secbeat     a SecBeat node in syn mode: XDP cookies in native mode, netfilter SYNPROXY completing them
//
// Each gets a fresh bed and the same flood for --seconds: by default from bench/syn/flood.ts (an XDP program run
// in live-frames mode on the attacker's veth: millions of SYNs a second from one core, so that the server works in
// batches as under a real flood), or from hping3 --flood (--generator hping3: some 80,000 a second). The
// server is core 1 (its veth's NAPI thread, where its receive path runs, and its userspace: echo server or SecBeat
// node); the flood and the client are core 0. Printed per
// contender: flood packets offered and their rate; flood packets that reached the server's stack (an nftables
// counter at prerouting, before conntrack, on every source but the client's); the client's success rate and
// connect latency p50/p99 (SYN to established, measured by the client); flood packets the server judged (the
// prerouting counter, or the XDP program's counters) per second of the server's CPU (its NAPI thread and its
// userspace process). Then SecBeat's
// per-packet cost of its cookie, blocklist and rate-limit paths, from the kernel's BPF run-time statistics during
// a flood down each path (kernel.bpf_stats_enabled), and from BPF_PROG_TEST_RUN.
//
//   node bench/syn/run.ts [--quick] [--contenders none,syncookies,synproxy,secbeat] [--seconds N] [--generator xdp|hping3]
//                         [--rate PPS] [--rounds N]
//
// The contenders take turns, --rounds times (none, syncookies, synproxy, secbeat, none, …): counts add up over the
// rounds, connect latencies are pooled before their percentiles are taken, and each path cost is the median of
// the rounds'. On a shared 2-vCPU VM a single flood's p99 or path figure moves by tens of percent with what the
// neighbours do; taking turns spreads that over every contender alike.
//
// Needs root, hping3, nftables, iptables, ethtool and a built object and addon (scripts/setup.sh). Not part
// of the test suite; docs/bench.md explains the rows and their caveats.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { XDP_ACTION } from '../../src/native/xdp.ts';
import { TCP, tcpFrame, udpFrame } from '../../src/syn/packet.ts';
import { XdpProgram } from '../../src/syn/program.ts';
import type { SynStatus } from '../../src/messages.ts';
import { createTestBed, startEcho, type Host, type TestBed } from '../../test/helpers/netns.ts';
import { askActor, startNode, type NodeProcess } from '../../test/helpers/node-process.ts';
import { parseList } from '../cli.ts';
import { renderGrid } from '../l7/table.ts';
import { percentile } from '../tcp/load.ts';
import { procCpuS, sysctl } from '../tcp/proc.ts';

const CONTENDERS = ['none', 'syncookies', 'synproxy', 'secbeat'] as const;
type Contender = (typeof CONTENDERS)[number];
const PORT = 8443;
const BACKEND_PORT = 9000;
const CLIENTS = resolve(import.meta.dirname, '../../test/helpers/bin/tcp-clients.ts');
const FLOOD = resolve(import.meta.dirname, 'flood.ts');
const PIN_DIR = `/tmp/secbeat-bench-bpffs-${process.pid}`;

/** The issue's targets. */
const TARGET = { legit: 0.99, reaching: 0.01, efficiency: 1.15, dropNs: 60, cookieNs: 300 };

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    contenders: { type: 'string', default: CONTENDERS.join(',') },
    seconds: { type: 'string' },
    generator: { type: 'string', default: 'xdp' },
    rate: { type: 'string', default: '100000' },
    rounds: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write('usage: node bench/syn/run.ts [--quick] [--contenders none,syncookies,synproxy,secbeat] [--seconds N] [--generator xdp|hping3] [--rate PPS] [--rounds N]\n');
  process.exit(0);
}
const contenders = parseList(values.contenders, CONTENDERS, '--contenders');
const [generator] = parseList(values.generator, ['xdp', 'hping3'] as const, '--generator');
/** Seconds of flood per contender, and per path-cost phase. */
const floodSeconds = Number(values.seconds ?? (values.quick ? 3 : 8));
const PATH_SECONDS = 2;
const legitConnections = values.quick ? 1_000 : 4_000;
const rounds = Number(values.rounds ?? (values.quick ? 1 : 3));
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, not ${values.rounds}`);

interface FloodResult {
  offered: number;
  seconds: number;
  reachingStack: number;
  legitOk: number;
  legitTotal: number;
  failures: Record<string, number>;
  connectMs: number[];
  /** Flood packets the server's receive path judged. */
  handled: number;
  /** CPU time of the server's NAPI thread (its receive path, XDP included) and its userspace process. */
  serverCpuS: number;
  napiCpuS: number;
}

// ------------------------------------------------------------------------------------------ measuring

function collect(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((done) => child.once('exit', (code) => done({ code, stdout, stderr })));
}

function sh(bed: TestBed, host: Host, command: string, args: readonly string[]): Promise<unknown> {
  return bed.exec(host, command, args, 30_000);
}

/** An nftables counter at prerouting (before conntrack and raw): packets to PORT from anyone but the client. */
async function installFloodCounter(bed: TestBed): Promise<void> {
  const script = `table inet bench_count {\n  chain pre {\n    type filter hook prerouting priority -400; policy accept;\n    ip saddr != ${bed.client.ip} tcp dport ${PORT} counter\n  }\n}\n`;
  await bed.exec(bed.server, 'sh', ['-c', `printf '%s' '${script}' | nft -f -`]);
}

async function floodCounter(bed: TestBed): Promise<number> {
  const { stdout } = await bed.exec(bed.server, 'nft', ['-j', 'list', 'table', 'inet', 'bench_count']);
  const found = /"packets":\s*(\d+)/.exec(stdout);
  return found === null ? 0 : Number(found[1]);
}

// ------------------------------------------------------------------------------------------ contenders

/** Prepares the server for a contender: the process that serves (for secbeat, the running node). */
async function prepare(bed: TestBed, contender: Contender): Promise<{ node: NodeProcess | null; serverPid: number }> {
  const server = bed.server;
  const sysctl = (key: string, value: string) => sh(bed, server, 'sysctl', ['-qw', `${key}=${value}`]);
  await sysctl('net.ipv4.tcp_syncookies', contender === 'none' ? '0' : '1');
  if (contender === 'synproxy') {
    await sysctl('net.netfilter.nf_conntrack_tcp_loose', '0');
    const dev = server.dev;
    await sh(bed, server, 'iptables', ['-t', 'raw', '-A', 'PREROUTING', '-i', dev, '-p', 'tcp', '--dport', String(PORT), '--syn', '-j', 'CT', '--notrack']);
    await sh(bed, server, 'iptables', ['-A', 'INPUT', '-i', dev, '-p', 'tcp', '--dport', String(PORT), '-m', 'state', '--state', 'INVALID,UNTRACKED', '-j', 'SYNPROXY', '--sack-perm', '--timestamp', '--wscale', '7', '--mss', '1460']);
    await sh(bed, server, 'iptables', ['-A', 'INPUT', '-i', dev, '-p', 'tcp', '--dport', String(PORT), '-m', 'state', '--state', 'INVALID', '-j', 'DROP']);
  }
  if (contender !== 'secbeat') return { node: null, serverPid: await startEcho(bed, server.ip, PORT, 1) };
  await startEcho(bed, '127.0.0.1', BACKEND_PORT, 1);
  const node = await startNode({
    mode: 'syn',
    netns: server.ns,
    host: server.ip,
    port: PORT,
    backendPort: BACKEND_PORT,
    threads: 1,
    // The server's side of the bed is core 1: its NAPI thread and its userspace, as for the other contenders.
    cpus: '1',
    extraToml: `
[syn_proxy]
interface = "${server.dev}"
xdp_mode = "native"
pin_dir = "${PIN_DIR}"
sync_interval_ms = 200
${sourceBudget(LEGIT_SOURCE_PPS)}`,
  });
  return { node, serverPid: node.proc.pid! };
}

/** TX packets of a namespace's device (the attacker's veth: what the flood offered). */
async function txPackets(bed: TestBed, host: Host): Promise<number> {
  const { stdout } = await bed.exec(host, 'ip', ['-s', '-j', 'link', 'show', 'dev', host.dev]);
  const [link] = JSON.parse(stdout) as [{ stats64: { tx: { packets: number } } }];
  return link.stats64.tx.packets;
}

interface Measured {
  /** The server's NAPI thread, and its userspace process (the SecBeat node or the echo server). */
  napiPid: number;
  serverMac: string;
  serverPid: number;
  /** Flood packets the server's receive path judged (XDP counters or the prerouting counter). */
  handled: () => Promise<number>;
}

/** What to flood with: SYNs from random sources to `port`, or from the attacker's own address only. */
interface FloodKind {
  sources: 'random' | 'fixed';
  port: number;
  /** Packets a second (XDP generator only; 0: as fast as it can). */
  rate: number;
  /** The generator's core: 0 unless said (the server's is 1). */
  cpu?: number;
}

/** Starts the flood on its core for `seconds`; resolves with the packets it offered. */
function startFlood(bed: TestBed, kind: FloodKind, seconds: number, serverMac: string): Promise<number> {
  if (generator === 'xdp') {
    const args = [bed.attacker.dev, serverMac, bed.server.ip, String(kind.port), String(seconds), String(kind.rate), ...(kind.sources === 'fixed' ? ['fixed', bed.attacker.ip] : [])];
    const child = bed.spawn(bed.attacker, 'taskset', ['-c', String(kind.cpu ?? 0), process.execPath, FLOOD, ...args]);
    return collect(child).then(({ stdout, stderr }) => {
      if (stdout.trim() === '') throw new Error(`the flood generator failed: ${stderr.trim()}`);
      return (JSON.parse(stdout) as { sent: number }).sent;
    });
  }
  const args = ['-q', '-S', '-p', String(kind.port), ...(kind.sources === 'random' ? ['--rand-source'] : []), '--flood', bed.server.ip];
  return txPackets(bed, bed.attacker).then(async (before) => {
    const child = bed.spawn(bed.attacker, 'taskset', ['-c', String(kind.cpu ?? 0), 'hping3', ...args]);
    const done = collect(child);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    child.kill('SIGINT');
    await done;
    return (await txPackets(bed, bed.attacker)) - before;
  });
}

/** A flood of `seconds` with, when asked, the legitimate client (core 0) during it. */
async function flood(bed: TestBed, measured: Measured, kind: FloodKind, seconds: number, withClients: boolean): Promise<FloodResult> {
  const counterBefore = await floodCounter(bed);
  const handledBefore = await measured.handled();
  const napiBefore = procCpuS(measured.napiPid);
  const serverBefore = procCpuS(measured.serverPid);
  const started = performance.now();
  const offeredPromise = startFlood(bed, kind, seconds, measured.serverMac);
  // Awaited below, after the client: a failure meanwhile must not count as unhandled, which would end the process
  // before the bed (namespaces, mounts) is torn down.
  offeredPromise.catch(() => undefined);
  let clientReport = { attempted: 0, ok: 0, failures: {} as Record<string, number>, connectMs: [] as number[] };
  if (withClients) {
    await new Promise((r) => setTimeout(r, 300));
    // Connections start evenly over the flood, none after its end. The client runs at real-time priority on its
    // core: a woken client waiting behind the flood generator for the scheduler's next tick (4 ms here) would add
    // its own delay to every contender's tail, which is not what the latency is meant to measure.
    const spread = String(Math.max(1000, seconds * 1000 - 600));
    const client = bed.spawn(bed.client, 'chrt', ['-f', '20', 'taskset', '-c', '0', process.execPath, CLIENTS, bed.server.ip, String(PORT), String(legitConnections), '4', '3000', spread]);
    clientReport = JSON.parse((await collect(client)).stdout) as typeof clientReport;
  }
  const offered = await offeredPromise;
  const elapsed = (performance.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, 300));
  const napiCpuS = procCpuS(measured.napiPid) - napiBefore;
  const processCpuS = procCpuS(measured.serverPid) - serverBefore;
  return {
    offered,
    seconds: elapsed,
    reachingStack: (await floodCounter(bed)) - counterBefore,
    handled: (await measured.handled()) - handledBefore,
    legitOk: clientReport.ok,
    legitTotal: clientReport.attempted,
    failures: clientReport.failures,
    connectMs: clientReport.connectMs,
    serverCpuS: napiCpuS + processCpuS,
    napiCpuS,
  };
}

/** The contenders' flood, at --rate; the path-cost phases flood as fast as the generator goes. */
const SYN_FLOOD: FloodKind = { sources: 'random', port: PORT, rate: Number(values.rate) };
const PATH_FLOOD: FloodKind = { ...SYN_FLOOD, rate: 0 };

async function runContender(contender: Contender, subnet: number): Promise<{ result: FloodResult; paths: Record<string, number> | null }> {
  await using bed = await createTestBed(subnet);
  const napiPid = await bed.threadServerNapi(1);
  await bed.threadSwitchNapi(0);
  await installFloodCounter(bed);
  const { node, serverPid } = await prepare(bed, contender);
  let stats: { restore: () => void } | null = null;
  try {
    let programId = 0;
    if (node !== null) programId = (await synStatus(node)).programId;
    const handled = async (): Promise<number> => {
      if (node === null) return floodCounter(bed);
      const packets = (await synStatus(node)).packets;
      return Object.entries(packets).reduce((sum, [reason, n]) => sum + (reason === 'pass' ? 0 : n), 0);
    };
    const serverMac = (await bed.exec(bed.server, 'cat', [`/sys/class/net/${bed.server.dev}/address`])).stdout.trim();
    const measured: Measured = { napiPid, serverPid, serverMac, handled };
    stats = node !== null ? bpfStats(true) : null;
    const before = node !== null ? programRunStats(programId) : null;
    // The switch's XDP program on the attacker's veth (a destination check) runs once per flood packet: what the
    // kernel's accounting reports for a program that does next to nothing is the floor under each path's figure.
    const floorId = await peerProgramId(bed);
    const result = await flood(bed, measured, SYN_FLOOD, floodSeconds, true);
    let paths: Record<string, number> | null = null;
    if (node !== null && before !== null) {
      // The program's counters live in pinned maps, which outlast a round: the phases' drops are differences.
      const countedBefore = (await synStatus(node)).packets;
      // Each path at the generator's full rate, as a real flood arrives: in batches, caches warm.
      const beforeCookie = programRunStats(programId);
      const floorCookie = programRunStats(floorId);
      await flood(bed, measured, PATH_FLOOD, PATH_SECONDS, false);
      paths = { cookie: nsPerRun(beforeCookie, programRunStats(programId)), cookie_floor: nsPerRun(floorCookie, programRunStats(floorId)) };
      // The same at --rate, during the contenders' flood: the server's batches are small and start cold.
      paths['cookie_paced'] = nsPerRun(before, beforeCookie);
      // The blocklist path, as the rate-limit path below: one source (the attacker's own address) flooding, here
      // blocked. A random-source flood is measured too, with every IPv4 source blocked; there the generator writes
      // each frame on core 0 and the program's first read of it on core 1 misses across cores, which says more
      // about this bed than about the path.
      const blockPhase = async (cidrs: readonly string[], kind: FloodKind, key: string): Promise<void> => {
        for (const cidr of cidrs) await node.admin({ cmd: 'cidr.block', cidr });
        await new Promise((r) => setTimeout(r, 600));
        const beforeBlock = programRunStats(programId);
        const floorBlock = programRunStats(floorId);
        await flood(bed, measured, kind, PATH_SECONDS, false);
        paths![key] = nsPerRun(beforeBlock, programRunStats(programId));
        paths![`${key}_floor`] = nsPerRun(floorBlock, programRunStats(floorId));
        for (const cidr of cidrs) await node.admin({ cmd: 'cidr.unblock', cidr });
        await new Promise((r) => setTimeout(r, 600));
      };
      await blockPhase([`${bed.attacker.ip}/32`], { sources: 'fixed', port: PORT, rate: 0 }, 'blocklist');
      await blockPhase(['0.0.0.0/1', '128.0.0.0/1'], PATH_FLOOD, 'blocklist_random');
      // The same with the generator on the server's core, where the frames it writes are in the cache the
      // program reads from: what is left is the path's own cost with random sources.
      await blockPhase(['0.0.0.0/1', '128.0.0.0/1'], { ...PATH_FLOOD, cpu: 1 }, 'blocklist_random_local');
      // The rate-limit path: one source (the attacker's own address) far over its budget, to a port nobody
      // protects: past the first second's burst, every packet is dropped there. The budget comes down to 1,000
      // packets a second first (a live config change, as an operator would make under attack), so that the
      // packets it passes, each a trip through the server's stack, are one in a thousand.
      await setSourceBudget(node, 1_000);
      const passedBefore = (await synStatus(node)).packets['pass'] ?? 0;
      const beforeRate = programRunStats(programId);
      const floorRate = programRunStats(floorId);
      await flood(bed, measured, { sources: 'fixed', port: 9999, rate: 0 }, PATH_SECONDS, false);
      paths['rate_limit'] = nsPerRun(beforeRate, programRunStats(programId));
      paths['rate_limit_floor'] = nsPerRun(floorRate, programRunStats(floorId));
      const status = await synStatus(node);
      const counted = (reason: string): number => (status.packets[reason] ?? 0) - (countedBefore[reason] ?? 0);
      // Pinned, the counters add up over the run (its bpffs mount is new): the last round's is the run's total.
      paths['aborted_packets'] = status.packets['aborted'] ?? 0;
      paths['rate_limit_drops'] = counted('rate_limit');
      paths['blocklist_drops'] = counted('blocklist');
      paths['rate_limit_passed'] = (status.packets['pass'] ?? 0) - passedBefore;
    }
    return { result, paths };
  } finally {
    stats?.restore();
    await node?.[Symbol.asyncDispose]();
  }
}

/**
 * The per-source budget. The legitimate client is one address making hundreds of connections a second (some
 * 2,000 packets a second): the contenders' flood runs under a budget that holds them.
 */
const LEGIT_SOURCE_PPS = 20_000;

function sourceBudget(pps: number): string {
  return `source_pps = ${pps}\nsource_burst = ${pps}\n`;
}

/** Rewrites the node's budget in its config file and reloads it (the SYN-proxy actor applies it live). */
async function setSourceBudget(node: NodeProcess, pps: number): Promise<void> {
  const file = join(node.dir, 'node.toml');
  const before = readFileSync(file, 'utf8');
  if (!before.includes(sourceBudget(LEGIT_SOURCE_PPS))) throw new Error(`${file} holds no budget of ${LEGIT_SOURCE_PPS}`);
  writeFileSync(file, before.replace(sourceBudget(LEGIT_SOURCE_PPS), sourceBudget(pps)));
  const reply = await node.admin({ cmd: 'config.reload' });
  if (!reply.ok) throw new Error(`config.reload: ${JSON.stringify(reply.error)}`);
  await new Promise((r) => setTimeout(r, 600));
}

// ------------------------------------------------------------------------------------------ BPF statistics

function synStatus(node: NodeProcess): Promise<SynStatus> {
  return askActor<SynStatus>(node, 'syn-proxy', { type: 'syn.status' });
}

/** The id of the switch's XDP program on the attacker's veth (bpf/peer-pass.bpf.c, attached by test/helpers/netns.ts). */
async function peerProgramId(bed: TestBed): Promise<number> {
  const sw = bed.namespaces[0]!;
  const peer = `${bed.attacker.dev}p`;
  const { stdout } = await bed.exec(sw, 'ip', ['-d', 'link', 'show', 'dev', peer]);
  const id = /prog\/xdp id (\d+)/.exec(stdout);
  if (id === null) throw new Error(`no XDP program on ${peer}`);
  return Number(id[1]);
}

/** Turns the kernel's run-time accounting on (kernel.bpf_stats_enabled) until restore(). */
function bpfStats(on: boolean): { restore: () => void } {
  const before = sysctl('kernel.bpf_stats_enabled') ?? '0';
  execFileSync('sysctl', ['-qw', `kernel.bpf_stats_enabled=${on ? 1 : 0}`]);
  return { restore: () => execFileSync('sysctl', ['-qw', `kernel.bpf_stats_enabled=${before}`]) };
}

function programRunStats(id: number): { ns: number; runs: number } {
  const info = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show', 'id', String(id)], { encoding: 'utf8' })) as { run_time_ns?: number; run_cnt?: number };
  return { ns: info.run_time_ns ?? 0, runs: info.run_cnt ?? 0 };
}

function nsPerRun(a: { ns: number; runs: number }, b: { ns: number; runs: number }): number {
  return b.runs === a.runs ? NaN : (b.ns - a.ns) / (b.runs - a.runs);
}

/** The same three paths through BPF_PROG_TEST_RUN (no bed): average ns per run over many repetitions. */
function testRunPaths(): Record<string, number> {
  const program = XdpProgram.open({ pinDir: null, sourceEntries: 0 });
  try {
    program.configure({ protectedTcpPorts: [PORT], openUdpPorts: [], dropClosedUdp: false, sourcePps: 1, sourceBurst: 1, icmpPps: 0, icmpBurst: 1, mss4: 1460, mss6: 1440, wscale: 7, ttl: 64 });
    program.block([{ cidr: '192.0.2.0/24', expiresAtMs: null }]);
    const syn = tcpFrame({ src: '198.51.100.7', dst: '203.0.113.1', sport: 40000, dport: PORT, flags: TCP.SYN, options: { mss: 1460, sackPermitted: true, timestamp: [1, 0], wscale: 7 } });
    const blocked = tcpFrame({ src: '192.0.2.7', dst: '203.0.113.1', sport: 40000, dport: PORT, flags: TCP.SYN });
    const limited = udpFrame({ src: '198.51.100.8', dst: '203.0.113.1', sport: 40000, dport: 9999 });
    program.testRun(limited);
    // A SYN is rewritten into its SYN-ACK in place, and repetitions of one test run share the packet: the cookie
    // path is timed one run at a time (the kernel's per-run figure), the drop paths, which change nothing, in one
    // call of many repetitions.
    const measure = (frame: Buffer, expected: number, calls: number, repeat: number): number => {
      let total = 0;
      for (let i = 0; i < calls; i++) {
        const run = program.testRun(frame, repeat);
        if (run.action !== expected) throw new Error(`BPF_PROG_TEST_RUN gave action ${run.action}, expected ${expected}`);
        total += run.durationNs;
      }
      return total / calls;
    };
    // A single run's figure carries the timing around it: an ARP frame, which the program passes in a few ns (by
    // repetitions), measured the same way gives that overhead, taken off the cookie path's.
    const arp = Buffer.alloc(60);
    arp.writeUInt16BE(0x0806, 12);
    const overhead = measure(arp, XDP_ACTION.PASS, 20_000, 1) - measure(arp, XDP_ACTION.PASS, 1, 200_000);
    return {
      cookie: measure(syn, XDP_ACTION.TX, 20_000, 1) - overhead,
      single_run_overhead: overhead,
      blocklist: measure(blocked, XDP_ACTION.DROP, 1, 200_000),
      rate_limit: measure(limited, XDP_ACTION.DROP, 1, 200_000),
    };
  } finally {
    program.close();
  }
}

// ------------------------------------------------------------------------------------------ report

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—';
}

/** Two rounds' floods of one contender as one: counts add up, latencies pool. */
function addUp(a: FloodResult, b: FloodResult): FloodResult {
  const failures = { ...a.failures };
  for (const [reason, n] of Object.entries(b.failures)) failures[reason] = (failures[reason] ?? 0) + n;
  return {
    offered: a.offered + b.offered,
    seconds: a.seconds + b.seconds,
    reachingStack: a.reachingStack + b.reachingStack,
    legitOk: a.legitOk + b.legitOk,
    legitTotal: a.legitTotal + b.legitTotal,
    failures,
    connectMs: [...a.connectMs, ...b.connectMs],
    handled: a.handled + b.handled,
    serverCpuS: a.serverCpuS + b.serverCpuS,
    napiCpuS: a.napiCpuS + b.napiCpuS,
  };
}

/** Per key, the median of the rounds' figures. */
function medians(samples: readonly Record<string, number>[]): Record<string, number> {
  const keys = new Set(samples.flatMap((sample) => Object.keys(sample)));
  return Object.fromEntries([...keys].map((key) => [key, percentile(Float64Array.from(samples, (sample) => sample[key] ?? NaN).sort(), 50)]));
}

function latency(r: FloodResult, p: number): number {
  return percentile(Float64Array.from(r.connectMs).sort(), p);
}

async function main(): Promise<void> {
  mkdirSync(PIN_DIR, { recursive: true });
  execFileSync('mount', ['-t', 'bpf', 'bpf', PIN_DIR]);
  const results = new Map<Contender, FloodResult>();
  const pathSamples: Record<string, number>[] = [];
  const testRunSamples: Record<string, number>[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const [i, contender] of contenders.entries()) {
        process.stderr.write(`round ${round} of ${rounds}, ${contender}: ${floodSeconds} s of SYN flood…\n`);
        const run = await runContender(contender, 90 + i);
        const before = results.get(contender);
        results.set(contender, before === undefined ? run.result : addUp(before, run.result));
        if (run.paths !== null) pathSamples.push(run.paths);
      }
      testRunSamples.push(testRunPaths());
    }
  } finally {
    execFileSync('umount', [PIN_DIR]);
    rmSync(PIN_DIR, { recursive: true, force: true });
  }
  const paths = pathSamples.length > 0 ? medians(pathSamples) : null;
  const testRun = medians(testRunSamples);

  const cookies = results.get('syncookies');
  // The rows' figures are the rounds' sums (packets, CPU seconds) and pooled latencies; the path costs, medians.
  const header = ['metric', ...contenders, 'secbeat/syncookies', 'target', 'pass/fail'];
  const rows: string[][] = [];
  const row = (metric: string, value: (r: FloodResult) => number, digits: number, target?: { text: string; ok: (v: number, ratio: number) => boolean }, ratioOf = true): void => {
    const cells = contenders.map((c) => fmt(value(results.get(c)!), digits));
    const s = results.get('secbeat');
    const ratio = s !== undefined && cookies !== undefined && ratioOf ? value(s) / value(cookies) : NaN;
    const verdict = target === undefined || s === undefined ? '' : target.ok(value(s), ratio) ? 'pass' : 'FAIL';
    rows.push([metric, ...cells, Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '', target?.text ?? '', verdict]);
  };
  row('flood packets offered', (r) => r.offered, 0, undefined, false);
  row('  flood rate (packets/s)', (r) => r.offered / r.seconds, 0, undefined, false);
  row('  flood packets reaching the server stack', (r) => r.reachingStack, 0, undefined, false);
  row('  … % of offered', (r) => (100 * r.reachingStack) / r.offered, 2, { text: `≤ ${TARGET.reaching * 100} %`, ok: (v) => v <= TARGET.reaching * 100 }, false);
  row('legitimate connections attempted', (r) => r.legitTotal, 0, undefined, false);
  row('  succeeded (%)', (r) => (100 * r.legitOk) / r.legitTotal, 2, { text: `≥ ${TARGET.legit * 100} %`, ok: (v) => v >= TARGET.legit * 100 }, false);
  row('  connect p50 (ms)', (r) => latency(r, 50), 3);
  row('  connect p90 (ms)', (r) => latency(r, 90), 3);
  row('  connect p99 (ms)', (r) => latency(r, 99), 3, { text: '≤ syncookies', ok: (_v, ratio) => ratio <= 1 });
  row('flood packets the server judged', (r) => r.handled, 0, undefined, false);
  row('  per server CPU-second', (r) => r.handled / r.serverCpuS, 0, { text: `≥ ${TARGET.efficiency}× syncookies`, ok: (_v, ratio) => ratio >= TARGET.efficiency });
  row('  server CPU seconds (NAPI thread + process)', (r) => r.serverCpuS, 2);
  row('  of which the NAPI thread', (r) => r.napiCpuS, 2);
  process.stdout.write(`\nSYN flood on the netns test bed, ${rounds} round(s), each contender in turn: up to ${legitConnections} legitimate connections (started evenly over the flood; the client at real-time priority) during ${floodSeconds} s of random-source SYNs (${generator === 'xdp' ? `the XDP generator, bench/syn/flood.ts, at ${Number(values.rate).toLocaleString('en-US')} packets/s` : 'hping3 --flood'}, core 0; the server's NAPI thread and userspace on core 1), kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}\n\n`);
  process.stdout.write(`${renderGrid(header, rows, (c) => c === 0 || c >= header.length - 2)}\n`);
  for (const c of contenders) {
    const failures = results.get(c)!.failures;
    if (Object.keys(failures).length > 0) process.stdout.write(`note: ${c} client failures: ${JSON.stringify(failures)}\n`);
  }
  if (paths !== null) {
    /** A row of the table; `target` null for a figure that is shown, not judged. */
    const pathRow = (name: string, key: string, target: number | null): string[] => {
      const live = paths![key]!;
      const floor = paths![`${key}_floor`]!;
      const each = pathSamples.map((sample) => sample[key]!);
      const range = each.length > 1 ? `${fmt(Math.min(...each), 1)}–${fmt(Math.max(...each), 1)}` : '';
      const verdict = target === null ? '—' : live <= target ? 'pass' : 'FAIL';
      return [name, fmt(live, 1), range, fmt(floor, 1), fmt(live - floor, 1), fmt(testRun[key] ?? NaN, 1), target === null ? '' : `≤ ${target}`, verdict];
    };
    const pathRows = [
      pathRow('cookie (SYN → SYN-ACK)', 'cookie', TARGET.cookieNs),
      pathRow('blocklist drop', 'blocklist', TARGET.dropNs),
      pathRow('  … random sources, generator on core 0', 'blocklist_random', null),
      pathRow('  … random sources, generator on core 1', 'blocklist_random_local', null),
      pathRow('rate-limit drop', 'rate_limit', TARGET.dropNs),
    ];
    process.stdout.write(`\nSecBeat's XDP program, ns per packet, medians of the rounds: the kernel's BPF statistics during a full-rate flood down each\npath (judged), and the rounds' range; the same for the switch's XDP program, a destination check, on the same frames (the accounting's floor on this VM), and\nBPF_PROG_TEST_RUN (the cookie path: 20,000 single runs less a single run's own ${fmt(testRun['single_run_overhead']!, 1)} ns; each drop path: 200,000\nrepetitions)\n\n`);
    process.stdout.write(`${renderGrid(['path', 'live (bpf_stats)', 'rounds', 'switch program (floor)', 'live − floor', 'test run', 'target', 'pass/fail'], pathRows, (c) => c === 0 || c === 2 || c >= 6)}\n`);
    process.stdout.write(`random sources, shown, not judged: the generator writes each frame, on core 0 (the program's first read of it, on core 1,\nmisses across cores) or on the server's core 1 (the frame is in the cache the program reads, and core 0 sits idle)\n`);
    process.stdout.write(`cookie path at --rate, during the contenders' flood (small batches, cold caches): ${fmt(paths['cookie_paced']!, 1)} ns live\n`);
    process.stdout.write(`XDP_ABORTED packets over the whole run: ${pathSamples.at(-1)!['aborted_packets']}; drops counted per path phase (median): blocklist ${fmt(paths['blocklist_drops']!)}, rate_limit ${fmt(paths['rate_limit_drops']!)} (and ${fmt(paths['rate_limit_passed']!)} passed within the budget)\n`);
  }
  process.stdout.write(`RESULT ${JSON.stringify({ floodSeconds, legitConnections, rounds, results: Object.fromEntries([...results].map(([c, r]) => [c, { ...r, connectMs: undefined, p50Ms: latency(r, 50), p99Ms: latency(r, 99) }])), paths, pathSamples, testRun })}\n`);
}

await main();
