// The main thread's side of a worker thread: starts the Worker with its boot data, relays deliveries in
// batches over the worker's port, answers control requests, and watches it. A worker that crashes, exits
// or misses heartbeats is reported to its supervisor as a crash, which restarts it with its actors.
import { setFlagsFromString } from 'node:v8';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { SecbeatError, fromErrorData } from '../errors.ts';
import type { ChaosRule, Delivery, MainToThread, ThreadControl, ThreadInfo, ThreadStatus, ThreadToMain } from '../messages.ts';
import type { LogSettings, Logger } from '../telemetry/log.ts';
import { metrics } from '../telemetry/metrics.ts';
import type { Clock, TimerHandle } from './clock.ts';
import type { ChildSpec, ExitReason, RestartType } from './supervisor.ts';
import type { ActorSystem } from './system.ts';
import { PortBatcher } from './transport.ts';

/**
 * bin/secbeat sizes the main isolate's young generation with --max-semi-space-size, the only way Node offers,
 * and V8 lets a set flag win over a Worker's resourceLimits: every thread would get the main thread's 1 MiB
 * semi-spaces, L7 threads too (src/node/node.ts gives them 4 MiB, 16 MiB with the WAF on).
 * The flag is read when an isolate's heap is set up, so clearing it once the main isolate is running leaves
 * the main isolate as it is and gives each later thread its own limits.
 */
function releaseYoungGenerationFlag(): void {
  setFlagsFromString('--max-semi-space-size=0');
}

export interface RuntimeSettings {
  mailboxCapacity: number;
  askTimeoutMs: number;
  deadLetterCapacity: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  maxRestarts: number;
  restartPeriodMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
}

export interface ThreadActorSpec {
  name: string;
  /** Key in the behaviours table exported by `behaviorsModule`. */
  behavior: string;
  /** Structured-clone-safe (SharedArrayBuffer and BlockList included). */
  input: unknown;
  restart: RestartType;
}

/** Everything a worker needs to build its actor system; rebuilt at every (re)start. */
export interface ThreadBoot {
  region: string;
  node: string;
  thread: string;
  index: number;
  /** URL of a module exporting `behaviors: Record<string, AnyBehavior>` (keeps the runtime free of domain imports). */
  behaviorsModule: string;
  actors: ThreadActorSpec[];
  runtime: RuntimeSettings;
  log: LogSettings;
  chaos: { enabled: boolean; rules: ChaosRule[] };
}

export interface WorkerThreadOptions {
  name: string;
  boot: () => ThreadBoot;
  system: ActorSystem;
  clock: Clock;
  log: Logger;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  /** Called before each restart (not the first start), e.g. to release shared counters a dead instance left behind. */
  beforeRestart?: () => void;
  /** V8 heap limits of the thread's isolate; V8 sizes it by itself when absent. */
  resourceLimits?: ResourceLimits;
}

export const THREAD_ENTRY = new URL('./thread-entry.ts', import.meta.url);

type RestartCause = 'crash' | 'exit' | 'heartbeat' | 'escalate' | 'start_timeout';

export class WorkerThread {
  readonly name: string;
  readonly #o: WorkerThreadOptions;
  #worker: Worker | null = null;
  #batcher: PortBatcher<Delivery> | null = null;
  #status: ThreadStatus = 'stopped';
  #starts = 0;
  #lastHeartbeat: number | null = null;
  #heartbeatTimer: TimerHandle | null = null;
  #actors = 0;
  #controls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: TimerHandle }>();
  #nextControl = 1;

  constructor(options: WorkerThreadOptions) {
    this.name = options.name;
    this.#o = options;
  }

  child(restart: RestartType = 'permanent'): ChildSpec {
    return { id: this.name, restart, start: (exited) => this.#start(exited) };
  }

  info(): ThreadInfo {
    return {
      thread: this.name,
      status: this.#status,
      restarts: Math.max(0, this.#starts - 1),
      threadId: this.#worker?.threadId ?? null,
      lastHeartbeatAgoMs: this.#lastHeartbeat === null ? null : this.#o.clock.now() - this.#lastHeartbeat,
      actors: this.#actors,
    };
  }

  /** Queues a delivery for this thread; false while it is not running (the caller dead-letters it). */
  send(delivery: Delivery): boolean {
    if (this.#status !== 'running' || !this.#batcher) return false;
    this.#batcher.push(delivery);
    return true;
  }

  /** Kills the thread abruptly (chaos testing): its supervisor sees an abnormal exit and restarts it. */
  async terminate(): Promise<void> {
    const worker = this.#worker;
    if (!worker) throw new SecbeatError('SECBEAT_ERR_THREAD_UNAVAILABLE', `thread ${this.name} is ${this.#status}`);
    await worker.terminate();
  }

  control(control: ThreadControl, timeoutMs: number): Promise<unknown> {
    const worker = this.#worker;
    if (!worker || this.#status !== 'running') {
      return Promise.reject(new SecbeatError('SECBEAT_ERR_THREAD_UNAVAILABLE', `thread ${this.name} is ${this.#status}`));
    }
    const id = this.#nextControl++;
    return new Promise((resolve, reject) => {
      const timer = this.#o.clock.setTimeout(() => {
        this.#controls.delete(id);
        reject(new SecbeatError('SECBEAT_ERR_ASK_TIMEOUT', `thread ${this.name} did not answer ${control.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#controls.set(id, { resolve, reject, timer });
      worker.postMessage({ kind: 'control', id, control } satisfies MainToThread);
    });
  }

  #start(exited: (reason: ExitReason) => void): Promise<{ stop: () => Promise<void> }> {
    if (this.#starts > 0) this.#o.beforeRestart?.();
    this.#starts++;
    this.#status = this.#starts > 1 ? 'restarting' : 'starting';
    const boot = this.#o.boot();
    releaseYoungGenerationFlag();
    const worker = new Worker(THREAD_ENTRY, { workerData: boot, name: `secbeat-${this.name}`, resourceLimits: this.#o.resourceLimits });
    this.#worker = worker;
    this.#batcher = new PortBatcher<Delivery>(worker, (batch) => ({ kind: 'deliveries', batch }) satisfies MainToThread);
    let stopping = false;
    let settled = false;

    return new Promise((resolve, reject) => {
      const fail = (cause: RestartCause, message: string): void => {
        if (stopping) return;
        stopping = true;
        this.#teardown(worker);
        void worker.terminate();
        this.#status = 'failed';
        const error = new SecbeatError('SECBEAT_ERR_THREAD_UNAVAILABLE', `thread ${this.name}: ${message}`);
        this.#o.log.error({ thread: this.name, cause }, `worker thread failed: ${message}`);
        metrics().threadRestarts.inc({ cause });
        if (!settled) {
          settled = true;
          reject(error);
        } else {
          exited({ kind: 'crash', error: error.toData() });
        }
      };
      const startTimer = this.#o.clock.setTimeout(() => fail('start_timeout', `not ready within ${this.#o.startTimeoutMs} ms`), this.#o.startTimeoutMs);

      worker.on('message', (m: ThreadToMain) => {
        switch (m.kind) {
          case 'ready':
            this.#o.clock.clearTimeout(startTimer);
            this.#actors = m.actors.length;
            this.#status = 'running';
            this.#lastHeartbeat = this.#o.clock.now();
            this.#watchHeartbeat(boot.runtime, (silentMs) => fail('heartbeat', `no heartbeat for ${silentMs} ms`));
            settled = true;
            resolve({
              stop: async () => {
                stopping = true;
                await this.#stopWorker(worker);
              },
            });
            return;
          case 'heartbeat':
            this.#lastHeartbeat = this.#o.clock.now();
            return;
          case 'deliveries':
            for (const d of m.batch) this.#o.system.receive(d);
            return;
          case 'control.reply': {
            const pending = this.#controls.get(m.id);
            if (!pending) return;
            this.#controls.delete(m.id);
            this.#o.clock.clearTimeout(pending.timer);
            if (m.outcome.ok) pending.resolve(m.outcome.value);
            else pending.reject(fromErrorData(m.outcome.error));
            return;
          }
          case 'escalate':
            this.#o.clock.clearTimeout(startTimer);
            fail('escalate', `root supervisor escalated: ${m.error.message}`);
            return;
        }
      });
      worker.on('error', (err) => {
        this.#o.clock.clearTimeout(startTimer);
        fail('crash', `uncaught ${err.name}: ${err.message}`);
      });
      worker.on('exit', (code) => {
        this.#o.clock.clearTimeout(startTimer);
        if (stopping) this.#teardown(worker);
        else fail('exit', `exited with code ${code}`);
      });
    });
  }

  #watchHeartbeat(
    { heartbeatIntervalMs, heartbeatTimeoutMs }: RuntimeSettings,
    onMissed: (silentMs: number) => void,
  ): void {
    const arm = (delayMs: number): void => {
      const due = this.#o.clock.now() + delayMs;
      this.#heartbeatTimer = this.#o.clock.setTimeout(() => check(due), delayMs);
    };
    const check = (due: number): void => {
      if (this.#status !== 'running') return;
      const now = this.#o.clock.now();
      // This timer fired late: the main thread itself was held up (a large sync, a bulk upload), and the
      // heartbeats the worker sent meanwhile still wait in the port, read after timers. Judge next turn.
      if (now - due > heartbeatIntervalMs) return arm(0);
      const silentMs = now - (this.#lastHeartbeat ?? now);
      if (silentMs > heartbeatTimeoutMs) return onMissed(silentMs);
      arm(heartbeatIntervalMs);
    };
    arm(heartbeatIntervalMs);
  }

  async #stopWorker(worker: Worker): Promise<void> {
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    try {
      await this.control({ op: 'stop', reason: 'shutdown' }, this.#o.stopTimeoutMs);
    } catch {
      // Unresponsive: terminate below.
    }
    const timer = this.#o.clock.setTimeout(() => void worker.terminate(), this.#o.stopTimeoutMs);
    await exited;
    this.#o.clock.clearTimeout(timer);
    this.#teardown(worker);
    this.#status = 'stopped';
  }

  /**
   * Forgets `worker`'s timers, port and pending controls. A no-op once a newer instance has replaced it:
   * a terminated worker's 'exit' can arrive after its supervisor already started the next one.
   */
  #teardown(worker: Worker): void {
    if (this.#worker !== worker) return;
    if (this.#heartbeatTimer) this.#o.clock.clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = null;
    this.#batcher = null;
    this.#worker = null;
    for (const [id, pending] of this.#controls) {
      this.#o.clock.clearTimeout(pending.timer);
      pending.reject(new SecbeatError('SECBEAT_ERR_THREAD_UNAVAILABLE', `thread ${this.name} went away`));
      this.#controls.delete(id);
    }
  }
}
