// The recent security events of this thread in a bounded ring, for `secbeat ctl events` and
// GET /api/v1/events. logSecurityEvent (./log.ts) records every event here whatever the log level. Each thread
// keeps its own ring and the main thread collects them on demand over the runtime's control channel, as it
// collects metrics (src/node/commands.ts), so an event never costs a message between threads.
import type { EventFilter } from '../messages.ts';
import type { SecurityEvent, SecurityEventName } from './log.ts';

/** Events kept per thread; older ones are overwritten. A ring grows only as events arrive. */
export const SECURITY_EVENT_RING_CAPACITY = 1024;

/** What `type=attack` selects: refused traffic and requests (slow, HTTP/2 abuse, WAF matches), the blocks made against it, and rejected admin requests. */
export const ATTACK_EVENTS: ReadonlySet<SecurityEventName> = new Set<SecurityEventName>(['conn.refused', 'ip.blocked', 'cidr.blocked', 'admin.rejected', 'h2.goaway', 'request.slow', 'waf.match']);

/** A recorded event: its fields and when it happened (unix milliseconds). */
export type SecurityEventRecord = SecurityEvent & { at: number };

function matchesFilter(event: SecurityEvent, filter: EventFilter): boolean {
  return filter === 'all' || ATTACK_EVENTS.has(event.event);
}

export class SecurityEventRing {
  readonly capacity: number;
  readonly #items: SecurityEventRecord[] = [];
  /** Where the next record goes once the ring is full. */
  #next = 0;

  constructor(capacity: number) {
    this.capacity = Math.max(1, capacity);
  }

  record(event: SecurityEvent, at: number): void {
    const item: SecurityEventRecord = { ...event, at };
    if (this.#items.length < this.capacity) this.#items.push(item);
    else this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.capacity;
  }

  /** The newest `limit` events that pass `filter`, oldest first. */
  list(limit: number, filter: EventFilter): SecurityEventRecord[] {
    const items = this.#items;
    const n = items.length;
    const out: SecurityEventRecord[] = [];
    // Newest first from the slot before #next (which is items.length until the ring first fills).
    for (let k = 1; k <= n && out.length < limit; k++) {
      const item = items[(((this.#next - k) % n) + n) % n]!;
      if (matchesFilter(item, filter)) out.push(item);
    }
    return out.reverse();
  }
}

const ring = new SecurityEventRing(SECURITY_EVENT_RING_CAPACITY);

export function recordSecurityEvent(event: SecurityEvent): void {
  ring.record(event, Date.now());
}

/** This thread's newest `limit` events that pass `filter`, oldest first. */
export function recentSecurityEvents(limit: number, filter: EventFilter): SecurityEventRecord[] {
  return ring.list(limit, filter);
}
