// Command-line pieces both benchmarks (bench/tcp, bench/l7) share: comma lists of known names for --only and
// --proxies, and the error that makes main() print its usage and exit 2.

export class UsageError extends Error {}

/** "a,b" → ['a', 'b'], each one of `allowed`; throws UsageError naming the unknown ones. */
export function parseList<T extends string>(text: string, allowed: readonly T[], flag: string): T[] {
  const items = text.split(',').map((x) => x.trim()).filter((x) => x !== '');
  const unknown = items.filter((x) => !(allowed as readonly string[]).includes(x));
  if (unknown.length > 0) throw new UsageError(`${flag}: unknown ${unknown.join(', ')} (known: ${allowed.join(', ')})`);
  return items as T[];
}
