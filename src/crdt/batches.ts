// Cutting a list into runs that each fit a bound, for everything that crosses the transport whole: changes
// written to the config document (./config-doc.ts) and changes sent in runs (./config-sync.ts).

/**
 * `items` in order, cut into runs of at most `maxItems` items whose sizes add up to at most `maxBytes`; an
 * item larger than `maxBytes` goes in a run of its own.
 */
export function batches<T>(items: readonly T[], sizeOf: (item: T) => number, maxBytes: number, maxItems = Infinity): T[][] {
  const out: T[][] = [];
  let batch: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (batch.length > 0 && (batch.length >= maxItems || bytes + size > maxBytes)) {
      out.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(item);
    bytes += size;
  }
  if (batch.length > 0) out.push(batch);
  return out;
}
