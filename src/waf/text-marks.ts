// A transaction's marks by text (./transaction.ts #markOf): which texts it scanned for literals already.
//
// A Map keyed by the text itself would do, but V8 hashes a string key over every char the first time the string
// is used as one: 2.7 µs for a fresh 2 KB string on the test VM, a quarter of what a scan of it costs. Transformation
// chains make a fresh string of every long value they change (a form's 2 KB body lower-cased, decoded, its
// message run through t:cmdLine …), and most of those repeat a text scanned already: hashing them cost a form
// POST about 18 KB of hashing, some 24 µs. So a long text is found by its length and a few of its chars first,
// then compared (a native comparison, which stops at the first difference). A fingerprint holds at most
// BUCKET texts; past that (texts made to share one: same length, same sampled chars) the rest go to the Map,
// so hostile input costs at most BUCKET comparisons more than a Map alone.

/**
 * Texts shorter than this are keyed by themselves: hashing a header value costs about what sampling and
 * comparing do (at 64, bench/waf's GET, whose User-Agent and Accept are 70 and 85 chars, took 1 µs longer).
 */
const LONG_TEXT = 256;
/** Texts per fingerprint before the rest go to the Map. */
const BUCKET = 4;
/** Chars sampled, evenly spread from the first. */
const SAMPLES = 8;

export class TextMarks {
  readonly #byText = new Map<string, number>();
  /** Fingerprint → text, mark, text, mark … (at most BUCKET pairs). */
  readonly #byFingerprint = new Map<number, (string | number)[]>();

  get(text: string): number | undefined {
    if (text.length < LONG_TEXT) return this.#byText.get(text);
    const bucket = this.#byFingerprint.get(fingerprint(text));
    if (bucket === undefined) return undefined;
    for (let i = 0; i < bucket.length; i += 2) if (bucket[i] === text) return bucket[i + 1] as number;
    return bucket.length === 2 * BUCKET ? this.#byText.get(text) : undefined;
  }

  set(text: string, mark: number): void {
    if (text.length < LONG_TEXT) {
      this.#byText.set(text, mark);
      return;
    }
    const key = fingerprint(text);
    const bucket = this.#byFingerprint.get(key);
    if (bucket === undefined) {
      this.#byFingerprint.set(key, [text, mark]);
      return;
    }
    for (let i = 0; i < bucket.length; i += 2) {
      if (bucket[i] === text) {
        bucket[i + 1] = mark;
        return;
      }
    }
    if (bucket.length < 2 * BUCKET) bucket.push(text, mark);
    else this.#byText.set(text, mark);
  }
}

/** The length and SAMPLES chars of a text of at least LONG_TEXT chars, mixed into 32 bits. */
function fingerprint(text: string): number {
  const n = text.length;
  const step = Math.floor((n - 1) / (SAMPLES - 1));
  let hash = n;
  for (let i = 0; i < SAMPLES; i++) hash = Math.imul(hash ^ text.charCodeAt(i * step), 0x9e3779b1);
  return hash;
}
