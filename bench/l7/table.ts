// Text of the HTTP benches' result tables (bench/l7/run.ts, bench/waf/run.ts): numbers, ratios and the aligned
// grid. Which rows and columns a table has is each bench's business.

/** A measured value: "—" not measured, "none" measured but nothing to show (NaN), else grouped digits. */
export function formatValue(v: number | null, digits: number): string {
  if (v === null) return '—';
  if (Number.isNaN(v)) return 'none';
  if (!Number.isFinite(v)) return String(v);
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/**
 * A ratio cell. Ratios judged against a target get three decimals, truncated: 0.2496 shown as "0.25×" next to
 * "≥ 0.25×" and FAIL would puzzle.
 */
export function ratioText(r: number | null, judged: boolean): string {
  if (r === null) return '';
  return judged ? `${(Math.floor(r * 1000) / 1000).toFixed(3)}×` : `${r.toFixed(2)}×`;
}

/** Columns padded to their widest cell under a dashed rule; `leftAligned(i)` for text columns, numbers right-aligned. */
export function renderGrid(header: readonly string[], body: readonly (readonly string[])[], leftAligned: (column: number) => boolean): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => (cells[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (leftAligned(i) ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}
