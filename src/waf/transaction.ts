// One request's run through a compiled rule set (./ruleset.ts), phase by phase as ModSecurity v3 runs it:
// 1 request headers, 2 request body, 3 response headers, 4 response body, 5 logging. Each phase returns an
// Interruption when a rule (or a limit) ends the request, else null. This is the hot path: rules sit in
// per-phase arrays, skipAfter is an index jump, variable values are computed once per transaction (or once
// per body/response for those that depend on them), and transformation results are cached per transaction
// by (value, transformation chain) on the value itself, so rules sharing `t:none,t:urlDecodeUni,…` transform
// a value once.
//
// The engine never throws on input: every public method catches at this boundary and reports an internal
// error, handled like an exhausted budget (see ./budget.ts).

import { CLOCK_EVERY_UNITS, evaluationCost, type EvaluationLimits } from './budget.ts';
import { expandMacro, type MacroRef, type MacroScope } from './macros.ts';
import { MAX_LOGGED_BYTES, type MatchRecord } from './match-log.ts';
import { processRequestBody } from './request-body.ts';
import { RequestData } from './request-data.ts';
import { leadingInteger, MAX_STORE_ENTRIES, setVarResult } from './setvar.ts';
import type { WafRequest, WafResponse } from './request.ts';
import type { Captures } from './operators/types.ts';
import { bodyTypeFromContentType, resolveBodyProcessor, type BodyProcessorKind, type CtlBodyProcessor, type FormBodyType } from './body/index.ts';
import type {
  CompiledRule,
  CompiledRuleSet,
  Ctl,
  IdRange,
  KeyTest,
  Phase,
  RuleOperator,
  SetVar,
  Target,
  TargetFilter,
} from './ruleset.ts';
import { filterRemoves, keySelects, textMatches } from './selectors.ts';
import type { RuleEngineMode } from './settings.ts';
import { TextMarks } from './text-marks.ts';
import { lowercase } from './transforms/text.ts';
import { textTraits, TRAIT } from './transforms/traits.ts';
import { makeValue, valueName, variable, VARIABLE_COUNT, VARIABLES, type VarValue, type VariableDef } from './variables.ts';

export type InterruptionReason = 'rule' | 'body_limit' | 'budget' | 'internal_error';

/** A request ended by the WAF: what to answer, and why. */
export interface Interruption {
  readonly action: 'deny' | 'drop' | 'redirect';
  readonly status: number;
  /** The rule that interrupted, 0 when the engine did (a limit, the budget, an internal error). */
  readonly ruleId: number;
  readonly reason: InterruptionReason;
  /** Where `redirect` sends the client. */
  readonly url: string | null;
}

/** Texts this long or longer are scanned for literals once per transaction whatever their case (#markOf). */
const SHARED_SCAN_LENGTH = 64;

const TX = variable('TX');
/** TX:0 … TX:9, where a capturing rule's operator leaves its match and groups. */
const CAPTURE_KEYS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
const NO_FILTERS: readonly TargetFilter[] = [];
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Variables whose cached values a processed body or a response makes stale. */
const BODY_LIFETIME: readonly number[] = lifetimeIds('body');
const RESPONSE_LIFETIME: readonly number[] = lifetimeIds('response');

function lifetimeIds(lifetime: VariableDef['lifetime']): number[] {
  return VARIABLES.filter((def) => def.lifetime === lifetime).map((def) => def.id);
}

/** Whether the mark at `at` holds every literal clause of `rule` (CompiledRule.literalSlot). */
function clausesMarked(rule: CompiledRule, marks: Uint32Array, at: number): boolean {
  const end = rule.literalSlot + rule.literalCount;
  for (let set = rule.literalSlot; set < end; set++) {
    if ((marks[at + (set >>> 5)]! & (1 << (set & 31))) === 0) return false;
  }
  return true;
}

/**
 * Words of #marks a transaction starts with when it first needs one (bench/waf's GET takes 1,300, its POST
 * 3,000); doubled as needed.
 */
const FIRST_MARK_WORDS = 2048;

/**
 * #marks arrays of ended transactions (Transaction.end), zeroed, for the next ones on this thread: a typed
 * array over 64 bytes gets its memory outside the JS heap, which costs microseconds (5–6 µs on the test VM
 * for 8 KB, against 0.06 µs to zero the 1,300 words a GET used), and every transaction needs one. Arrays
 * grown past SPARE_MAX_WORDS are left to the collector rather than kept.
 */
const SPARE_MARKS: Uint32Array[] = [];
const SPARE_COUNT = 4;
const SPARE_MAX_WORDS = 64 * 1024;
const NO_MARKS: Uint32Array = new Uint32Array(0);

/** The value after transformation chain `key` (VarValue.transformed), when a rule computed it already. */
function cachedStep(value: VarValue, key: number): string | undefined {
  const slots = value.transformed;
  if (slots === null) return undefined;
  for (let i = 0; i < slots.length; i += 2) if (slots[i] === key) return slots[i + 1] as string;
  return undefined;
}

function cacheStep(value: VarValue, key: number, text: string): void {
  if (value.transformed === null) value.transformed = [key, text];
  else value.transformed.push(key, text);
}

/**
 * The traits known of what step `step` of the rule's chain made of a text with `traits`, when it changed it: the
 * same plus A–Z if the step had none of its triggers there (it changed case only, and t:uppercase makes
 * capitals, which later t:lowercase and t:cmdLine must not pass over), else none known (all bits).
 */
function traitsAfterChange(rule: CompiledRule, step: number, traits: number): number {
  return (traits & rule.transformStepTriggers[step]!) === 0 ? traits | TRAIT.UPPER : -1;
}

/** The chain key under which a value's lower-cased copy is kept (real chain keys are from 0). */
const LOWERED = -1;

/** The value with A–Z lowered, made once per value and kept with its transformation results. */
function loweredOf(value: VarValue): string {
  let lowered = cachedStep(value, LOWERED);
  if (lowered === undefined) {
    lowered = lowercase(value.value);
    cacheStep(value, LOWERED, lowered);
  }
  return lowered;
}

/** What a rule's marks say of an input: it lacks a clause, it holds them all, or it was not scanned. */
const RULED_OUT = 0;
const CHECKED = 1;
const UNCHECKED = 2;
type Screening = typeof RULED_OUT | typeof CHECKED | typeof UNCHECKED;

/** The value's traits (./transforms/traits.ts), computed on first need and kept on the value. */
function traitsOf(value: VarValue): number {
  if (value.traits === -1) value.traits = textTraits(value.value);
  return value.traits;
}

let uniqueCounter = 0;
const UNIQUE_PREFIX = `${Date.now().toString(36)}${process.pid.toString(36)}`;

export class Transaction implements MacroScope {
  readonly #ruleSet: CompiledRuleSet;
  readonly #limits: EvaluationLimits;
  readonly #data: RequestData;
  readonly #startedAt = performance.now();
  readonly #uniqueId = `${UNIQUE_PREFIX}${(uniqueCounter++).toString(36)}`;

  /** Values per variable id, for variables that are not live. */
  readonly #cache: (readonly VarValue[] | undefined)[];
  /** Per selection id, the values its target list selects (a single target's too: CompiledRule.targetSelections). */
  readonly #selections: (readonly VarValue[] | undefined)[];
  /** Per inputs id (CompiledRule.inputs): the transformed inputs, null when they are the values themselves. */
  readonly #inputs: (readonly string[] | null | undefined)[];
  /**
   * Marks: which sets of CompiledRuleSet.literals a text holds a literal of, `words` 32-bit words each, side
   * by side in one array (a mark is its offset), so that a request allocates no object per mark.
   */
  #marks: Uint32Array = NO_MARKS;
  #marksUsed = 0;
  /**
   * Per text, its mark: a value that transformation chains leave alone (up to case) is scanned once for every
   * rule, not once per chain.
   */
  #markedTexts: TextMarks | null = null;
  /**
   * Per literal group (CompiledRule.literalGroup): where #markGroup keeps it in #marks, -1 until then. A plain
   * array of small integers, on the JS heap: an Int32Array of the CRS's ~85 groups would be allocated outside it.
   */
  readonly #groupMarks: number[];
  /** setvar's collections (TX, IP, …, ENV) by variable id: lower-cased key → value. */
  readonly #stores: (Map<string, VarValue> | undefined)[] = [];
  readonly #captures: Captures = { values: [], count: 0 };

  #matchedName = '';
  #matchedValue = '';
  #hasMatched = false;
  /**
   * MATCHED_VARS of the chain under evaluation: name, value, name, value … in the first #matchedVarsLength
   * slots (the array is overwritten, never truncated: setting an array's length is a V8 runtime call).
   */
  readonly #matchedVars: string[] = [];
  #matchedVarsLength = 0;
  #lastOperator: RuleOperator | null = null;
  /** The chain head under evaluation (RULE, %{rule.*}). */
  #rule: CompiledRule | null = null;
  #expandingMsg = false;

  // ctl: state, for the rest of this transaction.
  #mode: RuleEngineMode;
  /** libmodsecurity's two processor slots: the form type (Content-Type, or ctl) and a ctl's JSON / XML. */
  #formType: FormBodyType | null | undefined = undefined;
  #ctlProcessor: CtlBodyProcessor | null = null;
  #bodyAccess: boolean;
  #forceRequestBody = false;
  #bodyLimit: number;
  readonly #removedIds: IdRange[] = [];
  readonly #removedTags: KeyTest[] = [];
  readonly #removedTargets: { ranges: readonly IdRange[] | null; tag: KeyTest | null; target: TargetFilter }[] = [];
  readonly #filterMemo = new Map<CompiledRule, { seen: number; filters: TargetFilter[] }>();

  #allow: 'none' | 'phase' | 'request' | 'all' = 'none';
  #highestSeverity = 255;
  #budgetLeft: number;
  /** Budget units spent since the clock was last read, and when the running phase must stop (budget.ts). */
  #sinceClock = 0;
  #deadline = Infinity;
  #budgetExceeded = false;
  #regexLimitHit = false;
  #internalError: string | null = null;
  #interruption: Interruption | null = null;
  /** end() was called: no phase runs any more. */
  #ended = false;
  /** The highest phase run so far (0: none). */
  #phase = 0;
  readonly #matches: MatchRecord[] = [];

  constructor(ruleSet: CompiledRuleSet, request: WafRequest, limits: EvaluationLimits) {
    this.#ruleSet = ruleSet;
    this.#limits = limits;
    const { settings } = ruleSet;
    this.#data = new RequestData(request, settings.argumentsLimit);
    this.#mode = settings.ruleEngine;
    this.#bodyAccess = settings.requestBodyAccess;
    this.#bodyLimit = settings.requestBodyLimit;
    this.#budgetLeft = limits.budget;
    this.#cache = new Array<readonly VarValue[] | undefined>(VARIABLE_COUNT);
    this.#selections = new Array<readonly VarValue[] | undefined>(ruleSet.selectionCount);
    this.#inputs = new Array<readonly string[] | null | undefined>(ruleSet.inputsCount);
    this.#groupMarks = new Array<number>(ruleSet.literals.groups.length).fill(-1);
  }

  // ---- Public surface ---------------------------------------------------------------------------------

  /** Every logging rule that matched, in order. */
  get matches(): readonly MatchRecord[] {
    return this.#matches;
  }

  get interruption(): Interruption | null {
    return this.#interruption;
  }

  /** The evaluation budget ran out: some rules were not evaluated. */
  get budgetExceeded(): boolean {
    return this.#budgetExceeded;
  }

  /** Some input was too long for a regex that could only run backtracking, and went unevaluated (count it). */
  get regexLimitExceeded(): boolean {
    return this.#regexLimitHit;
  }

  /** Why evaluation stopped on an engine fault (never on input alone), or null. */
  get internalError(): string | null {
    return this.#internalError;
  }

  get uniqueId(): string {
    return this.#uniqueId;
  }

  /**
   * CRS's inbound anomaly score: TX:anomaly_score once REQUEST-949 has added it up, and before that (a request
   * stopped in phase 1, or a rule set without 949) the sum of the per-paranoia-level scores.
   */
  get anomalyScore(): number {
    const total = this.#txNumber('anomaly_score');
    if (total > 0) return total;
    let sum = 0;
    for (let level = 1; level <= 4; level++) sum += this.#txNumber(`anomaly_score_pl${level}`);
    return sum;
  }

  /** A TX member as the collection holds it, or undefined. */
  txValue(name: string): string | undefined {
    return this.#store(TX).get(name.toLowerCase())?.value;
  }

  /** Phase 1. */
  requestHeaders(): Interruption | null {
    return this.#guard(() => this.#runPhase(1));
  }

  /** Phase 2, after phase 1 if it has not run. `body` is a byte string, null when the request has none. */
  requestBody(body: string | null): Interruption | null {
    return this.#guard(() => {
      if (this.#phase < 1 && this.#runPhase(1) !== null) return this.#interruption;
      if (this.#phase >= 2) return this.#interruption;
      if (this.#interruption === null && this.#mode !== 'Off') this.#processBody(body ?? '');
      return this.#runPhase(2);
    });
  }

  /** Phase 3, after the request phases if they have not run. */
  responseHeaders(response: WafResponse): Interruption | null {
    return this.#guard(() => {
      if (this.#phase < 2 && this.requestBody(null) !== null) return this.#interruption;
      if (this.#phase >= 3) return this.#interruption;
      this.#data.setResponse(response);
      this.#invalidate('response');
      return this.#runPhase(3);
    });
  }

  /**
   * Phase 4. The body is inspected when SecResponseBodyAccess is On and the response's media type is one of
   * SecResponseBodyMimeType's; past SecResponseBodyLimit only the first bytes are (ProcessPartial) or the
   * response is refused (Reject).
   */
  responseBody(body: string | null): Interruption | null {
    return this.#guard(() => {
      if (this.#phase < 3) return this.#interruption;
      if (this.#phase >= 4) return this.#interruption;
      const { settings } = this.#ruleSet;
      if (body !== null && settings.responseBodyAccess && this.#inspectsResponseType()) {
        if (body.length > settings.responseBodyLimit && settings.responseBodyLimitAction === 'Reject' && this.#mode === 'On') {
          return this.#interrupt({ action: 'deny', status: 500, ruleId: 0, reason: 'body_limit', url: null });
        }
        this.#data.setResponseBody(body.length > settings.responseBodyLimit ? body.slice(0, settings.responseBodyLimit) : body);
        this.#invalidate('response');
      }
      return this.#runPhase(4);
    });
  }

  /**
   * The transaction is over: its mark words go back to this thread's spares for the next transaction, and any
   * later phase does nothing (returns the interruption so far). The results (matches, interruption, anomaly
   * score, TX) stay readable. A transaction never ended is simply collected.
   */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const marks = this.#marks;
    this.#marks = NO_MARKS;
    if (marks.length === 0 || marks.length > SPARE_MAX_WORDS || SPARE_MARKS.length >= SPARE_COUNT) return;
    marks.fill(0, 0, this.#marksUsed);
    SPARE_MARKS.push(marks);
  }

  /** Phase 5: logging rules run whatever happened before (they cannot interrupt any more). */
  logging(): void {
    this.#guard(() => {
      if (this.#phase < 5) this.#runPhase(5);
      return null;
    });
  }

  // ---- Phases -----------------------------------------------------------------------------------------

  #guard(run: () => Interruption | null): Interruption | null {
    if (this.#internalError !== null || this.#ended) return this.#interruption;
    try {
      return run();
    } catch (error) {
      this.#internalError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      return this.#failed('internal_error');
    }
  }

  /** The budget ran out or the engine failed: the policy decides (DetectionOnly never blocks). */
  #failed(reason: 'budget' | 'internal_error'): Interruption | null {
    if (this.#limits.onExhausted === 'fail-open' || this.#mode !== 'On' || this.#interruption !== null) return this.#interruption;
    return this.#interrupt({ action: 'deny', status: this.#limits.failClosedStatus, ruleId: 0, reason, url: null });
  }

  #interrupt(interruption: Interruption): Interruption {
    this.#interruption = interruption;
    return interruption;
  }

  #runPhase(phase: Phase): Interruption | null {
    this.#phase = phase;
    if (this.#interruption !== null && phase !== 5) return this.#interruption;
    if (this.#mode === 'Off' || this.#budgetExceeded || this.#internalError !== null) return this.#interruption;
    // ModSecurity v3's RulesSet::evaluate: `allow` skips the request phases (allow:request) or all but
    // logging (allow); allow:phase only the rest of its own phase.
    if ((this.#allow === 'all' && phase !== 5) || (this.#allow === 'request' && phase <= 2)) return null;
    this.#allow = 'none';
    this.#deadline = performance.now() + this.#limits.phaseTimeMs;
    const rules = this.#ruleSet.phases[phase]!;
    let i = 0;
    while (i < rules.length) {
      const rule = rules[i]!;
      // Most rules need literals none of their values holds (116 of the 163 a benign GET evaluated): their
      // group's union says so without evaluating them.
      if (this.#isRemoved(rule) || (rule.literalGroup !== -1 && this.#removedTargets.length === 0 && this.#groupRulesOut(rule))) {
        i++;
        continue;
      }
      this.#rule = rule;
      this.#matchedVarsLength = 0;
      const matched = this.#evaluate(rule);
      if (this.#budgetExceeded) return this.#failed('budget');
      if (matched && rule.shadow) {
        // A rule in detection mode logs its match and changes nothing, the flow included.
        this.#onChainMatch(rule);
        i++;
      } else if (matched) {
        this.#onChainMatch(rule);
        if (this.#interruption !== null && phase !== 5) return this.#interruption;
        if (this.#allow !== 'none') break;
        if (rule.skipTo !== -1) {
          i = rule.skipTo;
          continue;
        }
        i += 1 + rule.skip;
      } else {
        i++;
      }
      if (this.#engineOff()) break;
    }
    this.#rule = null;
    return null;
  }

  /** ctl:ruleEngine=Off stops the rest of the transaction (a method, so the check is re-read after rules ran). */
  #engineOff(): boolean {
    return this.#mode === 'Off';
  }

  #isRemoved(rule: CompiledRule): boolean {
    if (this.#removedIds.length > 0 && inRanges(rule.id, this.#removedIds)) return true;
    if (this.#removedTags.length === 0) return false;
    for (const tag of this.#removedTags) if (rule.tags.some((t) => textMatches(tag, t))) return true;
    return false;
  }

  // ---- Rules ------------------------------------------------------------------------------------------

  /**
   * One link of a chain and, when it matched, the links after it. setvar runs on every matching value as it
   * matches, whatever later links do (ModSecurity v3's executeActionsIndependentOfChainedRuleResult, which CRS
   * relies on by putting its score setvars on the last link); ctl and setenv run once the rest matched.
   */
  #evaluate(rule: CompiledRule): boolean {
    let matched = false;
    if (rule.operator === null) {
      if (!this.#rule!.shadow) for (const setvar of rule.setvars) this.#setVar(setvar);
      matched = true;
    } else {
      const filters = this.#removedTargets.length === 0 ? NO_FILTERS : this.#filtersFor(rule);
      if (rule.selection !== -1 && filters.length === 0 && !rule.multiMatch) {
        matched = this.#inspectSelection(rule);
      } else {
        const { targets } = rule;
        for (let t = 0; t < targets.length && !this.#budgetExceeded; t++) {
          if (this.#inspectTarget(rule, targets[t]!, filters)) matched = true;
        }
      }
      if (this.#budgetExceeded) return false;
    }
    if (!matched) return false;
    if (rule.chain !== null && !this.#evaluate(rule.chain)) return false;
    if (this.#rule!.shadow) return true;
    for (const ctl of rule.ctls) this.#applyCtl(ctl);
    for (const setenv of rule.setenvs) this.#setVar(setenv);
    return true;
  }

  /**
   * A rule whose target list is a cacheable selection (see CompiledRule.selection): its values, and their
   * transformed inputs, come from per-transaction lists that every rule with the same targets (and chain)
   * shares, so most CRS rules cost one operator call per value and nothing else.
   */
  #inspectSelection(rule: CompiledRule): boolean {
    if (rule.literalGroup !== -1) return this.#inspectMarked(rule);
    const values = this.#selection(rule);
    let inputs: readonly string[] | null = null;
    if (rule.inputs !== -1) {
      const cached = this.#inputs[rule.inputs];
      inputs = cached === undefined ? (this.#inputs[rule.inputs] = this.#transformAll(rule, values)) : cached;
    }
    let matched = false;
    for (let i = 0; i < values.length; i++) {
      const input = inputs === null ? values[i]!.value : inputs[i]!;
      if (this.#operatorMatches(rule.operator!, input, rule.capture, false)) {
        this.#onValueMatch(rule, values[i]!, input);
        matched = true;
      }
    }
    return matched;
  }

  /** The rule's chain on each value; null when every value came out as it went in (most, on benign requests). */
  #transformAll(rule: CompiledRule, values: readonly VarValue[]): readonly string[] | null {
    let inputs: string[] | null = null;
    for (let i = 0; i < values.length; i++) {
      const value = values[i]!;
      const input = this.#transform(rule, value);
      if (inputs === null && input !== value.value) {
        inputs = new Array<string>(values.length);
        for (let j = 0; j < i; j++) inputs[j] = values[j]!.value;
      }
      if (inputs !== null) inputs[i] = input;
    }
    return inputs;
  }

  /**
   * No value of the rule's literal group holds every clause its operator needs (their union does not): nothing to
   * run. False past the budget, which the caller finds out.
   */
  #groupRulesOut(rule: CompiledRule): boolean {
    let group = this.#groupMarks[rule.literalGroup]!;
    if (group === -1) group = this.#markGroup(rule);
    if (group === -1) return false;
    const { first } = this.#ruleSet.literals.groups[rule.literalGroup]!;
    return !clausesMarked(rule, this.#marks, this.#marks[group]! - first);
  }

  /**
   * #inspectSelection for a rule with a literal group: the operator runs only on values whose marks hold its
   * clauses, and a value's transformed input is built only then, when its marks came from the value itself.
   */
  #inspectMarked(rule: CompiledRule): boolean {
    // #runPhase asked already, unless a ctl removed targets this transaction.
    if (this.#groupRulesOut(rule)) return false;
    const group = this.#groupMarks[rule.literalGroup]!;
    if (group === -1) return false;
    // The values in the order #markGroup met them.
    const values = this.#selection(rule);
    let matched = false;
    for (let i = 0; i < values.length; i++) {
      if (!clausesMarked(rule, this.#marks, this.#marks[group + 1 + i]!)) continue;
      const value = values[i]!;
      const input = rule.transforms.length === 0 ? value.value : this.#transform(rule, value);
      if (this.#operatorMatches(rule.operator!, input, rule.capture, true)) {
        this.#onValueMatch(rule, value, input);
        matched = true;
      }
    }
    return matched;
  }

  /**
   * The marks of a literal group's values (#groupMarks), each from the text its chain makes of it: the value
   * itself when the chain can change it only in case (./transforms/traits.ts), else the chain's result. The
   * group is kept in #marks, where it starts (-1 when the budget ran out): the offset of the words holding the
   * union (as if from word 0), then each value's mark in #selection's order, so that a request allocates no
   * array per group. The selection is the one every group of the same targets walks (CRS gives a few target
   * lists many transformation chains), built once rather than its key tests run again per group.
   */
  #markGroup(rule: CompiledRule): number {
    const { first, words } = this.#ruleSet.literals.groups[rule.literalGroup]!;
    const values = this.#selection(rule);
    const base = this.#allocate(words);
    const union = base - first;
    const group = this.#allocate(1 + values.length);
    this.#marks[group] = base;
    for (let i = 0; i < values.length; i++) {
      const value = values[i]!;
      let mark: number;
      if ((traitsOf(value) & rule.transformTriggers) === 0) {
        mark = this.#valueMark(value);
      } else {
        mark = this.#markOf(this.#transform(rule, value));
      }
      if (mark === -1) return -1;
      // Read after #markOf, which may have grown #marks into a new array.
      const marks = this.#marks;
      marks[group + 1 + i] = mark;
      for (let w = first; w < first + words; w++) marks[union + w]! |= marks[mark + w]!;
    }
    this.#groupMarks[rule.literalGroup] = group;
    return group;
  }

  /** Whether `input` holds every literal clause of `rule`; true for rules without. */
  #mayMatch(rule: CompiledRule, value: VarValue, input: string): boolean {
    if (rule.literalCount === 0) return true;
    const mark = input === value.value ? this.#valueMark(value) : this.#markOf(input);
    return mark !== -1 && clausesMarked(rule, this.#marks, mark);
  }

  /**
   * The mark of the value's own text, kept on the value. A short one is scanned without going through
   * #markedTexts: its text is seldom another's, and finding it there costs a hash of a string the request just
   * made, plus two Map operations, for each of a request's ~40 values. A long one goes through #markOf, where
   * its lower-case form (made by a chain) finds the same scan.
   */
  #valueMark(value: VarValue): number {
    if (value.mark === -1) value.mark = value.value.length < SHARED_SCAN_LENGTH ? this.#scan(value.value) : this.#markOf(value.value);
    return value.mark;
  }

  /** The mark of `text`, scanned once per transaction (one evaluation in the budget); -1 past the budget. */
  #markOf(text: string): number {
    const texts = (this.#markedTexts ??= new TextMarks());
    let mark = texts.get(text);
    if (mark !== undefined) return mark;
    // The scan folds A–Z: a long text and its lower-case form (many chains end in t:lowercase) share one scan,
    // for the cost of lowering and finding it, a fraction of a scan's.
    const folded = text.length < SHARED_SCAN_LENGTH ? text : lowercase(text);
    mark = folded === text ? undefined : texts.get(folded);
    if (mark === undefined) {
      mark = this.#scan(text);
      if (mark === -1) return -1;
      if (folded !== text) texts.set(folded, mark);
    }
    texts.set(text, mark);
    return mark;
  }

  /** A fresh mark of `text` (one evaluation in the budget); -1 past the budget. */
  #scan(text: string): number {
    if (!this.#spend(evaluationCost(text))) return -1;
    const { sets } = this.#ruleSet.literals;
    const mark = this.#allocate(sets.words);
    sets.scan(text, this.#marks, mark);
    return mark;
  }

  /** `words` fresh, zero words of #marks, by offset. */
  #allocate(words: number): number {
    if (this.#marksUsed + words > this.#marks.length) {
      const spare = this.#marks.length === 0 ? SPARE_MARKS.pop() : undefined;
      if (spare !== undefined && spare.length >= words) {
        this.#marks = spare;
      } else {
        const grown = new Uint32Array(Math.max(2 * this.#marks.length, FIRST_MARK_WORDS, words));
        grown.set(this.#marks);
        this.#marks = grown;
      }
    }
    const at = this.#marksUsed;
    this.#marksUsed += words;
    return at;
  }

  /** The values the rule's target list selects, in order, kept per selection id (CompiledRule.selection). */
  #selection(rule: CompiledRule): readonly VarValue[] {
    let values = this.#selections[rule.selection];
    if (values === undefined) {
      const { targets, targetSelections } = rule;
      if (targets.length === 1) {
        values = this.#targetValues(targets[0]!, targetSelections[0]!);
      } else {
        let count = 0;
        for (let t = 0; t < targets.length; t++) count += this.#targetValues(targets[t]!, targetSelections[t]!).length;
        const selected = new Array<VarValue>(count);
        let at = 0;
        for (let t = 0; t < targets.length; t++) {
          const part = this.#selections[targetSelections[t]!]!;
          for (let i = 0; i < part.length; i++) selected[at++] = part[i]!;
        }
        values = selected;
      }
      this.#selections[rule.selection] = values;
    }
    return values;
  }

  /** The values one target selects, kept under its own selection id (CompiledRule.targetSelections). */
  #targetValues(target: Target, selection: number): readonly VarValue[] {
    let values = this.#selections[selection];
    if (values === undefined) {
      if (target.key === null && target.exclusions.length === 0) {
        // A whole variable: its values as they are, not a copy.
        values = this.#values(target.variable);
      } else {
        const selected: VarValue[] = [];
        for (const value of this.#values(target.variable)) if (this.#selects(target, value)) selected.push(value);
        values = selected;
      }
      this.#selections[selection] = values;
    }
    return values;
  }

  /** Whether a selection takes `value` of its target's variable: its key picks it, no exclusion drops it. */
  #selects(target: Target, value: VarValue): boolean {
    return (target.key === null || keySelects(target.key, value)) && this.#selectable(target, value, NO_FILTERS);
  }

  #inspectTarget(rule: CompiledRule, target: Target, filters: readonly TargetFilter[]): boolean {
    if (target.count) return this.#inspect(rule, this.#countOf(target, filters));
    const def = target.variable;
    const key = target.key;
    if (def.shape === 'store' && key !== null && key.kind === 'name') {
      const value = this.#store(def).get(key.lower);
      return value !== undefined && this.#selectable(target, value, filters) && this.#inspect(rule, value);
    }
    // A collection is read in place, not copied whole: CRS 920450 reads TX:/^header_name_/ once per header.
    const values = def.shape === 'store' ? this.#storeMembers(def, key) : this.#values(def);
    const keyed = def.shape === 'store' ? null : key;
    const screened = target.exclusions.length !== 0 || filters.length !== 0;
    let matched = false;
    for (let i = 0; i < values.length; i++) {
      const value = values[i]!;
      if (keyed !== null && !keySelects(keyed, value)) continue;
      if (screened && !this.#selectable(target, value, filters)) continue;
      if (this.#inspect(rule, value)) matched = true;
    }
    return matched;
  }

  /** Not excluded by the rule (`!ARGS:foo`) nor by a ctl:ruleRemoveTarget* of this transaction. */
  #selectable(target: Target, value: VarValue, filters: readonly TargetFilter[]): boolean {
    for (const exclusion of target.exclusions) if (keySelects(exclusion, value)) return false;
    for (const filter of filters) if (filterRemoves(filter, target.variable, value)) return false;
    return true;
  }

  /** `&VAR`: how many values the selection holds, as the one value the operator sees. */
  #countOf(target: Target, filters: readonly TargetFilter[]): VarValue {
    const def = target.variable;
    const key = target.key;
    let count = 0;
    if (def.shape === 'store' && key !== null && key.kind === 'name') {
      const value = this.#store(def).get(key.lower);
      if (value !== undefined && this.#selectable(target, value, filters)) count = 1;
    } else {
      const values = def.shape === 'store' ? this.#storeMembers(def, key) : this.#values(def);
      for (const value of values) {
        if ((key === null || keySelects(key, value)) && this.#selectable(target, value, filters)) count++;
      }
    }
    const member = key !== null && key.kind === 'name' ? key.lower : '';
    return makeValue(def.name, member, String(count), member);
  }

  /** Transformations and operator on one value; true when the operator matched. */
  #inspect(rule: CompiledRule, value: VarValue): boolean {
    if (rule.multiMatch) return this.#inspectEach(rule, value);
    const input = rule.transforms.length === 0 ? value.value : this.#transform(rule, value);
    if (!this.#mayMatch(rule, value, input) || !this.#operatorMatches(rule.operator!, input, rule.capture, rule.literalCount > 0)) return false;
    this.#onValueMatch(rule, value, input);
    return true;
  }

  /**
   * multiMatch: the operator on the value as it was and after every transformation that changed it (as Coraza
   * and ModSecurity evaluate it; an unchanged value would only repeat the same evaluation).
   */
  #inspectEach(rule: CompiledRule, value: VarValue): boolean {
    let matched = false;
    let input = value.value;
    // The value's traits hold for `input` until a step changes more than case: a step it cannot trigger is
    // passed over without a call or a cache lookup.
    let traits = traitsOf(value);
    for (let i = -1; i < rule.transforms.length; i++) {
      if (i >= 0) {
        if ((traits & rule.transformIdentities[i]!) === 0) continue;
        const next = this.#transformStep(rule, value, i, input);
        if (next === input) continue;
        traits = traitsAfterChange(rule, i, traits);
        input = next;
      }
      const screened = this.#screenIfScanned(rule, i < 0 ? value : null, input);
      if (screened !== RULED_OUT && this.#operatorMatches(rule.operator!, input, rule.capture, screened === CHECKED)) {
        this.#onValueMatch(rule, value, input);
        matched = true;
      }
    }
    return matched;
  }

  /**
   * #mayMatch for the steps of a multiMatch chain: a text already scanned (the value itself, or a step other
   * rules share) is judged by its mark, but a text no rule scanned yet goes to the operator unchecked, whose
   * own prefilter holds just its clauses (@rx) or is the search itself (@pm): scanning a 2 KiB step for every
   * rule's literals to decide one rule cost more than the operator.
   */
  #screenIfScanned(rule: CompiledRule, value: VarValue | null, input: string): Screening {
    if (rule.literalCount === 0) return UNCHECKED;
    const mark = value !== null && value.mark !== -1 ? value.mark : this.#markedTexts?.get(input);
    if (mark === undefined) return UNCHECKED;
    return clausesMarked(rule, this.#marks, mark) ? CHECKED : RULED_OUT;
  }

  /**
   * The rule's transformation chain on a value, through the per-transaction cache kept on the value: the
   * longest cached prefix of the chain is the starting point, and every step computed is cached for the
   * rules that follow (CRS rules share long prefixes such as t:none,t:utf8toUnicode,t:urlDecodeUni).
   */
  #transform(rule: CompiledRule, value: VarValue): string {
    const traits = traitsOf(value);
    // No step can act on the value: it comes out as it went in.
    if ((traits & rule.transformIdentity) === 0) return value.value;
    // Steps can only lower its capitals: every such chain gets the one lower-cased copy, not its own (a form's
    // message met a dozen chains ending in t:lowercase or t:cmdLine, each lowering 1.6 KB and each result
    // looked up again by #markOf).
    if ((traits & rule.transformTriggers) === 0 && rule.transformLowers) return loweredOf(value);
    const { transforms, transformKeys } = rule;
    const last = transforms.length - 1;
    let start = 0;
    let current = value.value;
    for (let i = last; i >= 0; i--) {
      const hit = cachedStep(value, transformKeys[i]!);
      if (hit !== undefined) {
        if (i === last) return hit;
        current = hit;
        start = i + 1;
        break;
      }
    }
    // As in #inspectEach: until `known` is all bits, the steps so far changed at most case, so `current` is the
    // value up to case and has its traits; a step they cannot trigger is passed over uncalled, and a lowering
    // step none of whose triggers is there gives the value's lower-cased copy. A cached prefix may have
    // changed more: all bits.
    let known = start === 0 ? traits : -1;
    for (let i = start; i <= last; i++) {
      if ((known & rule.transformIdentities[i]!) !== 0) {
        const lowersOnly = (known & rule.transformStepTriggers[i]!) === 0;
        const next = lowersOnly && rule.transformStepLowers[i]! ? loweredOf(value) : transforms[i]!(current);
        if (next !== current) {
          known = traitsAfterChange(rule, i, known);
          current = next;
        }
        cacheStep(value, transformKeys[i]!, current);
      } else if (i === last) {
        cacheStep(value, transformKeys[i]!, current);
      }
    }
    return current;
  }

  /** Takes `cost` from the budget and reads the clock when due; false (and the budget flagged) when it ran out. */
  #spend(cost: number): boolean {
    this.#budgetLeft -= cost;
    this.#sinceClock += cost;
    if (this.#sinceClock >= CLOCK_EVERY_UNITS) {
      this.#sinceClock = 0;
      if (performance.now() > this.#deadline) this.#budgetLeft = -1;
    }
    if (this.#budgetLeft >= 0) return true;
    this.#budgetExceeded = true;
    return false;
  }

  /** Step `i` of the rule's chain on `input` (the result of steps 0 … i − 1), through the value's cache. */
  #transformStep(rule: CompiledRule, value: VarValue, i: number, input: string): string {
    const key = rule.transformKeys[i]!;
    let output = cachedStep(value, key);
    if (output === undefined) {
      output = rule.transforms[i]!(input);
      cacheStep(value, key, output);
    }
    return output;
  }

  /**
   * The operator on one input, within the budget (an exhausted budget reads as no match; the phase stops).
   * `checked`: the input holds every literal clause of the operator (the rule's marks say so), which the
   * operator need not search for again.
   */
  #operatorMatches(operator: RuleOperator, input: string, capture: boolean, checked: boolean): boolean {
    const compiled = operator.compiled ?? operator.dynamic!.build(expandMacro(operator.dynamic!.argument, this));
    if (compiled === null) return false;
    if (input.length > operator.maxInputLength) {
      this.#regexLimitExceeded();
      return false;
    }
    if (!this.#spend(evaluationCost(input))) return false;
    const captures = capture ? this.#captures : null;
    if (captures !== null) captures.count = 0;
    const found = checked && compiled.matchChecked !== undefined ? compiled.matchChecked(input, captures) : compiled.match(input, captures);
    if (captures !== null && found && !operator.negated) {
      // TX:0 … TX:9, as ModSecurity's capture stores them on each match.
      const tx = this.#store(TX);
      for (let i = 0; i < captures.count; i++) tx.set(CAPTURE_KEYS[i]!, makeValue('TX', CAPTURE_KEYS[i]!, captures.values[i]!, CAPTURE_KEYS[i]!));
    }
    return found !== operator.negated;
  }

  /**
   * An input too long for a pattern only the backtracking regex engine runs was not evaluated: the rule does
   * not match on it, and TX:MSC_PCRE_LIMITS_EXCEEDED is set, as ModSecurity sets it when PCRE gives up
   * (ModSecurity's recommended rule 200005 refuses such requests; CRS alone does not).
   */
  #regexLimitExceeded(): void {
    this.#regexLimitHit = true;
    this.#store(TX).set('msc_pcre_limits_exceeded', makeValue('TX', 'MSC_PCRE_LIMITS_EXCEEDED', '1', 'msc_pcre_limits_exceeded'));
  }

  #onValueMatch(rule: CompiledRule, value: VarValue, input: string): void {
    const name = valueName(value);
    this.#matchedName = name;
    this.#matchedValue = input;
    this.#hasMatched = true;
    const slot = this.#matchedVarsLength;
    this.#matchedVars[slot] = name;
    this.#matchedVars[slot + 1] = input;
    this.#matchedVarsLength = slot + 2;
    this.#lastOperator = rule.operator;
    if (!this.#rule!.shadow) for (const setvar of rule.setvars) this.#setVar(setvar);
  }

  /** The whole chain matched: log, then the disruptive action (only with the engine On). */
  #onChainMatch(rule: CompiledRule): void {
    if (!rule.shadow && rule.severity !== null && rule.severity < this.#highestSeverity) this.#highestSeverity = rule.severity;
    let interruption: Interruption | null = null;
    // Logging (phase 5) comes after the response: nothing can be interrupted any more.
    if (this.#mode === 'On' && rule.phase !== 5 && !rule.shadow) {
      const action = rule.disruptive;
      switch (action.kind) {
        case 'deny':
        case 'drop':
          interruption = { action: action.kind, status: rule.status ?? 403, ruleId: rule.id, reason: 'rule', url: null };
          break;
        case 'redirect': {
          const status = rule.status !== null && REDIRECT_STATUSES.has(rule.status) ? rule.status : 302;
          interruption = { action: 'redirect', status, ruleId: rule.id, reason: 'rule', url: expandMacro(action.url, this) };
          break;
        }
        case 'allow':
          this.#allow = action.scope;
          break;
        case 'pass':
          break;
      }
    }
    if (rule.log) this.#matches.push(this.#record(rule, interruption));
    if (interruption !== null) this.#interrupt(interruption);
  }

  #record(rule: CompiledRule, interruption: Interruption | null): MatchRecord {
    const operator = this.#lastOperator;
    return {
      ruleId: rule.id,
      phase: rule.phase,
      msg: rule.msg === null ? '' : expandMacro(rule.msg, this),
      data: rule.logdata === null ? '' : bounded(expandMacro(rule.logdata, this)),
      severity: rule.severity,
      tags: rule.tags,
      ver: rule.ver,
      rev: rule.rev,
      maturity: rule.maturity,
      accuracy: rule.accuracy,
      file: rule.file,
      line: rule.line,
      variable: rule.operator === null ? '' : this.#matchedName,
      value: rule.operator === null ? '' : bounded(this.#matchedValue),
      operator: operator?.name ?? 'unconditionalMatch',
      operatorArgument: operator?.argument ?? '',
      action: rule.actionName,
      disruptive: interruption !== null,
      status: interruption?.status ?? null,
      shadow: rule.shadow,
    };
  }

  // ---- Actions ----------------------------------------------------------------------------------------

  #setVar(setvar: SetVar): void {
    const store = this.#store(setvar.collection);
    const key = expandMacro(setvar.key, this);
    const lower = setvar.keyLower ?? key.toLowerCase();
    const existing = store.get(lower);
    const value = setVarResult(setvar.op, existing?.value, setvar.op === 'delete' ? '' : expandMacro(setvar.value, this));
    if (value === null) {
      store.delete(lower);
      return;
    }
    if (existing === undefined && store.size >= MAX_STORE_ENTRIES) return;
    store.set(lower, makeValue(setvar.collection.name, existing?.key ?? key, value, lower));
  }

  #applyCtl(ctl: Ctl): void {
    switch (ctl.kind) {
      case 'ruleRemoveById':
        this.#removedIds.push(...ctl.ranges);
        break;
      case 'ruleRemoveByTag':
        this.#removedTags.push(ctl.tag);
        break;
      case 'ruleRemoveTargetById':
        this.#removedTargets.push({ ranges: ctl.ranges, tag: null, target: ctl.target });
        break;
      case 'ruleRemoveTargetByTag':
        this.#removedTargets.push({ ranges: null, tag: ctl.tag, target: ctl.target });
        break;
      case 'ruleEngine':
        this.#mode = ctl.mode;
        break;
      case 'requestBodyProcessor':
        if (ctl.processor === 'JSON' || ctl.processor === 'XML') this.#ctlProcessor = ctl.processor;
        else this.#formType = ctl.processor;
        break;
      case 'requestBodyAccess':
        this.#bodyAccess = ctl.on;
        break;
      case 'requestBodyLimit':
        this.#bodyLimit = ctl.bytes;
        break;
      case 'forceRequestBodyVariable':
        this.#forceRequestBody = ctl.on;
        break;
    }
  }

  /**
   * The ctl target removals that apply to a rule, worked out once per (rule, removal) in a transaction: tag
   * patterns are regexes, and a rule is evaluated against each removal only when the removal is new.
   */
  #filtersFor(rule: CompiledRule): readonly TargetFilter[] {
    let memo = this.#filterMemo.get(rule);
    if (memo === undefined) {
      memo = { seen: 0, filters: [] };
      this.#filterMemo.set(rule, memo);
    }
    const removals = this.#removedTargets;
    for (; memo.seen < removals.length; memo.seen++) {
      const removal = removals[memo.seen]!;
      const applies =
        removal.ranges !== null ? inRanges(rule.id, removal.ranges) : rule.tags.some((tag) => textMatches(removal.tag!, tag));
      if (applies) memo.filters.push(removal.target);
    }
    return memo.filters;
  }

  // ---- Body -------------------------------------------------------------------------------------------

  /** The body processor, as libmodsecurity 3 picks it (./body/index.ts). */
  #processor(): BodyProcessorKind | null {
    this.#formType ??= bodyTypeFromContentType(this.#data.contentType);
    return resolveBodyProcessor(this.#formType, this.#ctlProcessor);
  }

  #processBody(body: string): void {
    const { settings } = this.#ruleSet;
    const over = body.length > this.#bodyLimit;
    if (over && settings.requestBodyLimitAction === 'Reject' && this.#mode === 'On') {
      // libmodsecurity 3 answers 413 while the body is appended, before phase 2 (Transaction::appendRequestBody).
      this.#interrupt({ action: 'deny', status: 413, ruleId: 0, reason: 'body_limit', url: null });
      return;
    }
    const inspected = over ? body.slice(0, this.#bodyLimit) : body;
    this.#data.setBody(
      processRequestBody(inspected, {
        processor: this.#processor(),
        access: this.#bodyAccess,
        forceRequestBody: this.#forceRequestBody,
        contentType: this.#data.contentType,
        settings,
        argumentsLeft: this.#data.argumentsLeft,
        limitExceeded: over,
      }),
    );
    this.#invalidate('body');
  }

  #inspectsResponseType(): boolean {
    const type = this.#data.values(variable('RESPONSE_CONTENT_TYPE'))[0]?.value ?? '';
    const media = type.split(';')[0]!.trim().toLowerCase();
    return this.#ruleSet.settings.responseBodyMimeTypes.includes(media);
  }

  // ---- Variables --------------------------------------------------------------------------------------

  /**
   * A body was processed or a response arrived: the values of that lifetime's variables go, and so do the
   * selections, inputs and literal groups built from them (CompiledRuleSet.staleAfter); those of the request's
   * line and headers stay.
   */
  #invalidate(lifetime: 'body' | 'response'): void {
    for (const id of lifetime === 'body' ? BODY_LIFETIME : RESPONSE_LIFETIME) this.#cache[id] = undefined;
    const stale = this.#ruleSet.staleAfter[lifetime];
    for (const id of stale.selections) this.#selections[id] = undefined;
    for (const id of stale.inputs) this.#inputs[id] = undefined;
    for (const id of stale.groups) this.#groupMarks[id] = -1;
  }

  #store(def: VariableDef): Map<string, VarValue> {
    let store = this.#stores[def.id];
    if (store === undefined) {
      store = new Map();
      this.#stores[def.id] = store;
    }
    return store;
  }

  #values(def: VariableDef): readonly VarValue[] {
    if (def.lifetime === 'live') return this.#liveValues(def);
    let values = this.#cache[def.id];
    if (values === undefined) {
      values = this.#data.values(def);
      this.#cache[def.id] = values;
    }
    return values;
  }

  /**
   * The members of a collection a key selects (all without a key), as a list of their own: setvar may change
   * the collection while the rule's actions run on them.
   */
  #storeMembers(def: VariableDef, key: KeyTest | null): VarValue[] {
    const members: VarValue[] = [];
    for (const value of this.#store(def).values()) if (key === null || keySelects(key, value)) members.push(value);
    return members;
  }

  /** Variables that change while rules run: computed on every read. */
  #liveValues(def: VariableDef): VarValue[] {
    if (def.shape === 'store') return [...this.#store(def).values()];
    switch (def.name) {
      case 'MATCHED_VAR':
        return this.#hasMatched ? [makeValue(def.name, '', this.#matchedValue)] : [];
      case 'MATCHED_VAR_NAME':
        return this.#hasMatched ? [makeValue(def.name, '', this.#matchedName)] : [];
      case 'MATCHED_VARS':
      case 'MATCHED_VARS_NAMES': {
        const values: VarValue[] = [];
        for (let i = 0; i < this.#matchedVarsLength; i += 2) {
          const name = this.#matchedVars[i]!;
          values.push(makeValue(def.name, name, def.name === 'MATCHED_VARS' ? this.#matchedVars[i + 1]! : name));
        }
        return values;
      }
      case 'RULE':
        return RULE_MEMBERS.flatMap((member) => {
          const value = this.#ruleMember(member);
          return value === null ? [] : [makeValue(def.name, member, value)];
        });
      case 'REQBODY_PROCESSOR':
        // '' without a processor, as ModSecurity 2 gives it: CRS 901340 `!@rx (?:URLENCODED|…)` must match then
        // to force REQUEST_BODY for other content types (libmodsecurity 3 leaves the variable unset).
        return [makeValue(def.name, '', this.#processor() ?? '')];
      case 'HIGHEST_SEVERITY':
        return [makeValue(def.name, '', String(this.#highestSeverity))];
      case 'UNIQUE_ID':
        return [makeValue(def.name, '', this.#uniqueId)];
      case 'DURATION':
        // Microseconds since the transaction began, as ModSecurity 2.9 defines DURATION.
        return [makeValue(def.name, '', String(Math.round((performance.now() - this.#startedAt) * 1000)))];
      default:
        return timeValues(def);
    }
  }

  #ruleMember(member: string): string | null {
    const rule = this.#rule;
    if (rule === null) return null;
    switch (member) {
      case 'id':
        return String(rule.id);
      case 'msg': {
        // A msg quoting %{rule.msg} would expand itself forever: inside its own expansion it reads as ''.
        if (rule.msg === null || this.#expandingMsg) return '';
        this.#expandingMsg = true;
        try {
          return expandMacro(rule.msg, this);
        } finally {
          this.#expandingMsg = false;
        }
      }
      case 'logdata':
        return rule.logdata === null ? '' : expandMacro(rule.logdata, this);
      case 'severity':
        return rule.severity === null ? null : String(rule.severity);
      case 'rev':
        return rule.rev;
      case 'ver':
        return rule.ver;
      case 'phase':
        return String(rule.phase);
      case 'maturity':
        return rule.maturity === null ? null : String(rule.maturity);
      case 'accuracy':
        return rule.accuracy === null ? null : String(rule.accuracy);
      default:
        return null;
    }
  }

  /** MacroScope: the first value of a variable, or of one of its members; '' when there is none. */
  macroValue(ref: MacroRef): string {
    const def = ref.variable;
    if (def.shape === 'store') {
      const store = this.#store(def);
      if (ref.key !== null) return store.get(ref.key)?.value ?? '';
      for (const value of store.values()) return value.value;
      return '';
    }
    if (def.name === 'RULE') return ref.key === null ? '' : (this.#ruleMember(ref.key) ?? '');
    for (const value of this.#values(def)) if (ref.key === null || value.keyLower === ref.key) return value.value;
    return '';
  }

  #txNumber(name: string): number {
    return leadingInteger(this.#store(TX).get(name)?.value ?? '0');
  }
}

const RULE_MEMBERS = ['id', 'msg', 'logdata', 'severity', 'rev', 'ver', 'phase', 'maturity', 'accuracy'] as const;

function inRanges(id: number, ranges: readonly IdRange[]): boolean {
  for (const range of ranges) if (id >= range.from && id <= range.to) return true;
  return false;
}

function bounded(text: string): string {
  return text.length <= MAX_LOGGED_BYTES ? text : text.slice(0, MAX_LOGGED_BYTES);
}

/** TIME, TIME_DAY … in local time, as ModSecurity formats them. */
function timeValues(def: VariableDef): VarValue[] {
  const now = new Date();
  const two = (n: number) => String(n).padStart(2, '0');
  let value: string;
  switch (def.name) {
    case 'TIME':
      value = `${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())}`;
      break;
    case 'TIME_DAY':
      value = two(now.getDate());
      break;
    case 'TIME_EPOCH':
      value = String(Math.floor(now.getTime() / 1000));
      break;
    case 'TIME_HOUR':
      value = two(now.getHours());
      break;
    case 'TIME_MIN':
      value = two(now.getMinutes());
      break;
    case 'TIME_MON':
      value = two(now.getMonth() + 1);
      break;
    case 'TIME_SEC':
      value = two(now.getSeconds());
      break;
    case 'TIME_WDAY':
      value = String(now.getDay());
      break;
    case 'TIME_YEAR':
      value = String(now.getFullYear());
      break;
    default:
      return [];
  }
  return [makeValue(def.name, '', value)];
}
