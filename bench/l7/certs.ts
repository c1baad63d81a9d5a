// L7 mode with 100,000 certificates, the issue's acceptance test: "100k domains with certificates loaded,
// RSS ≤ 1.5 GB and no measurable handshake slowdown for hot domains". Generates the certificates in-process
// (test/helpers/x509.ts: DER built by hand, ECDSA P-256 leaves signed by one CA, ~0.2 ms each; the openssl CLI
// would take most of an hour), writes them as a certbot live/ directory ([tls] certificates_dir), and starts
// two real nodes (bin/secbeat run of a type-stripped copy of the tree, as installed; L7, 2 worker threads,
// pinned to core 1): one with the hot certificates only, one with the full set. For both, this process
// (pinned to core 0) measures the start (spawn to the first verified handshake), RSS after warm-up, and full
// handshakes (new connection, SNI, no resumption, chain and name verified) over the same hot names: p50/p99
// latency at a fixed concurrency and handshakes/s, in rounds alternating between the two nodes. The full set
// also times a `ctl config reload` with nothing changed (every file stat'ed, none read or checked again).
//
//   node bench/l7/certs.ts [--domains 100000] [--hot-certs 10] [--names-per-hot 5] [--concurrency 8]
//                          [--seconds 20] [--rounds 10] [--warmup-seconds 3] [--keep]
//
// Not part of the test suite. Prints a table, then the same as one JSON line prefixed "RESULT ".
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect as tlsConnect, createSecureContext, type SecureContext } from 'node:tls';
import { createCertificateAuthority, type CertificateAuthority } from '../../test/helpers/x509.ts';
import { UsageError } from '../cli.ts';
import { freePort, otherBenchProcesses, procRssBytes, ProcessRegistry, sleep, type Core } from '../tcp/proc.ts';
import { buildStrippedTree } from '../tcp/proxies.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const NODE_CORE: Core = 1;
const CLIENT_CORE: Core = 0;
/** The start loads every certificate before binding: minutes would mean something is wrong. */
const START_TIMEOUT_MS = 300_000;
const RSS_SETTLE_MS = 2_000;
/** ctl's --timeout for the reload: the node's own deadline decides. */
const RELOAD_TIMEOUT_MS = 120_000;
const MB = 1024 * 1024;

interface Settings {
  domains: number;
  hotCerts: number;
  namesPerHot: number;
  concurrency: number;
  /** Per node, split into `rounds` alternating rounds. */
  seconds: number;
  rounds: number;
  warmupSeconds: number;
  keep: boolean;
}

interface HandshakeStats {
  count: number;
  failed: number;
  p50Ms: number;
  p99Ms: number;
  perSecond: number;
  firstFailure: string | null;
}

interface RunResult {
  certificates: number;
  names: number;
  startupS: number;
  rssMb: number;
  handshakes: HandshakeStats;
  reload: { seconds: number; ok: boolean; issues: string[] } | null;
}

function settingsFrom(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      domains: { type: 'string', default: '100000' },
      'hot-certs': { type: 'string', default: '10' },
      'names-per-hot': { type: 'string', default: '5' },
      concurrency: { type: 'string', default: '8' },
      seconds: { type: 'string', default: '20' },
      rounds: { type: 'string', default: '10' },
      'warmup-seconds': { type: 'string', default: '3' },
      keep: { type: 'boolean', default: false },
    },
  });
  const whole = (name: keyof typeof values): number => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} expects a whole number ≥ 1`);
    return n;
  };
  const s = {
    domains: whole('domains'),
    hotCerts: whole('hot-certs'),
    namesPerHot: whole('names-per-hot'),
    concurrency: whole('concurrency'),
    seconds: whole('seconds'),
    rounds: whole('rounds'),
    warmupSeconds: whole('warmup-seconds'),
    keep: values.keep === true,
  };
  if (s.domains < s.hotCerts) throw new UsageError('--domains must be at least --hot-certs');
  return s;
}

/** Hot certificate i carries names hot<i>-0 … hot<i>-<n-1>; the rest one name each. */
function hotNames(s: Settings): string[] {
  return Array.from({ length: s.hotCerts * s.namesPerHot }, (_, k) => `hot${Math.floor(k / s.namesPerHot)}-${k % s.namesPerHot}.bench.example`);
}

interface Generated {
  ca: CertificateAuthority;
  small: string;
  large: string;
  defaultCert: { cert: string; key: string };
  issueS: number;
  writeS: number;
}

/** Two live/ directories: the hot certificates alone, and the hot ones plus the cold rest (same bytes for the hot). */
function generate(s: Settings, dir: string): Generated {
  const ca = createCertificateAuthority('SecBeat bench CA');
  const small = join(dir, 'live-small');
  const large = join(dir, 'live-large');
  let issueMs = 0;
  let writeMs = 0;
  const write = (roots: string[], name: string, names: string[]): void => {
    let t = performance.now();
    const issued = ca.issue(names);
    issueMs += performance.now() - t;
    t = performance.now();
    for (const root of roots) {
      mkdirSync(join(root, name), { recursive: true });
      // certbot's fullchain: leaf, then the issuer.
      writeFileSync(join(root, name, 'fullchain.pem'), issued.cert + ca.cert);
      writeFileSync(join(root, name, 'privkey.pem'), issued.key);
    }
    writeMs += performance.now() - t;
  };
  const hot = hotNames(s);
  for (let i = 0; i < s.hotCerts; i++) write([small, large], `hot${i}`, hot.slice(i * s.namesPerHot, (i + 1) * s.namesPerHot));
  for (let i = s.hotCerts; i < s.domains; i++) {
    write([large], `d${i}`, [`d${i}.bench.example`]);
    if (i % 10_000 === 0) process.stderr.write(`  generated ${i.toLocaleString('en-US')} certificates\n`);
  }
  const issued = ca.issue(['default.bench.example']);
  const defaultCert = { cert: join(dir, 'default.pem'), key: join(dir, 'default.key') };
  writeFileSync(defaultCert.cert, issued.cert + ca.cert);
  writeFileSync(defaultCert.key, issued.key);
  return { ca, small, large, defaultCert, issueS: issueMs / 1000, writeS: writeMs / 1000 };
}

interface RunningNode {
  child: ChildProcess;
  launcher: string;
  tlsPort: number;
  socket: string;
  output: () => string;
}

/** `launcher`: bin/secbeat of buildStrippedTree()'s tree, running dist/ as an installed node does. */
async function startNode(procs: ProcessRegistry, launcher: string, dir: string, name: string, gen: Generated, live: string): Promise<RunningNode> {
  const [port, tlsPort, backendPort] = [await freePort(), await freePort(), await freePort()];
  const socket = join(dir, `${name}.sock`);
  const config = join(dir, `${name}.toml`);
  writeFileSync(
    config,
    `[platform]
node_id = "bench-${name}"

[server]
mode = "l7"
bind_address = "127.0.0.1:${port}"
backend_address = "127.0.0.1:${backendPort}"
worker_threads = 2

[tls]
enabled = true
cert_path = "${gen.defaultCert.cert}"
key_path = "${gen.defaultCert.key}"
certificates_dir = "${live}"

[l7]
tls_bind_address = "127.0.0.1:${tlsPort}"

[metrics]
enabled = false

[admin]
socket_path = "${socket}"

[logging]
level = "warn"

[state]
dir = "${join(dir, `${name}-state`)}"
`,
  );
  let out = '';
  const child = procs.spawnPinned(NODE_CORE, 'sh', [launcher, 'run', '--config', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  return { child, tlsPort, socket, launcher, output: () => out };
}

/**
 * One full handshake: new connection, SNI, chain and name verified against the bench CA; resolves with its
 * ms. `trust` is built once: a `ca` option would build a client context per connection, costing the client
 * more than the handshake it measures.
 */
function handshake(port: number, servername: string, trust: SecureContext): Promise<number> {
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername, secureContext: trust, ALPNProtocols: ['http/1.1'] }, () => {
      const ms = performance.now() - started;
      socket.destroy();
      resolvePromise(ms);
    });
    socket.once('error', reject);
  });
}

/** Handshakes of one node, gathered over several rounds. */
interface Samples {
  latenciesMs: number[];
  failed: number;
  firstFailure: string | null;
  seconds: number;
}

function samples(): Samples {
  return { latenciesMs: [], failed: 0, firstFailure: null, seconds: 0 };
}

/** `concurrency` closed loops over `names` for `seconds`, added to `into`. */
async function handshakeLoad(port: number, names: readonly string[], trust: SecureContext, concurrency: number, seconds: number, into: Samples): Promise<void> {
  let next = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const name = names[next++ % names.length]!;
        try {
          into.latenciesMs.push(await handshake(port, name, trust));
        } catch (err) {
          into.failed++;
          into.firstFailure ??= `${name}: ${(err as Error).message}`;
        }
      }
    }),
  );
  into.seconds += (performance.now() - started) / 1000;
}

function statsOf(s: Samples): HandshakeStats {
  const sorted = s.latenciesMs.toSorted((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { count: sorted.length, failed: s.failed, p50Ms: at(0.5), p99Ms: at(0.99), perSecond: sorted.length / s.seconds, firstFailure: s.firstFailure };
}

async function waitForHandshake(node: RunningNode, name: string, trust: SecureContext): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (node.child.exitCode !== null) throw new Error(`node exited (${node.child.exitCode}):\n${node.output()}`);
    try {
      await handshake(node.tlsPort, name, trust);
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`no handshake within ${START_TIMEOUT_MS} ms:\n${node.output()}`);
      await sleep(100);
    }
  }
}

/** `ctl config reload` with nothing changed: every directory re-read and hashed, no pair re-checked. */
function timeReload(node: RunningNode): NonNullable<RunResult['reload']> {
  const started = performance.now();
  const run = spawnSync('sh', [node.launcher, 'ctl', '--socket', node.socket, '--json', '--timeout', String(RELOAD_TIMEOUT_MS), 'config', 'reload'], { encoding: 'utf8' });
  const seconds = (performance.now() - started) / 1000;
  try {
    const result = JSON.parse(run.stdout) as { ok?: boolean; issues?: string[]; code?: string; message?: string };
    return { seconds, ok: result.ok === true, issues: result.issues ?? [`${result.code}: ${result.message}`] };
  } catch {
    return { seconds, ok: false, issues: [run.stdout + run.stderr] };
  }
}

/**
 * Starts the node with the hot certificates only and the one with the full set (one after the other, each
 * timed), warms both up, then measures them in alternating rounds: load from other processes on the box
 * drifts over time, and alternating spreads it over both alike.
 */
async function measure(procs: ProcessRegistry, launcher: string, s: Settings, dir: string, gen: Generated): Promise<{ small: RunResult; large: RunResult }> {
  const hot = hotNames(s);
  const trust = createSecureContext({ ca: gen.ca.cert });
  const runs = [
    { which: 'small', certificates: s.hotCerts, live: gen.small },
    { which: 'large', certificates: s.domains, live: gen.large },
  ] as const;
  const started: { node: RunningNode; startupS: number }[] = [];
  try {
    for (const run of runs) {
      process.stderr.write(`starting a node with ${run.certificates.toLocaleString('en-US')} certificates\n`);
      const spawned = performance.now();
      const node = await startNode(procs, launcher, dir, run.which, gen, run.live);
      started.push({ node, startupS: Number.NaN });
      await waitForHandshake(node, hot[0]!, trust);
      started.at(-1)!.startupS = (performance.now() - spawned) / 1000;
    }
    for (const { node } of started) await handshakeLoad(node.tlsPort, hot, trust, s.concurrency, s.warmupSeconds, samples());
    await sleep(RSS_SETTLE_MS);
    const rssMb = started.map(({ node }) => procRssBytes(node.child.pid!) / MB);
    process.stderr.write(`measuring handshakes: ${s.rounds} rounds of ${s.seconds / s.rounds} s per node\n`);
    const measured = started.map(() => samples());
    for (let round = 0; round < s.rounds; round++) {
      for (const [i, { node }] of started.entries()) await handshakeLoad(node.tlsPort, hot, trust, s.concurrency, s.seconds / s.rounds, measured[i]!);
    }
    const reload = timeReload(started[1]!.node);
    const result = (i: 0 | 1): RunResult => ({
      certificates: runs[i].certificates,
      names: hot.length + runs[i].certificates - s.hotCerts,
      startupS: started[i]!.startupS,
      rssMb: rssMb[i]!,
      handshakes: statsOf(measured[i]!),
      reload: i === 1 ? reload : null,
    });
    return { small: result(0), large: result(1) };
  } finally {
    for (const { node } of started) await procs.stop(node.child);
  }
}

function table(small: RunResult, large: RunResult, gen: Generated, s: Settings): string {
  const n = (x: number, digits = 0): string => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const rows: [string, string, string, string][] = [
    ['certificates / names', `${n(small.certificates)} / ${n(small.names)}`, `${n(large.certificates)} / ${n(large.names)}`, ''],
    ['start (spawn → first handshake)', `${n(small.startupS, 2)} s`, `${n(large.startupS, 2)} s`, ''],
    ['RSS after warm-up (target ≤ 1,536 MB)', `${n(small.rssMb, 1)} MB`, `${n(large.rssMb, 1)} MB`, `${n(large.rssMb / small.rssMb, 2)}×`],
    ['handshake p50', `${n(small.handshakes.p50Ms, 3)} ms`, `${n(large.handshakes.p50Ms, 3)} ms`, `${n(large.handshakes.p50Ms / small.handshakes.p50Ms, 3)}`],
    ['handshake p99', `${n(small.handshakes.p99Ms, 3)} ms`, `${n(large.handshakes.p99Ms, 3)} ms`, `${n(large.handshakes.p99Ms / small.handshakes.p99Ms, 3)}`],
    ['handshakes/s', n(small.handshakes.perSecond), n(large.handshakes.perSecond), `${n(large.handshakes.perSecond / small.handshakes.perSecond, 3)}`],
    ['failed handshakes', n(small.handshakes.failed), n(large.handshakes.failed), ''],
  ];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length), ['', 'hot only', 'full set', 'ratio'][i]!.length));
  const line = (r: readonly string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   ');
  const reload = large.reload;
  return [
    `generated ${n(s.domains + 1)} certificates (ECDSA P-256, fullchain with the CA): issuing ${n(gen.issueS, 1)} s (${n((gen.issueS * 1e6) / (s.domains + 1), 0)} µs each), writing ${n(gen.writeS, 1)} s`,
    `${n(hotNames(s).length)} hot names on ${s.hotCerts} certificates; ${s.concurrency} concurrent full handshakes (TLS 1.3, no resumption), ${s.seconds} s per node in ${s.rounds} alternating rounds after ${s.warmupSeconds} s of warm-up; nodes on core ${NODE_CORE}, client on core ${CLIENT_CORE}`,
    '',
    line(['', 'hot only', 'full set', 'ratio']),
    ...rows.map(line),
    '',
    reload === null ? '' : `reload with nothing changed (full set): ${n(reload.seconds, 2)} s, ${reload.ok ? 'ok' : `FAILED: ${reload.issues.join('; ')}`}`,
    ...[small, large].flatMap((r) => (r.handshakes.firstFailure === null ? [] : [`first failure (${n(r.certificates)}): ${r.handshakes.firstFailure}`])),
  ].join('\n');
}

async function main(): Promise<number> {
  let s: Settings;
  try {
    s = settingsFrom(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\nusage: node bench/l7/certs.ts [--domains N] [--hot-certs N] [--names-per-hot N] [--concurrency N] [--seconds N] [--rounds N] [--warmup-seconds N] [--keep]\n`);
    return 2;
  }
  const others = otherBenchProcesses();
  if (others.length > 0) process.stderr.write(`note: other bench or proxy processes are running and share the cores:\n  ${others.join('\n  ')}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'secbeat-bench-certs-'));
  const procs = new ProcessRegistry();
  process.once('exit', () => procs.killAllNow());
  try {
    process.stderr.write(`generating ${s.domains.toLocaleString('en-US')} certificates in ${dir}\n`);
    const gen = generate(s, dir);
    // From here this process is the handshake client: on its own core, away from the node's.
    execFileSync('taskset', ['-a', '-p', '-c', String(CLIENT_CORE), String(process.pid)], { stdio: 'ignore' });
    const launcher = buildStrippedTree(ROOT, ROOT, join(dir, 'stripped'));
    const { small, large } = await measure(procs, launcher, s, dir, gen);
    process.stdout.write(`${table(small, large, gen, s)}\n`);
    process.stdout.write(`RESULT ${JSON.stringify({ settings: s, generation: { issueS: gen.issueS, writeS: gen.writeS }, small, large })}\n`);
    return 0;
  } finally {
    await procs.stopAll();
    if (s.keep) process.stderr.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
