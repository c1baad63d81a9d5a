// The seam between the conformance runner and what it tests: the same stages run in-process against the
// engine (./engine-target.ts) or over real sockets against a running node (./socket-target.ts).
import type { Stage } from './ftw.ts';

/** What ftw would have observed for one stage, and the WAF's rule-match log lines for that request. */
export type StageOutcome =
  | {
      kind: 'response';
      status: number;
      /** The whole response as Latin-1 text, for `response_contains`. */
      raw: string;
      /** ModSecurity error-log style lines (`… [id "942100"] [msg "…"] …`); null when the target has no log. */
      log: readonly string[] | null;
    }
  /** ftw raised its TestError: no response within its 5 s, or one it could not parse. */
  | { kind: 'error'; message: string; log: readonly string[] | null };

export interface Target {
  /** For reports, e.g. `in-process PL4` or `127.0.0.1:8080`. */
  readonly name: string;
  /** Sends one stage's request bytes (see ./request.ts). Resolves with what happened; never rejects. */
  exchange(stage: Stage, request: Buffer): Promise<StageOutcome>;
  close(): Promise<void>;
}

/** ftw's SOCKET_TIMEOUT: how long it waits for a response before raising its TestError. */
export const FTW_RESPONSE_TIMEOUT_MS = 5_000;
