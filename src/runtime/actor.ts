// What an actor is to the rest of the code: a plain behaviour object (xstate's ActorLogic shape) and the
// context the runtime hands it. Behaviours own their state as data; the runtime owns mailboxes, delivery,
// supervision and timers. Resources with OS handles belong to exactly one actor and are released in `stop`.
import type { Logger } from '../telemetry/log.ts';
import type { Address, Replies } from '../messages.ts';
import type { Clock, TimerHandle } from './clock.ts';

export interface Message {
  readonly type: string;
}

/** The reply type of an asked message: `Replies[type]` for catalogued messages, else unknown. */
export type ReplyOf<M extends Message> = M['type'] extends keyof Replies ? Replies[M['type']] : unknown;

export interface ActorContext<M extends Message> {
  readonly self: Address;
  readonly log: Logger;
  readonly clock: Clock;
  /** Fire-and-forget to any address; undeliverable messages become dead letters. */
  tell<T extends Message>(to: Address, msg: T): void;
  /** Request/response with a mandatory deadline (the system default when omitted). */
  ask<T extends Message>(to: Address, msg: T, timeoutMs?: number): Promise<ReplyOf<T>>;
  /** Answers the message being handled, if it was asked. Answers to tells are ignored. */
  reply(value: unknown): void;
  /** Sends `msg` to self after `ms`; cancelled automatically when the actor stops or restarts. */
  schedule(ms: number, msg: M): TimerHandle;
  cancel(handle: TimerHandle): void;
  /** Ends the actor normally after the current message (transient children are then not restarted). */
  stopSelf(): void;
}

export interface Behavior<S, M extends Message, I = unknown> {
  /** Behaviour name, used for metrics labels and `ctl` listings (low cardinality, unlike addresses). */
  readonly name: string;
  init(ctx: ActorContext<M>, input: I): S | Promise<S>;
  /** Handles one message; a throw or rejection crashes the actor and its supervisor decides what follows. */
  receive(state: S, msg: M, ctx: ActorContext<M>): S | Promise<S>;
  stop?(state: S, ctx: ActorContext<M>): void | Promise<void>;
}

/** A behaviour with its state type erased, for tables and registries. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- erasure point: state is private to each behaviour
export type AnyBehavior = Behavior<any, any, any>;
