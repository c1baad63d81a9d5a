// Per-thread memo of compiled matchers, so a reload that recompiles the same rules (the usual case: one
// local rule changed) reuses every translated regex and phrase automaton instead of spending the half second
// that building them costs on a data-plane thread, during which it answers nothing. The compiled objects are
// immutable and hold no per-request state, so rule sets old and new can share them.

/** Distinct entries kept before the memo starts over: far above any real configuration's count. */
const MEMO_LIMIT = 20_000;

/** `limit`: distinct entries kept (for large values, the last few rule sets' worth). */
export function memoized<V>(build: (key: string) => V, limit = MEMO_LIMIT): (key: string) => V {
  const cache = new Map<string, V>();
  return (key) => {
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    if (cache.size >= limit) cache.clear();
    const value = build(key);
    cache.set(key, value);
    return value;
  };
}
