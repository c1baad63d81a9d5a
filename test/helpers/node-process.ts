// Starts a real SecBeat node as a child process (bin/secbeat run) on a temp config, talks to its admin socket
// with raw JSON lines, and kills it by PID on dispose. Used by integration tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from './ports.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const SECBEAT = join(ROOT, 'bin/secbeat');

export interface NodeProcess extends AsyncDisposable {
  proc: ChildProcess;
  port: number;
  metricsPort: number;
  socketPath: string;
  dir: string;
  output: () => string;
  admin: (cmd: Record<string, unknown>, timeoutMs?: number) => Promise<{ ok: boolean; result?: unknown; error?: { code: string; message: string } }>;
  ctl: (...args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Asks an actor of a running node through the admin socket (`actor.inject` with ask); its reply. */
export async function askActor<T>(node: NodeProcess, address: string, message: { type: string }, timeoutMs = 2_000): Promise<T> {
  const reply = await node.admin({ cmd: 'actor.inject', address, message, ask: true, timeoutMs });
  if (!reply.ok) throw new Error(`${message.type} to ${address}: ${JSON.stringify(reply.error)}`);
  return (reply.result as { reply: T }).reply;
}

/** `env` is added to the test's environment: config overrides (SECBEAT_ADMIN__API_TOKEN) and `${VAR}` values. */
export async function startNode(opts: {
  backendPort: number;
  extraToml?: string;
  threads?: number;
  mode?: 'tcp' | 'l7' | 'syn';
  /** Run inside this network namespace (`ip netns exec`), listening on `host`. */
  netns?: string;
  /** CPUs the node may run on (taskset -c), e.g. "0". */
  cpus?: string;
  /** The proxy's listening address (default 127.0.0.1) and port (default: a free one). */
  host?: string;
  port?: number;
  env?: Record<string, string>;
  /** output() keeps the last this many characters (a long run reads stdout itself, through proc). */
  keepOutput?: number;
  /** [state] dir: give the same one to a restarted node (default: in the node's own temp dir). */
  stateDir?: string;
  /** [platform]: nodes of one fleet need distinct names. */
  region?: string;
  nodeId?: string;
}): Promise<NodeProcess> {
  const keep = opts.keepOutput ?? Infinity;
  const dir = mkdtempSync(join(tmpdir(), 'secbeat-it-'));
  const port = opts.port ?? (await freePort());
  const metricsPort = await freePort();
  const socketPath = join(dir, 'admin.sock');
  const configFile = join(dir, 'node.toml');
  writeFileSync(
    configFile,
    `[platform]
region = "${opts.region ?? 'test'}"
node_id = "${opts.nodeId ?? 'it-node'}"

[server]
mode = "${opts.mode ?? 'tcp'}"
bind_address = "${opts.host ?? '127.0.0.1'}:${port}"
backend_address = "127.0.0.1:${opts.backendPort}"
worker_threads = ${opts.threads ?? 2}
drain_timeout_ms = 2000

[metrics]
enabled = true
bind_address = "127.0.0.1:${metricsPort}"

[admin]
socket_path = "${socketPath}"

[logging]
level = "info"

[state]
dir = "${opts.stateDir ?? join(dir, 'state')}"

[runtime]
heartbeat_interval_ms = 200
heartbeat_timeout_ms = 1000
backoff_initial_ms = 50
${opts.extraToml ?? ''}
`,
  );
  let out = '';
  // `ip netns exec`, taskset and bin/secbeat all exec, so proc.pid is the node's own.
  const run = [...(opts.cpus === undefined ? [] : ['taskset', '-c', opts.cpus]), SECBEAT, 'run', '--config', configFile];
  const [command, args] = opts.netns === undefined ? [run[0]!, run.slice(1)] : ['ip', ['netns', 'exec', opts.netns, ...run]];
  const proc = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  const append = (b: Buffer): void => {
    out += b.toString();
    if (out.length > keep) out = out.slice(-keep);
  };
  proc.stdout!.on('data', append);
  proc.stderr!.on('data', append);
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));

  const admin: NodeProcess['admin'] = (cmd, timeoutMs = 10_000) =>
    new Promise((resolveReply, reject) => {
      const sock = connect(socketPath);
      let buf = '';
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`admin ${JSON.stringify(cmd)} timed out`));
      }, timeoutMs);
      sock.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      sock.on('data', (b) => {
        buf += b.toString();
        const nl = buf.indexOf('\n');
        if (nl >= 0) {
          clearTimeout(timer);
          sock.end();
          resolveReply(JSON.parse(buf.slice(0, nl)));
        }
      });
      sock.write(`${JSON.stringify({ id: 1, ...cmd })}\n`);
    });

  const ctl: NodeProcess['ctl'] = (...args) =>
    new Promise((resolveRun) => {
      const p = spawn(SECBEAT, ['ctl', '--socket', socketPath, ...args], { cwd: ROOT });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      p.on('exit', (code) => resolveRun({ code: code ?? -1, stdout, stderr }));
    });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    const killer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(killer);
    return code;
  };

  // Ready when the admin socket answers. A node that never gets there leaves nothing behind: the caller has no
  // handle to dispose of.
  const until = Date.now() + 30_000;
  for (;;) {
    const failure = proc.exitCode !== null ? `node exited early with ${proc.exitCode}` : Date.now() > until ? 'node did not become ready' : null;
    if (failure !== null) {
      await stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`${failure}:\n${out}`);
    }
    try {
      const r = await admin({ cmd: 'ping' }, 1_000);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    proc,
    port,
    metricsPort,
    socketPath,
    dir,
    output: () => out,
    admin,
    ctl,
    stop,
    async [Symbol.asyncDispose]() {
      await stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
