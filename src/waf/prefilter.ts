// Required literals of a PCRE pattern: sets of strings (clauses) such that every match of the pattern contains
// at least one string of each clause, compared case-insensitively (A–Z folded, as ../aho-corasick.ts
// compares). ../regex.ts searches an input for them with one Aho–Corasick pass before it runs the regex, and
// skips the regex when a clause has no string in the input: the answer is the same (no match), found for the
// cost of one table read per byte. The engine does the same for all rules sharing an input (./transaction.ts).
//
// This is what lets the CRS run on benign traffic. Each CRS rule's pattern needs some rare text to match —
// `<` for most XSS rules, `;`, `|`, `$(` or a back-quote ahead of a Unix command, SQL keywords — and a benign
// value holds none of it, yet irregexp still tries every start position.
//
// The analysis is the classic one of RE2's prefilter and Hyperscan's literal extraction, kept to what is cheap
// to get right: per node, its `exact` set (every string it matches, when that set is small) and its
// `required` clauses (as above, the rarest first); a sequence multiplies neighbouring exact sets into longer
// literals and keeps the rarest clauses of its parts; an alternation unites its branches' first clauses into
// its first, their second ones into its second (a match of branch i holds a string of each of branch i's
// clauses, so of each union); a repeat with a minimum of one keeps its body's. Zero-width nodes (assertions,
// lookarounds) match the empty string here: what a match consumes is still one contiguous run of the input, so
// literals across them stay adjacent. A back reference or an optional part gives no constraint. The result is
// only ever a superset test; a pattern with no usable literal gets none. Two clauses are worth more than one:
// prose holds `open` (CRS 942320's rarest word) but seldom `open` and `;` both.

import { lowercase } from './transforms/text.ts';

/** The parsed pattern's tree as ../regex.ts builds it (only the shapes this analysis reads). */
export type LiteralNode =
  | { kind: 'set'; set: Uint32Array }
  | { kind: 'seq'; items: LiteralNode[] }
  | { kind: 'alt'; branches: LiteralNode[] }
  | { kind: 'group'; body: LiteralNode }
  | { kind: 'atomic'; body: LiteralNode }
  | { kind: 'look'; body: LiteralNode }
  | { kind: 'repeat'; body: LiteralNode; min: number; max: number }
  | { kind: 'backref' }
  | { kind: 'assert' };

/** Strings one of which a match contains. */
export type Clause = readonly string[];

/** A byte class wider than this (after folding) is not spelt out as single-byte literals. */
const MAX_CLASS_LITERALS = 12;
/** Bounds that keep the analysis and the automaton small: exact sets, literal length, clause size and count. */
const MAX_EXACT = 64;
const MAX_LITERAL_LENGTH = 32;
const MAX_REQUIRED = 512;
const MAX_CLAUSES = 3;
/**
 * A clause past the first is kept only if rarer than this (see setCost): one as common as a letter (0.07) or
 * `.` (0.04) filters next to nothing, and every occurrence costs the engine's shared scan a table entry's worth
 * of work. At 0.1 (CRS 941210/941220's `a`, `v`, `b`, `j`; `.`; 4200300's `in`, `or`) bench/waf's 1.6 KB message
 * held 598 occurrences of the automaton's phrases; at 0.01, 366 (301 of them the spaces of 932150's one clause),
 * and the POST's scans took 44 µs instead of 57.
 */
const MAX_EXTRA_CLAUSE_COST = 0.01;

interface Literals {
  /** Every string the node matches, folded; null when unknown or too many. */
  exact: string[] | null;
  /** Clauses every match satisfies, the rarest first; empty when there are none (or no good ones). */
  required: Clause[];
}

const EMPTY: Literals = { exact: [''], required: [] };
const UNKNOWN: Literals = { exact: null, required: [] };

/** Past this, minimumLength stops counting: no input the engine sees is as long. */
const MAX_MINIMUM_LENGTH = 1 << 24;

/**
 * The fewest bytes a match consumes: a shorter input cannot match (zero-width nodes and back references count
 * for nothing, so the answer is never too high).
 */
export function minimumLength(node: LiteralNode, depth = 0): number {
  if (depth > 400) return 0;
  switch (node.kind) {
    case 'set':
      return 1;
    case 'assert':
    case 'look':
    case 'backref':
      return 0;
    case 'group':
    case 'atomic':
      return minimumLength(node.body, depth + 1);
    case 'repeat':
      return node.min === 0 ? 0 : Math.min(MAX_MINIMUM_LENGTH, node.min * minimumLength(node.body, depth + 1));
    case 'alt':
      return node.branches.reduce((fewest, branch) => Math.min(fewest, minimumLength(branch, depth + 1)), MAX_MINIMUM_LENGTH);
    case 'seq':
      return Math.min(MAX_MINIMUM_LENGTH, node.items.reduce((sum, item) => sum + minimumLength(item, depth + 1), 0));
  }
}

/** The required clauses of a pattern, the rarest first; empty when every input must be tried. */
export function requiredLiterals(tree: LiteralNode): Clause[] {
  return literalsOf(tree, 0).required;
}

/**
 * A clause for a phrase list (@pm) too long to join the engine's automaton whole: for each phrase, folded, its
 * rarest substring of `length` bytes (the phrase itself when shorter), preferring one already chosen. A text
 * that holds a phrase holds its substring, so a text holding none of them holds no phrase. CRS's 1,090
 * phrases of lfi-os-files.data come down to 250 such substrings, none of which the benign texts of bench/waf
 * hold.
 */
export function phraseFactors(phrases: readonly string[], length: number): string[] {
  const factors = new Set<string>();
  for (const phrase of phrases) {
    const folded = lowercase(phrase);
    if (folded.length <= length) {
      factors.add(folded);
      continue;
    }
    let chosen = '';
    let lowest = Infinity;
    for (let i = 0; i + length <= folded.length; i++) {
      const factor = folded.slice(i, i + length);
      const cost = setCost([factor]);
      if (cost < lowest || (cost === lowest && factors.has(factor))) {
        chosen = factor;
        lowest = cost;
      }
    }
    factors.add(chosen);
  }
  return [...factors];
}

function literalsOf(node: LiteralNode, depth: number): Literals {
  // The parser bounds nesting (MAX_NESTING there); this guard keeps the analysis safe on its own.
  if (depth > 400) return UNKNOWN;
  switch (node.kind) {
    case 'set':
      return withExact(classLiterals(node.set), []);
    case 'assert':
    case 'look':
      return EMPTY;
    case 'backref':
      return UNKNOWN;
    case 'group':
    case 'atomic':
      return literalsOf(node.body, depth + 1);
    case 'repeat':
      return repeatLiterals(node, literalsOf(node.body, depth + 1));
    case 'alt':
      return altLiterals(node.branches.map((branch) => literalsOf(branch, depth + 1)));
    case 'seq':
      return seqLiterals(node.items.map((item) => literalsOf(item, depth + 1)));
  }
}

/** The folded bytes of a small class, or null. */
function classLiterals(set: Uint32Array): string[] | null {
  const bytes = new Set<number>();
  for (let c = 0; c < 256; c++) {
    if ((set[c >>> 5]! & (1 << (c & 31))) === 0) continue;
    bytes.add(c >= 0x41 && c <= 0x5a ? c + 0x20 : c);
    if (bytes.size > MAX_CLASS_LITERALS) return null;
  }
  return bytes.size === 0 ? null : [...bytes].map((c) => String.fromCharCode(c));
}

/** `exact`, and as clauses the best of `candidates` and `exact` itself (a clause, unless it holds ''). */
function withExact(exact: string[] | null, candidates: readonly Clause[]): Literals {
  return { exact, required: best(exact === null ? candidates : [...candidates, exact]) };
}

function repeatLiterals(node: { min: number; max: number }, body: Literals): Literals {
  if (node.min === 0) {
    // `x?` is {'', x}: kept exact so that `colou?r` still yields whole words; anything longer gives nothing.
    return { exact: node.max === 1 && body.exact !== null ? unique([...body.exact, '']) : null, required: [] };
  }
  let exact: string[] | null = null;
  if (node.min === node.max && body.exact !== null) {
    exact = [''];
    for (let i = 0; i < node.min && exact !== null; i++) exact = product(exact, body.exact);
  }
  return withExact(exact, body.required);
}

function altLiterals(branches: Literals[]): Literals {
  let exact: string[] | null = [];
  for (const branch of branches) {
    exact = exact !== null && branch.exact !== null ? exact.concat(branch.exact) : null;
    if (exact !== null && exact.length > MAX_EXACT) exact = null;
  }
  // Clause k of the alternation: the union of every branch's clause k, while every branch has one.
  const clauses: Clause[] = [];
  for (let k = 0; k < MAX_CLAUSES; k++) {
    let union: string[] | null = [];
    for (const branch of branches) {
      const clause = branch.required[k];
      union = union !== null && clause !== undefined && union.length + clause.length <= MAX_REQUIRED ? union.concat(clause) : null;
      if (union === null) break;
    }
    if (union === null) break;
    clauses.push(minimal(unique(union)));
  }
  return withExact(exact === null ? null : unique(exact), clauses);
}

/**
 * Runs of exact items multiply into longer literals; each run, and each item's own clauses, are candidates
 * for the sequence, and the rarest candidates win.
 */
function seqLiterals(items: Literals[]): Literals {
  const candidates: Clause[] = [];
  let run: string[] = [''];
  let whole = true;
  const flush = (): void => {
    if (!run.includes('')) candidates.push(minimal(run));
  };
  for (const item of items) {
    if (item.exact !== null) {
      const grown = product(run, item.exact);
      if (grown !== null) {
        run = grown;
        continue;
      }
      flush();
      run = item.exact;
      whole = false;
      continue;
    }
    flush();
    candidates.push(...item.required);
    run = [''];
    whole = false;
  }
  flush();
  return { exact: whole ? run : null, required: best(candidates) };
}

/** Every a + b, or null past MAX_EXACT strings or MAX_LITERAL_LENGTH bytes. */
function product(left: readonly string[], right: readonly string[]): string[] | null {
  if (left.length * right.length > MAX_EXACT) return null;
  const out: string[] = [];
  for (const a of left) {
    for (const b of right) {
      if (a.length + b.length > MAX_LITERAL_LENGTH) return null;
      out.push(a + b);
    }
  }
  return unique(out);
}

function unique(strings: readonly string[]): string[] {
  return [...new Set(strings)];
}

/** Drops literals that contain another of the set: an input holding the longer one holds the shorter. */
function minimal(strings: string[]): string[] {
  if (strings.length > 64) return strings;
  return strings.filter((s) => !strings.some((other) => other !== s && other.length < s.length && s.includes(other)));
}

/**
 * The clauses least likely to be satisfied by benign text, the rarest first: at most MAX_CLAUSES, distinct,
 * each without the empty string, past the first only those rarer than MAX_EXTRA_CLAUSE_COST.
 */
function best(candidates: readonly Clause[]): Clause[] {
  const scored = new Map<string, { clause: Clause; cost: number }>();
  for (const candidate of candidates) {
    if (candidate.length === 0 || candidate.includes('')) continue;
    const clause = minimal([...candidate]);
    const key = [...clause].sort().join('\0');
    if (!scored.has(key)) scored.set(key, { clause, cost: setCost(clause) });
  }
  const kept: Clause[] = [];
  for (const { clause, cost } of [...scored.values()].sort((a, b) => a.cost - b.cost)) {
    if (kept.length === MAX_CLAUSES || (kept.length > 0 && cost > MAX_EXTRA_CLAUSE_COST)) break;
    // A clause every string of a kept one satisfies adds nothing (`..` kept: `..` or `../` is implied).
    if (kept.some((other) => other.every((s) => clause.some((t) => s.includes(t))))) continue;
    kept.push(clause);
  }
  return kept;
}

/**
 * A rough chance that the set occurs at a given position of benign text: the sum over its literals of the
 * product of per-byte frequencies. Only the order matters (it ranks candidates), so coarse classes do.
 */
function setCost(literals: readonly string[]): number {
  let cost = 0;
  for (const literal of literals) {
    let p = 1;
    for (let i = 0; i < literal.length; i++) p *= byteFrequency(literal.charCodeAt(i));
    cost += p;
  }
  return cost;
}

/** Letters and digits are common in benign values, and so is the punctuation of URLs, forms and dates. */
function byteFrequency(c: number): number {
  if (c === 0x20) return 0.15;
  if (c >= 0x61 && c <= 0x7a) return 0.07;
  if (c >= 0x30 && c <= 0x39) return 0.05;
  if (COMMON_PUNCTUATION.includes(String.fromCharCode(c))) return 0.04;
  if (c > 0x20 && c < 0x7f) return 0.002;
  return 0.001;
}

const COMMON_PUNCTUATION = '.-/_=&,:+%?#@*';
