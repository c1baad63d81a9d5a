// The operator contract between the rule compiler and the operator implementations (one file per operator
// family in this folder, looked up by name through index.ts).

/** What an operator may need while compiling: data files of `@pmFromFile` / `@ipMatchFromFile`. */
export interface OperatorContext {
  /** Reads a data file named relative to the rule file's directory (as ModSecurity does). Throws if missing. */
  readDataFile(name: string): string;
}

export interface CompiledOperator {
  /**
   * Whether `input` (a byte string) matches. When `captures` is given, a matching operator that captures
   * (`@rx` groups; `@detectSQLi` its fingerprint; `@pm` the matched phrase) writes index 0 = the whole
   * match and 1..9 = groups, and sets `captures.length` to what it wrote.
   */
  match(input: string, captures: string[] | null): boolean;
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
