// A TCP relay that adds a fixed one-way delay, for the dev cluster's links between regions (this kernel has no
// netem): bytes from the connecting side reach the target `delayMs` later, in order; the answers come back at
// once. A connection whose delayed bytes pile up past MAX_PENDING_BYTES is paused until they drain.
import { connect, createServer, type Server, type Socket } from 'node:net';

const MAX_PENDING_BYTES = 4 * 1024 * 1024;

export interface DelayRelay {
  readonly port: number;
  close(): Promise<void>;
}

export async function startDelayRelay(options: { listenPort: number; targetPort: number; delayMs: number }): Promise<DelayRelay> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const target = connect(options.targetPort, '127.0.0.1');
    sockets.add(client).add(target);
    let pending = 0;
    client.on('data', (chunk: Buffer) => {
      pending += chunk.length;
      if (pending > MAX_PENDING_BYTES) client.pause();
      // Timers of one delay fire in the order they were set: the bytes keep their order.
      setTimeout(() => {
        pending -= chunk.length;
        if (!target.destroyed) target.write(chunk);
        if (pending <= MAX_PENDING_BYTES && client.isPaused()) client.resume();
      }, options.delayMs);
    });
    target.on('data', (chunk: Buffer) => client.write(chunk));
    const closeBoth = (): void => {
      client.destroy();
      target.destroy();
      sockets.delete(client);
      sockets.delete(target);
    };
    client.on('close', closeBoth).on('error', closeBoth);
    target.on('close', closeBoth).on('error', closeBoth);
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: options.listenPort }, resolve));
  return {
    port: options.listenPort,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
