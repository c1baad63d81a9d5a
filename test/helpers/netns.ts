// SYN mode's test bed: an attacker, a client and a server, each in a network namespace this helper creates,
// joined through a bridge in a fourth ("switch") namespace by veth pairs. Names carry the test process's PID so
// parallel runs never meet; dispose deletes every namespace (which takes their veths, bridge, XDP attachments and
// nftables tables with them). Only loopback-free, namespace-local addresses are used (10.<n>.0.0/24).
//
// veth details the bed handles: the switch-side end of the server's pair runs an XDP_PASS program
// (bpf/build/peer-pass.bpf.o), without which a veth drops the frames the server's XDP program sends back
// (XDP_TX needs NAPI on the peer); the client's veth computes TCP checksums in software (tx off), because a
// checksum left to offload reaches the server's XDP program unfinished, and SYN mode drops a SYN whose checksum
// is wrong.
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
      if (name === 'server') await ip(['-n', sw, 'link', 'set', 'dev', peer, 'xdpdrv', 'obj', PEER_PASS_OBJECT, 'sec', 'xdp']);
    }
    await run('ip', ['netns', 'exec', bed.client.ns, 'ethtool', '-K', bed.client.dev, 'tx', 'off'], { timeout: 10_000 });
    const exec: TestBed['exec'] = async (host, command, args, timeoutMs = 60_000) => {
      const ns = typeof host === 'string' ? host : host.ns;
      const { stdout, stderr } = await run('ip', ['netns', 'exec', ns, command, ...args], { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
      return { stdout: String(stdout), stderr: String(stderr) };
    };
    return {
      ...bed,
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

/** The XDP program ids attached to a namespace's devices (`ip -d link` reading), empty when none. */
export async function xdpAttachments(ns: string): Promise<string[]> {
  const { stdout } = await run('ip', ['-n', ns, '-d', 'link', 'show'], { timeout: 10_000 });
  return [...String(stdout).matchAll(/prog\/xdp id (\d+)/g)].map((m) => m[1]!);
}
