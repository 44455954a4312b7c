/** Small statistics the benchmarks share. */

/** The p-th percentile (nearest rank: the smallest value with at least p% of the samples at or below it), 2 decimals. */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! * 100) / 100;
}
