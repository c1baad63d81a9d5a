// The origin and the three HTTP proxies bench/l7/run.ts compares, each started from a config generated in the
// temp dir: the origin (nginx answering every request with a 1 KiB body, on the load core), and on the proxy
// core SecBeat (`mode = "l7"`, started by bench/tcp's spawnSecbeat over the type-stripped tree), nginx
// (`proxy_pass` to an upstream with keep-alive) and HAProxy (`mode http`). Every proxy has a plain HTTP/1.1
// listener and a TLS one offering h2 and http/1.1 by ALPN with the same test certificate, one worker, the
// same keep-alive settings and the same forwarding headers. A handle gives every PID of the proxy (nginx is a
// master and a worker), its two ports and stop().
import { execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, procAffinity, procChildPids, sleep, waitForConnect, type Core, type ProcessRegistry } from '../tcp/proc.ts';
import { haproxyMaxconn, proxyComplaints, PROXY_CORE, spawnSecbeat, tail, type ProxyEnv } from '../tcp/proxies.ts';

export type L7ProxyKind = 'secbeat' | 'nginx' | 'haproxy';

/** The origin's response body: 1 KiB, as the issue asks. */
export const BODY_BYTES = 1024;
const READY_TIMEOUT_MS = 20_000;
/**
 * Keep-alive made equal for the three proxies (and the origin): a client connection is closed after this much
 * idle time and never because of a request count (SecBeat's default caps it at 1,000 requests, nginx's too,
 * HAProxy has no cap), so the throughput rows measure requests, not reconnects and TLS handshakes, and the
 * idle-connection phase is not cut short (SecBeat's default idle timeout is 5 s).
 */
const KEEPALIVE_S = 60;
/** Upstream keep-alive connections: nginx's `keepalive` cache, SecBeat's `upstream_connections` (its default). */
const UPSTREAM_KEEPALIVE = 64;

export interface TlsFiles {
  cert: string;
  key: string;
  /** Certificate then key in one file, as HAProxy's `crt` takes them. */
  combined: string;
}

/**
 * A self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost, made by openssl in `dir`: one certificate
 * for all three proxies, so handshakes cost the same everywhere.
 */
export function makeCertificate(dir: string): TlsFiles {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert,
    ],
    { stdio: 'ignore', timeout: 30_000 },
  );
  const combined = join(dir, 'combined.pem');
  writeFileSync(combined, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
  return { cert, key, combined };
}

export interface RunningServer {
  kind: L7ProxyKind | 'origin';
  /** The process this bench spawned (nginx's master). */
  pid: number;
  /** Every process of the server: the spawned one and, for nginx, its workers. CPU, RSS and fds are summed over these. */
  pids: readonly number[];
  port: number;
  /** TLS listener (h2 and http/1.1); 0 for the origin. */
  tlsPort: number;
  logFile: string;
  /** SIGTERM, SIGKILL after 5 s: how long the exit took, and whether it needed the SIGKILL. */
  stop(): Promise<StopReport>;
}

export interface StopReport {
  ms: number;
  killed: boolean;
}

export interface L7Env extends ProxyEnv {
  tls: TlsFiles;
}

let instances = 0;

/** nginx on the load core answering `GET /` with 200 and BODY_BYTES of text: the one origin every proxy forwards to. */
export async function startOrigin(env: L7Env, core: Core): Promise<RunningServer> {
  const port = await freePort();
  return launch(env, 'origin', port, 0, (dir, out) => {
    const body = 'x'.repeat(BODY_BYTES);
    const config = nginxConfig(dir, [
      '  server {',
      `    listen 127.0.0.1:${port} backlog=4096;`,
      `    location / { default_type text/plain; return 200 "${body}"; }`,
      '  }',
    ]);
    return env.procs.spawnPinned(core, 'nginx', ['-p', `${dir}/`, '-c', config, '-e', 'stderr'], { cwd: dir, stdio: ['ignore', out, out] });
  });
}

/** What a bench adds to a proxy's generated config (bench/waf turns the proxies' WAFs on with it). */
export interface ProxyOptions {
  /** nginx: directives of the main context (`load_module`) and of both servers' `location /`. */
  nginxMain?: readonly string[];
  nginxLocation?: readonly string[];
  /** SecBeat: TOML tables appended to the generated config. */
  secbeatToml?: readonly string[];
}

export async function startProxy(env: L7Env, kind: L7ProxyKind, originPort: number, options: ProxyOptions = {}): Promise<RunningServer> {
  const port = await freePort();
  const tlsPort = await freePort();
  return launch(env, kind, port, tlsPort, (dir, out) => {
    switch (kind) {
      case 'secbeat':
        return startSecbeat(env, dir, port, tlsPort, originPort, out, options.secbeatToml ?? []);
      case 'nginx':
        return startNginx(env, dir, port, tlsPort, originPort, out, options);
      case 'haproxy':
        return startHaproxy(env, dir, port, tlsPort, originPort, out);
    }
  });
}

/** What the instances of one proxy left for the report: the cores they ran on, what they logged, how they ended. */
export interface ProxyRecord {
  affinity?: string[];
  stops: StopReport[];
  complaints: string[];
}

/** Runs `use` on a freshly started proxy, then stops it, with its affinity, warnings and way of exiting in `record`. */
export async function withServer(started: Promise<RunningServer>, record: ProxyRecord, use: (proxy: RunningServer) => Promise<void>): Promise<void> {
  const proxy = await started;
  record.affinity ??= proxy.pids.map(procAffinity);
  try {
    await use(proxy);
  } finally {
    record.complaints.push(...proxyComplaints(proxy.logFile));
    record.stops.push(await proxy.stop());
  }
}

/** Report notes on a proxy's record: instances SIGKILLed, pinning that failed, warning lines logged. */
export function recordNotes(name: string, r: ProxyRecord): string[] {
  const notes: string[] = [];
  const killed = r.stops.filter((x) => x.killed).length;
  if (killed > 0) notes.push(`${name}: ${killed} of ${r.stops.length} instance(s) did not exit within 5 s of SIGTERM and were SIGKILLed.`);
  if (r.affinity !== undefined && r.affinity.some((a) => a !== String(PROXY_CORE))) {
    notes.push(`${name} ran on cores ${r.affinity.join('/')}, not core ${PROXY_CORE}: pinning failed.`);
  }
  const unique = [...new Set(r.complaints)];
  if (unique.length > 0) notes.push(`${name} logged ${unique.length} distinct warning/error line(s), first: ${unique[0]?.slice(0, 240)}`);
  return notes;
}

async function launch(
  env: L7Env,
  kind: RunningServer['kind'],
  port: number,
  tlsPort: number,
  spawnIn: (dir: string, out: number) => ChildProcess | Promise<ChildProcess>,
): Promise<RunningServer> {
  const dir = join(env.tmp, `${kind}-${++instances}`);
  mkdirSync(dir);
  const logFile = join(dir, 'output.log');
  const out = openSync(logFile, 'w');
  let child: ChildProcess;
  try {
    child = await spawnIn(dir, out);
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(out);
  }
  const pid = child.pid ?? -1;
  const stop = async (): Promise<StopReport> => {
    const t0 = performance.now();
    await env.procs.stop(child);
    return { ms: Math.round(performance.now() - t0), killed: child.signalCode === 'SIGKILL' };
  };
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  let pids: number[] = [pid];
  try {
    await waitForConnect(port, READY_TIMEOUT_MS, alive);
    if (tlsPort !== 0) await waitForConnect(tlsPort, READY_TIMEOUT_MS, alive);
    if (kind === 'nginx' || kind === 'origin') pids = [pid, ...(await nginxWorkers(env.procs, pid, alive))];
  } catch (err) {
    await stop();
    throw new Error(`${kind} did not start: ${err instanceof Error ? err.message : String(err)}\n${tail(logFile)}`, { cause: err });
  }
  return { kind, pid, pids, port, tlsPort, logFile, stop };
}

/**
 * nginx's master binds the listeners before it forks, so a connection can succeed before the worker exists:
 * waits for the one worker, and adopts it so that a SIGKILLed master does not leave it running.
 */
async function nginxWorkers(procs: ProcessRegistry, master: number, alive: () => boolean): Promise<number[]> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error('nginx exited');
    const workers = procChildPids(master);
    if (workers.length >= 1) {
      for (const w of workers) procs.adopt(w);
      return workers;
    }
    await sleep(20);
  }
  throw new Error(`nginx ${master} forked no worker within ${READY_TIMEOUT_MS} ms`);
}

/**
 * The parts of an nginx config the origin and the proxy share: one worker, foreground master (its PID is the
 * one spawned), no access log, temp paths and pid file in the run's own directory, keep-alive as KEEPALIVE_S.
 */
function nginxConfig(dir: string, servers: readonly string[], main: readonly string[] = []): string {
  const config = join(dir, 'nginx.conf');
  // Two fds per proxied connection plus listeners and logs; RLIMIT_NOFILE is inherited from the bench.
  const connections = Math.max(1024, haproxyMaxconn());
  writeFileSync(
    config,
    [
      ...main,
      'worker_processes 1;',
      'daemon off;',
      `pid ${join(dir, 'nginx.pid')};`,
      'error_log stderr warn;',
      `events { worker_connections ${connections}; }`,
      'http {',
      '  access_log off;',
      `  keepalive_timeout ${KEEPALIVE_S}s;`,
      // No request cap on a keep-alive connection (nginx's default is 1,000; it applies to h2 streams too).
      '  keepalive_requests 1000000000;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(dir, t)};`),
      ...servers,
      '}',
      '',
    ].join('\n'),
  );
  return config;
}

function startNginx(env: L7Env, dir: string, port: number, tlsPort: number, originPort: number, out: number, options: ProxyOptions): ChildProcess {
  const location = [
    '    location / {',
    ...(options.nginxLocation ?? []).map((d) => `      ${d}`),
    '      proxy_pass http://origin;',
    // HTTP/1.1 without "Connection: close" is what lets nginx keep upstream connections alive.
    '      proxy_http_version 1.1;',
    '      proxy_set_header Connection "";',
    '      proxy_set_header Host $host;',
    '      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    '      proxy_set_header X-Forwarded-Proto $scheme;',
    '    }',
  ];
  const config = nginxConfig(dir, [
    '  upstream origin {',
    `    server 127.0.0.1:${originPort};`,
    `    keepalive ${UPSTREAM_KEEPALIVE};`,
    '    keepalive_requests 1000000000;',
    `    keepalive_timeout ${KEEPALIVE_S}s;`,
    '  }',
    '  server {',
    `    listen 127.0.0.1:${port} backlog=4096;`,
    ...location,
    '  }',
    '  server {',
    // nginx 1.22 (Debian 12) turns HTTP/2 on per listen; ALPN then offers h2 and http/1.1.
    `    listen 127.0.0.1:${tlsPort} ssl http2 backlog=4096;`,
    // nginx 1.22 enables TLSv1.3 only when told (the default became TLSv1.2 TLSv1.3 in 1.23.4); SecBeat and
    // HAProxy offer both, so nginx gets the same.
    '    ssl_protocols TLSv1.2 TLSv1.3;',
    `    ssl_certificate ${env.tls.cert};`,
    `    ssl_certificate_key ${env.tls.key};`,
    ...location,
    '  }',
  ], options.nginxMain);
  return env.procs.spawnPinned(PROXY_CORE, 'nginx', ['-p', `${dir}/`, '-c', config, '-e', 'stderr'], { cwd: dir, stdio: ['ignore', out, out] });
}

function startHaproxy(env: L7Env, dir: string, port: number, tlsPort: number, originPort: number, out: number): ChildProcess {
  const config = join(dir, 'haproxy.cfg');
  writeFileSync(
    config,
    [
      'global',
      '  nbthread 1',
      `  maxconn ${haproxyMaxconn()}`,
      'defaults',
      '  mode http',
      // Keep-alive on both sides is HAProxy's default in mode http (option http-keep-alive, http-reuse safe).
      '  timeout connect 5s',
      `  timeout client ${KEEPALIVE_S}s`,
      `  timeout server ${KEEPALIVE_S}s`,
      `  timeout http-keep-alive ${KEEPALIVE_S}s`,
      '  option forwardfor',
      'frontend plain',
      `  bind 127.0.0.1:${port}`,
      '  http-request set-header X-Forwarded-Proto http',
      '  default_backend origin',
      'frontend tls',
      `  bind 127.0.0.1:${tlsPort} ssl crt ${env.tls.combined} alpn h2,http/1.1`,
      '  http-request set-header X-Forwarded-Proto https',
      '  default_backend origin',
      'backend origin',
      `  server origin 127.0.0.1:${originPort}`,
      '',
    ].join('\n'),
  );
  return env.procs.spawnPinned(PROXY_CORE, 'haproxy', ['-f', config, '-db'], { cwd: dir, stdio: ['ignore', out, out] });
}

function startSecbeat(
  env: L7Env,
  dir: string,
  port: number,
  tlsPort: number,
  originPort: number,
  out: number,
  extraToml: readonly string[],
): Promise<ChildProcess> {
  return freePort().then((metricsPort) => {
    const config = join(dir, 'secbeat.toml');
    writeFileSync(
      config,
      [
        '[platform]',
        'region = "bench"',
        'node_id = "bench-1"',
        '[server]',
        'mode = "l7"',
        `bind_address = "127.0.0.1:${port}"`,
        `backend_address = "127.0.0.1:${originPort}"`,
        'worker_threads = 1',
        // Every client comes from 127.0.0.1: the per-address cap (256 by default) would refuse the idle phase.
        'max_connections = 100000',
        'per_ip_max_connections = 0',
        // SIGTERM drains; the bench has nothing worth waiting 30 s (the default) for.
        'drain_timeout_ms = 500',
        '[tls]',
        'enabled = true',
        `cert_path = "${env.tls.cert}"`,
        `key_path = "${env.tls.key}"`,
        '[l7]',
        `tls_bind_address = "127.0.0.1:${tlsPort}"`,
        `keepalive_timeout_ms = ${KEEPALIVE_S * 1000}`,
        'max_requests_per_connection = 0',
        `upstream_connections = ${UPSTREAM_KEEPALIVE}`,
        // Metrics on, as in the embedded default: their listener and registries are part of what an operator runs.
        '[metrics]',
        `bind_address = "127.0.0.1:${metricsPort}"`,
        '[admin]',
        `socket_path = "${join(dir, 'a.sock')}"`,
        '[logging]',
        'level = "warn"',
        '[state]',
        `dir = "${join(dir, 'state')}"`,
        ...extraToml,
        '',
      ].join('\n'),
    );
    return spawnSecbeat(env, dir, config, out);
  });
}
