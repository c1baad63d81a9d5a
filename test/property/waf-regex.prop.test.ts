// The PCRE translation (src/waf/regex.ts) on generated patterns: it never throws, whatever the text, nor does
// matching, whatever the input; and on the syntax PCRE and JavaScript read alike it finds exactly the match
// JavaScript's own engine finds — through the rewrites (anchoring, dropped lazy prefixes, unrolled counts,
// consumed final newlines) that keep results unchanged.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePcre } from '../../src/waf/regex.ts';
import { fcParams } from '../helpers/fc.ts';

const flags = fc.record({ caseless: fc.boolean(), dotAll: fc.boolean(), multiline: fc.boolean() });

/** Pattern-like text: mostly regex syntax, so that parsing gets deep before it fails. */
const patternText = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'()[]{}|*+?^$.\\-:=!<>PRQEkgxdsbwhvAzZ0123aB,#\'iDSWHmsxU'), maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ maxLength: 30 }),
);

const byteString = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength });

/** What PCRE-translated and native matches are compared by: where the match starts, and every group. */
const outcome = (match: RegExpExecArray | null, groups: readonly number[]): unknown[] | null =>
  match === null ? null : [match.index, ...groups.map((group) => match[group])];

/**
 * Patterns over the syntax both engines read the same way (with `s`, and inputs without line breaks). Counts
 * above 16, which the translation unrolls, go on single characters only: JavaScript's own engine cannot bound
 * a group repeated that often, and the reference must finish.
 */
const commonPattern: fc.Arbitrary<string> = fc.letrec<{ alt: string; seq: string; item: string; group: string }>(
  (tie) => ({
    alt: fc.array(tie('seq'), { minLength: 1, maxLength: 3 }).map((branches) => branches.join('|')),
    seq: fc.array(tie('item'), { maxLength: 4 }).map((items) => items.join('')),
    item: fc.oneof(
      { maxDepth: 3, depthIdentifier: 'group' },
      fc.constantFrom('^', '$', '\\b', '\\B'),
      fc
        .tuple(
          fc.constantFrom('a', 'b', 'c', ' ', '.', '\\d', '\\w', '\\W', '[ab]', '[^a]', '[a-c1]'),
          fc.constantFrom('', '*', '+', '?', '*?', '+?', '{2}', '{0,3}', '{1,20}', '{17}', '{2,}', '{0,18}?'),
        )
        .map(([atom, quantifier]) => atom + quantifier),
      fc
        .tuple(tie('group'), fc.constantFrom('', '*', '+', '?', '*?', '+?', '??', '{2}', '{0,3}'))
        .map(([group, quantifier]) => group + quantifier),
    ),
    group: fc.tuple(fc.constantFrom('(', '(?:'), tie('alt')).map(([open, body]) => `${open}${body})`),
  }),
).alt;

describe('compilePcre (property)', () => {
  it('never throws, and neither does matching', () => {
    fc.assert(
      fc.property(patternText, flags, byteString(40), (pattern, options, input) => {
        const result = compilePcre(pattern, options);
        if (result.ok) {
          result.regex.exec(input);
          result.regex.test(input);
        } else {
          expect(typeof result.error).toBe('string');
        }
      }),
      fcParams(3000),
    );
  });

  it('finds what JavaScript finds on the syntax both read alike', () => {
    fc.assert(
      fc.property(commonPattern, fc.string({ unit: fc.constantFrom(...'abc1 _-'), maxLength: 8 }), (pattern, input) => {
        // JavaScript's `^`/`$` without `m` are PCRE's multiline ones on input without LF.
        const reference = new RegExp(pattern, 's');
        const result = compilePcre(pattern, { dotAll: true, multiline: true });
        if (!result.ok) throw new Error(result.error);
        const expected = reference.exec(input);
        const referenceGroups = expected === null ? [] : expected.map((_, i) => i);
        expect(outcome(result.regex.exec(input), result.regex.groups)).toEqual(outcome(expected, referenceGroups));
      }),
      fcParams(3000),
    );
  });
});
