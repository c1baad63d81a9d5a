// The closed-loop load tools of bench/l7/run.ts, run to completion on the load core and parsed: wrk for
// HTTP/1.1 (plain, and over TLS without ALPN, i.e. http/1.1) and h2load (nghttp2-client) for HTTP/2 over TLS.
// Both are single-threaded here (-t1): the load side has one core.
import { runPinned, type Core, type ProcessRegistry } from '../tcp/proc.ts';

/** How often the tool's CPU time is read while it runs: it idles after its last request, so little is lost. */
const CPU_SAMPLE_MS = 100;

export interface ClosedLoopResult {
  tool: 'wrk' | 'h2load';
  /** 2xx answers (wrk: answers less its non-2xx/3xx count). */
  ok: number;
  /** Non-2xx answers, failed or errored requests, socket errors. */
  errors: number;
  /** The part of `errors` that were answers, but not 2xx (wrk: nor 3xx). */
  non2xx: number;
  /** What the tool measured its run over, in seconds. */
  seconds: number;
  reqPerS: number;
  /** wrk --latency's percentiles under full load (closed loop: they grow with the queue), µs; null for h2load. */
  p50Us: number | null;
  p99Us: number | null;
  /** h2load's negotiated protocol ("h2"), to prove the run was HTTP/2; null for wrk. */
  protocol: string | null;
  /** CPU the tool itself used (sampled from /proc while it ran). */
  cpuS: number;
  raw: string;
}

export interface WrkOptions {
  url: string;
  connections: number;
  seconds: number;
  /** A wrk Lua script (-s) setting the request's method, path, headers and body; none = `GET` of the URL. */
  script?: string;
  /** A request unanswered this long counts as a socket error and wrk reconnects; 5 s unless given. */
  timeoutS?: number;
}

export async function runWrk(procs: ProcessRegistry, core: Core, o: WrkOptions): Promise<ClosedLoopResult> {
  const script = o.script === undefined ? [] : ['-s', o.script];
  const args = ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', `${o.timeoutS ?? 5}s`, '--latency', ...script, o.url];
  const run = await runPinned(procs, core, 'wrk', args, (o.seconds + 30) * 1000, CPU_SAMPLE_MS);
  const out = run.stdout;
  const total = /(\d+) requests in ([\d.]+)(ms|s|m)\b/.exec(out);
  if (run.code !== 0 || total === null) throw new Error(`wrk ${args.join(' ')} failed (${run.code}): ${out}${run.stderr}`);
  const answered = Number(total[1]);
  const seconds = Number(total[2]) * (total[3] === 'ms' ? 0.001 : total[3] === 'm' ? 60 : 1);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = socket === null ? 0 : socket.slice(1).reduce((sum, n) => sum + Number(n), 0);
  return {
    tool: 'wrk',
    ok: answered - non2xx,
    errors: non2xx + socketErrors,
    non2xx,
    seconds,
    reqPerS: (answered - non2xx) / seconds,
    p50Us: wrkPercentileUs(out, '50'),
    p99Us: wrkPercentileUs(out, '99'),
    protocol: null,
    cpuS: run.cpuS ?? 0,
    raw: out,
  };
}

/** wrk's latency distribution line ("     99%    1.23ms") in µs. */
function wrkPercentileUs(out: string, p: string): number | null {
  const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(out);
  if (m === null) return null;
  return Number(m[1]) * (m[2] === 'us' ? 1 : m[2] === 'ms' ? 1_000 : 1_000_000);
}

export interface H2loadOptions {
  url: string;
  /** host:port to connect to instead of the URL's authority, which stays the SNI and :authority. */
  connectTo: string;
  clients: number;
  /** Concurrent streams per connection (-m). */
  streams: number;
  seconds: number;
}

export async function runH2load(procs: ProcessRegistry, core: Core, o: H2loadOptions): Promise<ClosedLoopResult> {
  const args = ['-t1', `-c${o.clients}`, `-m${o.streams}`, '-D', String(o.seconds), `--connect-to=${o.connectTo}`, o.url];
  const run = await runPinned(procs, core, 'h2load', args, (o.seconds + 30) * 1000, CPU_SAMPLE_MS);
  const out = run.stdout;
  const finished = /finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/.exec(out);
  const requests = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  if (run.code !== 0 || finished === null || requests === null || status === null) {
    throw new Error(`h2load ${args.join(' ')} failed (${run.code}): ${out}${run.stderr}`);
  }
  const seconds = Number(finished[1]) * (finished[2] === 'ms' ? 0.001 : 1);
  const ok = Number(status[1]);
  const failed = Number(requests[5]) + Number(requests[6]) + Number(requests[7]);
  const non2xx = Number(status[2]) + Number(status[3]) + Number(status[4]);
  return {
    tool: 'h2load',
    ok,
    errors: failed + non2xx,
    non2xx,
    seconds,
    reqPerS: ok / seconds,
    p50Us: null,
    p99Us: null,
    protocol: /Application protocol: (\S+)/.exec(out)?.[1] ?? null,
    cpuS: run.cpuS ?? 0,
    raw: out,
  };
}
