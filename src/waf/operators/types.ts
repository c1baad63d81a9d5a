// The operator contract between the rule compiler and the operator implementations (one file per operator
// family in this folder, looked up by name through index.ts).

/** What an operator may need while compiling: data files of `@pmFromFile` / `@ipMatchFromFile`. */
export interface OperatorContext {
  /** Reads a data file named relative to the rule file's directory (as ModSecurity does). Throws if missing. */
  readDataFile(name: string): string;
}

/**
 * Where a capturing operator writes: `values[0]` the whole match, `values[1..9]` the groups, `count` how many
 * it wrote (a count, not the array's length: setting an array's length is a V8 runtime call, once a match).
 */
export interface Captures {
  readonly values: string[];
  count: number;
}

export interface CompiledOperator {
  /**
   * Whether `input` (a byte string) matches. When `captures` is given, a matching operator that captures
   * (`@rx` groups; `@detectSQLi` its fingerprint; `@pm` the matched phrase) writes them there; one that does
   * not capture leaves it alone.
   */
  match(input: string, captures: Captures | null): boolean;
  /**
   * `match` for an input the engine found to hold a string of every clause of `literals` (its own literal scan,
   * ../transaction.ts): an operator that would search for them first skips that. Absent: `match` does as well.
   */
  matchChecked?(input: string, captures: Captures | null): boolean;
  /**
   * Clauses of strings every matching input satisfies, holding a string of each (A–Z folded to a–z; see
   * ../prefilter.ts): the engine may skip the operator on an input that does not. Absent or null: none.
   */
  readonly literals?: readonly (readonly string[])[] | null;
}

/**
 * Builds an operator from its argument (after macro expansion, when the argument had macros).
 * Returns an error string for a bad argument instead of throwing, so a rule set reports every problem at once.
 */
export type OperatorFactory = (argument: string, context: OperatorContext) => CompiledOperator | { error: string };
