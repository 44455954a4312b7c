/** The CLI's progress bar: `[#####.....] 5/10 done, 0 failed`, redrawn in place on stderr. */
export function bar(done: number, total: number, failed: number, width = 30): string {
  const n = total ? Math.round((done / total) * width) : width;
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}] ${done}/${total} done, ${failed} failed`;
}
