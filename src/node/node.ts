// Assembles one SecBeat node from a validated config: the main thread's actor system and root supervisor
// (config, telemetry, data-plane threads, admin socket), the worker threads with their listener actors, and
// the state every thread shares without messages (connection limits, blocklist). main.ts starts it;
// commands.ts executes operator commands against it.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { ResourceLimits } from 'node:worker_threads';
import { SecbeatError, type ErrorData } from '../errors.ts';
import type { AdminRequest, CertificateList, ChaosRule, L7Applied, L7Update, ListenerMsg, LogLevel, Replies, SynStatus, ThreadControl } from '../messages.ts';
import { adminActor } from '../actors/admin.ts';
import { configActor, type ApplyReport } from '../actors/config.ts';
import type { ListenerInput } from '../actors/listener.ts';
import { telemetry } from '../actors/telemetry.ts';
import { CIDR_TABLE_CAPACITY, createCidrTableState, SharedCidrTableWriter } from '../blocklist/shared-cidr-table.ts';
import { createIpSetState, SharedIpSetWriter } from '../blocklist/shared-ip-set.ts';
import type { ConfigSource } from '../config/load.ts';
import { parseHostPort, type Config } from '../config/schema.ts';
import { createConnLimitsState, ConnLimits } from '../proxy/conn-limits.ts';
import { realClock, type Clock, type TimerHandle } from '../runtime/clock.ts';
import { Supervisor, type SupervisorEvent } from '../runtime/supervisor.ts';
import type { NatsTransport } from '../runtime/nats-transport.ts';
import { ActorSystem } from '../runtime/system.ts';
import { WorkerThread, type RuntimeSettings, type ThreadBoot } from '../runtime/thread.ts';
import { logSecurityEvent, rootLogger, setLogLevel, type Logger } from '../telemetry/log.ts';
import { collectThreadMetrics, metrics, type MetricsJson } from '../telemetry/metrics.ts';
import { FleetRateLimiter } from '../ratelimit/fleet-limiter.ts';
import { TenantCertificateFiles, type TenantPem } from './tenant-certificates.ts';
import type { FleetPolicy, Tenants } from './tenants.ts';
import { createRateCountersState } from '../ratelimit/shared-counters.ts';
import { rateSubject } from '../runtime/subjects.ts';
import { executeAdminCommand } from './commands.ts';
import type { L7SettingsSource } from './l7-settings.ts';
import { startRequirements } from './requirements.ts';
import { runsSynProxy, SYN_PROXY_LIVE_KEYS, synProxySettings } from './syn-settings.ts';
import type { MirroredBlock } from '../actors/syn-proxy.ts';

export interface NodeOptions {
  config: Readonly<Config>;
  source: ConfigSource;
  clock?: Clock;
}

/** Capacity of the shared blocklist of exact addresses (ranges: CIDR_TABLE_CAPACITY). */
export const BLOCKLIST_CAPACITY = 65_536;
const BLOCKLIST_PURGE_INTERVAL_MS = 1_000;
const TELEMETRY_SAMPLE_INTERVAL_MS = 5_000;
const THREAD_START_TIMEOUT_MS = 15_000;
const THREAD_CONTROL_TIMEOUT_MS = 5_000;
/** Installing 100k certificates in a thread takes about a tenth of that (bench/l7/certs.ts). */
const RECONFIGURE_TIMEOUT_MS = 10_000;
/** A burst of fleet WAF policy changes within this reaches running threads as one recompile. */
const FLEET_POLICY_DELAY_MS = 200;

export const MAIN_ACTORS = { config: 'config', telemetry: 'telemetry', admin: 'admin', synProxy: 'syn-proxy' } as const;
export const LISTENER_ACTOR = 'listener';

/**
 * The behaviours table worker threads import, by URL only: importing it here would load the whole data plane
 * (listener, proxies, native binding) into the main isolate, which never runs it; about 0.3 MB of idle RSS.
 */
const BEHAVIORS_MODULE = new URL('../actors/index.ts', import.meta.url).href;

/**
 * V8 heap limits of a TCP-mode data-plane thread: V8's smallest young generation, 1 MiB semi-spaces (3 MB with
 * the new large-object space). Left alone, V8 grows the semi-spaces to 4 MiB while a thread loads its modules
 * and keeps them while idle: 2 MB of RSS per thread. Measured on a 2-worker node: idle RSS 103.6 → 99.7 MB
 * (as bench/tcp measures it). It costs no CPU: with the native engine JS leaves about 1.4 KB of young garbage per
 * connection, so a connection-rate load meets one 0.3 ms scavenge per 700 connections and the thread's total GC
 * pause did not change; JS forwarding scavenges more often (GC pause +45 %) yet did 2-5 % more connections per
 * CPU-second, with 115 MB of RSS under load instead of 160-225 MB. L7 mode allocates per request: measure there.
 * bin/secbeat gives the main isolate the same size by flag; ../runtime/thread.ts clears that flag before it
 * starts a thread, since V8 would let it win over these limits.
 */
const DATA_PLANE_HEAP_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: 3 };

/**
 * L7 mode allocates per request (Node's HTTP objects, the exchange, the origin's response): 4 MiB
 * semi-spaces (12 MB young generation) scavenge a quarter as often as TCP mode's 1 MiB. Measured with
 * bench/l7's fixed-rate phase (2,000 req/s), p99 added over direct, alternating runs: 1 MiB semi-spaces
 * 1.5-2.9 ms, 4 MiB 0.6-1.6 ms (one 4.1 ms outlier), 16 MiB 2.4-4.7 ms with more CPU per request: a larger
 * young generation saved a little GC at saturation (13.3 % → 11.0 % of a thread's profile) but lengthened
 * the tail. V8 grows the semi-spaces only under allocation pressure, so an idle thread does not pay for them.
 * Caveat: bench/l7 starts SecBeat through bin/secbeat, whose --max-semi-space-size=1 overrode these limits
 * until ../runtime/thread.ts cleared it (2026-12-03), so the runs above may all have had 1 MiB; measured since:
 * see docs/bench.md (L7 and WAF).
 */
const L7_DATA_PLANE_HEAP_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: 12 };

/**
 * With the WAF on, a request leaves 60–150 KB more garbage (bench/waf's GET and POST), and 12 MB scavenged every
 * few dozen requests: 16 MiB semi-spaces (48 MB) bring the collector from 8 % to 3 % of an L7 thread's busy time
 * on both (CPU profiles of `node bench/waf/run.ts --quick --cpu-prof`, 2026-12-03). Not measured with it: the
 * latency tail at a fixed rate, which the 16 MiB run above found longer (before the flag fix, so unsure), and
 * the RSS under load (at most 36 MB more a thread, when the semi-spaces have grown). Chosen when the thread
 * starts, from [waf] enabled: a reload that turns the WAF on later keeps the smaller size.
 */
const L7_WAF_DATA_PLANE_HEAP_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: 48 };

/** The heap limits of a data-plane thread for `config` (see the constants above). */
function dataPlaneHeapLimits(config: Readonly<Config>): ResourceLimits {
  if (config.server.mode !== 'l7') return DATA_PLANE_HEAP_LIMITS;
  return config.waf.enabled ? L7_WAF_DATA_PLANE_HEAP_LIMITS : L7_DATA_PLANE_HEAP_LIMITS;
}

export function runtimeSettings(config: Readonly<Config>): RuntimeSettings {
  const r = config.runtime;
  return {
    mailboxCapacity: r.mailbox_capacity,
    askTimeoutMs: r.ask_timeout_ms,
    deadLetterCapacity: r.dead_letter_capacity,
    heartbeatIntervalMs: r.heartbeat_interval_ms,
    heartbeatTimeoutMs: r.heartbeat_timeout_ms,
    maxRestarts: r.max_restarts,
    restartPeriodMs: r.restart_period_ms,
    backoffInitialMs: r.backoff_initial_ms,
    backoffMaxMs: r.backoff_max_ms,
  };
}

export class SecbeatNode {
  readonly clock: Clock;
  readonly log: Logger;
  readonly system: ActorSystem;
  readonly threads: WorkerThread[];
  readonly threadSupervisor: Supervisor;
  readonly root: Supervisor;
  readonly blocklist: SharedIpSetWriter;
  readonly cidrBlocklist: SharedCidrTableWriter;
  readonly startedAt: number;
  /** Resolves with the process exit code once the node has stopped (shutdown or escalation). */
  readonly stopped: Promise<number>;
  #config: Readonly<Config>;
  #chaosRules: ChaosRule[] = [];
  #connLimitsState: SharedArrayBuffer;
  /** L7 mode's thread settings (certificates read and checked, ticket keys drawn), kept current by reloads; null in TCP mode. */
  readonly #l7: L7SettingsSource | null;
  #purgeTimer: TimerHandle | null = null;
  #stopping: Promise<void> | null = null;
  /** The node transport when [nats] is enabled; without it the node runs alone. */
  #nats: NatsTransport | null = null;
  /** [rate_limit] in l7 mode: the threads' shared counts and the main thread's side of the fleet's limit. */
  readonly #rateCountersState: SharedArrayBuffer | null = null;
  readonly #rateLimiter: FleetRateLimiter | null = null;
  /** L7 mode: the fleet's tenant domains, synced over NATS and persisted in [state] dir. */
  readonly #tenants: Tenants | null = null;
  /** Networks in the range blocklist because the fleet blocks them (./tenants.ts), to take out when it stops. */
  readonly #fleetBlocked = new Set<string>();
  #fleetPolicyTimer: NodeJS.Timeout | null = null;
  /** Tenant certificate loads run one after another: each reads the files the previous one left. */
  #tenantCertificatesApplied: Promise<void> = Promise.resolve();
  readonly #tenantCertificateFiles: TenantCertificateFiles | null = null;
  /** What the last load of tenant certificates was given (none at start: the config file's only). */
  #tenantPems: ReadonlyMap<string, TenantPem> = new Map();
  #resolveStopped: (code: number) => void = () => {};

  private constructor(options: NodeOptions, l7: L7SettingsSource | null, tenantsModule: TenantsModule | null, synProxyModule: SynProxyModule | null) {
    const { config } = options;
    this.#config = config;
    this.#l7 = l7;
    this.clock = options.clock ?? realClock;
    this.log = rootLogger();
    this.startedAt = this.clock.now();
    this.stopped = new Promise((resolve) => (this.#resolveStopped = resolve));
    const settings = runtimeSettings(config);
    this.system = new ActorSystem({
      region: config.platform.region,
      node: config.platform.node_id,
      thread: 'main',
      clock: this.clock,
      mailboxCapacity: settings.mailboxCapacity,
      askTimeoutMs: settings.askTimeoutMs,
      deadLetterCapacity: settings.deadLetterCapacity,
      chaosEnabled: config.chaos.enabled,
    });
    this.blocklist = new SharedIpSetWriter(createIpSetState(BLOCKLIST_CAPACITY));
    this.cidrBlocklist = new SharedCidrTableWriter(createCidrTableState(CIDR_TABLE_CAPACITY));
    if (l7 !== null && tenantsModule !== null) {
      const stateDir = resolve(options.source.cwd ?? process.cwd(), config.state.dir);
      this.#tenantCertificateFiles = new TenantCertificateFiles(stateDir);
      this.#tenants = new tenantsModule.Tenants({
        stateDir,
        region: config.platform.region,
        node: config.platform.node_id,
        log: this.log.child({ component: 'tenants' }),
        onRoutes: (routes) => this.#applyTenantRoutes(routes),
        onPolicy: (policy) => this.#applyFleetPolicy(policy),
        onBlocks: (blocks) => this.#applyFleetBlocks(blocks),
        onCertificates: (pairs) => this.#applyTenantCertificates(pairs),
        compactAfterOps: config.state.compact_after_ops,
      });
    }
    const rate = config.rate_limit;
    if (rate.enabled && config.server.mode === 'l7') {
      this.#rateCountersState = createRateCountersState({ threads: config.server.worker_threads, slotsPerRegion: rate.clients_per_thread });
      this.#rateLimiter = new FleetRateLimiter({
        state: this.#rateCountersState,
        replica: `${config.platform.region}/${config.platform.node_id}/${this.startedAt}`,
        requests: rate.requests,
        windowMs: rate.window_seconds * 1000,
        blockMs: rate.block_seconds * 1000,
        intervalMs: rate.sync_interval_ms,
        maxAgeMs: rate.max_counter_age_seconds * 1000,
        publish: (text) => void this.#nats?.broadcast(rateSubject(), text),
        block: (client, untilMs, origin) => this.#rateBlock(client, untilMs, origin),
        now: () => this.clock.now(),
      });
    }
    this.#connLimitsState = createConnLimitsState({
      threads: config.server.worker_threads,
      maxConnections: config.server.max_connections,
      perIpMaxConnections: config.server.per_ip_max_connections,
    });

    const supervisorOptions = (name: string) => ({
      name,
      maxRestarts: settings.maxRestarts,
      periodMs: settings.restartPeriodMs,
      backoffInitialMs: settings.backoffInitialMs,
      backoffMaxMs: settings.backoffMaxMs,
      clock: this.clock,
      onEvent: (e: SupervisorEvent) => this.#onSupervisorEvent(e),
    });

    this.threads = Array.from({ length: config.server.worker_threads }, (_, index) => {
      const name = `w${index}`;
      const limits = new ConnLimits(this.#connLimitsState, index);
      return new WorkerThread({
        name,
        boot: () => this.#threadBoot(name, index),
        system: this.system,
        clock: this.clock,
        log: this.log,
        startTimeoutMs: THREAD_START_TIMEOUT_MS,
        stopTimeoutMs: Math.max(THREAD_CONTROL_TIMEOUT_MS, config.server.drain_timeout_ms),
        // A dead thread's sockets closed with it; release the connection counts it held.
        beforeRestart: () => limits.resetThread(index),
        resourceLimits: dataPlaneHeapLimits(config),
      });
    });
    this.system.setThreadTransport((thread, delivery) => this.threads.find((t) => t.name === thread)?.send(delivery) ?? false);
    this.threadSupervisor = new Supervisor(
      { ...supervisorOptions('data-plane'), strategy: 'one_for_one' },
      this.threads.map((t) => t.child('permanent')),
    );

    const metricsListen = config.metrics.enabled ? parseHostPort(config.metrics.bind_address) : null;
    this.root = new Supervisor({ ...supervisorOptions('root'), strategy: 'one_for_one' }, [
      this.system.actorChild({
        name: MAIN_ACTORS.config,
        behavior: configActor,
        input: { source: options.source, config, apply: (next: Readonly<Config>, prev: Readonly<Config>) => this.#applyConfig(next, prev) },
      }),
      this.system.actorChild({
        name: MAIN_ACTORS.telemetry,
        behavior: telemetry,
        input: {
          listen: metricsListen,
          sampleIntervalMs: TELEMETRY_SAMPLE_INTERVAL_MS,
          collect: () => this.collectMetrics(),
          api: { token: () => this.#config.admin.api_token, execute: (req: AdminRequest) => executeAdminCommand(this, req, 'api') },
        },
      }),
      // The XDP program goes on before the listeners accept, and comes off after they stopped.
      ...(synProxyModule !== null
        ? [
            this.system.actorChild({
              name: MAIN_ACTORS.synProxy,
              behavior: synProxyModule.synProxy,
              input: {
                nodeId: config.platform.node_id,
                settings: () => synProxySettings(this.#config),
                nodeBlocks: () => this.#nodeBlocks(),
              },
            }),
          ]
        : []),
      this.threadSupervisor.asChild('permanent'),
      this.system.actorChild({
        name: MAIN_ACTORS.admin,
        behavior: adminActor,
        input: { socketPath: config.admin.socket_path, handler: (req: AdminRequest) => executeAdminCommand(this, req) },
      }),
    ]);
    this.system.registerSupervisor(this.root);
    this.system.registerSupervisor(this.threadSupervisor);
  }

  static async start(options: NodeOptions): Promise<SecbeatNode> {
    const problems = startRequirements(options.config);
    if (problems.length > 0) throw new SecbeatError('SECBEAT_ERR_CONFIG_INVALID', problems.join('; '));
    const l7 = await l7SettingsFor(options);
    // The SYN proxy's module (libbpf addon loader, nftables) is loaded only by the nodes that run it.
    const synProxyModule = runsSynProxy(options.config) ? await import('../actors/syn-proxy.ts') : null;
    const node = new SecbeatNode(options, l7, l7 === null ? null : await import('./tenants.ts'), synProxyModule);
    await node.#startNats();
    node.#startRateLimiter();
    node.#tenants?.attach(node.#nats);
    // Threads boot with the tenants' certificates loaded from the saved document.
    await node.#tenantCertificatesApplied;
    await node.root.start((reason) => {
      node.log.fatal({ reason }, 'root supervisor gave up; stopping the node');
      void node.shutdown(0, 1);
    });
    node.#schedulePurge();
    node.log.info(
      { mode: options.config.server.mode, threads: node.threads.length, cores: availableParallelism() },
      'node started',
    );
    return node;
  }

  get config(): Readonly<Config> {
    return this.#config;
  }

  get chaosRules(): ChaosRule[] {
    return this.#chaosRules.filter((r) => r.expiresAt > this.clock.now());
  }

  thread(name: string): WorkerThread {
    const t = this.threads.find((x) => x.name === name);
    if (!t) throw new SecbeatError('SECBEAT_ERR_THREAD_NOT_FOUND', `no thread ${name} (threads: main, ${this.threads.map((x) => x.name).join(', ')})`);
    return t;
  }

  /** Runs a control request on every running worker; unavailable threads are reported, not fatal. */
  async onEveryThread(control: ThreadControl): Promise<{ thread: string; value?: unknown; error?: ErrorData }[]> {
    return Promise.all(
      this.threads.map((t) =>
        t.control(control, THREAD_CONTROL_TIMEOUT_MS).then(
          (value) => ({ thread: t.name, value }),
          (err: unknown) => ({ thread: t.name, error: { code: 'SECBEAT_ERR_THREAD_UNAVAILABLE' as const, message: String((err as Error).message) } }),
        ),
      ),
    );
  }

  async collectMetrics(): Promise<MetricsJson[]> {
    const own = await collectThreadMetrics();
    const others = await this.onEveryThread({ op: 'metrics' });
    return [own, ...others.flatMap((o) => (o.value ? [o.value as MetricsJson] : []))];
  }

  async setChaos(rules: ChaosRule[]): Promise<void> {
    this.#chaosRules = rules;
    const enabled = this.#config.chaos.enabled;
    this.system.setChaosRules(rules, enabled);
    await this.onEveryThread({ op: 'chaos.set', rules, enabled });
  }

  async setLogLevel(level: LogLevel): Promise<void> {
    setLogLevel(level);
    await this.onEveryThread({ op: 'log.level', level });
  }

  blockIp(ip: string, durationSec: number | null, source: 'admin' | 'api'): { ip: string; expiresAt: number | null } {
    const expiresAt = durationSec === null ? null : Math.ceil(this.clock.now() / 1000) + durationSec;
    const outcome = this.blocklist.add(ip, expiresAt);
    if (outcome === 'full') throw new SecbeatError('SECBEAT_ERR_ADMIN_INVALID_ARGS', `the blocklist is full (${this.blocklist.capacity} addresses)`);
    if (outcome === 'invalid') throw new SecbeatError('SECBEAT_ERR_ADMIN_INVALID_ARGS', `not an IP address: ${ip}`);
    logSecurityEvent(this.log, { event: 'ip.blocked', ip, durationSec, source });
    return { ip, expiresAt };
  }

  unblockIp(ip: string, source: 'admin' | 'api'): boolean {
    const removed = this.blocklist.remove(ip);
    if (removed) logSecurityEvent(this.log, { event: 'ip.unblocked', ip, source });
    return removed;
  }

  /** Stops accepting on every listener and waits for open connections, up to `timeoutMs`. */
  async drain(timeoutMs: number): Promise<{ thread: string; value?: unknown; error?: ErrorData }[]> {
    return this.#askListeners({ type: 'listener.drain', timeoutMs }, timeoutMs + THREAD_CONTROL_TIMEOUT_MS);
  }

  /** The SYN-proxy actor's status (`syn.status`); an admin error where this node runs no XDP program. */
  async synStatus(): Promise<SynStatus> {
    if (!runsSynProxy(this.#config)) {
      throw new SecbeatError('SECBEAT_ERR_ADMIN_INVALID_ARGS', 'this node runs no XDP program (syn mode, or [syn_proxy] enabled, loads it)');
    }
    return this.system.ask(this.system.address(MAIN_ACTORS.synProxy), { type: 'syn.status' as const });
  }

  /** L7 mode's installed certificates, soonest expiry first (`certs.list`); empty without a TLS listener. */
  certificates(limit: number): CertificateList {
    return this.#l7?.list(limit) ?? { names: 0, certificates: 0, defaultNotAfterMs: null, expiringFirst: [] };
  }

  /** Asks every thread's listener; a thread that does not answer is reported, not fatal. */
  #askListeners<M extends ListenerMsg & { type: keyof Replies }>(msg: M, timeoutMs: number): Promise<{ thread: string; value?: Replies[M['type']]; error?: ErrorData }[]> {
    return Promise.all(
      this.threads.map((t) =>
        this.system.ask(this.system.address(LISTENER_ACTOR, t.name), msg, timeoutMs).then(
          (value) => ({ thread: t.name, value: value as Replies[M['type']] }),
          (err: unknown) => ({ thread: t.name, error: { code: 'SECBEAT_ERR_THREAD_UNAVAILABLE' as const, message: String((err as Error).message) } }),
        ),
      ),
    );
  }

  /** Graceful stop: drain listeners (up to drainTimeoutMs), stop every actor and thread, resolve `stopped`. */
  shutdown(drainTimeoutMs: number = this.#config.server.drain_timeout_ms, exitCode = 0): Promise<void> {
    this.#stopping ??= (async () => {
      this.log.info({ drainTimeoutMs }, 'node shutting down');
      if (this.#purgeTimer) this.clock.clearTimeout(this.#purgeTimer);
      this.#rateLimiter?.stop();
      this.#tenants?.stop();
      if (drainTimeoutMs > 0 && this.root.status === 'running') await this.drain(drainTimeoutMs);
      await this.root.stop();
      await this.#nats?.close();
      this.log.info('node stopped');
      this.#resolveStopped(exitCode);
    })();
    return this.#stopping;
  }

  /**
   * Connects to NATS in the background when [nats] is enabled: the node serves alone until it is up. The client
   * is loaded only then: a node on its own would carry it idle (about 13 MB of RSS in a bare process).
   */
  async #startNats(): Promise<void> {
    const { nats, platform } = this.#config;
    if (!nats.enabled) return;
    const { NatsTransport } = await import('../runtime/nats-transport.ts');
    this.#nats = new NatsTransport({
      servers: nats.urls,
      region: platform.region,
      node: platform.node_id,
      ...(nats.name === undefined ? {} : { name: nats.name }),
      ...(nats.token === undefined ? {} : { token: nats.token }),
      ...(nats.user === undefined ? {} : { user: nats.user, password: nats.password ?? '' }),
      log: this.log.child({ component: 'nats' }),
    });
    this.system.setNodeTransport(this.#nats);
    await this.#nats.start((delivery) => this.system.receive(delivery));
  }

  /** The tenant configuration of an L7 node, or the admin error a TCP node answers with. */
  tenantsOrThrow(): Tenants {
    if (this.#tenants === null) throw new SecbeatError('SECBEAT_ERR_ADMIN_INVALID_ARGS', 'the tenant configuration (domains, fleet policy) is l7 mode only; this node runs tcp mode');
    return this.#tenants;
  }

  /**
   * Tenant domains changed (here or on another node): routes for threads booting from now on, and for the
   * running ones. At construction the threads are not up yet and boot with them.
   */
  #applyTenantRoutes(routes: L7Update['routes']): void {
    const l7 = this.#l7;
    if (l7 === null) return;
    void this.#reconfigureRunning(l7.tenantUpdate(routes));
  }

  /**
   * The fleet's WAF rules, exclusions and allows changed: every thread compiles its rule set again with them
   * after the policy file's (a fleet rule whose id the file holds is left out, and said so). Running threads
   * hear of it FLEET_POLICY_DELAY_MS after the last of a burst of changes, so a burst costs one compile.
   */
  #applyFleetPolicy(policy: FleetPolicy): void {
    const l7 = this.#l7;
    if (l7 === null) return;
    const update = l7.fleetPolicyUpdate(policy);
    const shadowed = l7.shadowedFleetRules;
    if (shadowed.length > 0) this.log.warn({ rule_ids: shadowed.slice(0, 20), count: shadowed.length }, 'fleet WAF rules left out: the policy file holds rules with these ids');
    if (update === null) {
      if (policy.rules.length + policy.exclusions.length + policy.allowlist.length > 0) this.log.info('the fleet has WAF rules; this node runs with [waf] off and does not apply them');
      return;
    }
    if (this.#fleetPolicyTimer !== null) clearTimeout(this.#fleetPolicyTimer);
    this.#fleetPolicyTimer = setTimeout(() => {
      this.#fleetPolicyTimer = null;
      // Built again now: a config reload in the meantime changed the routes and the file's rules.
      const latest = l7.fleetPolicyUpdate(policy);
      if (latest !== null) void this.#reconfigureRunning(latest);
    }, FLEET_POLICY_DELAY_MS);
    this.#fleetPolicyTimer.unref();
  }

  /**
   * Tenant domains' own certificates changed: their files brought up to date under the state directory, then
   * loaded with the config file's (only changed pairs are read and checked again) for threads booting from
   * now on and for the running ones. With TLS off there is nothing to serve them on.
   */
  #applyTenantCertificates(pairs: ReadonlyMap<string, TenantPem>): void {
    const l7 = this.#l7;
    // Most domain changes leave every certificate as it was (most nodes have none): no reload for them.
    if (l7 === null || samePems(this.#tenantPems, pairs)) return;
    this.#tenantPems = pairs;
    const files = this.#tenantCertificateFiles!;
    this.#tenantCertificatesApplied = this.#tenantCertificatesApplied.then(async () => {
      try {
        const update = await l7.tenantCertificatesUpdate(files.sync(pairs));
        if (update === null) {
          if (pairs.size > 0) this.log.info({ domains: pairs.size }, 'tenant domains carry certificates; this node runs with TLS off and does not serve them');
          return;
        }
        await this.#reconfigureRunning(update);
      } catch (error) {
        this.log.error({ err: error }, 'tenant certificates not applied; the ones in use stay');
      }
    });
  }

  /**
   * The fleet's blocked networks changed: into the range blocklist every thread checks at accept, each with
   * its expiry; a network the fleet no longer blocks comes out (only those this node put in for the fleet).
   */
  #applyFleetBlocks(blocks: ReadonlyMap<string, number | null>): void {
    const nowSec = this.clock.now() / 1000;
    for (const cidr of this.#fleetBlocked) {
      if (blocks.has(cidr)) continue;
      this.cidrBlocklist.remove(cidr);
      this.#fleetBlocked.delete(cidr);
      logSecurityEvent(this.log, { event: 'cidr.unblocked', cidr, source: 'fleet' });
    }
    for (const [cidr, expiresAt] of blocks) {
      if (expiresAt !== null && expiresAt <= nowSec) continue;
      const added = this.cidrBlocklist.add(cidr, expiresAt);
      if (added.outcome === 'full') {
        this.log.error({ cidr, capacity: this.cidrBlocklist.capacity }, 'fleet block not applied: the range blocklist is full');
        continue;
      }
      if (added.outcome === 'invalid' || this.#fleetBlocked.has(cidr)) continue;
      this.#fleetBlocked.add(cidr);
      logSecurityEvent(this.log, { event: 'cidr.blocked', cidr, durationSec: expiresAt === null ? null : Math.round(expiresAt - nowSec), source: 'fleet' });
    }
  }

  /** Every address and range this node blocks, with its expiry in ms: what SYN mode mirrors into XDP. */
  #nodeBlocks(): MirroredBlock[] {
    const toMs = (sec: number | null): number | null => (sec === null ? null : sec * 1000);
    return [
      ...this.blocklist.list().map((e) => ({ cidr: e.ip, expiresAtMs: toMs(e.expiresAt) })),
      ...this.cidrBlocklist.list().map((e) => ({ cidr: e.cidr, expiresAtMs: toMs(e.expiresAt) })),
    ];
  }

  /** Runs the fleet's rate limit: snapshots out every sync interval, and in from NATS when it is enabled. */
  #startRateLimiter(): void {
    const limiter = this.#rateLimiter;
    if (limiter === null) return;
    this.#nats?.listen(rateSubject(), (text) => {
      if (!limiter.receive(text)) metrics().rateLimitSyncMalformed.inc();
    });
    limiter.start();
  }

  /** A rate-limit block, decided here or learnt from the fleet: into the blocklist every thread checks. */
  #rateBlock(client: string, untilMs: number, origin: 'local' | 'fleet'): void {
    const expiresAt = Math.ceil(untilMs / 1000);
    if (this.blocklist.add(client, expiresAt) === 'full') {
      this.log.warn({ client }, 'rate limit: the blocklist is full; the client is only refused over the limit');
      return;
    }
    metrics().rateLimitBlocks.inc({ origin });
    logSecurityEvent(this.log, { event: 'ip.blocked', ip: client, durationSec: Math.max(0, expiresAt - Math.floor(this.clock.now() / 1000)), source: `rate_limit_${origin}` });
  }

  #threadBoot(name: string, index: number): ThreadBoot {
    const c = this.#config;
    const listen = parseHostPort(c.server.bind_address);
    const backend = parseHostPort(c.server.backend_address);
    if (!listen || !backend) throw new SecbeatError('SECBEAT_ERR_CONFIG_INVALID', 'server.bind_address and server.backend_address must be host:port');
    const input: ListenerInput = {
      listen,
      backend,
      connectTimeoutMs: c.server.connect_timeout_ms,
      idleTimeoutMs: c.server.idle_timeout_ms,
      noDelay: c.server.tcp_nodelay,
      forwarding: c.server.forwarding,
      threadIndex: index,
      connLimitsState: this.#connLimitsState,
      blocklistState: this.blocklist.state,
      cidrBlocklistState: this.cidrBlocklist.state,
      rateCountersState: this.#rateCountersState,
      l7: this.#l7?.settings ?? null,
    };
    return {
      region: c.platform.region,
      node: c.platform.node_id,
      thread: name,
      index,
      behaviorsModule: BEHAVIORS_MODULE,
      actors: [{ name: LISTENER_ACTOR, behavior: 'listener', input, restart: 'permanent' }],
      runtime: runtimeSettings(c),
      log: { level: c.logging.level, format: c.logging.format },
      chaos: { enabled: c.chaos.enabled, rules: this.chaosRules },
    };
  }

  /**
   * Applies what can change live; everything else is reported as needing a restart. L7 routes and
   * certificates are read and checked first: if that throws, the reload is refused with nothing changed.
   */
  async #applyConfig(next: Readonly<Config>, prev: Readonly<Config>): Promise<ApplyReport> {
    const l7 = next.server.mode === 'l7' ? this.#l7 : null;
    const update = l7 === null ? null : await l7.update(next);
    this.#config = next;
    if (next.logging.level !== prev.logging.level) void this.setLogLevel(next.logging.level);
    if (next.chaos.enabled !== prev.chaos.enabled) void this.setChaos(next.chaos.enabled ? this.chaosRules : []);
    const live = new Set(['logging.level', 'chaos.enabled', 'admin.api_token', ...(l7?.liveKeys ?? []), ...(runsSynProxy(prev) ? SYN_PROXY_LIVE_KEYS : [])]);
    const restartOnly = changedKeys(prev, next).filter((k) => !live.has(k));
    return { restartOnly, notApplied: update === null ? [] : await this.#reconfigureListeners(update) };
  }

  /**
   * Sends a reload's routes and certificates to every listener; returns what did not apply. A thread that
   * missed it boots with it when it restarts (the settings source already holds it).
   */
  /**
   * A change the settings source already holds (threads booting from now on get it), to the running threads
   * too; before the node runs there are none. A thread that missed it is said so.
   */
  async #reconfigureRunning(update: L7Update): Promise<void> {
    if (this.root?.status !== 'running') return;
    for (const line of await this.#reconfigureListeners(update)) this.log.warn(line);
  }

  async #reconfigureListeners(update: L7Update): Promise<string[]> {
    const results = await this.#askListeners({ type: 'listener.reconfigure', l7: update }, RECONFIGURE_TIMEOUT_MS);
    const applied = results.flatMap((r): L7Applied[] => (r.value === undefined ? [] : [r.value]));
    this.log.info({ routes: update.routes.length, certificates: applied[0]?.certificates ?? null, threads: applied.length }, 'l7 routes and certificates applied');
    const missed = results.flatMap((r) =>
      r.error === undefined ? [] : [`l7: thread ${r.thread} did not apply the routes and certificates (${r.error.message}); restart it (ctl thread-restart ${r.thread})`],
    );
    return missed;
  }

  #schedulePurge(): void {
    this.#purgeTimer = this.clock.setTimeout(() => {
      for (const ip of this.blocklist.purgeExpired(this.clock.now() / 1000)) {
        logSecurityEvent(this.log, { event: 'ip.unblocked', ip, source: 'expiry' });
      }
      for (const cidr of this.cidrBlocklist.purgeExpired(this.clock.now() / 1000)) {
        logSecurityEvent(this.log, { event: 'cidr.unblocked', cidr, source: 'expiry' });
      }
      this.#schedulePurge();
    }, BLOCKLIST_PURGE_INTERVAL_MS);
  }

  #onSupervisorEvent(e: SupervisorEvent): void {
    switch (e.kind) {
      case 'child.exited':
        if (e.reason.kind === 'crash') this.log.warn({ supervisor: e.supervisor, child: e.child, error: e.reason.error }, 'child crashed');
        return;
      case 'child.restarting':
        this.log.info({ supervisor: e.supervisor, child: e.child, delayMs: e.delayMs }, 'restarting child');
        return;
      case 'child.started':
        if (e.restarts > 0) this.log.info({ supervisor: e.supervisor, child: e.child, restarts: e.restarts }, 'child restarted');
        return;
      case 'escalated':
        this.log.error({ supervisor: e.supervisor, child: e.child, reason: e.reason }, 'restart intensity exceeded; escalating');
        return;
    }
  }
}

/** Dotted paths of leaf values that differ between two configs. */
function changedKeys(a: unknown, b: unknown, prefix = ''): string[] {
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && !Array.isArray(a)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) =>
      changedKeys((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], prefix ? `${prefix}.${k}` : k),
    );
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix];
}

/**
 * L7 mode's thread settings (certificate files read and checked); null in TCP mode. Loaded on demand: the
 * certificate checks pull node:tls into the main isolate, about 4 MB of RSS that TCP mode has no use for.
 */
function samePems(a: ReadonlyMap<string, TenantPem>, b: ReadonlyMap<string, TenantPem>): boolean {
  if (a.size !== b.size) return false;
  for (const [host, pem] of a) {
    const other = b.get(host);
    if (other?.cert !== pem.cert || other.key !== pem.key) return false;
  }
  return true;
}

/**
 * The tenant configuration's module, loaded in l7 mode only: it brings Automerge, whose WebAssembly instance
 * holds about 16 MB of RSS that a tcp node would carry idle (bench/tcp rss, 2 threads: 111 MB with it).
 */
type TenantsModule = typeof import('./tenants.ts');
type SynProxyModule = typeof import('../actors/syn-proxy.ts');

export async function l7SettingsFor(options: NodeOptions): Promise<L7SettingsSource | null> {
  if (options.config.server.mode !== 'l7') return null;
  const { L7SettingsSource } = await import('./l7-settings.ts');
  return L7SettingsSource.load(options.config, options.source.cwd ?? process.cwd());
}
