// @ipMatch and @ipMatchFromFile (also @ipMatchF): the input is an IPv4 or IPv6 address inside one of the
// listed addresses or CIDR ranges (libmodsecurity src/operators/ip_match*.cc over utils/ip_tree.cc). As there,
// a range may have host bits set (`10.1.2.3/8` means 10.0.0.0/8), entries of a list are comma-separated, and a
// data file has one list per line with `#` starting a comment. Input that is no address matches nothing.
import { inNetwork } from '../../net/cidr.ts';
import { parseIp } from '../../net/ip.ts';
import { readData } from './pm.ts';
import type { CompiledOperator, OperatorFactory } from './types.ts';

/** Words 0–3: the masked network in ../../net/ip.ts's four-word form; word 4: the prefix length (0–128). */
const STRIDE = 5;
const IPV4_MAPPED_PREFIX = 96;

export const ipMatchOperator: OperatorFactory = (argument) => rangeOperator(argument.split(','));

export const ipMatchFromFileOperator: OperatorFactory = (argument, context) => {
  const text = readData(context, argument);
  if (typeof text !== 'string') return text;
  return rangeOperator(text.split('\n').flatMap((line) => line.replace(/#.*/, '').split(',')));
};

function rangeOperator(entries: readonly string[]): CompiledOperator | { error: string } {
  const ranges: number[] = [];
  const words = new Uint32Array(4);
  for (const entry of entries) {
    const text = entry.trim();
    if (text === '') continue;
    const range = parseRange(text, words);
    if (typeof range === 'string') return { error: `@ipMatch: ${range}` };
    ranges.push(...words, range);
  }
  const table = Uint32Array.from(ranges);
  const input = new Uint32Array(4);
  return {
    match(value) {
      if (!parseIp(value, input)) return false;
      for (let at = 0; at < table.length; at += STRIDE) {
        if (inNetwork(input, table, at, table[at + 4]!)) return true;
      }
      return false;
    },
  };
}

/** Parses `addr[/bits]` into `words` (masked) and returns the four-word prefix, or why it is not a range. */
function parseRange(text: string, words: Uint32Array): number | string {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  if (!parseIp(address, words)) return `${JSON.stringify(address)} is not an IPv4 or IPv6 address`;
  const v4 = !address.includes(':');
  const max = v4 ? 32 : 128;
  let bits = max;
  if (slash !== -1) {
    const digits = text.slice(slash + 1).trim();
    if (!/^\d{1,3}$/.test(digits) || Number(digits) > max) {
      return `prefix length ${JSON.stringify(digits)} is not 0–${max}`;
    }
    bits = Number(digits);
  }
  const prefix = v4 ? IPV4_MAPPED_PREFIX + bits : bits;
  for (let w = 0; w < 4; w++) {
    const keep = Math.min(32, Math.max(0, prefix - w * 32));
    words[w] = keep === 0 ? 0 : keep === 32 ? words[w]! : (words[w]! & (0xffffffff << (32 - keep))) >>> 0;
  }
  return prefix;
}
