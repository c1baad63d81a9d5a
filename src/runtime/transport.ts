// Transports carry deliveries between actor systems. In-thread delivery is a direct call inside
// ActorSystem; this module holds the cross-thread port batcher and the node-transport contract that the
// NATS transport (issue #5) implements. A node without NATS has no node transport: messages to other nodes
// become dead letters with reason "no_transport".
import type { MessagePort, Worker } from 'node:worker_threads';
import type { Address, Delivery } from '../messages.ts';

/** Where a delivery goes. */
export function deliveryTarget(delivery: Delivery): Address {
  return delivery.kind === 'msg' ? delivery.envelope.to : delivery.kind === 'reply' ? delivery.reply.to : delivery.to;
}

/** Cross-node transport (NATS). Subjects and encoding are its own business; inbound input is untrusted. */
export interface NodeTransport {
  readonly kind: string;
  /** Queues a delivery for another node; false when it cannot be sent (disconnected, buffer full). */
  send(delivery: Delivery): boolean;
  /** Starts receiving; every decoded inbound delivery is passed to `deliver`. Malformed input is dropped and counted. */
  start(deliver: (delivery: Delivery) => void): Promise<void>;
  close(): Promise<void>;
}

/** Largest batch in one postMessage; bigger bursts are split so one clone never stalls the receiver. */
export const MAX_PORT_BATCH = 512;

type PortLike = Pick<MessagePort, 'postMessage'> | Pick<Worker, 'postMessage'>;

/**
 * Batches deliveries to one port: everything sent in one event-loop turn crosses in one postMessage
 * (a structured clone costs a few µs per message, so batching keeps control traffic cheap).
 */
export class PortBatcher<T> {
  readonly #port: PortLike;
  readonly #wrap: (batch: T[]) => unknown;
  #queue: T[] = [];
  #scheduled = false;

  constructor(port: PortLike, wrap: (batch: T[]) => unknown) {
    this.#port = port;
    this.#wrap = wrap;
  }

  push(item: T): void {
    this.#queue.push(item);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.#scheduled = false;
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, MAX_PORT_BATCH);
      this.#port.postMessage(this.#wrap(batch));
    }
  }
}
