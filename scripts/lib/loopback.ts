// Loopback ports for the programs the project starts itself (tests, benches, the dev cluster): free ports to
// name up front, and waiting until something accepts connections on one.
import { connect, createServer, type Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * `count` distinct loopback ports free now: all bound at once (port 0), read, then released. Racy in principle,
 * but nothing else on the machine binds loopback ports this fast.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((done) => server.listen({ host: '127.0.0.1', port: 0 }, done));
    }
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((done) => s.close(() => done()))));
  }
}

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.setTimeout(500, () => {
      s.destroy();
      resolve(false);
    });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Polls a TCP connect to 127.0.0.1:`port` until it succeeds, bounded by `timeoutMs`; fails early once `alive()` is false. */
export async function waitForConnect(port: number, timeoutMs: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`process meant to listen on ${port} exited`);
    if (await canConnect(port)) return;
    await sleep(50);
  }
  throw new Error(`nothing accepted on 127.0.0.1:${port} within ${timeoutMs} ms`);
}
