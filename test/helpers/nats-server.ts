// A real nats-server (Debian's package, installed by scripts/setup.sh) on a loopback port, for tests: started
// as a child process, ready when it accepts TCP connections, killed by PID on stop. It can be stopped and
// started again on the same port, to cut and heal the link.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { freePort } from './ports.ts';

const NATS_SERVER = '/usr/sbin/nats-server';
const READY_TIMEOUT_MS = 10_000;

export interface NatsServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGKILL: a crash, not a goodbye) and waits for the process to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
}

export async function startNatsServer(): Promise<NatsServer> {
  const port = await freePort();
  let proc: ChildProcess | null = null;
  let output = '';
  const start = async (): Promise<void> => {
    output = '';
    proc = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    proc.stderr!.on('data', (b: Buffer) => (output += b.toString()));
    const until = Date.now() + READY_TIMEOUT_MS;
    while (!(await accepts(port))) {
      if (proc.exitCode !== null) throw new Error(`nats-server exited with ${proc.exitCode}:\n${output}`);
      if (Date.now() > until) throw new Error(`nats-server did not listen on ${port} within ${READY_TIMEOUT_MS} ms:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async (): Promise<void> => {
    const p = proc;
    proc = null;
    if (p === null || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  };
  await start();
  return { url: `nats://127.0.0.1:${port}`, port, stop, start, [Symbol.asyncDispose]: stop };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
