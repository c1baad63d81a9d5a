// The per-transaction evaluation budget: the bound on how much matching one request can cost, whatever its
// size or content. Each operator evaluation spends the length of its input plus one, so the budget caps the
// bytes all operators together may scan; the regex engine bounds the work per byte (../regex.ts), so the two
// together bound a transaction's CPU time. When the budget runs out the transaction stops evaluating and the
// policy decides: fail-open lets the request through, fail-closed blocks it; either way it is flagged
// (Transaction.budgetExceeded) for the caller to count.

export type BudgetPolicy = 'fail-open' | 'fail-closed';

export interface EvaluationLimits {
  /** Units (operator input bytes + 1 per evaluation) one transaction may spend, all phases together. */
  budget: number;
  /**
   * Milliseconds one phase may run. Bytes alone do not bound time: some CRS patterns cost ~50 ms on a
   * 128 KiB value even on the linear engine, and a thread busy that long serves no one else. The clock is
   * read every CLOCK_EVERY_UNITS units, so a phase overruns by at most the evaluations in between.
   */
  phaseTimeMs: number;
  /** What happens to a request whose budget ran out, or whose evaluation hit an internal error. */
  onExhausted: BudgetPolicy;
  /** Status of the response when fail-closed blocks. */
  failClosedStatus: number;
}

/**
 * 64 Mi units. Measured with CRS 3.3.4 at paranoia level 4: a 128 KiB urlencoded form of small fields (the
 * largest body SecRequestBodyNoFilesLimit lets through) spends 7.8 million units, one 128 KiB argument 18.8 million, so
 * the largest legitimate requests stay well within it while a request that multiplies its inspected bytes
 * (many headers or cookies under many rules, bodies parsed several ways) is cut off.
 */
export const DEFAULT_EVALUATION_LIMITS: Readonly<EvaluationLimits> = Object.freeze({
  budget: 64 * 1024 * 1024,
  // No clock by default: a library caller's tests and tools must not depend on the machine's speed. The L7
  // proxy sets [waf] evaluation_time_ms.
  phaseTimeMs: Infinity,
  onExhausted: 'fail-closed',
  failClosedStatus: 403,
});

/** Units between two reads of the clock: a benign GET spends fewer in all, so it never reads it. */
export const CLOCK_EVERY_UNITS = 64 * 1024;

/** What one operator evaluation of `input` costs. */
export function evaluationCost(input: string): number {
  return input.length + 1;
}
