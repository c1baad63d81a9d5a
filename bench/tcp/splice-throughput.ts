// Micro benchmark of TCP forwarding on loopback: iperf3 pushes ~2 GiB through a forwarder that runs in its
// own process, so the forwarder's CPU is attributable: (a) a JS pause/resume forwarder, (b) the native splice
// engine (src/native/), and, when installed, HAProxy as the reference. Prints Gbit/s and Gbit per CPU-second.
//
//   node bench/tcp/splice-throughput.ts [--bytes 2G] [--streams 1] [--only js,splice,haproxy,haproxy-splice]
//                                       [--pipe-size <bytes>]   (splice engine F_SETPIPE_SZ; default: the engine's)
//
// Not part of the test suite. The forwarder child is this same file with --forwarder <mode>.
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const MODES = ['js', 'splice', 'haproxy', 'haproxy-splice'] as const;
type Mode = (typeof MODES)[number];

/** Linux USER_HZ: the unit of utime/stime in /proc/<pid>/stat (always 100 on Linux x86-64/arm64). */
const CLOCK_TICKS_PER_S = 100;

interface CpuSample {
  userUs: number;
  systemUs: number;
}

type ForwarderMessage = { type: 'ready'; port: number } | { type: 'cpu'; usage: CpuSample } | { type: 'error'; message: string };

// ---------------------------------------------------------------- forwarder child

function runForwarder(mode: 'js' | 'splice', targetPort: number, pipeSizeBytes: number | undefined): void {
  const send = (m: ForwarderMessage): void => void process.send?.(m);
  process.on('message', (m: { type: string }) => {
    if (m.type === 'cpu') send({ type: 'cpu', usage: { userUs: process.cpuUsage().user, systemUs: process.cpuUsage().system } });
    if (m.type === 'exit') process.exit(0);
  });
  void (async () => {
    let onConnection: (a: Socket) => void;
    if (mode === 'js') {
      // The plain Node forwarder the splice engine replaces: data events, pause on backpressure.
      onConnection = (a) => {
        const b = connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
        const forward = (from: Socket, to: Socket): void => {
          from.on('data', (chunk: Buffer) => {
            if (!to.write(chunk)) from.pause();
          });
          to.on('drain', () => from.resume());
          from.on('end', () => to.end());
          from.on('error', () => to.destroy());
        };
        forward(a, b);
        forward(b, a);
      };
    } else {
      const { loadNative } = await import('../../src/native/binding.ts');
      const { Splicer } = await import('../../src/native/splicer.ts');
      const loaded = loadNative();
      if (!loaded.ok) {
        send({ type: 'error', message: loaded.error.message });
        return;
      }
      const splicer = new Splicer(loaded.binding, pipeSizeBytes === undefined ? {} : { pipeSizeBytes });
      onConnection = (a) => {
        const b = connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
        b.pause();
        a.on('error', () => {});
        b.on('error', () => {});
        b.once('connect', () => {
          splicer.splice(a, b, 0).catch((err: unknown) => send({ type: 'error', message: String(err) }));
        });
      };
    }
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: mode === 'splice' }, (a) => onConnection(a));
    server.listen({ host: '127.0.0.1', port: 0 }, () => send({ type: 'ready', port: (server.address() as { port: number }).port }));
  })();
}

// ---------------------------------------------------------------- parent

interface Forwarder {
  port: number;
  cpu(): Promise<CpuSample>;
  stop(): Promise<void>;
}

async function startNodeForwarder(mode: 'js' | 'splice', targetPort: number, pipeSize: string | undefined): Promise<Forwarder> {
  const args = ['--forwarder', mode, '--target', String(targetPort), ...(pipeSize === undefined ? [] : ['--pipe-size', pipeSize])];
  const child = fork(fileURLToPath(import.meta.url), args, {
    execPath: process.execPath,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = (type: ForwarderMessage['type']): Promise<ForwarderMessage> =>
    new Promise((resolve, reject) => {
      const onMessage = (m: ForwarderMessage): void => {
        if (m.type === 'error') reject(new Error(`forwarder: ${m.message}`));
        else if (m.type === type) {
          child.off('message', onMessage);
          resolve(m);
        }
      };
      child.on('message', onMessage);
      child.once('exit', (code) => reject(new Error(`forwarder exited with ${code}`)));
    });
  const ready = (await next('ready')) as { type: 'ready'; port: number };
  return {
    port: ready.port,
    async cpu() {
      const reply = next('cpu');
      child.send({ type: 'cpu' });
      return ((await reply) as { type: 'cpu'; usage: CpuSample }).usage;
    },
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.send({ type: 'exit' });
      await exited;
    },
  };
}

function procCpu(pid: number): CpuSample {
  // Fields after the ")" of the command name: utime is field 14 and stime 15 of the whole line.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const toUs = (ticks: string | undefined): number => (Number(ticks) * 1e6) / CLOCK_TICKS_PER_S;
  return { userUs: toUs(fields[11]), systemUs: toUs(fields[12]) };
}

async function startHaproxy(targetPort: number, splice: boolean): Promise<Forwarder> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'secbeat-bench-'));
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      '  nbthread 1',
      '  maxconn 1000',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 60s',
      '  timeout server 60s',
      ...(splice ? ['  option splice-auto'] : []),
      'listen fwd',
      `  bind 127.0.0.1:${port}`,
      `  server backend 127.0.0.1:${targetPort}`,
      '',
    ].join('\n'),
  );
  const child = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port);
  return {
    port,
    async cpu() {
      return procCpu(child.pid!);
    },
    async stop() {
      await kill(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0 }, r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

interface Result {
  mode: Mode;
  gbitPerS: number;
  cpuS: number;
  gbitPerCpuS: number;
}

async function measure(mode: Mode, bytes: string, streams: number, pipeSize: string | undefined): Promise<Result> {
  const serverPort = await freePort();
  // The forwarder first: probing its port for readiness must not reach iperf3, whose -s -1 would take the
  // probe for its one test.
  const fwd =
    mode === 'js' || mode === 'splice' ? await startNodeForwarder(mode, serverPort, pipeSize) : await startHaproxy(serverPort, mode === 'haproxy-splice');
  const iperfServer = spawn('iperf3', ['-s', '-1', '-p', String(serverPort)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300)); // iperf3 -s has no readiness signal
  try {
    const before = await fwd.cpu();
    const started = process.hrtime.bigint();
    const out = execFileSync('iperf3', ['-c', '127.0.0.1', '-p', String(fwd.port), '-n', bytes, '-P', String(streams), '-J'], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    const wallS = Number(process.hrtime.bigint() - started) / 1e9;
    const after = await fwd.cpu();
    const report = JSON.parse(out) as { end: { sum_received: { bytes: number } } };
    const gbit = (report.end.sum_received.bytes * 8) / 1e9;
    const cpuS = (after.userUs - before.userUs + after.systemUs - before.systemUs) / 1e6;
    return { mode, gbitPerS: gbit / wallS, cpuS, gbitPerCpuS: gbit / cpuS };
  } finally {
    await fwd.stop();
    await kill(iperfServer);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      forwarder: { type: 'string' },
      target: { type: 'string' },
      bytes: { type: 'string', default: '2G' },
      streams: { type: 'string', default: '1' },
      only: { type: 'string', default: MODES.join(',') },
      'pipe-size': { type: 'string' },
    },
  });
  if (values.forwarder === 'js' || values.forwarder === 'splice') {
    runForwarder(values.forwarder, Number(values.target), values['pipe-size'] === undefined ? undefined : Number(values['pipe-size']));
    return;
  }
  const hasHaproxy = (() => {
    try {
      execFileSync('haproxy', ['-v'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  const modes = values.only
    .split(',')
    .filter((m): m is Mode => (MODES as readonly string[]).includes(m))
    .filter((m) => hasHaproxy || !m.startsWith('haproxy'));
  const results: Result[] = [];
  for (const mode of modes) {
    const r = await measure(mode, values.bytes, Number(values.streams), values['pipe-size']);
    results.push(r);
    console.log(`${mode.padEnd(15)} ${r.gbitPerS.toFixed(2).padStart(7)} Gbit/s  ${r.cpuS.toFixed(2).padStart(6)} CPU-s  ${r.gbitPerCpuS.toFixed(2).padStart(7)} Gbit/CPU-s`);
  }
  const reference = results.find((r) => r.mode === 'haproxy');
  if (reference) {
    console.log(`\nGbit per CPU-second relative to haproxy (${reference.gbitPerCpuS.toFixed(2)}):`);
    for (const r of results) console.log(`  ${r.mode.padEnd(15)} ${(r.gbitPerCpuS / reference.gbitPerCpuS).toFixed(2)}×`);
  }
}

await main();
