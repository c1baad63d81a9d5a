// A multi-phrase matcher for `@pm` / `@pmFromFile` (operators/pm.ts): an Aho–Corasick automaton built once per
// rule and searched per value with no allocation. Like ModSecurity's acmp (src/utils/acmp.cc), it compares
// case-insensitively by lowering A–Z on both sides (C-locale tolower: bytes above 0x7f are left alone).
//
// The automaton is a complete DFA in one typed array (stateTable): every state has a transition for every byte
// class, so the search loop is one dependent array read per input byte. Bytes are first mapped to classes — one
// class per distinct (lowered) byte the phrases use, class 0 for all others, which always leads back to the
// start — so a row is as wide as the phrases' alphabet, not 256. An entry holds the next state's number, with a
// flag bit when that state ends a phrase: the search stops at the first one. CRS's largest data file,
// lfi-os-files.data (1 090 distinct phrases, 31 KiB), gives 12 948 states over 47 classes: 1.2 MB at 16 bits an
// entry, built in about 50 ms.
//
// Unlike acmp, which computes fail links one level deep and so can miss a phrase that is a suffix of another
// phrase's prefix, this is the textbook automaton: it finds a phrase whenever the input contains one.
//
// LiteralSets is the same automaton with many answers: each phrase belongs to one or more numbered sets (the
// required literal clauses of every rule, ./prefilter.ts, and the phrase lists of @pm), and one pass over an
// input marks every set one of whose phrases occurs, as bits. A transaction runs it once per distinct text
// instead of once per rule (./transaction.ts).

/** The byte → class map for bytes the phrases never use. */
const OTHER_CLASS = 0;

export class PhraseMatcher {
  /** How many distinct (case-folded) phrases the automaton holds. */
  readonly size: number;
  /** Class of each byte value (A–Z share the class of a–z). */
  readonly #classOf: Uint8Array;
  /** The search table (stateTable): a state ending a phrase is found, and find() stops there. */
  readonly #table: StateTable;
  /** Per found state (by number): the phrase it ends, in #phrases. */
  readonly #phraseOf: Int32Array;
  readonly #phrases: readonly string[];

  /** `phrases` as written (byte strings); empty ones are ignored, as acmp ignores them. */
  constructor(phrases: readonly string[]) {
    const unique = new Map<string, string>();
    for (const phrase of phrases) {
      const folded = lowerAscii(phrase);
      if (folded.length > 0 && !unique.has(folded)) unique.set(folded, phrase);
    }
    this.#phrases = [...unique.values()];
    this.size = this.#phrases.length;
    const dfa = buildDfa([...unique.keys()]);
    this.#classOf = dfa.classOf;
    const { output, fail, order } = dfa;
    // A state with no phrase of its own reports its failure state's, which is the longest phrase ending there
    // because failure states are shorter (breadth-first order completes each failure state first).
    for (const state of order) if (output[state] === -1) output[state] = output[fail[state]!]!;
    this.#table = stateTable(dfa, (state) => output[state]! >= 0);
    this.#phraseOf = new Int32Array(order.length);
    for (const state of order) this.#phraseOf[this.#table.rank[state]!] = output[state]!;
  }

  /**
   * The phrase (as written) whose occurrence ends first in `input`, the longest one if several end there;
   * null when no phrase occurs.
   */
  find(input: string): string | null {
    const { next, stride, foundBit } = this.#table;
    const classOf = this.#classOf;
    let state = 0;
    for (let i = 0; i < input.length; i++) {
      const code = input.charCodeAt(i);
      state = next[state * stride + (code < 256 ? classOf[code]! : OTHER_CLASS)]!;
      if (state >= foundBit) return this.#phrases[this.#phraseOf[state - foundBit]!]!;
    }
    return null;
  }
}

/** Phrases in numbered sets; `scan` marks the sets one of whose phrases an input contains (see the top). */
export class LiteralSets {
  /** How many sets there are, and the 32-bit words a mark of them takes. */
  readonly sets: number;
  readonly words: number;
  readonly #classOf: Uint8Array;
  /** The search table (stateTable): a state ending a phrase of some set is found. */
  readonly #table: StateTable;
  /** Per found state (by number): where its entry in #found starts. */
  readonly #entryOf: Int32Array;
  /**
   * Per state ending a phrase: the number of words its sets touch, then (word, bits) pairs. Sparse, because one
   * automaton serves the whole rule set (hundreds of sets) and a phrase belongs to one or a few.
   */
  readonly #found: Int32Array;

  /** `sets[i]`: the phrases of set i (byte strings; A–Z fold to a–z, as in PhraseMatcher). */
  constructor(sets: readonly (readonly string[])[]) {
    this.sets = sets.length;
    this.words = Math.max(1, Math.ceil(sets.length / 32));
    const members = new Map<string, number[]>();
    sets.forEach((phrases, set) => {
      for (const phrase of phrases) {
        const folded = lowerAscii(phrase);
        if (folded.length === 0) continue;
        const list = members.get(folded) ?? [];
        if (!list.includes(set)) list.push(set);
        members.set(folded, list);
      }
    });
    const phrases = [...members.keys()];
    const dfa = buildDfa(phrases);
    const { output, fail, order } = dfa;
    this.#classOf = dfa.classOf;
    // A state's sets: its own phrase's, and those of its failure chain (suffixes that are phrases too),
    // gathered in breadth-first order so that each failure state is done before the states that use it.
    const ofState: (Map<number, number> | undefined)[] = [];
    for (const state of order) {
      const inherited = ofState[fail[state]!];
      const own = output[state]!;
      if (own < 0 && inherited === undefined) continue;
      const words = new Map(inherited);
      if (own >= 0) {
        for (const set of members.get(phrases[own]!)!) words.set(set >>> 5, (words.get(set >>> 5) ?? 0) | (1 << (set & 31)));
      }
      ofState[state] = words;
    }
    this.#table = stateTable(dfa, (state) => ofState[state] !== undefined);
    this.#entryOf = new Int32Array(order.length).fill(-1);
    const found: number[] = [];
    ofState.forEach((words, state) => {
      if (words === undefined) return;
      this.#entryOf[this.#table.rank[state]!] = found.length;
      found.push(words.size);
      for (const [word, bits] of words) found.push(word, bits);
    });
    this.#found = Int32Array.from(found);
  }

  /** ORs into `marks[at … at + words)` the bits of the sets one of whose phrases occurs in `input`. */
  scan(input: string, marks: Uint32Array, at: number): void {
    const { next, stride, foundBit } = this.#table;
    const classOf = this.#classOf;
    const entryOf = this.#entryOf;
    const found = this.#found;
    let state = 0;
    for (let i = 0; i < input.length; i++) {
      const code = input.charCodeAt(i);
      state = next[state * stride + (code < 256 ? classOf[code]! : OTHER_CLASS)]!;
      if (state >= foundBit) {
        state -= foundBit;
        const entry = entryOf[state]!;
        const end = entry + 1 + 2 * found[entry]!;
        for (let k = entry + 1; k < end; k += 2) marks[at + found[k]!]! |= found[k + 1]!;
      }
    }
  }
}

/**
 * A DFA's search table: next[state × stride + class] is the next state, plus foundBit when `found` says the
 * search has something to report there. States are numbered in breadth-first order, not the trie's insertion
 * order: text that matches nothing keeps the automaton in shallow states, whose rows then sit together at the
 * start of the table, where they stay cached, instead of spread over all of it. Entries take 16 bits when the
 * states fit in 15 (the CRS's shared automaton, 25,500 states: 4 MB instead of 8), else 32; a multiply per
 * byte buys that half.
 */
interface StateTable {
  readonly next: Uint16Array | Uint32Array;
  readonly stride: number;
  readonly foundBit: number;
  /** Each state's number in `next`, by its number in the DFA. */
  readonly rank: Int32Array;
}

const SMALL_FOUND_BIT = 0x8000;
const LARGE_FOUND_BIT = 0x80000000;

function stateTable(dfa: Dfa, found: (state: number) => boolean): StateTable {
  const { next, order, stride } = dfa;
  const rank = new Int32Array(order.length);
  order.forEach((state, position) => (rank[state] = position));
  const foundBit = order.length <= SMALL_FOUND_BIT ? SMALL_FOUND_BIT : LARGE_FOUND_BIT;
  const table = foundBit === SMALL_FOUND_BIT ? new Uint16Array(next.length) : new Uint32Array(next.length);
  for (let state = 0; state < order.length; state++) {
    const row = rank[state]! * stride;
    for (let c = 0; c < stride; c++) {
      const target = next[state * stride + c]!;
      table[row + c] = rank[target]! + (found(target) ? foundBit : 0);
    }
  }
  return { next: table, stride, foundBit, rank };
}

/** C-locale tolower over a byte string, as acmp applies it to phrases and input. */
function lowerAscii(text: string): string {
  return /[A-Z]/.test(text) ? text.replace(/[A-Z]+/g, (run) => run.toLowerCase()) : text;
}

interface Dfa {
  classOf: Uint8Array;
  stride: number;
  /** next[state * stride + class]: the next state. */
  next: Int32Array;
  /** Per state, the index of the phrase it ends itself (not through its failure state), or −1. */
  output: Int32Array;
  fail: Int32Array;
  /** The states in breadth-first order, the start state first. */
  order: Int32Array;
}

/** The complete automaton over folded, distinct, non-empty phrases, with states as plain numbers. */
function buildDfa(phrases: readonly string[]): Dfa {
  const classOf = new Uint8Array(256);
  let stride = 1;
  for (const text of phrases) {
    for (let i = 0; i < text.length; i++) {
      const byte = text.charCodeAt(i) & 0xff;
      if (classOf[byte] === OTHER_CLASS) classOf[byte] = stride++;
    }
  }
  for (let upper = 0x41; upper <= 0x5a; upper++) classOf[upper] = classOf[upper + 0x20]!;
  const trie = buildTrie(phrases, classOf, stride);
  return { classOf, stride, output: trie.output, ...completeTransitions(trie, stride) };
}

interface Trie {
  /** goto[state * stride + class], -1 where the trie has no edge. */
  goto: Int32Array;
  output: Int32Array;
  states: number;
}

function buildTrie(phrases: readonly string[], classOf: Uint8Array, stride: number): Trie {
  let capacity = 1;
  for (const phrase of phrases) capacity += phrase.length;
  const goto = new Int32Array(capacity * stride).fill(-1);
  let states = 1;
  const ends: number[] = [];
  phrases.forEach((phrase, index) => {
    let state = 0;
    for (let i = 0; i < phrase.length; i++) {
      const slot = state * stride + classOf[phrase.charCodeAt(i) & 0xff]!;
      if (goto[slot] === -1) goto[slot] = states++;
      state = goto[slot]!;
    }
    ends[state] = index;
  });
  const output = new Int32Array(states).fill(-1);
  ends.forEach((index, state) => (output[state] = index));
  return { goto, output, states };
}

/**
 * Turns the trie into a complete DFA in breadth-first order: a missing edge takes the edge of the state's
 * failure state (the longest proper suffix that is also a trie path).
 */
function completeTransitions(trie: Trie, stride: number): { next: Int32Array; fail: Int32Array; order: Int32Array } {
  const { goto, states } = trie;
  const next = new Int32Array(states * stride);
  const fail = new Int32Array(states);
  const order = new Int32Array(states);
  let head = 1;
  let tail = 1;
  for (let c = 0; c < stride; c++) {
    const child = goto[c]!;
    if (child > 0) {
      order[tail++] = child;
      next[c] = child;
    }
  }
  while (head < tail) {
    const state = order[head++]!;
    for (let c = 0; c < stride; c++) {
      const child = goto[state * stride + c]!;
      const viaFail = next[fail[state]! * stride + c]!;
      if (child > 0) {
        fail[child] = viaFail;
        order[tail++] = child;
        next[state * stride + c] = child;
      } else {
        next[state * stride + c] = viaFail;
      }
    }
  }
  return { next, fail, order };
}
