// The node transport over NATS (@nats-io/transport-node, core NATS): deliveries for another node are
// published on that node's subject (./subjects.ts); each node subscribes to its own. Chosen on purpose:
//
// - Core NATS, not JetStream: the runtime's deliveries are at-most-once and FIFO per sender → receiver pair
//   (../messages.ts), which is what core NATS gives between two connections; state that must survive loss
//   (config, rate limits) is made to tolerate loss by the CRDT layer, not by the transport.
// - Starting never waits for NATS: a node whose NATS is down serves alone, connects in the background, and
//   retries forever (250 ms apart, with jitter). Until the first connection, deliveries for other nodes are
//   refused (send() is false: the system dead-letters them as no_transport).
// - While a lost connection is re-established, the client buffers what is published and sends it on
//   reconnection; that is capped here at MAX_BUFFERED_WHILE_DOWN deliveries, past which sends are refused, so
//   a long outage costs bounded memory. (What the other side receives still depends on its own link: core
//   NATS keeps nothing for a subscriber that is away.)
// - Inbound data is untrusted: anything oversized, not JSON, not a valid Delivery (../messages.ts
//   DeliverySchema) or addressed to another node is counted and dropped, never thrown.
// - Fleet-wide state (../crdt: rate-limit counts) goes out with broadcast() on a subject every node listens
//   to; it is not buffered while down, since each publication supersedes the one before. Its listeners get
//   the text (oversized or not UTF-8: dropped) and check it themselves.
import { connect, type NatsConnection, type Msg } from '@nats-io/transport-node';
import { decodeDelivery, type Delivery } from '../messages.ts';
import type { Logger } from '../telemetry/log.ts';
import { metrics } from '../telemetry/metrics.ts';
import { deliverySubject } from './subjects.ts';
import { deliveryTarget, type NodeTransport } from './transport.ts';

export interface NatsTransportOptions {
  servers: readonly string[];
  region: string;
  node: string;
  /** Connection name shown by the server; defaults to region/node. */
  name?: string;
  token?: string;
  user?: string;
  password?: string;
  log: Logger;
}

/** Inbound payloads larger than this are dropped unread (NATS's own default max_payload is 1 MiB). */
const MAX_INBOUND_BYTES = 1024 * 1024;
/** Deliveries accepted while a connection is being re-established. */
const MAX_BUFFERED_WHILE_DOWN = 10_000;
const RECONNECT_WAIT_MS = 250;
const RECONNECT_JITTER_MS = 100;
/** One attempt at the first connection; then the next, RECONNECT_WAIT_MS later, until one works or close(). */
const CONNECT_TIMEOUT_MS = 2_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export class NatsTransport implements NodeTransport {
  readonly kind = 'nats';
  readonly #o: NatsTransportOptions;
  #nc: NatsConnection | null = null;
  #connected = false;
  #bufferedWhileDown = 0;
  #closing = false;
  readonly #listeners: { subject: string; handler: (text: string) => void }[] = [];

  constructor(options: NatsTransportOptions) {
    this.#o = options;
  }

  /** Whether a connection is up now (deliveries flow). */
  get connected(): boolean {
    return this.#connected;
  }

  send(delivery: Delivery): boolean {
    const nc = this.#nc;
    if (nc === null || this.#closing) return false;
    if (!this.#connected && this.#bufferedWhileDown >= MAX_BUFFERED_WHILE_DOWN) return false;
    const to = deliveryTarget(delivery);
    let payload: Uint8Array;
    try {
      payload = encoder.encode(JSON.stringify(delivery));
      nc.publish(deliverySubject(to.region, to.node), payload);
    } catch (error) {
      // A payload JSON cannot carry, or a connection closed under us: not sent.
      this.#o.log.warn({ err: error, to: `${to.region}/${to.node}` }, 'nats: delivery not sent');
      return false;
    }
    if (!this.#connected) this.#bufferedWhileDown++;
    metrics().natsDeliveries.inc({ result: 'sent' });
    return true;
  }

  /** Publishes `text` to every node listening on `subject`; false when not connected (nothing is kept). */
  broadcast(subject: string, text: string): boolean {
    const nc = this.#nc;
    if (nc === null || !this.#connected || this.#closing) return false;
    try {
      nc.publish(subject, encoder.encode(text));
      return true;
    } catch (error) {
      this.#o.log.warn({ err: error, subject }, 'nats: broadcast not sent');
      return false;
    }
  }

  /** Hands `handler` the text of every message on `subject`, from now on and after every reconnection. */
  listen(subject: string, handler: (text: string) => void): void {
    this.#listeners.push({ subject, handler });
    if (this.#nc !== null) this.#subscribe(this.#nc, subject, handler);
  }

  /** Connects in the background (resolves at once) and hands every valid inbound delivery to `deliver`. */
  async start(deliver: (delivery: Delivery) => void): Promise<void> {
    this.#setConnected(false);
    void this.#firstConnection(deliver);
  }

  /** Stops retrying; drains a live connection (what was published goes out, then it closes). */
  async close(): Promise<void> {
    this.#closing = true;
    const nc = this.#nc;
    if (nc !== null && !nc.isClosed()) await nc.drain().catch(() => nc.close());
    this.#setConnected(false);
  }

  /**
   * Tries until connected or closed. The client's own waitOnFirstConnect would do the same but cannot be
   * stopped, and a node must shut down promptly with its NATS down.
   */
  async #firstConnection(deliver: (delivery: Delivery) => void): Promise<void> {
    let failures = 0;
    while (!this.#closing) {
      try {
        await this.#connect(deliver);
        return;
      } catch (error) {
        // Logged once, then every 100th attempt (~30 s): a node may run without its NATS for long.
        if (failures++ % 100 === 0) this.#o.log.warn({ err: error, attempts: failures }, 'nats: cannot connect yet; serving alone meanwhile');
        await new Promise((resolve) => setTimeout(resolve, RECONNECT_WAIT_MS + Math.random() * RECONNECT_JITTER_MS).unref());
      }
    }
  }

  async #connect(deliver: (delivery: Delivery) => void): Promise<void> {
    const o = this.#o;
    const nc = await connect({
      servers: [...o.servers],
      name: o.name ?? `secbeat/${o.region}/${o.node}`,
      ...(o.token === undefined ? {} : { token: o.token }),
      ...(o.user === undefined ? {} : { user: o.user, pass: o.password ?? '' }),
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: RECONNECT_WAIT_MS,
      reconnectJitter: RECONNECT_JITTER_MS,
      timeout: CONNECT_TIMEOUT_MS,
      // A node never needs its own publishes back.
      noEcho: true,
    });
    if (this.#closing) {
      await nc.close();
      return;
    }
    this.#nc = nc;
    this.#setConnected(true);
    o.log.info({ server: nc.getServer() }, 'nats: connected');
    nc.subscribe(deliverySubject(o.region, o.node), {
      callback: (error, msg) => {
        if (error === null) this.#receive(msg, deliver);
        else o.log.error({ err: error }, 'nats: subscription failed; deliveries for this node are lost until it is back');
      },
    });
    for (const { subject, handler } of this.#listeners) this.#subscribe(nc, subject, handler);
    void this.#watch(nc);
  }

  #subscribe(nc: NatsConnection, subject: string, handler: (text: string) => void): void {
    nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error !== null) return void this.#o.log.error({ err: error, subject }, 'nats: subscription failed');
        const text = inboundText(msg.data);
        if (typeof text === 'string') handler(text);
        else metrics().natsDeliveries.inc({ result: 'malformed' });
      },
    });
  }

  async #watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        this.#setConnected(false);
        this.#bufferedWhileDown = 0;
        this.#o.log.warn({ server: status.server }, 'nats: disconnected; reconnecting');
      } else if (status.type === 'reconnect') {
        this.#setConnected(true);
        this.#o.log.info({ server: status.server }, 'nats: reconnected');
      }
    }
  }

  #setConnected(connected: boolean): void {
    this.#connected = connected;
    metrics().natsConnected.set(connected ? 1 : 0);
  }

  #receive(msg: Msg, deliver: (delivery: Delivery) => void): void {
    const data = msg.data;
    const dropped = (why: string): void => {
      metrics().natsDeliveries.inc({ result: 'malformed' });
      this.#o.log.warn({ subject: msg.subject, bytes: data.length, why }, 'nats: inbound delivery dropped');
    };
    const text = inboundText(data);
    if (typeof text !== 'string') return dropped(text.refused);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return dropped('not JSON');
    }
    const decoded = decodeDelivery(parsed);
    if (!decoded.ok) return dropped(decoded.issues.slice(0, 3).join('; '));
    const delivery = decoded.value;
    const to = deliveryTarget(delivery);
    if (to.region !== this.#o.region || to.node !== this.#o.node) return dropped(`addressed to ${to.region}/${to.node}`);
    metrics().natsDeliveries.inc({ result: 'received' });
    deliver(delivery);
  }
}

/** An inbound payload as text, or why it is refused: past MAX_INBOUND_BYTES, or not UTF-8. */
function inboundText(data: Uint8Array): string | { refused: string } {
  if (data.length > MAX_INBOUND_BYTES) return { refused: 'too large' };
  try {
    return decoder.decode(data);
  } catch {
    return { refused: 'not UTF-8' };
  }
}
