// The WAF engine's public face, for the L7 proxy and the CRS conformance runner:
//
//   const { ruleSet, errors } = createWaf({ crs: { paranoiaLevel: 1 } });
//   const tx = ruleSet.begin(request);                 // WafRequest (./request.ts), byte strings
//   const interruption = tx.requestHeaders() ?? tx.requestBody(bodyBytesOrNull);
//   // interruption: { action, status, ruleId, reason, url } | null
//   tx.matches        // MatchRecord[] (./match-log.ts); formatModsecLine(record) renders ModSecurity's log line
//   tx.anomalyScore   // CRS inbound anomaly score
//   tx.budgetExceeded // evaluation stopped at the budget (count it)
//   tx.end()          // done with it: the thread's next transaction reuses its buffers (results stay readable)
//
// A RuleSet is immutable and cheap to share: compile once, swap the reference to update rules. A Transaction
// serves one request and is not reused. Phases 3-5 (responseHeaders, responseBody, logging) exist as well.
// `warnings` lists rules kept whose operator can never match here; `tx.regexLimitExceeded` says an input was
// too long for a backtracking-only pattern and went unevaluated (TX:MSC_PCRE_LIMITS_EXCEEDED is then 1).
//
// Semantics follow libmodsecurity 3 except where ModSecurity 2 (what the CRS 3.3 regression suite was written
// against) or Coraza do better, each said where implemented:
// - REQUEST_URI is the target as sent, not %-decoded; REQUEST_FILENAME is the %-decoded path (./request-data.ts).
// - REQUEST_BODY is filled for the URLENCODED processor or ctl:forceRequestBodyVariable only, and
//   REQBODY_PROCESSOR is '' without a processor (./request-body.ts, ./transaction.ts).
// - A rule without a disruptive action takes SecDefaultAction's, as the SecLang reference says (./compile.ts).
// - MATCHED_VARS start empty at each chain head; MATCHED_VAR keeps the last match (./transaction.ts).
// - IP, GLOBAL, SESSION, USER and RESOURCE are per-transaction collections: ModSecurity keeps them on disk
//   between requests (initcol + SecDataDir), which a multi-threaded proxy would have to share; so CRS's
//   IP-reputation and DoS rules (910, 912), which need memory across requests, never see an earlier request.
//   initcol, expirevar, setsid and setuid are accepted and do nothing (./actions.ts).
// - GEO is empty (no GeoIP database); @geoLookup and @rbl never match (./operators/misc.ts).
// - ENV holds only what setenv set in this transaction (the process environment stays private).
// - No audit or debug log: the match records are returned and the caller logs them.


import type { EvaluationLimits } from './budget.ts';
import { DEFAULT_EVALUATION_LIMITS } from './budget.ts';
import { compileRuleSet, type CompileOptions, type ConfigError } from './compile.ts';
import { loadConfigFiles, loadConfigText, loadCrs, type CrsOptions, type FileAccess, NODE_FILES } from './load.ts';
import type { WafRequest } from './request.ts';
import type { Directive } from './seclang/ast.ts';
import type { CompiledRuleSet } from './ruleset.ts';
import type { RuleEngineMode } from './settings.ts';
import { Transaction } from './transaction.ts';

export type { EvaluationLimits, BudgetPolicy } from './budget.ts';
export type { ConfigError } from './compile.ts';
export type { CrsOptions } from './load.ts';
export { formatModsecLine, type LogContext, type MatchRecord } from './match-log.ts';
export type { WafRequest, WafResponse } from './request.ts';
export type { RuleEngineMode } from './settings.ts';
export type { Interruption, InterruptionReason, Transaction } from './transaction.ts';

export interface WafOptions {
  /** Load the OWASP CRS (crs-setup.conf, then the rules); see CrsOptions. */
  crs?: CrsOptions;
  /** Configuration files, loaded after the CRS, Includes followed. */
  files?: readonly string[];
  /**
   * Directives built as data (the JSON policy, ./custom-rules.ts): `before` goes ahead of everything else,
   * `after` behind the `rules` text.
   */
  directives?: { before?: readonly Directive[]; after?: readonly Directive[] };
  /** SecLang text, loaded last; `rulesName` is what its errors cite (default `<rules>`). */
  rules?: string;
  rulesName?: string;
  /** Overrides SecRuleEngine from the configuration. */
  mode?: RuleEngineMode;
  /** Evaluation budget and fail-open / fail-closed policy; defaults in ./budget.ts. */
  limits?: Partial<EvaluationLimits>;
  /** File access for tests; the real file system otherwise. */
  fileAccess?: FileAccess;
  /** See CompileOptions.foldConstants (default true). */
  foldConstants?: boolean;
}

export interface Waf {
  ruleSet: RuleSet;
  /** Every configuration problem, with file and line; the rules concerned are left out, the rest runs. */
  errors: readonly ConfigError[];
  /** Rules kept that can never match here (an operator the engine leaves inert: @rbl, @geoLookup …). */
  warnings: readonly ConfigError[];
}

export class RuleSet {
  readonly compiled: CompiledRuleSet;
  readonly limits: Readonly<EvaluationLimits>;

  constructor(compiled: CompiledRuleSet, limits: Readonly<EvaluationLimits>) {
    this.compiled = compiled;
    this.limits = limits;
  }

  get ruleCount(): number {
    return this.compiled.ruleCount;
  }

  /** Starts one request's transaction. Nothing is parsed until a phase needs it. */
  begin(request: WafRequest): Transaction {
    return new Transaction(this.compiled, request, this.limits);
  }
}

export function createWaf(options: WafOptions): Waf {
  const files = options.fileAccess ?? NODE_FILES;
  const parts = [
    { directives: options.directives?.before ?? [], errors: [] },
    ...(options.crs === undefined ? [] : [loadCrs(options.crs, files)]),
    ...(options.files === undefined ? [] : [loadConfigFiles(options.files, files)]),
    ...(options.rules === undefined ? [] : [loadConfigText(options.rules, options.rulesName ?? '<rules>', files)]),
    { directives: options.directives?.after ?? [], errors: [] },
  ];
  const compileOptions: CompileOptions = { readFile: (path) => files.readFile(path), foldConstants: options.foldConstants ?? true };
  const { ruleSet, errors, warnings } = compileRuleSet(
    parts.flatMap((part) => part.directives),
    compileOptions,
  );
  const compiled = options.mode === undefined ? ruleSet : { ...ruleSet, settings: Object.freeze({ ...ruleSet.settings, ruleEngine: options.mode }) };
  const limits = Object.freeze({ ...DEFAULT_EVALUATION_LIMITS, ...options.limits });
  return { ruleSet: new RuleSet(compiled, limits), errors: [...parts.flatMap((part) => part.errors), ...errors], warnings };
}
