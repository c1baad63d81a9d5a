// OTP-style supervision. A Supervisor starts children in order, watches them exit, and restarts them by
// strategy (one_for_one, one_for_all, rest_for_one) and restart type (permanent, transient, temporary),
// with a restart intensity (at most maxRestarts within periodMs, else it stops everything and escalates)
// and exponential backoff between restarts. Children are anything with start/stop: actors, worker threads,
// nested supervisors. Time comes from the injected Clock so tests never sleep.
// Semantics follow Erlang/OTP's supervisor (erlang.org/doc/system/sup_princ.html).
import { SecbeatError, toErrorData, type ErrorData } from '../errors.ts';
import type { Clock } from './clock.ts';

export const RESTART_STRATEGIES = ['one_for_one', 'one_for_all', 'rest_for_one'] as const;
export type RestartStrategy = (typeof RESTART_STRATEGIES)[number];

export const RESTART_TYPES = ['permanent', 'transient', 'temporary'] as const;
export type RestartType = (typeof RESTART_TYPES)[number];

/** Why a child ended. `shutdown` is an ordered stop; only `crash` is abnormal. */
export type ExitReason = { kind: 'normal' } | { kind: 'shutdown' } | { kind: 'crash'; error: ErrorData };

export interface ChildHandle {
  /** Ordered stop. The child must not report an exit for it. */
  stop(): Promise<void>;
}

export interface ChildSpec {
  id: string;
  restart: RestartType;
  /** Starts the child. `exited` is called at most once, when the child ends on its own. A rejection is a crash. */
  start(exited: (reason: ExitReason) => void): Promise<ChildHandle>;
}

export interface SupervisorOptions {
  name: string;
  strategy: RestartStrategy;
  /** More than maxRestarts restarts within periodMs ⇒ stop all children and escalate. */
  maxRestarts: number;
  periodMs: number;
  /** Delay before the n-th restart inside the period: min(maxMs, initialMs · 2^(n-1)). */
  backoffInitialMs: number;
  backoffMaxMs: number;
  clock: Clock;
  onEvent?: (event: SupervisorEvent) => void;
}

export type SupervisorEvent =
  | { kind: 'child.exited'; supervisor: string; child: string; reason: ExitReason }
  | { kind: 'child.restarting'; supervisor: string; child: string; delayMs: number }
  | { kind: 'child.started'; supervisor: string; child: string; restarts: number }
  | { kind: 'escalated'; supervisor: string; child: string; reason: ExitReason };

export const CHILD_STATES = ['starting', 'running', 'restarting', 'stopped'] as const;
export type ChildState = (typeof CHILD_STATES)[number];

export interface ChildInfo {
  id: string;
  state: ChildState;
  restarts: number;
  restart: RestartType;
}

interface Child {
  spec: ChildSpec;
  handle: ChildHandle | null;
  state: ChildState;
  restarts: number;
  /** Bumped whenever the supervisor stops or restarts the child, so stale exit reports are ignored. */
  generation: number;
}

export class Supervisor {
  readonly options: SupervisorOptions;
  #children: Child[] = [];
  #restartTimes: number[] = [];
  #exited: (reason: ExitReason) => void = () => {};
  #status: 'idle' | 'running' | 'stopping' | 'stopped' | 'escalated' = 'idle';

  constructor(options: SupervisorOptions, children: readonly ChildSpec[] = []) {
    this.options = options;
    for (const spec of children) this.#add(spec);
  }

  get status(): 'idle' | 'running' | 'stopping' | 'stopped' | 'escalated' {
    return this.#status;
  }

  /** Starts every child in order. If one fails to start, the ones already started are stopped and it throws. */
  async start(exited?: (reason: ExitReason) => void): Promise<void> {
    if (exited) this.#exited = exited;
    this.#status = 'running';
    for (const child of this.#children) {
      try {
        await this.#startChild(child);
      } catch (err) {
        await this.#stopAll();
        this.#status = 'stopped';
        throw new SecbeatError('SECBEAT_ERR_SUPERVISOR_ESCALATED', `${this.options.name}: child ${child.spec.id} failed to start`, {
          cause: err,
        });
      }
    }
  }

  /** Stops every child in reverse start order. */
  async stop(): Promise<void> {
    if (this.#status === 'stopped' || this.#status === 'escalated') return;
    this.#status = 'stopping';
    await this.#stopAll();
    this.#status = 'stopped';
  }

  /** This supervisor as a child of another one; its escalation is that child's crash. */
  asChild(restart: RestartType = 'permanent'): ChildSpec {
    return {
      id: this.options.name,
      restart,
      start: async (exited) => {
        this.#restartTimes = [];
        await this.start(exited);
        return { stop: () => this.stop() };
      },
    };
  }

  /** Adds and starts a child at run time (it goes last in start order). */
  async startChild(spec: ChildSpec): Promise<void> {
    if (this.#children.some((c) => c.spec.id === spec.id)) {
      throw new SecbeatError('SECBEAT_ERR_ACTOR_EXISTS', `${this.options.name} already has a child ${spec.id}`);
    }
    const child = this.#add(spec);
    if (this.#status === 'running') await this.#startChild(child);
  }

  /** Operator-requested restart (ctl): restarts that child only, outside the intensity count. */
  async restartChild(id: string): Promise<void> {
    const child = this.#find(id);
    await this.#stopChild(child);
    await this.#startChild(child);
  }

  /** Operator-requested stop: the child stays listed as stopped until restarted. */
  async terminateChild(id: string): Promise<void> {
    await this.#stopChild(this.#find(id));
  }

  children(): ChildInfo[] {
    return this.#children.map((c) => ({ id: c.spec.id, state: c.state, restarts: c.restarts, restart: c.spec.restart }));
  }

  #add(spec: ChildSpec): Child {
    const child: Child = { spec, handle: null, state: 'stopped', restarts: 0, generation: 0 };
    this.#children.push(child);
    return child;
  }

  #find(id: string): Child {
    const child = this.#children.find((c) => c.spec.id === id);
    if (!child) throw new SecbeatError('SECBEAT_ERR_ACTOR_NOT_FOUND', `${this.options.name} has no child ${id}`);
    return child;
  }

  async #startChild(child: Child): Promise<void> {
    const generation = ++child.generation;
    child.state = 'starting';
    const handle = await child.spec.start((reason) => this.#onExit(child, generation, reason));
    if (generation !== child.generation) {
      // Stopped or restarted while it was starting: stop this stale instance.
      await handle.stop();
      return;
    }
    child.handle = handle;
    child.state = 'running';
    this.options.onEvent?.({ kind: 'child.started', supervisor: this.options.name, child: child.spec.id, restarts: child.restarts });
  }

  async #stopChild(child: Child): Promise<void> {
    child.generation++;
    const handle = child.handle;
    child.handle = null;
    child.state = 'stopped';
    if (handle) await handle.stop();
  }

  async #stopAll(): Promise<void> {
    for (const child of [...this.#children].reverse()) await this.#stopChild(child);
  }

  #onExit(child: Child, generation: number, reason: ExitReason): void {
    if (generation !== child.generation || this.#status !== 'running') return;
    child.generation++;
    child.handle = null;
    child.state = 'stopped';
    this.options.onEvent?.({ kind: 'child.exited', supervisor: this.options.name, child: child.spec.id, reason });

    const restart = child.spec.restart === 'permanent' || (child.spec.restart === 'transient' && reason.kind === 'crash');
    if (!restart) {
      if (child.spec.restart === 'temporary') this.#children.splice(this.#children.indexOf(child), 1);
      return;
    }

    const now = this.options.clock.now();
    this.#restartTimes = this.#restartTimes.filter((t) => now - t < this.options.periodMs);
    this.#restartTimes.push(now);
    if (this.#restartTimes.length > this.options.maxRestarts) {
      void this.#escalate(child, reason);
      return;
    }

    const index = this.#children.indexOf(child);
    const affected =
      this.options.strategy === 'one_for_one'
        ? [child]
        : this.options.strategy === 'one_for_all'
          ? [...this.#children]
          : this.#children.slice(index);
    const delayMs = Math.min(this.options.backoffMaxMs, this.options.backoffInitialMs * 2 ** (this.#restartTimes.length - 1));
    void this.#restart(affected, delayMs);
  }

  async #restart(affected: Child[], delayMs: number): Promise<void> {
    // Siblings stop in reverse start order, as OTP does, before anyone starts again.
    for (const sibling of [...affected].reverse()) {
      if (sibling.handle) await this.#stopChild(sibling);
    }
    const generations = affected.map((c) => {
      c.state = 'restarting';
      this.options.onEvent?.({ kind: 'child.restarting', supervisor: this.options.name, child: c.spec.id, delayMs });
      return ++c.generation;
    });
    this.options.clock.setTimeout(() => {
      void (async () => {
        for (const [i, c] of affected.entries()) {
          // Skip children an operator stopped, or another restart took over, during the backoff.
          if (this.#status !== 'running' || c.generation !== generations[i] || !this.#children.includes(c)) continue;
          c.restarts++;
          const startGeneration = c.generation;
          try {
            await this.#startChild(c);
          } catch (err) {
            // A failed restart counts as another crash of that child (and towards the intensity).
            this.#onExit(c, startGeneration + 1, { kind: 'crash', error: toErrorData(err) });
          }
        }
      })();
    }, delayMs);
  }

  async #escalate(child: Child, reason: ExitReason): Promise<void> {
    this.options.onEvent?.({ kind: 'escalated', supervisor: this.options.name, child: child.spec.id, reason });
    this.#status = 'stopping';
    await this.#stopAll();
    this.#status = 'escalated';
    const cause = reason.kind === 'crash' ? `: ${reason.error.code} ${reason.error.message}` : '';
    this.#exited({
      kind: 'crash',
      error: {
        code: 'SECBEAT_ERR_SUPERVISOR_ESCALATED',
        message: `${this.options.name}: more than ${this.options.maxRestarts} restarts in ${this.options.periodMs} ms (last: ${child.spec.id}${cause})`,
      },
    });
  }
}
