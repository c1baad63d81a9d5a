// The @pm matcher (src/waf/aho-corasick.ts) against the obvious reference: lower-case A–Z on both sides, find
// every phrase with `includes`, take the occurrence that ends first and, of those, the longest phrase.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PhraseMatcher } from '../../src/waf/aho-corasick.ts';
import { fcParams } from '../helpers/fc.ts';

const lower = (text: string): string => text.replace(/[A-Z]/g, (c) => c.toLowerCase());

/** The end (exclusive) of the first occurrence of each phrase, then the earliest ending, longest phrase. */
function reference(phrases: readonly string[], input: string): string | null {
  let best: { end: number; length: number; phrase: string } | null = null;
  const haystack = lower(input);
  for (const phrase of phrases) {
    if (phrase === '') continue;
    const at = haystack.indexOf(lower(phrase));
    if (at === -1) continue;
    const end = at + phrase.length;
    if (best === null || end < best.end || (end === best.end && phrase.length > best.length)) {
      best = { end, length: phrase.length, phrase };
    }
  }
  return best === null ? null : best.phrase;
}

/** Small alphabets make phrases overlap, share prefixes and suffixes, and differ only in case. */
const byte = fc.constantFrom('a', 'b', 'A', 'B', 'c', '\xe9', '\xc9', '\0', ' ');
const phrase = fc.string({ unit: byte, maxLength: 6 });

describe('PhraseMatcher (property)', () => {
  it('agrees with a naive includes() search', () => {
    fc.assert(
      fc.property(fc.array(phrase, { maxLength: 12 }), fc.string({ unit: byte, maxLength: 40 }), (phrases, input) => {
        const expected = reference(phrases, input);
        const found = new PhraseMatcher(phrases).find(input);
        // Phrases equal but for case are one phrase: compare case-folded, and check the one returned was given.
        expect(found === null ? null : lower(found)).toBe(expected === null ? null : lower(expected));
        if (found !== null) expect(phrases).toContain(found);
      }),
      fcParams(3000),
    );
  });

  it('finds phrases that occur anywhere in larger sets', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ unit: fc.constantFrom(...'abcdefgh/._-'.split('')), minLength: 1, maxLength: 12 }), {
          minLength: 1,
          maxLength: 300,
        }),
        fc.nat(),
        fc.string({ maxLength: 20 }),
        fc.string({ maxLength: 20 }),
        (phrases, pick, before, after) => {
          const input = before + phrases[pick % phrases.length]!.toUpperCase() + after;
          const found = new PhraseMatcher(phrases).find(input);
          expect(found === null ? null : lower(found)).toBe(lower(reference(phrases, input)!));
        },
      ),
      fcParams(300),
    );
  });
});
