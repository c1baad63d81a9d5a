// Runs ftw stages against a Target and judges each as ftw's testrunner.py `run_stage` did:
//  * `expect_error`: sending must raise ftw's TestError (no answer within 5 s, an answer ftw cannot parse, or
//    a request ftw refuses to build); without it, such an error fails the stage.
//  * `log_contains` / `no_log_contains`: a Python `re.search` over each log line written for the request.
//    The lines are ModSecurity error-log lines, and the patterns name rule ids (`id "942100"`).
//  * `status`: the response's status is the expected one, or one of the listed ones.
//  * `response_contains`: a search over the whole raw response.
// CRS's CI ran ModSecurity in DetectionOnly mode (see ./crs-setup.ts), so statuses never come from the WAF:
// they are the web server's or the backend's, and rules are judged by the log alone. That is also how the
// Accept-Charset header that half the stages send, and that CRS 3.3.4 restricts (rule 920450), is handled,
// as CRS's own tooling did: sent as written, it makes 920450 log a line on those stages, and only 920450's
// own expectations look at that line ("they do not cause test failures, because the test framework looks
// at rules instead of score", coreruleset/coreruleset#2779).
import type { Stage, StageOutput } from './ftw.ts';
import { pythonRegex } from './python.ts';
import { buildRequest } from './request.ts';
import type { StageOutcome, Target } from './target.ts';

/** Why a stage failed; the report groups by these. */
export const FAILURE_CAUSES = [
  /** A `log_contains` pattern matched no line: a rule that should have matched did not. */
  'missed-detection',
  /** A `no_log_contains` pattern matched a line: a rule matched that should not have. */
  'false-positive',
  'status',
  /** ftw's TestError was expected but a response came. */
  'no-error',
  /** A response was expected but ftw would have raised (timeout, unparsable answer). */
  'error',
  'response',
  /** The target has no rule-match log, so log expectations cannot be judged. */
  'no-log',
  /** ftw itself could not send the stage (a Python exception), or this runner does not reproduce it. */
  'tooling',
] as const;
export type FailureCause = (typeof FAILURE_CAUSES)[number];

export interface Failure {
  cause: FailureCause;
  detail: string;
}

export interface StageResult {
  stage: Stage;
  /** null when the request was never sent (see failures). */
  outcome: StageOutcome | null;
  /** Empty when the stage passed. */
  failures: Failure[];
}

/** Runs `stages` one after another (ftw's order; the log windows of a shared target must not overlap). */
export async function runStages(
  stages: readonly Stage[],
  target: Target,
  onResult?: (result: StageResult) => void,
): Promise<StageResult[]> {
  const results: StageResult[] = [];
  for (const stage of stages) {
    const result = await runStage(stage, target);
    onResult?.(result);
    results.push(result);
  }
  return results;
}

export async function runStage(stage: Stage, target: Target): Promise<StageResult> {
  const built = buildRequest(stage.input);
  if (!built.ok) {
    if (built.error.kind !== 'test-error') {
      return { stage, outcome: null, failures: [{ cause: 'tooling', detail: `${built.error.kind}: ${built.error.message}` }] };
    }
    // ftw raised its TestError before sending anything: nothing was logged for this stage.
    const outcome: StageOutcome = { kind: 'error', message: built.error.message, log: [] };
    return { stage, outcome, failures: checkOutcome(stage.output, outcome) };
  }
  const outcome = await target.exchange(stage, built.bytes);
  return { stage, outcome, failures: checkOutcome(stage.output, outcome) };
}

/** The expectations `output` states that `outcome` does not meet. */
export function checkOutcome(output: StageOutput, outcome: StageOutcome): Failure[] {
  const failures: Failure[] = [];
  if (outcome.kind === 'error' && !output.expectError) return [{ cause: 'error', detail: `ftw error: ${outcome.message}` }];
  if (outcome.kind === 'response' && output.expectError) {
    failures.push({ cause: 'no-error', detail: `an ftw error was expected, the response was ${outcome.status}` });
  }
  if (output.logContains !== null || output.noLogContains !== null) {
    if (outcome.log === null) {
      failures.push({ cause: 'no-log', detail: 'the target has no rule-match log' });
    } else {
      if (output.logContains !== null && !searchLines(output.logContains, outcome.log)) {
        failures.push({ cause: 'missed-detection', detail: `no log line matches /${output.logContains}/` });
      }
      if (output.noLogContains !== null && searchLines(output.noLogContains, outcome.log)) {
        failures.push({ cause: 'false-positive', detail: `a log line matches /${output.noLogContains}/` });
      }
    }
  }
  if (output.responseContains !== null || output.status !== null) {
    // ftw reads these off the response object, which an error leaves unset.
    if (outcome.kind === 'error') {
      failures.push({ cause: 'error', detail: `ftw error, so no response to check: ${outcome.message}` });
    } else {
      if (output.responseContains !== null && !compile(output.responseContains).test(outcome.raw)) {
        failures.push({ cause: 'response', detail: `the response does not match /${output.responseContains}/` });
      }
      if (output.status !== null && !output.status.includes(outcome.status)) {
        failures.push({ cause: 'status', detail: `status ${outcome.status}, expected ${output.status.join(' or ')}` });
      }
    }
  }
  return failures;
}

function searchLines(pattern: string, lines: readonly string[]): boolean {
  const regex = compile(pattern);
  return lines.some((line) => regex.test(line));
}

/** Patterns were checked when the corpus was decoded (./ftw.ts), so compiling cannot fail here. */
function compile(pattern: string): RegExp {
  const regex = pythonRegex(pattern);
  if (!(regex instanceof RegExp)) throw new Error(`pattern ${pattern} was not checked at decoding: ${regex.error}`);
  return regex;
}

/** The rule ids a set of ModSecurity log lines names, in order of first appearance. */
export function loggedRuleIds(lines: readonly string[]): string[] {
  const ids = new Set<string>();
  for (const line of lines) for (const m of line.matchAll(/\[id "(\d+)"\]/g)) ids.add(m[1]!);
  return [...ids];
}
