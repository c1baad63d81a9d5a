// The ring of recent security events: bounded, oldest first, filtered before the limit; and logSecurityEvent
// records into this thread's ring whatever the log level.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ATTACK_EVENTS, recentSecurityEvents, SecurityEventRing } from '../../../src/telemetry/events.ts';
import { logSecurityEvent, type SecurityEvent } from '../../../src/telemetry/log.ts';

const refused = (n: number): SecurityEvent => ({ event: 'conn.refused', mode: 'tcp', reason: 'blocklist', clientIp: `192.0.2.${n}` });
const unblocked = (n: number): SecurityEvent => ({ event: 'ip.unblocked', ip: `198.51.100.${n}`, source: 'expiry' });

describe('SecurityEventRing', () => {
  it('keeps the newest `capacity` events, oldest first', () => {
    const ring = new SecurityEventRing(3);
    for (let i = 1; i <= 5; i++) ring.record(refused(i), i * 1000);
    expect(ring.list(10, 'all').map((e) => [e.at, e.event === 'conn.refused' && e.clientIp])).toEqual([
      [3000, '192.0.2.3'],
      [4000, '192.0.2.4'],
      [5000, '192.0.2.5'],
    ]);
    expect(ring.list(2, 'all').map((e) => e.at)).toEqual([4000, 5000]);
  });

  it('filters attack events before applying the limit', () => {
    const ring = new SecurityEventRing(10);
    ring.record(refused(1), 1);
    ring.record(unblocked(1), 2);
    ring.record({ event: 'cidr.blocked', cidr: '203.0.113.0/24', durationSec: null, source: 'api' }, 3);
    ring.record(unblocked(2), 4);
    ring.record({ event: 'cidr.unblocked', cidr: '203.0.113.0/24', source: 'expiry' }, 5);
    expect(ring.list(2, 'attack').map((e) => e.event)).toEqual(['conn.refused', 'cidr.blocked']);
    expect(ring.list(2, 'all').map((e) => e.event)).toEqual(['ip.unblocked', 'cidr.unblocked']);
    expect(new SecurityEventRing(4).list(5, 'all')).toEqual([]);
  });

  it('counts refusals, blocks and rejected admin requests as attack, unblocks not', () => {
    expect([...ATTACK_EVENTS].sort()).toEqual(['admin.rejected', 'cidr.blocked', 'conn.refused', 'h2.goaway', 'ip.blocked', 'request.slow', 'waf.match']);
  });

  it('logSecurityEvent records into the thread ring even when the logger is silent', () => {
    const marker = `10.${Date.now() % 250}.0.7`;
    logSecurityEvent(pino({ level: 'silent' }), { event: 'ip.blocked', ip: marker, durationSec: 60, source: 'api' });
    const last = recentSecurityEvents(1, 'attack')[0];
    expect(last).toMatchObject({ event: 'ip.blocked', ip: marker, durationSec: 60, source: 'api', at: expect.any(Number) });
  });
});
