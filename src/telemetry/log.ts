// The pino root logger of a thread, its per-actor children, and the one helper that emits security events.
// Each thread (main and every worker) builds its own root from the same settings; lines go straight to fd 1
// with synchronous writes so a crashing worker loses nothing and no line hops through the main thread.
import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type { LogLevel } from '../messages.ts';
import { recordSecurityEvent } from './events.ts';

export type { Logger };

export interface LogSettings {
  level: LogLevel;
  /** "json" for production; "pretty" for humans in development. */
  format: 'json' | 'pretty';
}

/** Keys whose values never reach a log line (secrets, credentials). */
const REDACT_PATHS = [
  'authorization',
  'cookie',
  '*.authorization',
  '*.cookie',
  '*.token',
  '*.password',
  '*.secret',
  'config.admin.api_token',
  'config.nats.password',
  'config.nats.token',
];

const children = new Set<WeakRef<Logger>>();
let root: Logger | null = null;

export function createRootLogger(settings: LogSettings, bindings: Record<string, string>): Logger {
  const stream =
    settings.format === 'pretty'
      ? loadPretty()({ sync: true, destination: 1, colorize: process.stdout.isTTY === true })
      : pino.destination({ dest: 1, sync: true });
  root = pino(
    {
      level: settings.level,
      base: bindings,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
  return root;
}

/** pino-pretty only where it is used (development): every thread pays for what it loads. */
function loadPretty(): typeof import('pino-pretty') {
  return createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
}

/** The thread's root logger; a silent one before `createRootLogger` (unit tests). */
export function rootLogger(): Logger {
  root ??= pino({ level: 'silent' });
  return root;
}

/** A child logger that follows later `setLogLevel` calls (pino children copy the level at creation). */
export function childLogger(bindings: Record<string, string>): Logger {
  const child = rootLogger().child(bindings);
  children.add(new WeakRef(child));
  return child;
}

export function setLogLevel(level: LogLevel): void {
  const r = rootLogger();
  r.level = level;
  for (const ref of children) {
    const child = ref.deref();
    if (child) child.level = level;
    else children.delete(ref);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Security events: a closed union with fixed fields so dashboards and alert rules can rely on the schema.
// Logged at `warn`; never per packet — data planes count in metrics and log refusals per connection. Each is
// also kept in the thread's ring of recent events (./events.ts), whatever the log level.

export type SecurityEvent =
  | {
      event: 'conn.refused';
      mode: 'tcp' | 'l7';
      /** proxy_protocol: a listener that expects a PROXY header got none, a bad one, or one from an untrusted sender. */
      reason: 'blocklist' | 'max_connections' | 'per_ip_limit' | 'draining' | 'proxy_protocol';
      clientIp: string;
    }
  | { event: 'ip.blocked'; ip: string; durationSec: number | null; source: 'admin' | 'api' | 'config' | 'rate_limit_local' | 'rate_limit_fleet' }
  | { event: 'ip.unblocked'; ip: string; source: 'admin' | 'api' | 'expiry' }
  | { event: 'cidr.blocked'; cidr: string; durationSec: number | null; source: 'admin' | 'api' | 'fleet' }
  | { event: 'cidr.unblocked'; cidr: string; source: 'admin' | 'api' | 'expiry' | 'fleet' }
  | { event: 'admin.rejected'; code: string; detail: string }
  /** An HTTP/2 session ended for abuse: rapid reset, a CONTINUATION flood, or another protocol violation. */
  | { event: 'h2.goaway'; reason: 'h2_rapid_reset' | 'h2_continuation_flood' | 'h2_protocol_error'; clientIp: string; detail: string }
  /** A request body too slow (min_body_rate) or, on HTTP/2, a request past request_timeout_ms: 408. */
  | { event: 'request.slow'; mode: 'l7'; reason: 'min_body_rate' | 'request_timeout'; clientIp: string; bytes: number }
  /** One request the WAF matched rules on (src/http/waf-gate.ts): every rule id, the first rules in detail. */
  | {
      event: 'waf.match';
      /** challenged: a `challenge` rule matched and the request held no valid clearance (src/http/challenge.ts). */
      action: 'blocked' | 'detected' | 'challenged';
      mode: 'detection' | 'blocking';
      category: string;
      clientIp: string;
      domain: string;
      uri: string;
      anomalyScore: number;
      ruleIds: number[];
      /** Of ruleIds, those in detection mode by the policy's rule_modes: logged, adding nothing to the score. */
      shadowRuleIds: number[];
      rules: { id: number; msg: string; variable: string; data: string; severity: number | null }[];
      /** The rule that interrupted (0: the engine itself, a limit or the budget), null when none did. */
      interruptedBy: number | null;
      reason: string | null;
      transactionId: string;
    };

export type SecurityEventName = SecurityEvent['event'];

export function logSecurityEvent(log: Logger, e: SecurityEvent): void {
  recordSecurityEvent(e);
  log.warn({ security: true, ...e }, e.event);
}
