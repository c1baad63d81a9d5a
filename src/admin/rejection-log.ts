// Rate-limited `admin.rejected` security events: what the admin socket (./server.ts) and the REST API
// (./rest-api.ts) log when they refuse a request. A client hammering either interface must not flood the log,
// so each keeps one of these: the first events of a window are logged, the rest counted in one summary line.
import type { ErrorCode } from '../errors.ts';
import { logSecurityEvent, type Logger } from '../telemetry/log.ts';

/** At most this many events per window; the rest are counted in one summary line. */
const REJECT_LOG_MAX_PER_WINDOW = 10;
const REJECT_LOG_WINDOW_MS = 10_000;
/** Request text quoted in log lines is cut to this many characters. */
const LOG_DETAIL_MAX_CHARS = 200;

export class RejectionLog {
  readonly #log: Logger;
  #windowStart = Number.NEGATIVE_INFINITY;
  #logged = 0;
  #suppressed = 0;
  #summaryTimer: NodeJS.Timeout | null = null;

  constructor(log: Logger) {
    this.#log = log;
  }

  note(code: ErrorCode, detail: string): void {
    const now = performance.now();
    if (now - this.#windowStart >= REJECT_LOG_WINDOW_MS) {
      this.flush();
      this.#windowStart = now;
      this.#logged = 0;
    }
    if (this.#logged < REJECT_LOG_MAX_PER_WINDOW) {
      this.#logged++;
      logSecurityEvent(this.#log, { event: 'admin.rejected', code, detail: truncate(detail) });
      return;
    }
    this.#suppressed++;
    this.#summaryTimer ??= setTimeout(() => this.flush(), this.#windowStart + REJECT_LOG_WINDOW_MS - now).unref();
  }

  /** Reports how many events the current window suppressed. */
  flush(): void {
    if (this.#summaryTimer) clearTimeout(this.#summaryTimer);
    this.#summaryTimer = null;
    if (this.#suppressed === 0) return;
    this.#log.warn({ security: true, event: 'admin.rejected', suppressed: this.#suppressed }, 'admin.rejected events suppressed');
    this.#suppressed = 0;
  }
}

function truncate(text: string): string {
  return text.length > LOG_DETAIL_MAX_CHARS ? `${text.slice(0, LOG_DETAIL_MAX_CHARS)}…` : text;
}
