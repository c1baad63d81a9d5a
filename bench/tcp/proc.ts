// Process plumbing for bench/tcp/run.ts and bench/l7/run.ts: spawning children pinned to a core, reading their
// CPU time, RSS and fds from /proc, loopback port helpers, the IPC wait of load children, and a registry that
// kills every child (and adopted grandchild, such as nginx's workers) by PID on exit, error or signal.
// Linux only (taskset from util-linux, /proc); nothing here knows which proxy is under test.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** Linux USER_HZ: the unit of utime/stime in /proc/<pid>/stat (100 on every Linux x86-64/arm64 build). */
export const CLOCK_TICKS_PER_S = 100;

/** A core, as taskset -c takes it. */
export type Core = 0 | 1;

/** User and system CPU of a whole process (every thread, live or exited), in seconds; 10 ms granularity. */
export function procCpuSplit(pid: number): { userS: number; systemS: number } {
  // The command name may contain spaces and parentheses, so fields are counted from its closing ")":
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { userS: Number(fields[11]) / CLOCK_TICKS_PER_S, systemS: Number(fields[12]) / CLOCK_TICKS_PER_S };
}

export function procCpuS(pid: number): number {
  const { userS, systemS } = procCpuSplit(pid);
  return userS + systemS;
}

/** Resident set size (VmRSS) in bytes: what the task's idle-RSS target is about. */
export function procRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** Open file descriptors: sockets, pipes, epoll fds; tells how many fds a proxied connection costs. */
export function procFdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Direct children of a process (all its threads' children), from /proc/<pid>/task/<tid>/children: how a
 * multi-process server's workers (nginx's master forks them) are found for CPU, RSS and fd accounting.
 */
export function procChildPids(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const children = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (children !== '') out.push(...children.split(' ').map(Number));
    } catch {
      // The thread ended while being read.
    }
  }
  return out;
}

/**
 * Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat); null when it is gone. With
 * the PID it names one process for good, whatever reuses the PID later.
 */
export function procStartTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return null;
  }
}

/** Cpus_allowed_list of the process, to show in the report that pinning took effect. */
export function procAffinity(pid: number): string {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return /^Cpus_allowed_list:\s+(\S+)$/m.exec(status)?.[1] ?? '?';
}

/** Linux sysctl under /proc/sys, as text; null when absent. Read-only: the bench never changes sysctls. */
export function sysctl(name: string): string | null {
  try {
    return readFileSync(`/proc/sys/${name.replaceAll('.', '/')}`, 'utf8').trim();
  } catch {
    return null;
  }
}

/**
 * True when something listens on 127.0.0.1:port, read from /proc/net/tcp instead of connecting: iperf3 -s -1
 * would take a probing connection for its one test and exit.
 */
export function isListening(port: number): boolean {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols[1] === local && cols[3] === '0A') return true; // 0A = TCP_LISTEN
  }
  return false;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export { freePort, waitForConnect } from '../../scripts/lib/loopback.ts';

/** Polls /proc/net/tcp until `port` is in LISTEN, bounded by `timeoutMs`. */
export async function waitForListen(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (isListening(port)) return;
    await sleep(20);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

/**
 * Every child this bench starts, so that normal completion, an exception and SIGINT/SIGTERM all end them by
 * PID. Children are spawned through `taskset -c <core>`, which execs the program: the PID is the program's.
 */
export class ProcessRegistry {
  readonly #children = new Set<ChildProcess>();
  /** Grandchildren the bench must end itself if their parent dies first: PID → start time (against PID reuse). */
  readonly #adopted = new Map<number, number>();

  spawnPinned(core: Core, command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('taskset', ['-c', String(core), command, ...args], options);
    if (child.pid === undefined) throw new Error(`cannot spawn ${command}`);
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
  async stop(child: ChildProcess, graceMs = 5_000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /**
   * A process a child forked (nginx's workers): its parent normally ends it, but a parent that is SIGKILLed
   * leaves it running, so stopAll() and killAllNow() SIGKILL it if it is still the same process.
   */
  adopt(pid: number): void {
    const started = procStartTicks(pid);
    if (started !== null) this.#adopted.set(pid, started);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#children].map((c) => this.stop(c)));
    this.#killAdopted();
  }

  /** Last resort from a synchronous 'exit' handler: no waiting possible, so SIGKILL. */
  killAllNow(): void {
    for (const child of this.#children) {
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // Already gone between the check and the kill.
        }
      }
    }
    this.#killAdopted();
  }

  #killAdopted(): void {
    for (const [pid, started] of this.#adopted) {
      this.#adopted.delete(pid);
      if (procStartTicks(pid) !== started) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone between the check and the kill.
      }
    }
  }
}

/**
 * Waits for the message `{ type }` from an IPC child (the load children of both benches); a `{ type: 'error',
 * message }` message, the child's exit or `timeoutMs` rejects.
 */
export function waitMessage<M extends { type: string }, T extends M['type']>(
  child: ChildProcess,
  type: T,
  timeoutMs: number,
): Promise<Extract<M, { type: T }>> {
  return new Promise((resolvePromise, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (m: M): void => {
      if (m.type === 'error') {
        cleanup();
        reject(new Error(`load child: ${(m as M & { message?: string }).message ?? '?'}`));
      } else if (m.type === type) {
        cleanup();
        resolvePromise(m as Extract<M, { type: T }>);
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`load child exited (${code}) while waiting for ${type}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`load child: no ${type} within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

export interface Completed {
  code: number | null;
  stdout: string;
  stderr: string;
  /**
   * CPU the command used (utime + stime), as last sampled before it exited; only with `sampleCpuMs`. A reaped
   * process has no /proc entry, so up to one interval of its CPU is missing (the load tools idle at the end).
   */
  cpuS?: number;
}

/**
 * Runs a pinned command to completion and collects its output; SIGKILLed after `timeoutMs`. With
 * `sampleCpuMs`, its CPU time is read from /proc every that many ms (see Completed.cpuS).
 */
export function runPinned(
  procs: ProcessRegistry,
  core: Core,
  command: string,
  args: readonly string[],
  timeoutMs: number,
  sampleCpuMs?: number,
): Promise<Completed> {
  const child = procs.spawnPinned(core, command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout?.on('data', (b: Buffer) => stdout.push(b));
  child.stderr?.on('data', (b: Buffer) => stderr.push(b));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  let cpuS: number | undefined;
  const sample = (): void => {
    try {
      if (child.pid !== undefined) cpuS = procCpuS(child.pid);
    } catch {
      // Exited between two samples: the last one stands.
    }
  };
  const sampler = sampleCpuMs === undefined ? undefined : setInterval(sample, sampleCpuMs);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      clearInterval(sampler);
      const done: Completed = { code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') };
      if (sampleCpuMs !== undefined) done.cpuS = cpuS ?? 0;
      resolve(done);
    });
  });
}

/** CPU time of one /proc/stat line (all cores, or one), in seconds. */
export interface CoreTimes {
  /** user + nice + system: the part processes are charged for in their utime/stime. */
  processS: number;
  /** irq + softirq: network stack work done in interrupt context, charged to no process. */
  irqS: number;
  /** Time the hypervisor ran something else while this VM wanted the CPU. */
  stealS: number;
}

/** /proc/stat lines by name: "cpu" (all cores), "cpu0", "cpu1", … */
export function coreTimes(): Map<string, CoreTimes> {
  const out = new Map<string, CoreTimes>();
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    if (!line.startsWith('cpu')) continue;
    const [name, ...rest] = line.split(/\s+/);
    const t = rest.map(Number);
    const at = (i: number): number => (t[i] ?? 0) / CLOCK_TICKS_PER_S;
    // Fields: user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user).
    if (name !== undefined) out.set(name, { processS: at(0) + at(1) + at(2), irqS: at(5) + at(6), stealS: at(7) });
  }
  return out;
}

/** Program names otherBenchProcesses() looks for by default: the TCP bench's peers. */
const BENCH_PROGRAMS = /(^|\/)(haproxy|iperf3)\b/;

/**
 * Other load generators or proxies already running (another bench, someone's haproxy or iperf3): on a 2-core
 * box they would share the pinned cores, so the report names them. `programs` matches command lines of the
 * peers a bench uses. Scans /proc; never signals anything.
 */
export function otherBenchProcesses(programs: RegExp = BENCH_PROGRAMS): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    // Not this process, nor its parent (a shell, npm or `timeout` whose command line names the bench).
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid || Number(entry) === process.ppid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (programs.test(cmdline) || /bench\/|main\.(ts|js) run/.test(cmdline)) found.push(`${entry}: ${cmdline.slice(0, 120)}`);
    } catch {
      // The process ended while being read.
    }
  }
  return found;
}
