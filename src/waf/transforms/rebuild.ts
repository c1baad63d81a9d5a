// The one loop behind every transformation here that rewrites marked sequences (escapes, comments): copy the
// value byte for byte and, at each marker char, let the syntax's decoder say what the sequence there becomes.
// A decoder answers with one number (no allocation per sequence) and is a module-level function (no closure).
import { byteString, copyPrefix, outputBuffer } from './bytes.ts';

/** A decoder's answer for a marker that starts no sequence: the marker is copied like any other byte. */
export const NOT_A_SEQUENCE = -1;

/** Stands for the byte of a sequence that becomes nothing; one above any byte. */
const NOTHING = 256;
const PACK = 512;

/** The sequence ends before `end` and becomes the byte `byte` (0–255). */
export function becomesByte(end: number, byte: number): number {
  return end * PACK + byte;
}

/** The sequence ends before `end` and is dropped. */
export function becomesNothing(end: number): number {
  return end * PACK + NOTHING;
}

/**
 * Reads the sequence whose marker is at `at` (called only where `input[at]` is a marker): a becomesByte or
 * becomesNothing answer, or NOT_A_SEQUENCE.
 */
export type SequenceDecoder = (input: string, at: number) => number;

/** Which char codes are markers: 1 at each code of `chars`. */
export function markerTable(chars: string): Uint8Array {
  const table = new Uint8Array(256);
  for (let k = 0; k < chars.length; k++) table[chars.charCodeAt(k)] = 1;
  return table;
}

/**
 * `input` with each sequence `decodeAt` recognises replaced by what it becomes. `start` is where the first one
 * may begin (the caller's fast search), -1 when there is none: `input` is then returned as it is. The output
 * never outgrows the input, since every sequence is at least one char long and becomes at most one byte.
 */
export function rewriteSequences(input: string, start: number, markers: Uint8Array, decodeAt: SequenceDecoder): string {
  if (start === -1) return input;
  const n = input.length;
  const out = outputBuffer(n);
  let o = copyPrefix(out, input, start);
  let i = start;
  while (i < n) {
    const c = input.charCodeAt(i);
    const sequence = markers[c] === 1 ? decodeAt(input, i) : NOT_A_SEQUENCE;
    if (sequence === NOT_A_SEQUENCE) {
      out[o++] = c;
      i++;
      continue;
    }
    const byte = sequence % PACK;
    if (byte !== NOTHING) out[o++] = byte;
    i = (sequence - byte) / PACK;
  }
  return byteString(out, o);
}
