// The compiled rule set: what ./compile.ts builds from SecLang directives and ./transaction.ts runs. Plain
// immutable data shared by every transaction of a thread (the only mutable part is the memo of operators
// built from expanded macro arguments, which only grows within a bound). Everything a rule needs at run
// time is resolved here: transformation functions, operators, variable selectors, skipAfter positions.

import type { LiteralSets } from './aho-corasick.ts';
import type { BodyProcessorKind } from './body/index.ts';
import type { Macro } from './macros.ts';
import type { CompiledOperator } from './operators/types.ts';
import type { EngineSettings, RuleEngineMode } from './settings.ts';
import type { Transform } from './transforms/types.ts';
import type { VariableDef } from './variables.ts';

export type Phase = 1 | 2 | 3 | 4 | 5;
export const PHASES: readonly Phase[] = [1, 2, 3, 4, 5];

/** How a selector key picks members: by name (case-insensitive), by regex, or an XPath of XML:. */
export type KeyTest =
  | { readonly kind: 'name'; readonly lower: string }
  | { readonly kind: 'regex'; readonly source: string; readonly test: (key: string) => boolean }
  | { readonly kind: 'xpath'; readonly path: XmlPath };

/**
 * The XPaths XML: supports, the two CRS uses: `/*` (the text of the whole document, as the string value of
 * the root element) and `//@*` (every attribute value).
 */
export type XmlPath = '/*' | '//@*';

/** One variable of a rule's target list, with the exclusions (`!VAR:key`) that apply to it. */
export interface Target {
  readonly variable: VariableDef;
  readonly key: KeyTest | null;
  /** `&VAR`: inspect how many values the selection has instead of the values. */
  readonly count: boolean;
  readonly exclusions: readonly KeyTest[];
}

/** A target a `ctl:ruleRemoveTarget*` takes away for one transaction: a whole variable or some members. */
export interface TargetFilter {
  readonly variable: VariableDef;
  readonly key: KeyTest | null;
}

export interface RuleOperator {
  /** As written, without `@` (`rx`, `pmFromFile`): for the match log. */
  readonly name: string;
  readonly argument: string;
  readonly negated: boolean;
  /** Built at compile time when the argument holds no macro. */
  readonly compiled: CompiledOperator | null;
  /**
   * Inputs longer than this are not evaluated (./operators/rx.ts: a pattern only the backtracking regex engine
   * can run); the transaction records that as ModSecurity records a PCRE limit error. Infinity otherwise.
   */
  readonly maxInputLength: number;
  /** Otherwise how to get the operator for the argument as expanded in a transaction. */
  readonly dynamic: DynamicOperator | null;
}

export interface DynamicOperator {
  readonly argument: Macro;
  /** The operator for an expanded argument, memoized; null when that argument does not compile. */
  build(expanded: string): CompiledOperator | null;
}

export type SetVarOp = 'set' | 'add' | 'subtract' | 'delete';

export interface SetVar {
  /** TX or one of the persistent-collection stand-ins. */
  readonly collection: VariableDef;
  readonly key: Macro;
  /** The key lower-cased, when it holds no macro (most do): spares a lower-casing per execution. */
  readonly keyLower: string | null;
  readonly op: SetVarOp;
  readonly value: Macro;
}

export interface IdRange {
  readonly from: number;
  readonly to: number;
}

/** The `ctl:` options that change how the rest of one transaction runs. */
export type Ctl =
  | { readonly kind: 'ruleRemoveById'; readonly ranges: readonly IdRange[] }
  | { readonly kind: 'ruleRemoveByTag'; readonly tag: KeyTest }
  | { readonly kind: 'ruleRemoveTargetById'; readonly ranges: readonly IdRange[]; readonly target: TargetFilter }
  | { readonly kind: 'ruleRemoveTargetByTag'; readonly tag: KeyTest; readonly target: TargetFilter }
  | { readonly kind: 'ruleEngine'; readonly mode: RuleEngineMode }
  | { readonly kind: 'requestBodyProcessor'; readonly processor: BodyProcessorKind }
  | { readonly kind: 'requestBodyAccess'; readonly on: boolean }
  | { readonly kind: 'forceRequestBodyVariable'; readonly on: boolean }
  | { readonly kind: 'requestBodyLimit'; readonly bytes: number };

/** What a fully matched rule does to the transaction. `block` is resolved at compile time (see compile.ts). */
export type Disruptive =
  | { readonly kind: 'pass' }
  | { readonly kind: 'deny' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'redirect'; readonly url: Macro }
  /** allow: `phase` ends the phase, `request` phases 1-2, `all` everything but logging (ModSecurity v3's AllowType). */
  | { readonly kind: 'allow'; readonly scope: 'phase' | 'request' | 'all' };

export interface CompiledRule {
  /** The chain head's id; chained rules carry their head's. */
  readonly id: number;
  readonly phase: Phase;
  readonly file: string;
  readonly line: number;
  /** Empty for SecAction. */
  readonly targets: readonly Target[];
  /** null for SecAction, which always matches once. */
  readonly operator: RuleOperator | null;
  readonly transforms: readonly Transform[];
  /**
   * `transformKeys[i]` names the chain of transforms 0..i among all rules of the set, so a transaction can
   * cache the value a chain produced and a rule sharing a prefix of it starts from there.
   */
  readonly transformKeys: readonly number[];
  readonly transformNames: readonly string[];
  /** The chain's transformation triggers (./transforms/traits.ts): a value with none of them comes out up to case. */
  readonly transformTriggers: number;
  /**
   * Per step, its triggers (what it may act on beyond case) and its identity triggers (a text with none of
   * those comes out as it went in), as ./transforms/traits.ts defines them.
   */
  readonly transformStepTriggers: readonly number[];
  readonly transformIdentities: readonly number[];
  /** All steps' identity triggers: a value with none of them is its own chain's result. */
  readonly transformIdentity: number;
  /** A value with none of transformTriggers comes out with A–Z lowered (./transforms/traits.ts chainLowers). */
  readonly transformLowers: boolean;
  /** Per step, the same for the step alone (t:lowercase, t:cmdLine). */
  readonly transformStepLowers: readonly boolean[];
  /**
   * Rules with the same target list share a selection: for a target list whose values a transaction computes
   * once (no count, no TX-like or other live variable), the values it selects, in order, are the same for all
   * of them, so the transaction keeps that list per selection id. -1 when the list is not cacheable.
   */
  readonly selection: number;
  /**
   * With a selection, the selection id of each target alone: a list is built by joining its targets' values,
   * each of which a transaction works out once for all lists that name it (CRS names
   * `REQUEST_COOKIES|!REQUEST_COOKIES:/__utm/` in some fifteen lists, `REQUEST_HEADERS:User-Agent` in six).
   * Empty when selection is -1.
   */
  readonly targetSelections: readonly number[];
  /** Likewise for (selection, transformation chain): the transformed inputs, kept per transaction. -1 if none. */
  readonly inputs: number;
  /**
   * The operator's required literal clauses are sets literalSlot … literalSlot + literalCount − 1 of
   * CompiledRuleSet.literals (literalCount 0: none): one scan of an input marks the clauses it holds, and the
   * operator does not run on an input missing one of them (./transaction.ts). literalGroup is the literal
   * group of the rules with the same selection and transformation chain (-1: none, as for multiMatch), whose
   * inputs' marks a transaction keeps together with their union, so that a rule none of them can match is
   * passed over at once.
   */
  readonly literalGroup: number;
  readonly literalSlot: number;
  readonly literalCount: number;
  readonly multiMatch: boolean;
  readonly capture: boolean;
  /** Run for every matching value, whatever the rest of the chain does (ModSecurity v3 does so too). */
  readonly setvars: readonly SetVar[];
  /** setenv: ENV members for this transaction. */
  readonly setenvs: readonly SetVar[];
  /** Run once this rule and the rest of its chain matched. */
  readonly ctls: readonly Ctl[];
  readonly chain: CompiledRule | null;

  // What follows only means something on a chain head.
  /** Detection mode for this rule alone: it matches and logs, and changes nothing (see shadow_by_id). */
  readonly shadow: boolean;
  readonly disruptive: Disruptive;
  /** The action as written, `block` included, for the match log. */
  readonly actionName: string;
  readonly status: number | null;
  readonly skip: number;
  readonly skipAfter: string | null;
  /** Index in the phase's rule list where evaluation resumes after skipAfter; -1 without one. */
  readonly skipTo: number;
  readonly log: boolean;
  readonly auditLog: boolean;
  readonly msg: Macro | null;
  readonly logdata: Macro | null;
  /** 0 (EMERGENCY) … 7 (DEBUG). */
  readonly severity: number | null;
  readonly tags: readonly string[];
  readonly ver: string;
  readonly rev: string;
  readonly maturity: number | null;
  readonly accuracy: number | null;
}

/** The words of a mark (first … first + words − 1) that a literal group's sets lie in. */
export interface LiteralGroup {
  readonly first: number;
  readonly words: number;
}

/** The required literals of every rule with some (CompiledRule.literalGroup), as sets of one automaton. */
export interface LiteralIndex {
  readonly sets: LiteralSets;
  readonly groups: readonly LiteralGroup[];
}

/**
 * The ids of a transaction's caches (CompiledRule.selection, .inputs, .literalGroup) whose values include a
 * variable a processed body, or a response, changes: what a transaction must drop then, and only that.
 */
export interface StaleCaches {
  readonly selections: readonly number[];
  readonly inputs: readonly number[];
  readonly groups: readonly number[];
}

export interface CompiledRuleSet {
  /** Rules per phase in evaluation order; index 0 is unused. */
  readonly phases: readonly (readonly CompiledRule[])[];
  /** How many selection and input ids rules use (the sizes of a transaction's caches for them). */
  readonly selectionCount: number;
  readonly inputsCount: number;
  readonly staleAfter: { readonly body: StaleCaches; readonly response: StaleCaches };
  /** See CompiledRule.literalGroup. */
  readonly literals: LiteralIndex;
  readonly settings: Readonly<EngineSettings>;
  readonly ruleCount: number;
}
