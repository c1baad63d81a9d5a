// Each transformation against its triggers (src/waf/transforms/traits.ts): on a byte string without any of
// them, it must return its input up to ASCII case, or the engine would skip a rule whose literals the
// transformed value holds. Also checks the traits themselves against their definitions.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TRANSFORMS } from '../../src/waf/transforms/index.ts';
import { chainLowers, identityTriggers, TRAIT, textTraits, transformTriggers } from '../../src/waf/transforms/traits.ts';
import { fcParams } from '../helpers/fc.ts';

const fold = (text: string): string => text.replace(/[A-Z]/g, (c) => c.toLowerCase());

/** Every byte each transformation acts on, often, and some plain ones; sequences such as `%41`, `&lt;`, `\x41`, `/./`. */
const byte = fc.constantFrom(...'aAzZ019fF%+&#;\\/.*-<>!"\'^,( \t\n\v\f\r\0xXuU', '\x80', '\xa0', '\xc2', '\xc9', '\xff');
const text = fc.string({ unit: byte, maxLength: 24 });

describe('transformation triggers (property)', () => {
  const transforms = [...TRANSFORMS].filter(([name]) => transformTriggers(name) !== TRAIT.ANY);

  it('names transformations that exist', () => {
    expect(transforms.length).toBeGreaterThan(20);
  });

  for (const [name, transform] of transforms) {
    it(`${name} returns a text without its triggers up to ASCII case`, () => {
      const triggers = transformTriggers(name);
      fc.assert(
        fc.property(text, (input) => {
          fc.pre((textTraits(input) & triggers) === 0);
          expect(fold(transform(input))).toBe(fold(input));
        }),
        fcParams(2000),
      );
    });
  }

  for (const [name, transform] of transforms.filter(([name]) => identityTriggers(name) !== TRAIT.ANY)) {
    it(`${name} returns a text without its triggers itself`, () => {
      const triggers = identityTriggers(name);
      fc.assert(
        fc.property(text, (input) => {
          fc.pre((textTraits(input) & triggers) === 0);
          expect(transform(input)).toBe(input);
        }),
        fcParams(2000),
      );
    });
  }

  it('a chain returns a text without its triggers as it is, or with A–Z lowered when chainLowers says so', () => {
    // t:uppercase raises what other steps lower: chainLowers is false for chains with it and the engine runs them.
    const names = transforms.map(([name]) => name).filter((name) => name !== 'uppercase');
    const chain = fc.array(fc.constantFrom(...names), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(chain, text, (steps, input) => {
        const triggers = steps.reduce((all, name) => all | transformTriggers(name), 0);
        fc.pre((textTraits(input) & triggers) === 0);
        const output = steps.reduce((current, name) => TRANSFORMS.get(name)!(current), input);
        expect(output).toBe(chainLowers(steps) ? fold(input) : input);
      }),
      fcParams(3000),
    );
    expect(chainLowers(['urlDecodeUni', 'lowercase', 'uppercase'])).toBe(false);
  });

  it('finds every trait where it is', () => {
    fc.assert(
      fc.property(text, (input) => {
        const traits = textTraits(input);
        const has = (trait: number) => (traits & trait) !== 0;
        expect(has(TRAIT.ANY)).toBe(true);
        expect(has(TRAIT.PERCENT)).toBe(input.includes('%'));
        expect(has(TRAIT.SPACE_RUN)).toBe(/[\t-\r ]{2}/.test(input));
        expect(has(TRAIT.SPACE_BEFORE_PATH)).toBe(/[\t-\r ][/(]/.test(input));
        expect(has(TRAIT.DASH_RUN)).toBe(input.includes('--'));
        expect(has(TRAIT.EDGE_SPACE)).toBe(/^[\t-\r ]|[\t-\r ]$/.test(input));
        expect(has(TRAIT.HIGH)).toBe(/[\x80-\xff]/.test(input));
        expect(has(TRAIT.UPPER)).toBe(/[A-Z]/.test(input));
      }),
      fcParams(3000),
    );
  });
});
