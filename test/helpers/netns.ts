// SYN mode's test bed: an attacker, a client and a server, each in a network namespace this helper creates,
// joined through a bridge in a fourth ("switch") namespace by veth pairs. Names carry the test process's PID so
// parallel runs never meet; dispose deletes every namespace (which takes their veths, bridge, XDP attachments and
// nftables tables with them). Only loopback-free, namespace-local addresses are used (10.<n>.0.0/24).
//
// The server's default route points at the attacker, standing in for the upstream router the flood comes
// through: a kernel answers a SYN only when it has a route back to its source.
//
// veth details the bed handles: the switch-side ends of the server's and the attacker's pairs run
// bpf/build/peer-pass.bpf.o, without which a veth drops the frames an XDP program sends back (XDP_TX needs NAPI on
// the peer: the server's SYN-ACKs, the bench's XDP flood generator); it also drops IPv4 frames to addresses outside
// 10.0.0.0/8, as the upstream router would drop replies to the sources a flood makes up. The client's veth computes
// TCP checksums in software (tx off), because a checksum left to offload reaches the server's XDP program
// unfinished, and SYN mode drops a SYN whose checksum is wrong.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
export const PEER_PASS_OBJECT = resolve(ROOT, 'bpf/build/peer-pass.bpf.o');

export interface Host {
  ns: string;
  /** The host's veth (in its namespace). */
  dev: string;
  ip: string;
}

export interface TestBed extends AsyncDisposable {
  /**
   * Moves the server's receive processing (its veth's NAPI: the XDP program, or the kernel's whole receive
   * path) into a kernel thread of its own pinned to `cpu`, at real-time priority as softirq work would be; its
   * pid, whose CPU time is then the server's receive work.
   */
  threadServerNapi(cpu: number): Promise<number>;
  /**
   * The same for the switch's end of the server's veth, where the server's replies arrive: the network beyond
   * the server (bridging, the replies' drop, delivery to the client) then runs on `cpu`, not on the core that
   * sent them, as it would past a real server's NIC.
   */
  threadSwitchNapi(cpu: number): Promise<number>;
  server: Host;
  client: Host;
  attacker: Host;
  /** Runs a command in a host's namespace; rejects on a non-zero exit. */
  exec(host: Host | string, command: string, args: readonly string[], timeoutMs?: number): Promise<{ stdout: string; stderr: string }>;
  /** Starts a command in a namespace; the caller ends it (and dispose kills what is left). */
  spawn(host: Host, command: string, args: readonly string[]): ChildProcess;
  namespaces: readonly string[];
}

async function ip(args: readonly string[]): Promise<void> {
  await run('ip', [...args], { timeout: 10_000 });
}

/** Builds the bed; `subnet` (1–254) picks 10.<subnet>.0.0/24. */
export async function createTestBed(subnet: number): Promise<TestBed> {
  const tag = `sb${process.pid % 100_000}`;
  const sw = `${tag}-sw`;
  const hosts = { server: 1, client: 2, attacker: 3 } as const;
  const made: string[] = [];
  const children = new Set<ChildProcess>();
  const dispose = async (): Promise<void> => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const ns of made.reverse()) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  };
  try {
    await ip(['netns', 'add', sw]);
    made.push(sw);
    await ip(['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', sw, 'link', 'set', 'br0', 'up']);
    await ip(['-n', sw, 'link', 'set', 'lo', 'up']);
    const bed: Record<keyof typeof hosts, Host> = {} as Record<keyof typeof hosts, Host>;
    for (const [name, octet] of Object.entries(hosts) as [keyof typeof hosts, number][]) {
      const ns = `${tag}-${name.slice(0, 3)}`;
      const dev = `${tag}${name[0]}`;
      const peer = `${tag}${name[0]}p`;
      await ip(['netns', 'add', ns]);
      made.push(ns);
      await ip(['link', 'add', dev, 'netns', ns, 'type', 'veth', 'peer', 'name', peer, 'netns', sw]);
      await ip(['-n', ns, 'addr', 'add', `10.${subnet}.0.${octet}/24`, 'dev', dev]);
      await ip(['-n', ns, 'link', 'set', dev, 'up']);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', sw, 'link', 'set', peer, 'master', 'br0']);
      await ip(['-n', sw, 'link', 'set', peer, 'up']);
      bed[name] = { ns, dev, ip: `10.${subnet}.0.${octet}` };
      if (name !== 'client') await ip(['-n', sw, 'link', 'set', 'dev', peer, 'xdpdrv', 'obj', PEER_PASS_OBJECT, 'sec', 'xdp']);
    }
    await run('ip', ['netns', 'exec', bed.client.ns, 'ethtool', '-K', bed.client.dev, 'tx', 'off'], { timeout: 10_000 });
    // The flood's sources are made up: the server reaches them through the attacker, as through an upstream
    // router (the switch's XDP program drops those replies). Without a route the kernel would not even queue
    // those SYNs.
    await ip(['-n', bed.server.ns, 'route', 'add', 'default', 'via', bed.attacker.ip]);
    const exec: TestBed['exec'] = async (host, command, args, timeoutMs = 60_000) => {
      const ns = typeof host === 'string' ? host : host.ns;
      const { stdout, stderr } = await run('ip', ['netns', 'exec', ns, command, ...args], { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
      return { stdout: String(stdout), stderr: String(stderr) };
    };
    /** Makes `dev`'s NAPI a thread of its own pinned to `cpu` at real-time priority; its pid. */
    const threadNapi = async (ns: string, dev: string, cpu: number): Promise<number> => {
      await exec(ns, 'sh', ['-c', `echo 1 > /sys/class/net/${dev}/threaded`]);
      const { stdout } = await run('ps', ['-e', '-o', 'pid=,comm='], { timeout: 10_000 });
      const thread = String(stdout)
        .split('\n')
        .map((line) => line.trim().split(/\s+/))
        .find(([, comm]) => comm !== undefined && comm.startsWith(`napi/${dev}-`));
      if (thread === undefined) throw new Error(`no NAPI thread for ${dev}`);
      await run('taskset', ['-p', '-c', String(cpu), thread[0]!], { timeout: 10_000 });
      // Real-time priority, as receive processing has in softirq context: userspace on that core cannot starve it.
      await run('chrt', ['-f', '-p', '50', thread[0]!], { timeout: 10_000 });
      return Number(thread[0]);
    };
    const threadServerNapi = async (cpu: number): Promise<number> => {
      const { ns, dev } = bed.server;
      // GRO on gives a veth NAPI even without an XDP program (toggled, as turning on what is on changes nothing).
      await exec(ns, 'ethtool', ['-K', dev, 'gro', 'off']);
      await exec(ns, 'ethtool', ['-K', dev, 'gro', 'on']);
      // A veth hands a packet to its peer's NAPI only if the sender cannot make TSO packets (or the peer runs
      // XDP, which turns the sender's TSO off by itself); otherwise it takes the backlog of the sending core.
      await exec(sw, 'ethtool', ['-K', `${tag}sp`, 'tso', 'off']);
      return threadNapi(ns, dev, cpu);
    };
    // The switch's end has NAPI through its XDP program (bpf/peer-pass.bpf.c).
    const threadSwitchNapi = (cpu: number): Promise<number> => threadNapi(sw, `${tag}sp`, cpu);
    return {
      ...bed,
      threadServerNapi,
      threadSwitchNapi,
      exec,
      spawn(host, command, args) {
        const child = spawn('ip', ['netns', 'exec', host.ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        children.add(child);
        child.once('exit', () => children.delete(child));
        return child;
      },
      namespaces: made,
      [Symbol.asyncDispose]: dispose,
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/**
 * An echo server in the server's namespace on host:port (a child of the bed, killed with it), optionally pinned to
 * `cpu`; its pid, once it listens.
 */
export async function startEcho(bed: TestBed, host: string, port: number, cpu?: number): Promise<number> {
  const program = `require('node:net').createServer((s) => s.pipe(s)).listen({ port: ${port}, host: '${host}', backlog: 511 }, () => console.log('up'))`;
  const command = [...(cpu === undefined ? [] : ['taskset', '-c', String(cpu)]), process.execPath, '-e', program];
  const echo = bed.spawn(bed.server, command[0]!, command.slice(1));
  await new Promise<void>((ready, fail) => {
    echo.stdout!.once('data', () => ready());
    echo.once('exit', (code) => fail(new Error(`the echo server exited with ${code}`)));
  });
  return echo.pid!;
}

/** The XDP program ids attached to a namespace's devices (`ip -d link` reading), empty when none. */
export async function xdpAttachments(ns: string): Promise<string[]> {
  const { stdout } = await run('ip', ['-n', ns, '-d', 'link', 'show'], { timeout: 10_000 });
  return [...String(stdout).matchAll(/prog\/xdp id (\d+)/g)].map((m) => m[1]!);
}
