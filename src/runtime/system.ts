// One ActorSystem per thread: the registry of its actors, local delivery into bounded mailboxes, asks with
// deadlines, dead letters, and routing of everything else to the thread transport (other threads of this
// node) or the node transport (other nodes, over NATS). Chaos rules sit here, in the delivery path.
import { SecbeatError, fromErrorData, toErrorData, type ErrorData } from '../errors.ts';
import { ASK_ACTOR, formatAddress } from '../address.ts';
import type {
  ActorInfo,
  ActorStatus,
  Address,
  ChaosRule,
  DeadLetterReason,
  Delivery,
  Envelope,
  ReplyEnvelope,
} from '../messages.ts';
import { childLogger, type Logger } from '../telemetry/log.ts';
import { beforeCollect, metrics } from '../telemetry/metrics.ts';
import type { ActorContext, AnyBehavior, Message, ReplyOf } from './actor.ts';
import { ChaosFilter } from './chaos.ts';
import type { Clock, TimerHandle } from './clock.ts';
import { DeadLetters } from './dead-letters.ts';
import { Mailbox, type OverflowPolicy } from './mailbox.ts';
import type { ChildSpec, ExitReason, RestartType, Supervisor } from './supervisor.ts';
import { deliveryTarget, type NodeTransport } from './transport.ts';

export interface SystemOptions {
  region: string;
  node: string;
  thread: string;
  clock: Clock;
  mailboxCapacity: number;
  askTimeoutMs: number;
  deadLetterCapacity: number;
  chaosEnabled: boolean;
}

export interface MailboxOptions {
  capacity?: number;
  overflow?: OverflowPolicy;
}

/** Delivers to another thread of this node; false when that thread cannot take it now. */
export type ThreadTransport = (thread: string, delivery: Delivery) => boolean;

type CellItem = { kind: 'msg'; envelope: Envelope<Message> } | { kind: 'crash'; ruleId: string };

interface PendingAsk {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: TimerHandle;
}

export class ActorSystem {
  readonly options: SystemOptions;
  readonly here: Address;
  readonly log: Logger;
  readonly deadLetters: DeadLetters;
  readonly chaos: ChaosFilter;
  #cells = new Map<string, ActorCell>();
  #supervisors: Supervisor[] = [];
  #asks = new Map<number, PendingAsk>();
  #nextAskId = 1;
  #threadTransport: ThreadTransport | null = null;
  #nodeTransport: NodeTransport | null = null;

  constructor(options: SystemOptions) {
    this.options = options;
    this.here = { region: options.region, node: options.node, thread: options.thread, actor: ASK_ACTOR };
    this.log = childLogger({ thread: options.thread });
    this.deadLetters = new DeadLetters(options.deadLetterCapacity, (reason) => metrics().deadLetters.inc({ reason }));
    this.chaos = new ChaosFilter(
      options.clock,
      {
        deliver: (e) => this.#routeUnfiltered({ kind: 'msg', envelope: e }),
        drop: (e) => this.#deadLetter(e, 'chaos_drop'),
        crash: (e, ruleId) => this.#routeUnfiltered({ kind: 'crash', to: e.to, ruleId }),
        injected: (action) => metrics().chaosInjected.inc({ action }),
      },
      options.chaosEnabled,
    );
    beforeCollect(() => this.updateGauges());
  }

  address(actor: string, thread: string = this.options.thread): Address {
    return { region: this.options.region, node: this.options.node, thread, actor };
  }

  setThreadTransport(transport: ThreadTransport | null): void {
    this.#threadTransport = transport;
  }

  setNodeTransport(transport: NodeTransport | null): void {
    this.#nodeTransport = transport;
  }

  setChaosRules(rules: readonly ChaosRule[], enabled: boolean): void {
    this.chaos.setRules(rules, enabled);
  }

  // -------------------------------------------------------------------------------------------------------
  // Sending

  tell<T extends Message>(to: Address, msg: T, from: Address | null = null): void {
    this.#route({ to, from, msg });
  }

  ask<T extends Message>(to: Address, msg: T, timeoutMs: number = this.options.askTimeoutMs, from: Address | null = null): Promise<ReplyOf<T>> {
    const askId = this.#nextAskId++;
    return new Promise<ReplyOf<T>>((resolve, reject) => {
      const timer = this.options.clock.setTimeout(() => {
        this.#asks.delete(askId);
        reject(new SecbeatError('SECBEAT_ERR_ASK_TIMEOUT', `no reply from ${formatAddress(to)} to ${msg.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#asks.set(askId, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.#route({ to, from, msg, askId, replyTo: this.here });
    });
  }

  /**
   * Entry point for deliveries that arrived from another thread or node. Chaos was applied where they were
   * sent; the main thread relays deliveries between workers through here.
   */
  receive(delivery: Delivery): void {
    this.#routeUnfiltered(delivery);
  }

  #route(envelope: Envelope<Message>): void {
    if (this.chaos.enabled) {
      this.chaos.apply(envelope as Envelope, formatAddress(envelope.to), envelope.from ? formatAddress(envelope.from) : null);
    } else {
      this.#routeUnfiltered({ kind: 'msg', envelope: envelope as Envelope });
    }
  }

  #routeUnfiltered(delivery: Delivery): void {
    const to = deliveryTarget(delivery);
    if (to.region !== this.options.region || to.node !== this.options.node) {
      if (this.#nodeTransport?.send(delivery)) return;
      return this.#undeliverable(delivery, 'no_transport');
    }
    if (to.thread !== this.options.thread) {
      if (this.#threadTransport?.(to.thread, delivery)) return;
      return this.#undeliverable(delivery, 'thread_unavailable');
    }
    switch (delivery.kind) {
      case 'reply':
        return this.#settleAsk(delivery.reply);
      case 'crash': {
        const cell = this.#cells.get(to.actor);
        if (cell) cell.enqueue({ kind: 'crash', ruleId: delivery.ruleId });
        return;
      }
      case 'msg': {
        const cell = this.#cells.get(to.actor);
        if (!cell) return this.#undeliverable(delivery, 'no_such_actor');
        const env = delivery.envelope as Envelope<Message>;
        if (cell.status === 'stopped') return this.#undeliverable(delivery, 'actor_stopped');
        if (!cell.enqueue({ kind: 'msg', envelope: env })) return this.#undeliverable(delivery, 'mailbox_full');
        return;
      }
    }
  }

  /** Records a dead letter and fails a waiting ask at once instead of letting it time out. */
  #undeliverable(delivery: Delivery, reason: DeadLetterReason): void {
    if (delivery.kind === 'reply') return; // the asker is gone or unreachable; nothing waits for this
    if (delivery.kind === 'crash') return;
    this.#deadLetter(delivery.envelope, reason);
  }

  #deadLetter(envelope: Envelope, reason: DeadLetterReason): void {
    this.deadLetters.record({
      at: this.options.clock.now(),
      reason,
      to: formatAddress(envelope.to),
      from: envelope.from ? formatAddress(envelope.from) : null,
      type: envelope.msg.type,
    });
    if (envelope.askId !== undefined && envelope.replyTo) {
      const error: ErrorData = {
        code: reason === 'mailbox_full' ? 'SECBEAT_ERR_MAILBOX_FULL' : reason === 'no_such_actor' ? 'SECBEAT_ERR_ACTOR_NOT_FOUND' : reason === 'actor_stopped' ? 'SECBEAT_ERR_ACTOR_STOPPED' : reason === 'chaos_drop' ? 'SECBEAT_ERR_ASK_TIMEOUT' : 'SECBEAT_ERR_TRANSPORT_UNAVAILABLE',
        message: `${envelope.msg.type} to ${formatAddress(envelope.to)} not delivered: ${reason}`,
      };
      // A chaos drop must look like loss to the asker, so it is left to time out.
      if (reason !== 'chaos_drop') this.replyTo(envelope, { ok: false, error });
    }
  }

  /** Sends the outcome of an ask back to whoever asked. */
  replyTo(envelope: Envelope<Message>, outcome: ReplyEnvelope['outcome']): void {
    if (envelope.askId === undefined || !envelope.replyTo) return;
    this.#routeUnfiltered({ kind: 'reply', reply: { to: envelope.replyTo, askId: envelope.askId, outcome } });
  }

  #settleAsk(reply: ReplyEnvelope): void {
    const pending = this.#asks.get(reply.askId);
    if (!pending) return; // late reply after a timeout
    this.#asks.delete(reply.askId);
    this.options.clock.clearTimeout(pending.timer);
    if (reply.outcome.ok) pending.resolve(reply.outcome.value);
    else pending.reject(fromErrorData(reply.outcome.error));
  }

  // -------------------------------------------------------------------------------------------------------
  // Actors

  /**
   * A child spec that runs `behavior` as actor `name` on this system. The mailbox survives restarts so
   * messages queued while the actor restarts are not lost.
   */
  actorChild(spec: { name: string; behavior: AnyBehavior; input?: unknown; restart?: RestartType; mailbox?: MailboxOptions }): ChildSpec {
    return {
      id: spec.name,
      restart: spec.restart ?? 'permanent',
      start: async (exited) => {
        let cell = this.#cells.get(spec.name);
        if (!cell) {
          cell = new ActorCell(this, this.address(spec.name), spec.behavior, spec.input, spec.mailbox ?? {});
          this.#cells.set(spec.name, cell);
        }
        await cell.start(exited);
        const started = cell;
        return { stop: () => started.stop() };
      },
    };
  }

  /** Supervisors whose children include actors of this system, for operator restarts/stops by name. */
  registerSupervisor(supervisor: Supervisor): void {
    this.#supervisors.push(supervisor);
  }

  #supervisorOf(actor: string): Supervisor {
    const sup = this.#supervisors.find((s) => s.children().some((c) => c.id === actor));
    if (!sup) throw new SecbeatError('SECBEAT_ERR_ACTOR_NOT_FOUND', `no actor ${actor} on thread ${this.options.thread}`);
    return sup;
  }

  #cell(actor: string): ActorCell {
    const cell = this.#cells.get(actor);
    if (!cell) throw new SecbeatError('SECBEAT_ERR_ACTOR_NOT_FOUND', `no actor ${actor} on thread ${this.options.thread}`);
    return cell;
  }

  async restartActor(actor: string): Promise<void> {
    this.#cell(actor);
    await this.#supervisorOf(actor).restartChild(actor);
  }

  async stopActor(actor: string): Promise<void> {
    this.#cell(actor);
    await this.#supervisorOf(actor).terminateChild(actor);
  }

  suspendActor(actor: string): void {
    this.#cell(actor).suspend();
  }

  resumeActor(actor: string): void {
    this.#cell(actor).resume();
  }

  actors(): ActorInfo[] {
    return [...this.#cells.values()].map((c) => c.info());
  }

  /** Refreshes gauges that are read, not counted (a collect hook: runs before each scrape). */
  updateGauges(): void {
    const depth = new Map<string, number>();
    for (const c of this.#cells.values()) depth.set(c.behavior.name, (depth.get(c.behavior.name) ?? 0) + c.depth);
    for (const [actor, value] of depth) metrics().mailboxDepth.set({ actor }, value);
  }

  /** Fails every pending ask (thread shutting down). */
  failPendingAsks(error: ErrorData): void {
    for (const [id, pending] of this.#asks) {
      this.options.clock.clearTimeout(pending.timer);
      pending.reject(fromErrorData(error));
      this.#asks.delete(id);
    }
  }
}

/** One actor instance: mailbox, state, status and counters; processes one message at a time. */
class ActorCell {
  readonly system: ActorSystem;
  readonly address: Address;
  readonly addressText: string;
  readonly behavior: AnyBehavior;
  readonly input: unknown;
  readonly mailbox: Mailbox<CellItem>;
  readonly log: Logger;
  status: ActorStatus = 'starting';
  processed = 0;
  dropped = 0;
  restarts = 0;
  lastError: ErrorData | null = null;
  #state: unknown = undefined;
  #exited: ((reason: ExitReason) => void) | null = null;
  #pumping = false;
  #timers = new Set<TimerHandle>();
  #current: Envelope<Message> | null = null;
  #replied = false;
  #stopRequested = false;
  #started = false;
  #idle: Promise<void> = Promise.resolve();
  #ctx: ActorContext<Message>;

  constructor(system: ActorSystem, address: Address, behavior: AnyBehavior, input: unknown, mailbox: MailboxOptions) {
    this.system = system;
    this.address = address;
    this.addressText = formatAddress(address);
    this.behavior = behavior;
    this.input = input;
    this.mailbox = new Mailbox(mailbox.capacity ?? system.options.mailboxCapacity, mailbox.overflow ?? 'drop_newest');
    this.log = childLogger({ actor: this.addressText });
    this.#ctx = this.#makeContext();
  }

  get depth(): number {
    return this.mailbox.size;
  }

  info(): ActorInfo {
    return {
      address: this.addressText,
      behavior: this.behavior.name,
      status: this.status,
      mailboxDepth: this.mailbox.size,
      mailboxCapacity: this.mailbox.capacity,
      processed: this.processed,
      dropped: this.dropped,
      restarts: this.restarts,
      lastError: this.lastError,
    };
  }

  /** Queues an item; false when the mailbox refused it (the caller dead-letters it). */
  enqueue(item: CellItem): boolean {
    const outcome = this.mailbox.push(item);
    if (outcome.kind !== 'queued') {
      this.dropped++;
      metrics().mailboxDropped.inc({ actor: this.behavior.name });
      if (outcome.kind === 'rejected') return false;
      if (outcome.evicted.kind === 'msg') {
        this.system.deadLetters.record({
          at: this.system.options.clock.now(),
          reason: 'mailbox_full',
          to: this.addressText,
          from: outcome.evicted.envelope.from ? formatAddress(outcome.evicted.envelope.from) : null,
          type: outcome.evicted.envelope.msg.type,
        });
      }
    }
    this.#pump();
    return true;
  }

  async start(exited: (reason: ExitReason) => void): Promise<void> {
    await this.#idle;
    if (this.#started) {
      this.restarts++;
      metrics().actorRestarts.inc({ actor: this.behavior.name });
    }
    this.#started = true;
    this.#exited = exited;
    this.#stopRequested = false;
    this.status = 'starting';
    try {
      this.#state = await this.behavior.init(this.#ctx, this.input);
    } catch (err) {
      this.status = 'failed';
      this.lastError = toErrorData(err);
      throw err;
    }
    this.status = 'running';
    this.#pump();
  }

  async stop(): Promise<void> {
    this.#exited = null;
    const wasLive = this.status === 'running' || this.status === 'suspended';
    this.status = 'stopped';
    this.#clearTimers();
    await this.#idle;
    if (wasLive && this.behavior.stop) {
      try {
        await this.behavior.stop(this.#state, this.#ctx);
      } catch (err) {
        this.log.error({ err }, 'actor stop failed');
      }
    }
  }

  suspend(): void {
    if (this.status === 'running') this.status = 'suspended';
  }

  resume(): void {
    if (this.status === 'suspended') {
      this.status = 'running';
      this.#pump();
    }
  }

  #pump(): void {
    if (this.#pumping || this.status !== 'running' || this.mailbox.size === 0) return;
    this.#pumping = true;
    this.#idle = this.#drain();
  }

  async #drain(): Promise<void> {
    // Yield once so a burst of tells from one caller is processed after the caller's synchronous work.
    await Promise.resolve();
    try {
      while (this.status === 'running') {
        const item = this.mailbox.shift();
        if (item === undefined) return;
        if (item.kind === 'crash') {
          this.#crash(new SecbeatError('SECBEAT_ERR_CHAOS_CRASH', `crash injected by chaos rule ${item.ruleId}`), null);
          return;
        }
        const env = item.envelope;
        if (env.msg.type === 'sys.ping') {
          this.system.replyTo(env, { ok: true, value: 'pong' });
          this.processed++;
          continue;
        }
        this.#current = env;
        this.#replied = false;
        try {
          const next = this.behavior.receive(this.#state, env.msg, this.#ctx);
          this.#state = next instanceof Promise ? await next : next;
        } catch (err) {
          this.#current = null;
          this.#crash(err, env);
          return;
        }
        this.#current = null;
        this.processed++;
        metrics().messagesProcessed.inc({ actor: this.behavior.name });
        if (env.askId !== undefined && !this.#replied) {
          this.system.replyTo(env, {
            ok: false,
            error: { code: 'SECBEAT_ERR_MESSAGE_INVALID', message: `${this.behavior.name} does not answer ${env.msg.type}` },
          });
        }
        if (this.#stopRequested) {
          this.#exit({ kind: 'normal' });
          return;
        }
      }
    } finally {
      // Cleared in the same synchronous step as the loop's last empty check: a message queued by a
      // continuation that runs before this promise settles (an asker resumed by our reply) must find the
      // pump idle and start it again.
      this.#pumping = false;
    }
  }

  #crash(err: unknown, env: Envelope<Message> | null): void {
    const error = toErrorData(err);
    this.lastError = error;
    this.status = 'failed';
    this.#clearTimers();
    this.log.error({ err, msgType: env?.msg.type ?? null }, 'actor crashed');
    if (env) this.system.replyTo(env, { ok: false, error });
    this.#exit({ kind: 'crash', error });
  }

  #exit(reason: ExitReason): void {
    if (reason.kind !== 'crash') this.status = 'stopped';
    this.#clearTimers();
    const exited = this.#exited;
    this.#exited = null;
    // Let behaviour.stop-free exits release resources too: a crashed actor's stop hook still runs.
    if (this.behavior.stop) {
      const state = this.#state;
      void Promise.resolve()
        .then(() => this.behavior.stop?.(state, this.#ctx))
        .catch((e: unknown) => this.log.error({ err: e }, 'actor stop failed'))
        .finally(() => exited?.(reason));
    } else {
      exited?.(reason);
    }
  }

  #clearTimers(): void {
    for (const t of this.#timers) this.system.options.clock.clearTimeout(t);
    this.#timers.clear();
  }

  #makeContext(): ActorContext<Message> {
    const system = this.system;
    const self = this.address;
    return {
      self,
      log: this.log,
      clock: system.options.clock,
      tell: (to, msg) => system.tell(to, msg, self),
      ask: (to, msg, timeoutMs) => system.ask(to, msg, timeoutMs, self),
      reply: (value) => {
        const env = this.#current;
        if (!env || this.#replied) return;
        this.#replied = true;
        system.replyTo(env, { ok: true, value });
      },
      schedule: (ms, msg) => {
        const handle = system.options.clock.setTimeout(() => {
          this.#timers.delete(handle);
          system.tell(self, msg, self);
        }, ms);
        this.#timers.add(handle);
        return handle;
      },
      cancel: (handle) => {
        this.#timers.delete(handle);
        system.options.clock.clearTimeout(handle);
      },
      stopSelf: () => {
        this.#stopRequested = true;
      },
    };
  }
}
