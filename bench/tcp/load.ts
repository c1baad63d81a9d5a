// Child processes of bench/tcp/run.ts, pinned to core 0 so that the proxy under test has core 1 to itself:
// `--role echo` is the backend (a TCP echo server), `--role gen` the load generator (connection rate, fixed-
// rate latency, idle connections). The parent drives both over the IPC channel with the messages below.
import { connect, createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

// ------------------------------------------------------------------------------------------ protocol

export type GenCommand =
  | { type: 'connrate.start'; port: number; concurrency: number; sources: string[] }
  | { type: 'snapshot' }
  | { type: 'connrate.stop' }
  | { type: 'latency'; port: number; connections: number; ratePerS: number; payloadBytes: number; warmupMs: number; durationMs: number }
  | { type: 'idle.open'; port: number; count: number; sources: string[] }
  | { type: 'idle.close' }
  | { type: 'exit' };

export interface LatencyResult {
  samples: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
  /** Send slots skipped because the previous request on that connection had not been answered yet. */
  late: number;
  errors: number;
}

export type ChildReply =
  | { type: 'ready'; port: number }
  | { type: 'snapshot'; completed: number; errors: number; cpuS: number; atMs: number }
  | { type: 'connrate.stopped'; completed: number; errors: number; firstError: string | null }
  | { type: 'latency.result'; result: LatencyResult }
  | { type: 'idle.opened'; opened: number; failed: number; firstError: string | null }
  | { type: 'idle.closed' }
  | { type: 'error'; message: string };

/** Bounds of every loop here, so a stuck proxy cannot hang the child. */
const IDLE_OPEN_TIMEOUT_MS = 30_000;
const CLOSE_WAIT_TIMEOUT_MS = 5_000;
const SOCKET_TIMEOUT_MS = 10_000;
/** Connections opened at once while building the idle set: like a real burst, below the listen backlogs. */
const IDLE_OPEN_PARALLEL = 100;

const ONE_BYTE = Buffer.from([0x2a]);

function send(reply: ChildReply): void {
  process.send?.(reply);
}

function cpuS(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

// ------------------------------------------------------------------------------------------ echo backend

function runEcho(): void {
  const server = createServer({ noDelay: true }, (s) => {
    // No closures beyond this one: the echo shares core 0 with the generator, so it should cost little.
    s.on('data', (chunk: Buffer) => void s.write(chunk));
    s.on('error', () => s.destroy());
  });
  server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
    const address = server.address();
    send({ type: 'ready', port: typeof address === 'object' && address !== null ? address.port : 0 });
  });
  process.on('message', (m: GenCommand) => {
    if (m.type === 'exit') process.exit(0);
  });
}

// ------------------------------------------------------------------------------------------ generator

interface ConnRate {
  running: boolean;
  inFlight: number;
  completed: number;
  errors: number;
  firstError: string | null;
  next: number;
}

/**
 * Closed loop: connect, send 1 byte, read the 1-byte echo, close, repeat. Each connection binds a different
 * 127.0.0.x source so the client-side 4-tuples (and their TIME_WAIT entries) spread over many addresses
 * instead of exhausting the ~28k ephemeral ports of one.
 */
function connRateLoop(state: ConnRate, port: number, sources: readonly string[]): void {
  if (!state.running) return;
  state.inFlight++;
  const localAddress = sources[state.next++ % sources.length];
  const s = connect(localAddress === undefined ? { host: '127.0.0.1', port, noDelay: true } : { host: '127.0.0.1', port, localAddress, noDelay: true });
  let echoed = false;
  s.setTimeout(SOCKET_TIMEOUT_MS, () => s.destroy(new Error('timeout')));
  s.once('connect', () => void s.write(ONE_BYTE));
  s.once('data', () => {
    echoed = true;
    s.end();
  });
  s.on('error', (err) => {
    state.firstError ??= err.message;
  });
  s.once('close', () => {
    state.inFlight--;
    if (echoed) state.completed++;
    else state.errors++;
    connRateLoop(state, port, sources);
  });
}

/** The `p`th percentile (0–100) of sorted samples; NaN for none. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/**
 * How the open-loop generator tells that the answer to a connection's outstanding request is complete: fed
 * every chunk the connection receives, reset once an answer has been timed.
 */
export interface ResponseReader {
  feed(chunk: Buffer): boolean;
  reset(): void;
}

export interface OpenLoopOptions {
  /** Opens one persistent connection; it is used once 'connect' fires. */
  connect(): Socket;
  /** The bytes of one request, written whole in each send slot. */
  request: Buffer;
  /** One reader per connection. */
  reader(): ResponseReader;
  connections: number;
  ratePerS: number;
  warmupMs: number;
  durationMs: number;
}

interface LatencyConn {
  socket: Socket;
  sentAtNs: bigint;
  nextDueMs: number;
}

/** The echo backend answers with the request's own bytes: complete once `payloadBytes` are back. */
function echoReader(payloadBytes: number): ResponseReader {
  let received = 0;
  return {
    feed(chunk) {
      received += chunk.length;
      return received >= payloadBytes;
    },
    reset() {
      received = 0;
    },
  };
}

/**
 * Open loop at `ratePerS` over persistent connections: each connection sends `payloadBytes` every
 * connections/rate seconds (staggered), and latency is from just before write() to the last byte of the
 * echo. A slot whose previous request is still unanswered is skipped and counted as `late` rather than
 * queued, so a slow proxy shows up in `late` as well as in the percentiles.
 */
function latencyRun(cmd: Extract<GenCommand, { type: 'latency' }>): Promise<LatencyResult> {
  return openLoopLatency({
    connect: () => connect({ host: '127.0.0.1', port: cmd.port, noDelay: true }),
    request: Buffer.alloc(cmd.payloadBytes, 0x61),
    reader: () => echoReader(cmd.payloadBytes),
    connections: cmd.connections,
    ratePerS: cmd.ratePerS,
    warmupMs: cmd.warmupMs,
    durationMs: cmd.durationMs,
  });
}

/**
 * The open loop of latencyRun() for any request/response protocol (bench/l7 sends HTTP/1.1 requests): each
 * connection sends `request` every connections/rate seconds (staggered), latency is from just before write()
 * to the moment the reader says the answer is complete, and a slot whose previous request is unanswered is
 * skipped and counted as `late`.
 */
export async function openLoopLatency(o: OpenLoopOptions): Promise<LatencyResult> {
  const conns: LatencyConn[] = [];
  let errors = 0;
  for (let i = 0; i < o.connections; i++) {
    const socket = o.connect();
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.on('error', () => void errors++);
    conns.push({ socket, sentAtNs: 0n, nextDueMs: 0 });
  }
  const periodMs = (1000 * o.connections) / o.ratePerS;
  const startMs = nowMs();
  const measureFromMs = startMs + o.warmupMs;
  const endMs = measureFromMs + o.durationMs;
  const samples = new Float64Array(Math.ceil(((o.warmupMs + o.durationMs) / 1000) * o.ratePerS) + o.connections);
  let count = 0;
  let late = 0;
  conns.forEach((c, i) => {
    c.nextDueMs = startMs + (i * periodMs) / o.connections;
    const reader = o.reader();
    c.socket.on('data', (chunk: Buffer) => {
      if (!reader.feed(chunk) || c.sentAtNs === 0n) return;
      const doneNs = process.hrtime.bigint();
      if (Number(c.sentAtNs) / 1e6 >= measureFromMs && count < samples.length) samples[count++] = Number(doneNs - c.sentAtNs) / 1e3;
      c.sentAtNs = 0n;
      reader.reset();
    });
  });
  await new Promise<void>((resolve) => {
    // Node timers fire at 1 ms at best; each tick sends every slot that came due, so the rate holds on average.
    const timer = setInterval(() => {
      const now = nowMs();
      if (now >= endMs) {
        clearInterval(timer);
        resolve();
        return;
      }
      for (const c of conns) {
        if (now < c.nextDueMs) continue;
        c.nextDueMs += periodMs;
        if (c.sentAtNs !== 0n) {
          if (now >= measureFromMs) late++;
          continue;
        }
        c.sentAtNs = process.hrtime.bigint();
        c.socket.write(o.request);
      }
    }, 1);
  });
  // Answers still in flight are not waited for: they were sent in the last milliseconds and are few.
  for (const c of conns) c.socket.destroy();
  const sorted = samples.subarray(0, count).sort();
  return {
    samples: count,
    p50Us: percentile(sorted, 50),
    p90Us: percentile(sorted, 90),
    p99Us: percentile(sorted, 99),
    maxUs: count > 0 ? (sorted[count - 1] ?? Number.NaN) : Number.NaN,
    late,
    errors,
  };
}

/** Opens `count` connections, each with one echo round trip so the proxy's backend leg exists too, and keeps them. */
interface IdleOpened {
  opened: number;
  failed: number;
  firstError: string | null;
}

async function idleOpen(idle: Socket[], cmd: Extract<GenCommand, { type: 'idle.open' }>): Promise<IdleOpened> {
  let opened = 0;
  let failed = 0;
  let firstError: string | null = null;
  let started = 0;
  const deadline = Date.now() + IDLE_OPEN_TIMEOUT_MS;
  const openOne = (): Promise<void> =>
    new Promise((resolve) => {
      const localAddress = cmd.sources[started % cmd.sources.length];
      started++;
      const s = connect(localAddress === undefined ? { host: '127.0.0.1', port: cmd.port } : { host: '127.0.0.1', port: cmd.port, localAddress });
      const fail = (message: string): void => {
        firstError ??= message;
        failed++;
        s.destroy();
        resolve();
      };
      s.setTimeout(SOCKET_TIMEOUT_MS, () => fail('timeout'));
      s.once('error', (err) => fail(err.message));
      s.once('connect', () => void s.write(ONE_BYTE));
      s.once('data', () => {
        s.setTimeout(0);
        s.removeAllListeners('error');
        s.on('error', () => {});
        idle.push(s);
        opened++;
        resolve();
      });
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
  const rate: ConnRate = { running: false, inFlight: 0, completed: 0, errors: 0, firstError: null, next: 0 };
  const idle: Socket[] = [];
  const handle = async (m: GenCommand): Promise<void> => {
    switch (m.type) {
      case 'connrate.start':
        Object.assign(rate, { running: true, inFlight: 0, completed: 0, errors: 0, firstError: null, next: 0 });
        for (let i = 0; i < m.concurrency; i++) connRateLoop(rate, m.port, m.sources);
        return;
      case 'snapshot':
        return send({ type: 'snapshot', completed: rate.completed, errors: rate.errors, cpuS: cpuS(), atMs: nowMs() });
      case 'connrate.stop': {
        rate.running = false;
        const deadline = Date.now() + CLOSE_WAIT_TIMEOUT_MS;
        while (rate.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        return send({ type: 'connrate.stopped', completed: rate.completed, errors: rate.errors, firstError: rate.firstError });
      }
      case 'latency':
        return send({ type: 'latency.result', result: await latencyRun(m) });
      case 'idle.open':
        return send({ type: 'idle.opened', ...(await idleOpen(idle, m)) });
      case 'idle.close':
        await closeAll(idle);
        return send({ type: 'idle.closed' });
      case 'exit':
        process.exit(0);
    }
  };
  process.on('message', (m: GenCommand) => {
    handle(m).catch((err: unknown) => send({ type: 'error', message: err instanceof Error ? err.message : String(err) }));
  });
  send({ type: 'ready', port: 0 });
}

if (import.meta.main) {
  // An orphaned child (the parent was SIGKILLed) must not keep load running: the channel closing ends it.
  process.on('disconnect', () => process.exit(0));
  const { values } = parseArgs({ options: { role: { type: 'string' } } });
  if (values.role === 'echo') runEcho();
  else if (values.role === 'gen') runGenerator();
  else {
    process.stderr.write('usage: load.ts --role echo|gen (started by bench/tcp/run.ts)\n');
    process.exit(2);
  }
}
