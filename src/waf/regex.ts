// Translates the PCRE dialect of SecLang (`@rx`, `ARGS:/^foo/` keys) into JavaScript RegExps that match byte
// strings as PCRE does, wrapped so that no input makes them work without bound. Called by operators/rx.ts and
// by the rule compiler; never throws, so a rule set reports every bad pattern at once.
//
// Translation: the source is parsed into a small tree and printed back without the `i` flag — every class
// is spelt out as the byte set PCRE's C-locale tables give it (case folding of A–Z only, `\s` without U+00A0,
// `\v` vertical space, POSIX classes, `\h`). That is what V8's linear-time engine needs (it refuses `i` and
// `(?i:…)`), and it avoids the Latin-1 folding JavaScript's `i` would add. Atomic groups and possessive
// quantifiers become `(?=(X))\k` (a lookahead is never backtracked into), so capture numbers can shift:
// `groups` maps them. These rewrites keep results identical (exec() undoes what shows in a match) and make
// more patterns bounded:
//   - PCRE's newline is LF alone, JavaScript's `m` flag also breaks lines at CR (which CRS's own tests send):
//     no `m` flag; a multiline `^` is a lookbehind, a final `$` consumes the LF exec() then gives back;
//   - a possessive single-byte repeat followed by a byte it cannot match is an ordinary greedy one;
//   - a pattern starting with `.*` (dot-all) is anchored at the start, as PCRE itself does: a match found
//     later would also be found at 0, and irregexp would otherwise retry from every position (quadratic);
//   - a leading lazy `C*?` is dropped and the match extended back over the run of C before it;
//   - counted repeats the linear engine refuses (it allows a product of counts up to 16: CRS has
//     `.{1,100}?`, `{63}`) are unrolled into copies and nested optionals when they hold no capture.
// Checked against libpcre2 (DOTALL|MULTILINE): every CRS pattern on the ~9 400 strings of the CRS regression
// corpus and 300 random strings each, match and captures, found no difference.
//
// Bounded work, measured on Node 24.21 (V8 13.6) with the 265 @rx patterns of CRS 3.3.4 (all compile):
//   (a) V8's linear engine (the `l` flag) alone: 4–12× slower than irregexp on benign inputs (all 265
//       patterns on a 2 KiB text value: 41 ms against 10 ms) and it refuses lookarounds, back references and
//       repetition counts whose product exceeds 16;
//   (b) `--enable-experimental-regexp-engine-on-excessive-backtracks` keeps irregexp and re-runs a match on
//       the linear engine after REGEXP_BACKTRACKS_BEFORE_FALLBACK backtracks: `^(a+)+$` on 'a'×30+'b' takes
//       1 ms instead of 45 s, and CRS 941160 on 4 KiB of '<' 7 ms instead of 37 s. But irregexp does not
//       count what a simple greedy loop gives back, so up to limit × length work happens before the switch,
//       and a pattern that never backtracks otherwise stays quadratic: `[a-z]+@` on 80 KB of 'a' takes 1.9 s.
//       The limit is 10 000, not lower: benign prose backtracks too, and at 1 000 the CRS's @rx patterns over
//       the 20 values of bench/waf's 2 KiB form took 7.6–8.6 ms in all (942360 alone 0.8–1 ms), most of it on
//       the linear engine after the switch, against 0.67 ms at 10 000 (and 0.65–0.74 ms at 100 000);
//   (c) so: irregexp with (b) for inputs up to LINEAR_ENGINE_ABOVE bytes, the linear engine above. Summed over
//       all 265 patterns, the worst of ~40 one-character-repeated inputs costs 35–70 ms at 1 KiB, 65–100 ms at
//       2 KiB and 150–210 ms at 4 KiB with irregexp — about what the linear engine costs at those sizes
//       (175 ms at 4 KiB, 707 ms at 16 KiB), which then grows only linearly. Below 4 KiB irregexp is the faster
//       on benign input and no worse on hostile input; above it the linear engine's bound wins.
//   Patterns the linear engine cannot run ('backtracking') get no fallback: they run on irregexp for inputs
//   up to BACKTRACKING_INPUT_LIMIT bytes; longer inputs are not evaluated (`test` is false, as with
//   ModSecurity's PCRE match limit) and callers read `maxInputLength` to apply their fail-open/fail-closed
//   policy first. In CRS 3.3.4 these are 4 patterns: 920600 (Accept, possessive quantifiers), the PL3
//   Cache-Control check chained to 920510 (a `$` inside a repeat), 942130 (back reference) and 942260
//   (possessive); their worst measured cost at 4 KiB is 25 ms (920600), 16 ms (942260), under 1 ms for the
//   others.
//   A pattern without unbounded repeats whose backtracking from any start takes at most MAX_BOUNDED_WORK
//   steps is bounded as it stands: 'linear' too.
// The flags are V8 process flags: ensureRegexpFlags() sets them on first use (V8 reads them when it compiles
// a RegExp, so every pattern compiled here is covered), and whether the linear engine accepts a pattern is
// asked of V8 itself through the `l` flag — the same test V8 applies before falling back.
//
// Known differences from PCRE (none matters to CRS 3.3.4): a back reference to an unset group matches the
// empty string; a capture inside a repeated group is cleared at each repetition; caseless back references use
// JavaScript's folding (which adds Latin-1 letters).
import { setFlagsFromString } from 'node:v8';
import { LiteralSets } from './aho-corasick.ts';
import { memoized } from './memo.ts';
import { type Clause, minimumLength, requiredLiterals } from './prefilter.ts';

export interface PcreFlags {
  /** PCRE_CASELESS, as `(?i)` sets it. */
  caseless?: boolean;
  /** PCRE_DOTALL: `.` matches a newline too. ModSecurity always sets it. */
  dotAll?: boolean;
  /**
   * PCRE_MULTILINE: `^`/`$` also match at inner line starts/ends, as libmodsecurity (v3) compiles. Without it
   * the pattern is compiled as ModSecurity v2 does, with PCRE_DOLLAR_ENDONLY: `$` only at the very end.
   */
  multiline?: boolean;
}

export type PcreCompileResult = { ok: true; regex: BoundedRegex; engine: RegexEngine } | { ok: false; error: string };

/** 'linear': work grows linearly with the input; 'backtracking': bounded only by BACKTRACKING_INPUT_LIMIT. */
export type RegexEngine = 'linear' | 'backtracking';

/** Backtracks after which V8 abandons irregexp for its linear engine (see (b) above). */
export const REGEXP_BACKTRACKS_BEFORE_FALLBACK = 10_000;
/** Inputs longer than this go to the linear engine directly (see (c) above). */
export const LINEAR_ENGINE_ABOVE = 4096;
/** The longest input a 'backtracking' pattern is run on. */
export const BACKTRACKING_INPUT_LIMIT = 4096;

/** The V8 flags bounded matching relies on (ensureRegexpFlags() sets them; a node command line may too). */
export const REGEXP_V8_FLAGS: readonly string[] = [
  '--enable-experimental-regexp-engine',
  '--enable-experimental-regexp-engine-on-excessive-backtracks',
  `--regexp-backtracks-before-fallback=${REGEXP_BACKTRACKS_BEFORE_FALLBACK}`,
];

let flagsSet = false;

/** Sets REGEXP_V8_FLAGS once per process (V8 flags are process-wide: worker threads share them). */
export function ensureRegexpFlags(): void {
  if (flagsSet) return;
  for (const flag of REGEXP_V8_FLAGS) setFlagsFromString(flag);
  flagsSet = true;
}

/** Clause strings up to which a letterless set is searched with String#includes (BoundedRegex #plainLiterals). */
const PLAIN_LITERALS = 8;

/** Whether `input` holds a string of every clause, compared as they are. */
function holdsEveryClause(input: string, clauses: readonly Clause[]): boolean {
  for (const clause of clauses) {
    let held = false;
    for (let i = 0; i < clause.length && !held; i++) held = input.includes(clause[i]!);
    if (!held) return false;
  }
  return true;
}

/** A translated pattern that picks its engine per input; `test`/`exec` as RegExp's, never unbounded. */
export class BoundedRegex {
  /** The JavaScript source, for logs and tests. */
  readonly source: string;
  readonly engine: RegexEngine;
  /** JavaScript group index of PCRE group n (`groups[0]` is 0); differs from n after an atomic group. */
  readonly groups: readonly number[];
  /** Longer inputs are not evaluated: `exec` gives null. Infinity unless the engine is 'backtracking'. */
  readonly maxInputLength: number;
  /**
   * Clauses of literals every match satisfies, A–Z folded to a–z (./prefilter.ts): an input holding no
   * string of some clause cannot match, so `#passes` searches for them before the regex runs. Null when the
   * pattern has none.
   */
  readonly literals: readonly Clause[] | null;
  /**
   * Built on first use: most patterns are only ever run behind the rule engine's own literal groups
   * (./transaction.ts), which hold the same literals, and never need an automaton of their own.
   */
  #prefilter: LiteralSets | null = null;
  /**
   * True when the clauses hold a few strings and none holds a letter (`..`, `/`, `${`): String#includes, a
   * native search, finds them faster than the automaton, and case (which the automaton folds) cannot matter.
   */
  readonly #plainLiterals: boolean;
  /** Where #passes marks the clauses found (one word: at most 3 clauses), and the mark of all of them. */
  readonly #marks = new Uint32Array(1);
  readonly #allClauses: number;
  /** The fewest bytes a match consumes (./prefilter.ts minimumLength): shorter inputs are not tried. */
  readonly #minLength: number;
  readonly #irregexp: RegExp;
  /**
   * For a pattern with a multiline `^`: the same pattern with `^` as the start of the input, for inputs that
   * hold no LF, where both hold at the same place. The line-start lookbehind gives irregexp no anchor, so it
   * tries every position of a value that fails at once (CRS's `^…$` patterns on a 2 KiB form field: a few µs
   * each; 932150's `(?:^|=)…` on bench/waf's 1.6 KB message: 5.5 µs, 0.9 µs as `(?:^|=)`); null otherwise.
   */
  readonly #singleLine: RegExp | null;
  /** Null when irregexp is bounded on its own (backtrackingWork) or cannot be replaced ('backtracking'). */
  readonly #linear: RegExp | null;
  readonly #fix: MatchFix;

  constructor(parts: {
    irregexp: RegExp;
    singleLine: RegExp | null;
    linear: RegExp | null;
    literals: readonly Clause[] | null;
    minLength: number;
    engine: RegexEngine;
    groups: readonly number[];
    fix: MatchFix;
  }) {
    this.literals = parts.literals;
    this.#minLength = parts.minLength;
    this.#allClauses = parts.literals === null ? 0 : 2 ** parts.literals.length - 1;
    const strings = parts.literals?.flat() ?? [];
    this.#plainLiterals = strings.length > 0 && strings.length <= PLAIN_LITERALS && strings.every((literal) => !/[A-Za-z]/.test(literal));
    this.#irregexp = parts.irregexp;
    this.#singleLine = parts.singleLine;
    this.#linear = parts.linear;
    this.#fix = parts.fix;
    this.source = parts.irregexp.source;
    this.engine = parts.engine;
    this.groups = parts.groups;
    this.maxInputLength = parts.engine === 'linear' ? Infinity : BACKTRACKING_INPUT_LIMIT;
  }

  /** `checked`: the caller found every literal clause in `input` already (the rule engine's scan). */
  exec(input: string, checked = false): RegExpExecArray | null {
    if (input.length > this.maxInputLength || input.length < this.#minLength) return null;
    if (!checked && !this.#passes(input)) return null;
    const match = this.#pick(input).exec(input);
    return match === null ? null : this.#fixed(match, input);
  }

  test(input: string, checked = false): boolean {
    if (input.length > this.maxInputLength || input.length < this.#minLength) return false;
    if (!checked && !this.#passes(input)) return false;
    const fix = this.#fix;
    // Only a match at the very end can be one PCRE refuses (see MatchFix): exec() then decides.
    if (fix.lineStartLeads && input.charCodeAt(input.length - 1) === NEWLINE) return this.exec(input, true) !== null;
    return this.#pick(input).test(input);
  }

  /** Whether `input` holds a string of every clause (always, without clauses). */
  #passes(input: string): boolean {
    if (this.literals === null) return true;
    if (this.#plainLiterals) return holdsEveryClause(input, this.literals);
    this.#prefilter ??= new LiteralSets(this.literals);
    this.#marks[0] = 0;
    this.#prefilter.scan(input, this.#marks, 0);
    return this.#marks[0] === this.#allClauses;
  }

  #pick(input: string): RegExp {
    if (this.#linear !== null && input.length > LINEAR_ENGINE_ABOVE) return this.#linear;
    return this.#singleLine !== null && input.indexOf('\n') === -1 ? this.#singleLine : this.#irregexp;
  }

  /** Turns the translated pattern's match into the one PCRE reports for the original. */
  #fixed(match: RegExpExecArray, input: string): RegExpExecArray | null {
    const fix = this.#fix;
    const atEnd = match.index === input.length && input.length > 0;
    if (fix.lineStartLeads && atEnd && input.charCodeAt(input.length - 1) === NEWLINE) return null;
    for (const group of fix.trailingNewlineGroups) {
      if (match[group] !== undefined) {
        match[0] = match[0].slice(0, -1);
        break;
      }
    }
    const lazy = fix.leadingLazySet;
    if (lazy !== null) {
      let start = match.index;
      while (start > 0 && has(lazy, input.charCodeAt(start - 1))) start--;
      match[0] = input.slice(start, match.index) + match[0];
      match.index = start;
    }
    return match;
  }
}

/** What BoundedRegex#exec undoes of the rewrites that kept a pattern bounded (each described where made). */
interface MatchFix {
  /** Groups holding a newline a final `$` consumed (Printer#assertion); PCRE's match ends before it. */
  trailingNewlineGroups: readonly number[];
  /** The C of a stripped leading `C*?` (stripLeadingLazySet): the match extends back over a run of it. */
  leadingLazySet: ByteSet | null;
  /**
   * Every branch starts with a multiline `^`, printed as a lookbehind that also holds after a final newline,
   * where PCRE's does not (lineStart): a match starting there is refused.
   */
  lineStartLeads: boolean;
}

/** Compiles PCRE `source`; ModSecurity v3 compiles `@rx` as `{ dotAll: true, multiline: true }`. */
export function compilePcre(source: string, flags: PcreFlags = {}): PcreCompileResult {
  return compileMemo(`${flags.caseless === true ? 'i' : ''}${flags.dotAll === true ? 's' : ''}${flags.multiline === true ? 'm' : ''}\0${source}`);
}

const compileMemo = memoized((key) => {
  const split = key.indexOf('\0');
  const letters = key.slice(0, split);
  return translate(key.slice(split + 1), { caseless: letters.includes('i'), dotAll: letters.includes('s'), multiline: letters.includes('m') });
});

function translate(source: string, flags: PcreFlags): PcreCompileResult {
  ensureRegexpFlags();
  const multiline = flags.multiline === true;
  const parser = new PcreParser(source, {
    caseless: flags.caseless === true,
    dotAll: flags.dotAll === true,
    multiline,
    dollarEndOnly: !multiline,
    extended: false,
    ungreedy: false,
  });
  const parsed = parser.parse();
  if (typeof parsed === 'string') return { ok: false, error: parsed };
  const anchored = anchorLeadingDotStar(parsed);
  const stripped = anchored === parsed ? stripLeadingLazySet(parsed) : null;
  const tree = stripped?.rest ?? anchored;
  const lineStartLeads = startsWith(tree, (n) => n.kind === 'assert' && n.what === 'lineStart');
  const printer = new Printer(parser.groupCount, lineStartLeads);
  let text = printer.print(tree, false);
  let linear = linearRegExp(text);
  let unrolled = false;
  if (linear === null && hasCountedRepeat(tree)) {
    const unrolledText = printer.print(tree, true);
    linear = unrolledText === null ? null : linearRegExp(unrolledText);
    if (linear !== null) {
      text = unrolledText!;
      unrolled = true;
    }
  }
  let irregexp: RegExp;
  try {
    irregexp = new RegExp(text);
  } catch (error) {
    return { ok: false, error: `cannot be translated: ${(error as Error).message}` };
  }
  // The same groups in the same places (only line starts print differently), so `groups` and the fixes hold.
  const hasLineStart = contains(tree, (n) => n.kind === 'assert' && n.what === 'lineStart');
  const singleLineText = hasLineStart ? new Printer(parser.groupCount, lineStartLeads, true).print(tree, unrolled) : null;
  const singleLine = singleLineText === null ? null : new RegExp(singleLineText);
  const boundedAsItIs = backtrackingWork(tree) <= MAX_BOUNDED_WORK;
  const engine: RegexEngine = boundedAsItIs || linear !== null ? 'linear' : 'backtracking';
  const regex = new BoundedRegex({
    irregexp,
    singleLine,
    linear: boundedAsItIs ? null : linear,
    literals: nonEmpty(requiredLiterals(parsed)),
    minLength: minimumLength(parsed),
    engine,
    groups: printer.groups,
    fix: {
      trailingNewlineGroups: printer.trailingNewlineGroups,
      leadingLazySet: stripped?.set ?? null,
      lineStartLeads,
    },
  });
  return { ok: true, regex, engine };
}

function nonEmpty(clauses: Clause[]): Clause[] | null {
  return clauses.length === 0 ? null : clauses;
}

/** The same pattern on V8's linear engine, or null when that engine cannot run it (or is not enabled). */
function linearRegExp(text: string): RegExp | null {
  try {
    return new RegExp(text, 'l');
  } catch {
    return null;
  }
}

/** Unrolling multiplies pattern text; past this many characters a pattern is left as it is. */
const MAX_UNROLLED_LENGTH = 200_000;
/**
 * A pattern whose backtracking does at most this many steps from each start position (backtrackingWork) does
 * at most that much work per input byte: bounded without the linear engine.
 */
const MAX_BOUNDED_WORK = 20_000;

// ---- Byte sets -------------------------------------------------------------------------------------------

/** A set of bytes as 8 × 32 bits. */
type ByteSet = Uint32Array;

const newSet = (): ByteSet => new Uint32Array(8);
const has = (s: ByteSet, c: number): boolean => (s[c >>> 5]! & (1 << (c & 31))) !== 0;
const add = (s: ByteSet, c: number): void => {
  s[c >>> 5]! |= 1 << (c & 31);
};
function addRange(s: ByteSet, from: number, to: number): void {
  for (let c = from; c <= to; c++) add(s, c);
}
function addSet(s: ByteSet, other: ByteSet): void {
  for (let i = 0; i < 8; i++) s[i]! |= other[i]!;
}
function size(s: ByteSet): number {
  let count = 0;
  for (let c = 0; c < 256; c++) if (has(s, c)) count++;
  return count;
}
const isFullSet = (s: ByteSet): boolean => s.every((word) => word === 0xffffffff);
function disjoint(a: ByteSet, b: ByteSet): boolean {
  for (let i = 0; i < 8; i++) if ((a[i]! & b[i]!) !== 0) return false;
  return true;
}
function complement(s: ByteSet): ByteSet {
  const out = newSet();
  for (let i = 0; i < 8; i++) out[i] = ~s[i]!;
  return out;
}
function setOf(...ranges: Array<[number, number]>): ByteSet {
  const s = newSet();
  for (const [from, to] of ranges) addRange(s, from, to);
  return s;
}
/** PCRE's default tables fold A–Z/a–z only (they are built in the C locale). */
function foldCase(s: ByteSet): ByteSet {
  const out = Uint32Array.from(s);
  for (let c = 65; c <= 90; c++) {
    if (has(s, c) || has(s, c + 32)) {
      add(out, c);
      add(out, c + 32);
    }
  }
  return out;
}

const DIGIT = setOf([48, 57]);
const WORD = setOf([48, 57], [65, 90], [97, 122], [95, 95]);
/** PCRE's \s: HT, LF, VT, FF, CR, space (VT since 8.34); JavaScript's \s would add U+00A0. */
const SPACE = setOf([9, 13], [32, 32]);
const HSPACE = setOf([9, 9], [32, 32], [0xa0, 0xa0]);
/** PCRE's \v in 8-bit mode: LF, VT, FF, CR, NEL — not JavaScript's \v (VT alone). */
const VSPACE = setOf([10, 13], [0x85, 0x85]);
const NEWLINE = 10;

const POSIX_CLASSES: Record<string, ByteSet> = {
  alpha: setOf([65, 90], [97, 122]),
  digit: DIGIT,
  alnum: setOf([48, 57], [65, 90], [97, 122]),
  upper: setOf([65, 90]),
  lower: setOf([97, 122]),
  space: SPACE,
  blank: setOf([9, 9], [32, 32]),
  punct: setOf([33, 47], [58, 64], [91, 96], [123, 126]),
  print: setOf([32, 126]),
  graph: setOf([33, 126]),
  cntrl: setOf([0, 31], [127, 127]),
  xdigit: setOf([48, 57], [65, 70], [97, 102]),
  word: WORD,
  ascii: setOf([0, 127]),
};

/** The set an escape letter names (`\d` …), or null. */
function escapeClass(letter: string): ByteSet | null {
  switch (letter) {
    case 'd':
      return DIGIT;
    case 'w':
      return WORD;
    case 's':
      return SPACE;
    case 'h':
      return HSPACE;
    case 'v':
      return VSPACE;
    case 'D':
      return complement(DIGIT);
    case 'W':
      return complement(WORD);
    case 'S':
      return complement(SPACE);
    case 'H':
      return complement(HSPACE);
    case 'V':
      return complement(VSPACE);
    case 'N':
      return complement(setOf([NEWLINE, NEWLINE]));
    default:
      return null;
  }
}

// ---- Tree ------------------------------------------------------------------------------------------------

type Assertion = 'lineStart' | 'lineEnd' | 'textStart' | 'textEnd' | 'textEndOrFinalNewline' | 'word' | 'nonWord';

type Node =
  | { kind: 'set'; set: ByteSet }
  | { kind: 'seq'; items: Node[] }
  | { kind: 'alt'; branches: Node[] }
  /** `capture` is the PCRE group number, 0 for a non-capturing group. */
  | { kind: 'group'; capture: number; body: Node }
  | { kind: 'look'; behind: boolean; negated: boolean; body: Node }
  | { kind: 'atomic'; body: Node }
  | { kind: 'repeat'; body: Node; min: number; max: number; lazy: boolean; possessive: boolean }
  | { kind: 'backref'; group: number; caseless: boolean }
  | { kind: 'assert'; what: Assertion };

interface Options {
  caseless: boolean;
  dotAll: boolean;
  multiline: boolean;
  /** Fixed at compile time (no inline letter sets it): `$` outside multiline mode ignores a final newline. */
  dollarEndOnly: boolean;
  extended: boolean;
  ungreedy: boolean;
}

/** PCRE's own limit on {n,m}. */
const MAX_REPEAT = 65535;
/** Deeper nesting than this is refused rather than risking the call stack on hostile rule text. */
const MAX_NESTING = 200;
const PCRE_MAX_BYTE = 0xff;

// ---- Parser ----------------------------------------------------------------------------------------------

class PcreParser {
  readonly #src: string;
  #pos = 0;
  #depth = 0;
  groupCount = 0;
  readonly #names = new Map<string, number>();
  /** Named back references, resolved at the end (a name may be defined after its reference). */
  readonly #pendingNames: Array<{ node: { group: number }; name: string }> = [];
  readonly #backrefs: Array<{ group: number }> = [];
  readonly #initial: Options;

  constructor(src: string, initial: Options) {
    this.#src = src;
    this.#initial = initial;
  }

  /** The tree, or an error message naming the offset. */
  parse(): Node | string {
    try {
      const node = this.#alternation({ ...this.#initial });
      if (this.#pos < this.#src.length) this.#fail('unmatched )');
      for (const { node: ref, name } of this.#pendingNames) {
        const group = this.#names.get(name);
        if (group === undefined) this.#fail(`reference to non-existent group name ${name}`);
        ref.group = group;
      }
      for (const ref of this.#backrefs) {
        if (ref.group > this.groupCount) this.#fail(`reference to non-existent subpattern ${ref.group}`);
      }
      return node;
    } catch (error) {
      if (error instanceof PcreSyntaxError) return error.message;
      throw error;
    }
  }

  #fail(message: string): never {
    throw new PcreSyntaxError(`${message} at offset ${Math.min(this.#pos, this.#src.length)}`);
  }

  #peek(offset = 0): string {
    return this.#src.charAt(this.#pos + offset);
  }

  #eat(text: string): boolean {
    if (!this.#src.startsWith(text, this.#pos)) return false;
    this.#pos += text.length;
    return true;
  }

  /** Alternatives up to `)` or the end. `options` is the enclosing group's: `(?i)` changes it for the rest. */
  #alternation(options: Options): Node {
    if (++this.#depth > MAX_NESTING) this.#fail('pattern nested too deeply');
    const branches: Node[] = [];
    let items: Node[] = [];
    for (;;) {
      this.#skipExtended(options);
      const c = this.#peek();
      if (c === '' || c === ')') break;
      if (c === '|') {
        this.#pos++;
        branches.push(seq(items));
        items = [];
        continue;
      }
      const atom = this.#atom(options);
      if (atom === null) continue;
      if (atom.kind === 'seq') {
        // Only \Q…\E gives a run of literals, and a quantifier after it repeats the last one, as in PCRE.
        const last = atom.items.pop();
        items.push(...atom.items);
        if (last !== undefined) items.push(this.#quantified(last, options));
        continue;
      }
      items.push(this.#quantified(atom, options));
    }
    branches.push(seq(items));
    this.#depth--;
    return branches.length === 1 ? branches[0]! : { kind: 'alt', branches };
  }

  /** `(?x)`: white space and `#` comments outside classes are not part of the pattern. */
  #skipExtended(options: Options): void {
    if (!options.extended) return;
    for (;;) {
      const c = this.#peek();
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') this.#pos++;
      else if (c === '#') {
        const end = this.#src.indexOf('\n', this.#pos);
        this.#pos = end === -1 ? this.#src.length : end + 1;
      } else return;
    }
  }

  /** One atom, or null for something that matches nothing at all (an option setting, a comment, `\E`). */
  #atom(options: Options): Node | null {
    const c = this.#src[this.#pos++]!;
    switch (c) {
      case '(':
        return this.#group(options);
      case '[':
        return { kind: 'set', set: this.#class(options) };
      case '.':
        return { kind: 'set', set: options.dotAll ? complement(newSet()) : escapeClass('N')! };
      case '^':
        return { kind: 'assert', what: options.multiline ? 'lineStart' : 'textStart' };
      case '$':
        return {
          kind: 'assert',
          what: options.multiline ? 'lineEnd' : options.dollarEndOnly ? 'textEnd' : 'textEndOrFinalNewline',
        };
      case '\\':
        return this.#escape(options);
      case '*':
      case '+':
      case '?':
        return this.#fail('quantifier does not follow a repeatable item');
      default:
        return this.#literal(c.charCodeAt(0), options);
    }
  }

  #literal(code: number, options: Options): Node {
    const set = newSet();
    add(set, this.#byte(code));
    return { kind: 'set', set: options.caseless ? foldCase(set) : set };
  }

  #group(options: Options): Node | null {
    if (this.#peek() === '*') this.#fail('backtracking control verbs are not supported');
    if (this.#peek() !== '?') {
      const capture = ++this.groupCount;
      return { kind: 'group', capture, body: this.#groupBody({ ...options }) };
    }
    this.#pos++;
    if (this.#eat('#')) {
      const end = this.#src.indexOf(')', this.#pos);
      if (end === -1) this.#fail('missing ) after comment');
      this.#pos = end + 1;
      return null;
    }
    if (this.#eat(':')) return { kind: 'group', capture: 0, body: this.#groupBody({ ...options }) };
    if (this.#eat('=')) return { kind: 'look', behind: false, negated: false, body: this.#groupBody({ ...options }) };
    if (this.#eat('!')) return { kind: 'look', behind: false, negated: true, body: this.#groupBody({ ...options }) };
    if (this.#eat('<=')) return { kind: 'look', behind: true, negated: false, body: this.#groupBody({ ...options }) };
    if (this.#eat('<!')) return { kind: 'look', behind: true, negated: true, body: this.#groupBody({ ...options }) };
    if (this.#eat('>')) return { kind: 'atomic', body: this.#groupBody({ ...options }) };
    if (this.#eat('P=')) return this.#namedReference(')', options);
    const close = this.#eat('P<') || this.#eat('<') ? '>' : this.#eat("'") ? "'" : null;
    if (close !== null) {
      const name = this.#name(close);
      if (this.#names.has(name)) this.#fail(`two named subpatterns have the same name ${name}`);
      const capture = ++this.groupCount;
      this.#names.set(name, capture);
      return { kind: 'group', capture, body: this.#groupBody({ ...options }) };
    }
    return this.#optionSetting(options);
  }

  /** `(?i)`, `(?-s)`, `(?im-sx:…)`. A bare setting changes `options` for the rest of the enclosing group. */
  #optionSetting(options: Options): Node | null {
    const changed = { ...options };
    let value = true;
    for (;;) {
      const c = this.#src[this.#pos++];
      switch (c) {
        case 'i':
          changed.caseless = value;
          break;
        case 's':
          changed.dotAll = value;
          break;
        case 'm':
          changed.multiline = value;
          break;
        case 'x':
          changed.extended = value;
          break;
        case 'U':
          changed.ungreedy = value;
          break;
        case '-':
          if (!value) this.#fail('unrecognized character after (? or (?-');
          value = false;
          break;
        case ')':
          Object.assign(options, changed);
          return null;
        case ':':
          return { kind: 'group', capture: 0, body: this.#groupBody(changed) };
        default:
          this.#pos--;
          return this.#fail(
            c === undefined ? 'missing )' : `unsupported group syntax (?${this.#src.slice(this.#pos, this.#pos + 3)}`,
          );
      }
    }
  }

  #groupBody(options: Options): Node {
    const body = this.#alternation(options);
    if (!this.#eat(')')) this.#fail('missing )');
    return body;
  }

  #name(close: string): string {
    const end = this.#src.indexOf(close, this.#pos);
    const name = end === -1 ? '' : this.#src.slice(this.#pos, end);
    if (!/^[A-Za-z_]\w{0,31}$/.test(name)) this.#fail('bad group name');
    this.#pos = end + 1;
    return name;
  }

  #namedReference(close: string, options: Options): Node {
    const name = this.#name(close);
    const node = this.#backref(0, options);
    this.#pendingNames.push({ node, name });
    return node;
  }

  #backref(group: number, options: Options): Node & { kind: 'backref' } {
    const node = { kind: 'backref' as const, group, caseless: options.caseless };
    this.#backrefs.push(node);
    return node;
  }

  #quantified(atom: Node, options: Options): Node {
    let min: number;
    let max: number;
    const c = this.#peek();
    if (c === '*') [min, max] = [0, Infinity];
    else if (c === '+') [min, max] = [1, Infinity];
    else if (c === '?') [min, max] = [0, 1];
    else if (c === '{') {
      const m = /^\{(\d+)(?:(,)(\d*))?\}/.exec(this.#src.slice(this.#pos, this.#pos + 16));
      // PCRE reads a brace that does not start a valid quantifier as a literal, as JavaScript does.
      if (m === null) return atom;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) this.#fail('number too big in {} quantifier');
      if (max < min) this.#fail('numbers out of order in {} quantifier');
      this.#pos += m[0].length - 1;
    } else return atom;
    this.#pos++;
    if (atom.kind === 'assert' || atom.kind === 'look') this.#fail('quantifier does not follow a repeatable item');
    let lazy = options.ungreedy;
    let possessive = false;
    if (this.#eat('?')) lazy = !lazy;
    else if (this.#eat('+')) {
      possessive = true;
      lazy = false;
    }
    const node: Node = { kind: 'repeat', body: atom, min, max, lazy, possessive };
    this.#skipExtended(options);
    if ('*+?'.includes(this.#peek()) && this.#peek() !== '') this.#fail('quantifier does not follow a repeatable item');
    return node;
  }

  /** After a backslash outside a class. */
  #escape(options: Options): Node | null {
    const c = this.#src[this.#pos++];
    if (c === undefined) return this.#fail('\\ at end of pattern');
    const cls = escapeClass(c);
    if (cls !== null) return { kind: 'set', set: options.caseless ? foldCase(cls) : cls };
    switch (c) {
      case 'b':
        return { kind: 'assert', what: 'word' };
      case 'B':
        return { kind: 'assert', what: 'nonWord' };
      case 'A':
      case 'G': // One match from offset 0 is all ModSecurity asks for, so \G is the start of the subject.
        return { kind: 'assert', what: 'textStart' };
      case 'z':
        return { kind: 'assert', what: 'textEnd' };
      case 'Z':
        return { kind: 'assert', what: 'textEndOrFinalNewline' };
      case 'R': {
        const crlf = seq([this.#literal(13, options), this.#literal(10, options)]);
        return { kind: 'group', capture: 0, body: { kind: 'alt', branches: [crlf, { kind: 'set', set: VSPACE }] } };
      }
      case 'Q':
        return this.#quoted(options);
      case 'E':
        return null;
      case 'g':
        return this.#gReference(options);
      case 'k': {
        const close = this.#eat('<') ? '>' : this.#eat("'") ? "'" : this.#eat('{') ? '}' : null;
        if (close === null) return this.#fail('\\k is not followed by a group name');
        return this.#namedReference(close, options);
      }
      default:
        break;
    }
    if (c >= '1' && c <= '9') {
      const digits = /^\d*/.exec(this.#src.slice(this.#pos))![0];
      const number = Number(c + digits);
      // PCRE: \1–\9 always refer back; a larger number does when that many groups have opened, else it is octal.
      if (number < 10 || number <= this.groupCount) {
        this.#pos += digits.length;
        return this.#backref(number, options);
      }
      if (c >= '8') return this.#literal(c.charCodeAt(0), options);
    }
    this.#pos--;
    return this.#literal(this.#escapedByte(), options);
  }

  /** `\g1`, `\g{1}`, `\g{-1}`, `\g{name}`. */
  #gReference(options: Options): Node {
    const m = /^(?:\{(-?\d+)\}|(-?\d+))/.exec(this.#src.slice(this.#pos, this.#pos + 12));
    if (m === null) {
      if (this.#eat('{')) return this.#namedReference('}', options);
      return this.#fail('a numbered reference must not be zero');
    }
    this.#pos += m[0].length;
    const n = Number(m[1] ?? m[2]);
    const group = n < 0 ? this.groupCount + 1 + n : n;
    if (group <= 0) this.#fail('a numbered reference must not be zero');
    return this.#backref(group, options);
  }

  #quoted(options: Options): Node {
    const end = this.#src.indexOf('\\E', this.#pos);
    const text = this.#src.slice(this.#pos, end === -1 ? this.#src.length : end);
    this.#pos = end === -1 ? this.#src.length : end + 2;
    return { kind: 'seq', items: [...text].map((ch) => this.#literal(ch.charCodeAt(0), options)) };
  }

  /**
   * The byte of a single-character escape starting at the current position (the letter after `\`):
   * \n \t \xhh \x{hh} \0oo \ooo \o{…} \cX \e \a \f \r, or the character itself for punctuation.
   */
  #escapedByte(): number {
    const c = this.#src[this.#pos++]!;
    switch (c) {
      case 'n':
        return 10;
      case 'r':
        return 13;
      case 't':
        return 9;
      case 'f':
        return 12;
      case 'a':
        return 7;
      case 'e':
        return 27;
      case 'x': {
        const m = /^(?:\{([0-9A-Fa-f]+)\}|([0-9A-Fa-f]{0,2}))/.exec(this.#src.slice(this.#pos, this.#pos + 12))!;
        this.#pos += m[0].length;
        return this.#byte(parseInt(m[1] ?? (m[2] || '0'), 16));
      }
      case 'o': {
        const m = /^\{([0-7]+)\}/.exec(this.#src.slice(this.#pos, this.#pos + 12));
        if (m === null) return this.#fail('\\o is not followed by {octal digits}');
        this.#pos += m[0].length;
        return this.#byte(parseInt(m[1]!, 8));
      }
      case 'c': {
        const ch = this.#src[this.#pos++];
        if (ch === undefined || ch.charCodeAt(0) > 127) return this.#fail('\\c must be followed by an ASCII character');
        return ch.toUpperCase().charCodeAt(0) ^ 0x40;
      }
      default:
        break;
    }
    if (c >= '0' && c <= '7') {
      const digits = /^[0-7]{0,2}/.exec(this.#src.slice(this.#pos))![0];
      this.#pos += digits.length;
      return this.#byte(parseInt(c + digits, 8));
    }
    if (/[A-Za-z0-9]/.test(c)) {
      // PCRE refuses these outright; other unknown letters it reads as themselves.
      if ('LlNUupPXCK'.includes(c)) this.#fail(`unsupported escape \\${c}`);
      return c.charCodeAt(0);
    }
    return this.#byte(c.charCodeAt(0));
  }

  #byte(value: number): number {
    if (value > PCRE_MAX_BYTE) this.#fail('character value above \\xff (patterns match bytes)');
    return value;
  }

  /** A character class after its `[`. */
  #class(options: Options): ByteSet {
    const set = newSet();
    const negated = this.#eat('^');
    let first = true;
    for (;;) {
      if (this.#pos >= this.#src.length) this.#fail('missing terminating ] for character class');
      if (this.#eat('\\Q')) {
        const end = this.#src.indexOf('\\E', this.#pos);
        const text = this.#src.slice(this.#pos, end === -1 ? this.#src.length : end);
        for (const ch of text) add(set, this.#byte(ch.charCodeAt(0)));
        this.#pos = end === -1 ? this.#src.length : end + 2;
        first = false;
        continue;
      }
      if (this.#eat('\\E')) continue;
      const c = this.#peek();
      if (c === ']' && !first) {
        this.#pos++;
        break;
      }
      first = false;
      const posix = /^\[:(\^?)([a-z]+):\]/.exec(this.#src.slice(this.#pos, this.#pos + 12));
      if (posix !== null) {
        const named = POSIX_CLASSES[posix[2]!];
        if (named === undefined) this.#fail(`unknown POSIX class name ${posix[2]}`);
        addSet(set, posix[1] === '^' ? complement(named) : named);
        this.#pos += posix[0].length;
        continue;
      }
      const from = this.#classMember();
      if (typeof from !== 'number') {
        addSet(set, from);
        continue;
      }
      // A range needs a single character on both sides; otherwise the hyphen is literal.
      if (this.#peek() === '-' && this.#peek(1) !== ']' && this.#peek(1) !== '') {
        const save = this.#pos;
        this.#pos++;
        const to = this.#classMember();
        if (typeof to === 'number') {
          if (to < from) this.#fail('range out of order in character class');
          addRange(set, from, to);
          continue;
        }
        this.#pos = save;
      }
      add(set, from);
    }
    const folded = options.caseless ? foldCase(set) : set;
    return negated ? complement(folded) : folded;
  }

  /** One member of a class: a byte, or the set of an escape such as `\d`. */
  #classMember(): number | ByteSet {
    const c = this.#src[this.#pos++]!;
    if (c !== '\\') return this.#byte(c.charCodeAt(0));
    const e = this.#peek();
    const cls = escapeClass(e);
    if (cls !== null && e !== 'N') {
      this.#pos++;
      return cls;
    }
    if (e === 'b') {
      this.#pos++;
      return 8;
    }
    if (e === '' || 'BRXNgkAzZG'.includes(e)) this.#fail(`escape \\${e} is not allowed in a character class`);
    return this.#escapedByte();
  }
}

class PcreSyntaxError extends Error {}

/** Thrown inside Printer when unrolling would exceed MAX_UNROLLED_LENGTH; print() returns null for it. */
class UnrolledTooLong extends Error {}

function seq(items: Node[]): Node {
  return items.length === 1 ? items[0]! : { kind: 'seq', items };
}

// ---- Analyses and rewrites ---------------------------------------------------------------------------------

const isDotStar = (node: Node): boolean =>
  node.kind === 'repeat' && node.max === Infinity && node.body.kind === 'set' && isFullSet(node.body.set);

/**
 * PCRE's implicit anchoring: when every branch starts with `.*` (dot-all), a match starting at p > 0 implies
 * one at 0, so only position 0 need be tried. Not done with back references (`(.*)\1` needs the exact start).
 */
function anchorLeadingDotStar(tree: Node): Node {
  if (!startsWith(tree, isDotStar) || contains(tree, (n) => n.kind === 'backref')) return tree;
  return { kind: 'seq', items: [{ kind: 'assert', what: 'textStart' }, tree] };
}

/** Whether every branch of `node` begins with a node `predicate` accepts. */
function startsWith(node: Node, predicate: (n: Node) => boolean): boolean {
  if (predicate(node)) return true;
  switch (node.kind) {
    case 'seq':
      return node.items.length > 0 && startsWith(node.items[0]!, predicate);
    case 'alt':
      return node.branches.every((branch) => startsWith(branch, predicate));
    case 'group':
      return startsWith(node.body, predicate);
    default:
      return false;
  }
}

/**
 * A pattern `C*?P` (C a byte set, unanchored) matches exactly where P does: from any start, the lazy repeat
 * tries P after each following C, and the leftmost start is where the run of C before P's leftmost match
 * begins. So P alone is run and the match extended back over that run (BoundedRegex#exec): the same result,
 * without retrying P from every byte of a long run of C — quadratic work for CRS 942130 on a run of spaces.
 */
function stripLeadingLazySet(node: Node): { rest: Node; set: ByteSet } | null {
  if (node.kind === 'group' && node.capture === 0) {
    const inner = stripLeadingLazySet(node.body);
    return inner && { rest: { kind: 'group', capture: 0, body: inner.rest }, set: inner.set };
  }
  if (node.kind !== 'seq') return null;
  const first = node.items[0];
  if (first?.kind !== 'repeat' || first.body.kind !== 'set' || !first.lazy || first.possessive) return null;
  if (first.min !== 0 || first.max !== Infinity) return null;
  return { rest: seq(node.items.slice(1)), set: first.body.set };
}

function contains(node: Node, predicate: (n: Node) => boolean): boolean {
  if (predicate(node)) return true;
  switch (node.kind) {
    case 'seq':
      return node.items.some((n) => contains(n, predicate));
    case 'alt':
      return node.branches.some((n) => contains(n, predicate));
    case 'group':
    case 'look':
    case 'atomic':
    case 'repeat':
      return contains(node.body, predicate);
    default:
      return false;
  }
}

const isCounted = (n: Node): boolean => n.kind === 'repeat' && (n.min > 1 || (n.max !== Infinity && n.max > 1));
const hasCountedRepeat = (tree: Node): boolean => contains(tree, isCounted);

/** Whether printing `node` opens a JavaScript group (a capture, or an atomic group's emulation). */
const opensGroup = (node: Node): boolean =>
  contains(
    node,
    (n) => (n.kind === 'group' && n.capture !== 0) || n.kind === 'atomic' || (n.kind === 'repeat' && n.possessive),
  );

/**
 * An upper bound on the work backtracking does from one start position: the number of paths through the
 * pattern times the length of the longest (both Infinity with `*` or `+`), each path being tried at most once.
 */
function backtrackingWork(node: Node): number {
  const { paths, steps } = pathsAndSteps(node);
  return paths * steps;
}

function pathsAndSteps(node: Node): { paths: number; steps: number } {
  switch (node.kind) {
    case 'set':
    case 'assert':
      return { paths: 1, steps: 1 };
    case 'backref':
      // As long as what its group matched: not counted here, so never "bounded as it is".
      return { paths: 1, steps: Infinity };
    case 'seq':
      return node.items.map(pathsAndSteps).reduce(
        (total, item) => ({ paths: bounded(total.paths * item.paths), steps: bounded(total.steps + item.steps) }),
        { paths: 1, steps: 0 },
      );
    case 'alt':
      return node.branches.map(pathsAndSteps).reduce(
        (total, branch) => ({ paths: bounded(total.paths + branch.paths), steps: Math.max(total.steps, branch.steps) }),
        { paths: 0, steps: 0 },
      );
    case 'group':
    case 'look':
    case 'atomic':
      return pathsAndSteps(node.body);
    case 'repeat': {
      if (node.max === Infinity) return { paths: Infinity, steps: Infinity };
      const body = pathsAndSteps(node.body);
      let paths = 0;
      for (let k = node.min; k <= node.max && paths <= MAX_BOUNDED_WORK; k++) paths = bounded(paths + body.paths ** k);
      return { paths, steps: bounded(node.max * body.steps) };
    }
  }
}

const bounded = (value: number): number => (value > MAX_BOUNDED_WORK ? Infinity : value);

function firstOf(node: Node): { set: ByteSet; nullable: boolean } | null {
  switch (node.kind) {
    case 'set':
      return { set: node.set, nullable: false };
    case 'assert':
    case 'look':
      return { set: newSet(), nullable: true };
    case 'backref':
      return null;
    case 'group':
    case 'atomic':
      return firstOf(node.body);
    case 'repeat': {
      const body = firstOf(node.body);
      return body && { set: body.set, nullable: body.nullable || node.min === 0 };
    }
    case 'seq': {
      const set = newSet();
      for (const item of node.items) {
        const first = firstOf(item);
        if (first === null) return null;
        addSet(set, first.set);
        if (!first.nullable) return { set, nullable: false };
      }
      return { set, nullable: true };
    }
    case 'alt': {
      const set = newSet();
      let nullable = false;
      for (const branch of node.branches) {
        const first = firstOf(branch);
        if (first === null) return null;
        addSet(set, first.set);
        nullable ||= first.nullable;
      }
      return { set, nullable };
    }
  }
}

/**
 * `C*+` followed by something that must first consume a byte outside C: giving back a
 * C would leave a C for it to start on, so backtracking into the repeat can never succeed and the plain greedy
 * repeat gives the same results — with no emulation group, and within the linear engine's reach.
 */
function possessiveIsGreedy(repeat: Node & { kind: 'repeat' }, follow: Follow): boolean {
  if (repeat.body.kind !== 'set') return false;
  const next = firstBytesAfter(follow);
  return next !== null && disjoint(next, repeat.body.set);
}

// ---- Printer ---------------------------------------------------------------------------------------------

/** The linear engine replicates a counted repeat's body; it refuses a product of counts above this. */
const LINEAR_ENGINE_MAX_REPLICATION = 16;

/** What may follow a node in a match: the rest of each enclosing sequence, innermost first. */
type Follow = { rest: readonly Node[]; outer: Follow } | 'end' | 'unknown';

interface Context {
  /** How many copies of this node the linear engine would make (the product of enclosing counts). */
  replication: number;
  /** 'unknown' inside repeats and lookarounds, whose continuation this printer does not track. */
  follow: Follow;
  /** Inside a capture, which would show a consumed trailing newline. */
  captured: boolean;
  /** At the start of the pattern: nothing before this node consumes or asserts anything. */
  leading: boolean;
}

/**
 * The bytes that must come first after a node, or null when what follows may consume nothing (or is
 * unknown, or starts with a back reference). Zero-width items consume nothing, so they are passed over.
 */
function firstBytesAfter(follow: Follow): ByteSet | null {
  const set = newSet();
  for (let f = follow; typeof f !== 'string'; f = f.outer) {
    for (const node of f.rest) {
      const first = firstOf(node);
      if (first === null) return null;
      addSet(set, first.set);
      if (!first.nullable) return set;
    }
  }
  return null;
}

/** Nothing can follow: the end of the pattern, outside any capture, repeat or lookaround. */
function isFinal(context: Context): boolean {
  let f = context.follow;
  while (typeof f !== 'string' && f.rest.length === 0) f = f.outer;
  return f === 'end' && !context.captured;
}

class Printer {
  /** JavaScript group of each PCRE group. */
  readonly groups: number[];
  /** Groups that hold a newline a final `$` consumed (see #assertion); not part of the match PCRE reports. */
  trailingNewlineGroups: number[] = [];
  #next = 0;
  #unroll = false;
  readonly #lineStartLeads: boolean;
  readonly #singleLine: boolean;

  /**
   * `lineStartLeads`: every branch starts with a multiline `^` (see MatchFix). `singleLine`: print for inputs
   * that hold no LF, where a multiline `^` can only hold at the start (BoundedRegex#singleLine).
   */
  constructor(groupCount: number, lineStartLeads: boolean, singleLine = false) {
    this.groups = new Array<number>(groupCount + 1).fill(0);
    this.#lineStartLeads = lineStartLeads;
    this.#singleLine = singleLine;
  }

  /**
   * `unroll`: spell out counted repeats the linear engine would refuse (those without groups); null when that
   * would make the text longer than MAX_UNROLLED_LENGTH.
   */
  print(tree: Node, unroll: true): string | null;
  print(tree: Node, unroll: false): string;
  print(tree: Node, unroll: boolean): string | null;
  print(tree: Node, unroll: boolean): string | null {
    this.#unroll = unroll;
    const top: Context = { replication: 1, follow: 'end', captured: false, leading: true };
    // The first pass numbers every group, so the second can print forward back references.
    try {
      this.#next = 0;
      this.#node(tree, top);
      this.#next = 0;
      this.trailingNewlineGroups = [];
      const text = this.#node(tree, top);
      return unroll && text.length > MAX_UNROLLED_LENGTH ? null : text;
    } catch (error) {
      if (error instanceof UnrolledTooLong) return null;
      throw error;
    }
  }

  #node(node: Node, context: Context): string {
    switch (node.kind) {
      case 'set':
        return printSet(node.set);
      case 'seq':
        return node.items
          .map((item, i) =>
            this.#node(item, {
              ...context,
              follow: { rest: node.items.slice(i + 1), outer: context.follow },
              leading: context.leading && i === 0,
            }),
          )
          .join('');
      case 'alt':
        return node.branches.map((branch) => this.#node(branch, context)).join('|');
      case 'group': {
        if (node.capture === 0) return `(?:${this.#node(node.body, context)})`;
        this.groups[node.capture] = ++this.#next;
        return `(${this.#node(node.body, { ...context, captured: true })})`;
      }
      case 'look': {
        const body = this.#node(node.body, { ...context, follow: 'unknown', leading: false });
        return `(?${node.behind ? '<' : ''}${node.negated ? '!' : '='}${body})`;
      }
      case 'atomic':
        return this.#atomic(() => this.#node(node.body, { ...context, follow: 'unknown', leading: false }));
      case 'repeat':
        return this.#repeat(node, context);
      case 'backref': {
        // Parenthesised so that a digit after it cannot extend the number.
        const ref = `\\${this.groups[node.group]!}`;
        return node.caseless ? `(?i:${ref})` : `(?:${ref})`;
      }
      case 'assert':
        return this.#assertion(node.what, context);
    }
  }

  #repeat(node: Node & { kind: 'repeat' }, context: Context): string {
    if (node.possessive && possessiveIsGreedy(node, context.follow)) {
      return this.#repeat({ ...node, possessive: false }, context);
    }
    const local = node.max === Infinity ? Math.max(node.min, 1) : node.max;
    const unroll = this.#unroll && isCounted(node) && context.replication * local > LINEAR_ENGINE_MAX_REPLICATION;
    if (unroll && !opensGroup(node.body)) return this.#unrolled(node, context);
    const print = (): string => {
      const replication = context.replication * local;
      const body = this.#node(node.body, { ...context, replication, follow: 'unknown', leading: false });
      const atom = node.body.kind === 'seq' || node.body.kind === 'alt' ? `(?:${body})` : body;
      return `${atom}${quantifier(node.min, node.max)}${node.lazy ? '?' : ''}`;
    };
    return node.possessive ? this.#atomic(print) : print();
  }

  /** X{m,n} as m copies of X then n−m nested optionals (the same order of tries); X{m,} ends in X*. */
  #unrolled(node: Node & { kind: 'repeat' }, context: Context): string {
    const body = `(?:${this.#node(node.body, { ...context, follow: 'unknown', leading: false })})`;
    const lazy = node.lazy ? '?' : '';
    // Checked before building: nested counts multiply, and the text must not grow without bound.
    const copies = node.max === Infinity ? node.min + 1 : node.max;
    if (body.length * copies > MAX_UNROLLED_LENGTH) throw new UnrolledTooLong();
    let text = body.repeat(node.min);
    if (node.max === Infinity) text += `${body}*${lazy}`;
    else {
      const optional = node.max - node.min;
      text += `(?:${body}`.repeat(optional) + `)?${lazy}`.repeat(optional);
    }
    return node.possessive ? this.#atomic(() => text) : text;
  }

  /** Once a lookahead has matched, nothing after it can make it match differently: PCRE's (?>X). */
  #atomic(inner: () => string): string {
    const group = ++this.#next;
    return `(?:(?=(${inner()}))\\${group})`;
  }

  /**
   * PCRE's newline is LF alone, while JavaScript's `m` flag also ends lines at CR (which CRS's own tests send),
   * so no `m` flag: a line start is a lookbehind (which the linear engine runs). A line end needs a lookahead,
   * which it does not; where nothing can follow the `$`, consuming the LF is equivalent, and exec() gives that
   * LF back.
   */
  #assertion(what: Assertion, context: Context): string {
    const final = isFinal(context);
    switch (what) {
      case 'lineStart':
        if (this.#singleLine) return '^';
        return lineStart((context.leading && this.#lineStartLeads) || firstBytesAfter(context.follow) !== null);
      case 'lineEnd':
        return final ? `(?:$|(${this.#trailingNewline()}))` : '(?![^\\n])';
      case 'textStart':
        return '^';
      case 'textEnd':
        return '$';
      case 'textEndOrFinalNewline':
        return final ? `(?:(${this.#trailingNewline()})?$)` : '(?=\\n?$)';
      case 'word':
        return '\\b';
      case 'nonWord':
        return '\\B';
    }
  }

  #trailingNewline(): string {
    this.trailingNewlineGroups.push(++this.#next);
    return '\\n';
  }
}

/**
 * PCRE's multiline `^`: at the start, or after an LF that is not the last byte. The lookahead for "not the
 * last byte" (which the linear engine refuses) is left out when it holds anyway — what follows must consume a
 * byte — or when exec() checks it instead (MatchFix.lineStartLeads).
 */
function lineStart(unchecked: boolean): string {
  return unchecked ? '(?<![^\\n])' : '(?:^|(?<=\\n)(?!$))';
}

function quantifier(min: number, max: number): string {
  if (min === 0 && max === Infinity) return '*';
  if (min === 1 && max === Infinity) return '+';
  if (min === 0 && max === 1) return '?';
  if (min === max) return `{${min}}`;
  return `{${min},${max === Infinity ? '' : max}}`;
}

/** Bytes printed as themselves when safe in and out of a class; everything else as \xhh. */
const PLAIN = /^[A-Za-z0-9 _!"#%&',:;<=>@`~]$/;

function printByte(c: number, inClass: boolean): string {
  const ch = String.fromCharCode(c);
  if (PLAIN.test(ch)) return ch;
  if (!inClass && '^$\\.*+?()[]{}|/-'.includes(ch)) return `\\${ch}`;
  return `\\x${c.toString(16).padStart(2, '0')}`;
}

function printSet(set: ByteSet): string {
  const count = size(set);
  if (count === 1) {
    for (let c = 0; ; c++) if (has(set, c)) return printByte(c, false);
  }
  if (count === 256) return '[^]';
  // The complement form also covers characters above \xff, which byte strings never hold; it is shorter.
  const negated = count > 128;
  const members = negated ? complement(set) : set;
  let body = '';
  for (let c = 0; c < 256; c++) {
    if (!has(members, c)) continue;
    let end = c;
    while (end < 255 && has(members, end + 1)) end++;
    body += printByte(c, true);
    if (end > c) body += `${end > c + 1 ? '-' : ''}${printByte(end, true)}`;
    c = end;
  }
  return `[${negated ? '^' : ''}${body}]`;
}
