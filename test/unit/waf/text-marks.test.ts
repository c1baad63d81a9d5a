// The transaction's marks by text (src/waf/text-marks.ts): every text set is found again with its mark, short
// or long, and long texts that share a fingerprint (same length, same sampled chars) stay apart, past the
// bucket too.
import { describe, expect, it } from 'vitest';
import { TextMarks } from '../../../src/waf/text-marks.ts';

/** 300 chars that differ from one another only at position 1, which the fingerprint does not sample. */
function colliding(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `a${String.fromCharCode(0x41 + i)}${'x'.repeat(298)}`);
}

describe('TextMarks', () => {
  it('finds short and long texts by content, not by string object', () => {
    const marks = new TextMarks();
    const long = 'Please deliver between nine and eleven in the morning. '.repeat(30);
    marks.set('short', 1);
    marks.set(long, 2);
    expect(marks.get(['sh', 'ort'].join(''))).toBe(1);
    expect(marks.get(long.slice(0, 100) + long.slice(100))).toBe(2);
    expect(marks.get(long.toLowerCase())).toBeUndefined();
    expect(marks.get(`${long.slice(0, -1)}!`)).toBeUndefined();
    expect(marks.get('shorts')).toBeUndefined();
  });

  it('keeps texts that share a fingerprint apart, beyond a bucket', () => {
    const texts = colliding(20);
    const marks = new TextMarks();
    texts.forEach((text, i) => marks.set(text, i));
    texts.forEach((text, i) => expect(marks.get(text.split('').join(''))).toBe(i));
    expect(marks.get(colliding(21)[20]!)).toBeUndefined();
  });

  it('replaces the mark of a text set again', () => {
    const marks = new TextMarks();
    const [first, second] = colliding(2);
    marks.set(first!, 1);
    marks.set(second!, 2);
    marks.set(first!, 3);
    expect(marks.get(first!)).toBe(3);
    expect(marks.get(second!)).toBe(2);
  });
});
