// The SecLang rule AST: what src/waf/seclang/parser.ts produces from ModSecurity configuration text and
// what the rule compiler (src/waf/compile.ts) consumes. Plain data with source positions, so every later
// error can name the file and line an operator wrote.
//
// Values are kept as written (quotes removed, escapes of the quoting resolved) and are never interpreted
// here: macros (%{tx.foo}), operator arguments and action values mean something only to the compiler.

/** Where a directive starts: file name as given to the parser, 1-based line. */
export interface SourcePosition {
  file: string;
  line: number;
}

/**
 * One variable of a rule's target list, e.g. `ARGS`, `!REQUEST_COOKIES:/__utm/`, `&TX:foo`, `XML:/*`.
 * `collection` is upper-cased; `key` is absent when the whole collection is meant.
 */
export interface VariableSelector {
  collection: string;
  key?: VariableKey;
  /** `&VAR`: the number of matching values instead of the values. */
  count: boolean;
  /** `!VAR:key`: removes matching members from the rule's other selections of that collection. */
  exclude: boolean;
}

/** `ARGS:foo` is a case-insensitive name; `ARGS:/^foo/` a regular expression (PCRE source, unflagged). */
export type VariableKey = { kind: 'name'; value: string } | { kind: 'regex'; pattern: string };

/** `"@rx foo"`, `"!@pm a b"`, `"foo"` (no `@`: an implicit `rx`). `name` is as written, without `@`. */
export interface OperatorSpec {
  name: string;
  argument: string;
  negated: boolean;
}

/** One action of an action list, e.g. `t:lowercase`, `setvar:'tx.score=+%{tx.critical_anomaly_score}'`, `pass`. */
export interface ActionSpec {
  /** As written, lower-cased (`t`, `setvar`, `ctl`, `skipafter` …). */
  name: string;
  /** Absent for flag actions such as `pass` or `chain`; outer single quotes removed. */
  value?: string;
}

export interface IdRange {
  from: number;
  to: number;
}

/** A rule target update's replacement list and which selectors it replaces (SecRuleUpdateTargetBy*). */
export interface TargetUpdate {
  variables: VariableSelector[];
  /** The optional third argument: the selector text being replaced, parsed. */
  replaced?: VariableSelector[];
}

export type Directive =
  | ({ kind: 'rule'; variables: VariableSelector[]; operator: OperatorSpec; actions: ActionSpec[] } & SourcePosition)
  | ({ kind: 'action'; actions: ActionSpec[] } & SourcePosition)
  | ({ kind: 'marker'; name: string } & SourcePosition)
  | ({ kind: 'default_action'; actions: ActionSpec[] } & SourcePosition)
  | ({ kind: 'remove_by_id'; ranges: IdRange[] } & SourcePosition)
  /** Tag and message patterns are PCRE sources matched against the rule's tags / msg. */
  | ({ kind: 'remove_by_tag'; pattern: string } & SourcePosition)
  | ({ kind: 'remove_by_msg'; pattern: string } & SourcePosition)
  | ({ kind: 'update_target_by_id'; ranges: IdRange[] } & TargetUpdate & SourcePosition)
  | ({ kind: 'update_target_by_tag'; pattern: string } & TargetUpdate & SourcePosition)
  | ({ kind: 'update_action_by_id'; id: number; actions: ActionSpec[] } & SourcePosition)
  /**
   * Rules in detection mode: they match and log as before, but change nothing (no variable, no ctl, no
   * disruptive action, no skip), so they add nothing to CRS's anomaly score. Built from the JSON policy's
   * rule_modes only (../custom-rules.ts); SecLang has no spelling for it.
   */
  | ({ kind: 'shadow_by_id'; ranges: IdRange[] } & SourcePosition)
  | ({ kind: 'include'; path: string } & SourcePosition)
  /**
   * Any other directive (`SecRuleEngine On`, `SecRequestBodyLimit 13107200`, `SecComponentSignature …`):
   * name as written, arguments unquoted. The compiler applies the ones it knows and reports the rest.
   */
  | ({ kind: 'setting'; name: string; args: string[] } & SourcePosition);

/** A parse problem; the directive it concerns is skipped, the rest of the text still parses. */
export interface SecLangError extends SourcePosition {
  message: string;
}

export interface ParseResult {
  directives: Directive[];
  errors: SecLangError[];
}
