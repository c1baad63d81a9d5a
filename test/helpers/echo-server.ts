// A loopback TCP echo server used as the backend of TCP-mode tests; closed on dispose.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface EchoServer extends AsyncDisposable {
  server: Server;
  port: number;
  connections: number;
}

export async function startEchoServer(): Promise<EchoServer> {
  const sockets = new Set<Socket>();
  const echo: EchoServer = {
    server: createServer({ allowHalfOpen: true }, (s) => {
      echo.connections++;
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
      s.pipe(s);
    }),
    port: 0,
    connections: 0,
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => echo.server.close(() => r()));
    },
  };
  await new Promise<void>((r) => echo.server.listen({ host: '127.0.0.1', port: 0 }, r));
  echo.port = (echo.server.address() as { port: number }).port;
  return echo;
}

/** One connection: send `payload`, half-close, read the echo to the end. Rejects on error or timeout. */
export function roundTrip(port: number, payload: Buffer, timeoutMs = 5_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('round trip timed out'));
    }, timeoutMs);
    s.on('connect', () => s.end(payload));
    s.on('data', (b) => chunks.push(b));
    s.on('end', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(Buffer.concat(chunks));
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
