// Which transformations can change a text's literals. The rule engine looks for each rule's required literals
// (../prefilter.ts) case-insensitively (A–Z folded), and most transformation chains leave a benign value as it
// is or change only its ASCII case: `t:urlDecodeUni` of a value without `%` or `+`, `t:htmlEntityDecode` of
// one without `&`, `t:lowercase` of an ASCII one. For such a value, the literals of the chain's result are the
// value's own, so the engine marks the value once and builds a chain's result only for rules whose literals
// are there (../transaction.ts).
//
// A value's traits are the bytes and byte pairs that some transformation acts on; a transformation's triggers
// are the traits without which it returns its input up to ASCII case. Its identity triggers are those without
// which it returns its input itself, so that the engine need not even call it: the same, plus A–Z for
// t:lowercase and t:cmdLine, and every text for t:uppercase. A chain whose triggers miss the value's traits
// returns the value up to ASCII case: each step gets a text with the same traits, since changing case changes
// none but UPPER (A–Z), which only raising case adds (../transaction.ts adds it back after a step that changed
// case). The property test (test/property/waf-transform-traits.prop.test.ts) holds each transformation to both
// kinds of triggers on arbitrary byte strings.

export const TRAIT = {
  PERCENT: 1 << 0,
  PLUS: 1 << 1,
  AMPERSAND: 1 << 2,
  BACKSLASH: 1 << 3,
  NUL: 1 << 4,
  /** A byte above 0x7f (or a char above 0xff, which a byte string never holds). */
  HIGH: 1 << 5,
  SLASH: 1 << 6,
  DOT: 1 << 7,
  /** \t \n \v \f \r. */
  CONTROL_SPACE: 1 << 8,
  SPACE: 1 << 9,
  /** Two C-space chars (space, \t … \r) in a row. */
  SPACE_RUN: 1 << 10,
  /** A C-space char first or last. */
  EDGE_SPACE: 1 << 11,
  /** " ' ^ , ; — what t:cmdLine deletes or turns into a space. */
  SHELL_QUOTE: 1 << 12,
  /** A C-space char followed by `/` or `(` (t:cmdLine drops that space). */
  SPACE_BEFORE_PATH: 1 << 13,
  LESS_THAN: 1 << 14,
  HASH: 1 << 15,
  STAR: 1 << 16,
  /** `--`. */
  DASH_RUN: 1 << 17,
  /** A–Z: what t:lowercase and t:cmdLine change when nothing else (no trigger of theirs) is there. */
  UPPER: 1 << 18,
  /** Every text has it: the triggers of a transformation that changes any text. */
  ANY: 1 << 30,
} as const;

const T = TRAIT;

/** Triggers by lower-case transformation name; a name not listed changes any text (TRAIT.ANY). */
const TRIGGERS: ReadonlyMap<string, number> = new Map(
  Object.entries({
    lowercase: T.HIGH,
    uppercase: T.HIGH,
    urlDecode: T.PERCENT | T.PLUS,
    urlDecodeUni: T.PERCENT | T.PLUS,
    htmlEntityDecode: T.AMPERSAND,
    jsDecode: T.BACKSLASH,
    cssDecode: T.BACKSLASH,
    escapeSeqDecode: T.BACKSLASH,
    removeNulls: T.NUL,
    replaceNulls: T.NUL,
    utf8toUnicode: T.HIGH | T.NUL,
    normalizePath: T.SLASH | T.DOT,
    normalisePath: T.SLASH | T.DOT,
    normalizePathWin: T.SLASH | T.DOT | T.BACKSLASH,
    normalisePathWin: T.SLASH | T.DOT | T.BACKSLASH,
    replaceComments: T.SLASH,
    removeComments: T.SLASH | T.LESS_THAN | T.DASH_RUN | T.HASH,
    removeCommentsChar: T.SLASH | T.STAR | T.LESS_THAN | T.DASH_RUN | T.HASH,
    compressWhitespace: T.CONTROL_SPACE | T.SPACE_RUN,
    removeWhitespace: T.CONTROL_SPACE | T.SPACE | T.HIGH,
    trim: T.EDGE_SPACE,
    trimLeft: T.EDGE_SPACE,
    trimRight: T.EDGE_SPACE,
    cmdLine: T.BACKSLASH | T.SHELL_QUOTE | T.CONTROL_SPACE | T.SPACE_RUN | T.SPACE_BEFORE_PATH,
  }).map(([name, triggers]) => [name.toLowerCase(), triggers]),
);

/** Transformations that lower A–Z even without their triggers: a text without capitals comes out itself. */
const LOWERING: ReadonlySet<string> = new Set(['lowercase', 'cmdline']);

/**
 * Whether a chain of these transformations, given a text with none of its triggers, returns the text with A–Z
 * lowered: a step lowers them (t:lowercase, t:cmdLine) and none raises them (t:uppercase). The engine then takes
 * one lower-cased copy of a value for every such chain instead of running each (../transaction.ts).
 */
export function chainLowers(names: readonly string[]): boolean {
  const lower = names.map((name) => name.toLowerCase());
  return lower.some((name) => LOWERING.has(name)) && !lower.includes('uppercase');
}

/** The traits without which `t:name` returns its input up to ASCII case. */
export function transformTriggers(name: string): number {
  return TRIGGERS.get(name.toLowerCase()) ?? T.ANY;
}

/**
 * The traits without which `t:name` returns its input itself: its triggers, and A–Z for one that lowers them.
 * t:uppercase raises a–z, which no trait tells: ANY.
 */
export function identityTriggers(name: string): number {
  const lower = name.toLowerCase();
  if (lower === 'uppercase') return T.ANY;
  return transformTriggers(name) | (LOWERING.has(lower) ? T.UPPER : 0);
}

/** Single-byte traits. */
const TRAIT_OF = new Uint32Array(256);
TRAIT_OF[0x25] = T.PERCENT;
TRAIT_OF[0x2b] = T.PLUS;
TRAIT_OF[0x26] = T.AMPERSAND;
TRAIT_OF[0x5c] = T.BACKSLASH;
TRAIT_OF[0x00] = T.NUL;
TRAIT_OF[0x2f] = T.SLASH;
TRAIT_OF[0x2e] = T.DOT;
for (let c = 0x09; c <= 0x0d; c++) TRAIT_OF[c] = T.CONTROL_SPACE;
TRAIT_OF[0x20] = T.SPACE;
for (const c of '"\'^,;') TRAIT_OF[c.charCodeAt(0)] = T.SHELL_QUOTE;
TRAIT_OF[0x3c] = T.LESS_THAN;
TRAIT_OF[0x23] = T.HASH;
TRAIT_OF[0x2a] = T.STAR;
for (let c = 0x80; c <= 0xff; c++) TRAIT_OF[c] = T.HIGH;
for (let c = 0x41; c <= 0x5a; c++) TRAIT_OF[c] = T.UPPER;

const C_SPACE = T.CONTROL_SPACE | T.SPACE;

/** The traits of `text`, in one pass. */
export function textTraits(text: string): number {
  const n = text.length;
  if (n === 0) return T.ANY;
  let traits = T.ANY;
  let previous = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    const own = c < 256 ? TRAIT_OF[c]! : T.HIGH;
    traits |= own;
    if ((previous & C_SPACE) !== 0) {
      if ((own & C_SPACE) !== 0) traits |= T.SPACE_RUN;
      else if (c === 0x2f || c === 0x28) traits |= T.SPACE_BEFORE_PATH;
    } else if (c === 0x2d && i > 0 && text.charCodeAt(i - 1) === 0x2d) {
      traits |= T.DASH_RUN;
    }
    previous = own;
  }
  if (((TRAIT_OF[text.charCodeAt(0) & 0xff]! | TRAIT_OF[text.charCodeAt(n - 1) & 0xff]!) & C_SPACE) !== 0) traits |= T.EDGE_SPACE;
  return traits;
}
