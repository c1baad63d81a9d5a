// A real nats-server (Debian's package, installed by scripts/setup.sh) on a loopback port, for tests: ready when
// it accepts clients, killed by PID on stop (SIGKILL: a crash, not a goodbye). It can be started again on the
// same port, to cut and heal the link.
import { startNatsProcess } from '../../scripts/lib/regions.ts';
import { freePort } from './ports.ts';

export interface NatsServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
}

export async function startNatsServer(): Promise<NatsServer> {
  const port = await freePort();
  let running: { stop(signal?: NodeJS.Signals): Promise<void> } | null = null;
  const start = async (): Promise<void> => {
    running = await startNatsProcess(['-a', '127.0.0.1', '-p', String(port)], port, 'nats-server');
  };
  const stop = async (): Promise<void> => {
    const server = running;
    running = null;
    await server?.stop('SIGKILL');
  };
  await start();
  return { url: `nats://127.0.0.1:${port}`, port, stop, start, [Symbol.asyncDispose]: stop };
}
