// A multi-phrase matcher for `@pm` / `@pmFromFile` (operators/pm.ts): an Aho–Corasick automaton built once per
// rule and searched per value with no allocation. Like ModSecurity's acmp (src/utils/acmp.cc), it compares
// case-insensitively by lowering A–Z on both sides (C-locale tolower: bytes above 0x7f are left alone).
//
// The automaton is a complete DFA in one Int32Array: every state has a transition for every byte class, so the
// search loop is one dependent array read per input byte. Bytes are first mapped to classes — one class per
// distinct (lowered) byte the phrases use, class 0 for all others, which always leads back to the start — so
// a row is as wide as the phrases' alphabet, not 256. An entry holds the next state's row offset (state ×
// row width, saving a multiply per byte), or −(phrase + 1) when the next state ends a phrase: the search stops
// at the first one, so such states need no row of their own to be read. CRS's largest data file,
// lfi-os-files.data (1 090 distinct phrases, 31 KiB), gives 12 948 states over 47 classes: 2.4 MB, built in
// about 50 ms; a 200-byte benign value is searched in 0.8–1 µs on the shared 2-core test machine, where a bare
// charCodeAt loop over it takes 0.6 µs.
//
// Unlike acmp, which computes fail links one level deep and so can miss a phrase that is a suffix of another
// phrase's prefix, this is the textbook automaton: it finds a phrase whenever the input contains one.

/** The byte → class map for bytes the phrases never use. */
const OTHER_CLASS = 0;

export class PhraseMatcher {
  /** How many distinct (case-folded) phrases the automaton holds. */
  readonly size: number;
  /** Class of each byte value (A–Z share the class of a–z). */
  readonly #classOf = new Uint8Array(256);
  /** transitions[row + class]: the next state's row, or −(phrase index + 1); the start state's row is 0. */
  readonly #transitions: Int32Array;
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
    const folded = [...unique.keys()];

    let classes = 1;
    for (const text of folded) {
      for (let i = 0; i < text.length; i++) {
        const byte = text.charCodeAt(i) & 0xff;
        if (this.#classOf[byte] === OTHER_CLASS) this.#classOf[byte] = classes++;
      }
    }
    for (let upper = 0x41; upper <= 0x5a; upper++) this.#classOf[upper] = this.#classOf[upper + 0x20]!;
    this.#transitions = completeTransitions(buildTrie(folded, this.#classOf, classes), classes);
  }

  /**
   * The phrase (as written) whose occurrence ends first in `input`, the longest one if several end there;
   * null when no phrase occurs.
   */
  find(input: string): string | null {
    const transitions = this.#transitions;
    const classOf = this.#classOf;
    let row = 0;
    for (let i = 0; i < input.length; i++) {
      const code = input.charCodeAt(i);
      row = transitions[row + (code < 256 ? classOf[code]! : OTHER_CLASS)]!;
      if (row < 0) return this.#phrases[-row - 1]!;
    }
    return null;
  }
}

/** C-locale tolower over a byte string, as acmp applies it to phrases and input. */
function lowerAscii(text: string): string {
  return /[A-Z]/.test(text) ? text.replace(/[A-Z]+/g, (run) => run.toLowerCase()) : text;
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
  const output = new Int32Array(capacity).fill(-1);
  let states = 1;
  phrases.forEach((phrase, index) => {
    let state = 0;
    for (let i = 0; i < phrase.length; i++) {
      const slot = state * stride + classOf[phrase.charCodeAt(i) & 0xff]!;
      if (goto[slot] === -1) goto[slot] = states++;
      state = goto[slot]!;
    }
    output[state] = index;
  });
  return { goto, output, states };
}

/**
 * Turns the trie into a complete DFA in breadth-first order: a missing edge takes the edge of the state's
 * failure state (the longest proper suffix that is also a trie path), and a state with no phrase of its own
 * reports its failure state's, which is the longest phrase ending there because failure states are shorter.
 */
function completeTransitions(trie: Trie, stride: number): Int32Array {
  const { goto, output, states } = trie;
  // next[state * stride + class] as a state number first; encoded as rows or phrases at the end.
  const next = new Int32Array(states * stride);
  const fail = new Int32Array(states);
  const queue = new Int32Array(states);
  let head = 0;
  let tail = 0;
  for (let c = 0; c < stride; c++) {
    const child = goto[c]!;
    if (child > 0) {
      queue[tail++] = child;
      next[c] = child;
    }
  }
  while (head < tail) {
    const state = queue[head++]!;
    if (output[state] === -1) output[state] = output[fail[state]!]!;
    for (let c = 0; c < stride; c++) {
      const child = goto[state * stride + c]!;
      const viaFail = next[fail[state]! * stride + c]!;
      if (child > 0) {
        fail[child] = viaFail;
        queue[tail++] = child;
        next[state * stride + c] = child;
      } else {
        next[state * stride + c] = viaFail;
      }
    }
  }
  for (let i = 0; i < next.length; i++) {
    const state = next[i]!;
    next[i] = output[state]! >= 0 ? -(output[state]! + 1) : state * stride;
  }
  return next;
}
