// The load-generator child of bench/l7/run.ts (`--role gen`), pinned to core 0 with the origin: HTTP/1.1
// latency at a fixed rate (bench/tcp's open loop, with a request and an HTTP response reader) and idle
// keep-alive connections, plain or TLS, each after one request. Throughput is wrk's and h2load's job
// (./clients.ts); this child only does what they cannot: percentiles at a fixed rate, and holding connections.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { parseArgs } from 'node:util';
import { openLoopLatency, type LatencyResult, type ResponseReader } from '../tcp/load.ts';

export type L7GenCommand =
  | { type: 'latency'; port: number; connections: number; ratePerS: number; warmupMs: number; durationMs: number }
  | { type: 'idle.open'; port: number; tls: boolean; count: number }
  | { type: 'idle.close' }
  | { type: 'exit' };

export interface HttpLatencyResult extends LatencyResult {
  /** Answers whose status was not 2xx. */
  non2xx: number;
}

export type L7GenReply =
  | { type: 'ready' }
  | { type: 'latency.result'; result: HttpLatencyResult }
  | { type: 'idle.opened'; opened: number; failed: number; firstError: string | null }
  | { type: 'idle.closed' }
  | { type: 'error'; message: string };

const IDLE_OPEN_TIMEOUT_MS = 60_000;
const CLOSE_WAIT_TIMEOUT_MS = 5_000;
const SOCKET_TIMEOUT_MS = 10_000;
/** Connections opened at once while building the idle set, as bench/tcp does. */
const IDLE_OPEN_PARALLEL = 100;

function send(reply: L7GenReply): void {
  process.send?.(reply);
}

/**
 * The name every TLS client of the bench sends as SNI (the test certificate's): by IP address no SNI is sent
 * at all, which SecBeat's TLS listener refuses (see probe() in ./run.ts).
 */
export const TLS_SERVER_NAME = 'localhost';

/** The one request every phase sends: what wrk sends by default (a GET with Host only). */
export function httpRequest(port: number): Buffer {
  return Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`, 'latin1');
}

/**
 * Completes an HTTP/1.1 response with a Content-Length body (all three proxies pass the origin's on): the
 * head up to CRLFCRLF, then that many body bytes. A response without Content-Length is an error (the bench
 * would otherwise time the wrong thing).
 */
export class HttpResponseReader implements ResponseReader {
  non2xx = 0;
  #head = '';
  #bodyLeft = -1;

  feed(chunk: Buffer): boolean {
    if (this.#bodyLeft >= 0) {
      this.#bodyLeft -= chunk.length;
      return this.#bodyLeft <= 0;
    }
    this.#head += chunk.toString('latin1');
    const end = this.#head.indexOf('\r\n\r\n');
    if (end < 0) return false;
    const head = this.#head.slice(0, end);
    const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
    if (length === null) throw new Error(`response without content-length: ${JSON.stringify(head.slice(0, 200))}`);
    if (!/^HTTP\/1\.[01] 2\d\d /.test(head)) this.non2xx++;
    this.#bodyLeft = Number(length[1]) - (this.#head.length - end - 4);
    this.#head = '';
    return this.#bodyLeft <= 0;
  }

  reset(): void {
    this.#head = '';
    this.#bodyLeft = -1;
  }
}

async function latency(cmd: Extract<L7GenCommand, { type: 'latency' }>): Promise<HttpLatencyResult> {
  const readers: HttpResponseReader[] = [];
  const result = await openLoopLatency({
    connect: () => connect({ host: '127.0.0.1', port: cmd.port, noDelay: true }),
    request: httpRequest(cmd.port),
    reader: () => {
      const r = new HttpResponseReader();
      readers.push(r);
      return r;
    },
    connections: cmd.connections,
    ratePerS: cmd.ratePerS,
    warmupMs: cmd.warmupMs,
    durationMs: cmd.durationMs,
  });
  return { ...result, non2xx: readers.reduce((sum, r) => sum + r.non2xx, 0) };
}

interface IdleOpened {
  opened: number;
  failed: number;
  firstError: string | null;
}

/** Opens `count` keep-alive connections (TLS: ALPN http/1.1), each after one whole request/response, and keeps them. */
async function idleOpen(idle: Socket[], cmd: Extract<L7GenCommand, { type: 'idle.open' }>): Promise<IdleOpened> {
  let opened = 0;
  let failed = 0;
  let firstError: string | null = null;
  let started = 0;
  const request = httpRequest(cmd.port);
  const deadline = Date.now() + IDLE_OPEN_TIMEOUT_MS;
  const openOne = (): Promise<void> =>
    new Promise((resolve) => {
      started++;
      const s = cmd.tls
        ? tlsConnect({ host: '127.0.0.1', port: cmd.port, servername: TLS_SERVER_NAME, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
        : connect({ host: '127.0.0.1', port: cmd.port });
      const reader = new HttpResponseReader();
      const fail = (message: string): void => {
        firstError ??= message;
        failed++;
        s.destroy();
        resolve();
      };
      s.setTimeout(SOCKET_TIMEOUT_MS, () => fail('timeout'));
      s.once('error', (err) => fail(err.message));
      s.once(cmd.tls ? 'secureConnect' : 'connect', () => void s.write(request));
      const onData = (chunk: Buffer): void => {
        let done: boolean;
        try {
          done = reader.feed(chunk);
        } catch (err) {
          return fail(err instanceof Error ? err.message : String(err));
        }
        if (!done) return;
        if (reader.non2xx > 0) return fail('non-2xx answer');
        s.off('data', onData);
        s.setTimeout(0);
        s.removeAllListeners('error');
        s.on('error', () => {});
        idle.push(s);
        opened++;
        resolve();
      };
      s.on('data', onData);
    });
  const worker = async (): Promise<void> => {
    while (started < cmd.count && Date.now() < deadline) await openOne();
  };
  await Promise.all(Array.from({ length: Math.min(IDLE_OPEN_PARALLEL, cmd.count) }, worker));
  return { opened, failed, firstError };
}

async function closeAll(sockets: Socket[]): Promise<void> {
  const closed = sockets.map((s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.once('close', () => resolve()))));
  for (const s of sockets) s.end();
  await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, CLOSE_WAIT_TIMEOUT_MS))]);
  for (const s of sockets) s.destroy();
  sockets.length = 0;
}

function runGenerator(): void {
  const idle: Socket[] = [];
  const handle = async (m: L7GenCommand): Promise<void> => {
    switch (m.type) {
      case 'latency':
        return send({ type: 'latency.result', result: await latency(m) });
      case 'idle.open':
        return send({ type: 'idle.opened', ...(await idleOpen(idle, m)) });
      case 'idle.close':
        await closeAll(idle);
        return send({ type: 'idle.closed' });
      case 'exit':
        process.exit(0);
    }
  };
  process.on('message', (m: L7GenCommand) => {
    handle(m).catch((err: unknown) => send({ type: 'error', message: err instanceof Error ? err.message : String(err) }));
  });
  send({ type: 'ready' });
}

if (import.meta.main) {
  // An orphaned child (the parent was SIGKILLed) must not keep load running: the channel closing ends it.
  process.on('disconnect', () => process.exit(0));
  const { values } = parseArgs({ options: { role: { type: 'string' } } });
  if (values.role === 'gen') runGenerator();
  else {
    process.stderr.write('usage: load.ts --role gen (started by bench/l7/run.ts)\n');
    process.exit(2);
  }
}
