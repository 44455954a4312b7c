/**
 * Exact brute-force nearest neighbours in pure TypeScript: the ground truth that approximate
 * indexes are measured against (bench/search.ts) and that store tests compare scores with.
 * Vectors are rows of one flat Float32Array so a scan is a tight loop over contiguous memory.
 * Serves only the benchmarks and the tests; the service never scans exactly.
 */
import { dotRow } from '../../src/vectors.ts';

export interface ExactHit {
  /** Row number in the matrix. */
  index: number;
  /** Dot product; cosine when rows and query are unit length. */
  score: number;
}

/**
 * Top `k` rows of `matrix` by dot product with `q`, best first. A bounded min-heap keeps the
 * scan O(n log k) instead of sorting all n scores.
 */
export function exactTopK(matrix: Float32Array, dim: number, q: Float32Array, k: number, accept?: (row: number) => boolean): ExactHit[] {
  const rows = Math.floor(matrix.length / dim);
  const heap: ExactHit[] = [];
  for (let r = 0; r < rows; r++) {
    if (accept && !accept(r)) continue;
    const score = dotRow(matrix, dim, r, q);
    if (heap.length < k) heapPush(heap, { index: r, score });
    else if (score > heap[0]!.score) heapReplaceTop(heap, { index: r, score });
  }
  return heap.sort((a, b) => b.score - a.score || a.index - b.index);
}

/** Share of `exact` ids that also appear in `approx` (recall@k with k = exact.length). */
export function recallAt(approx: readonly unknown[], exact: readonly unknown[]): number {
  if (exact.length === 0) return 1;
  const want = new Set(exact);
  let hit = 0;
  for (const a of approx) if (want.has(a)) hit++;
  return hit / exact.length;
}

function heapPush(h: ExactHit[], x: ExactHit): void {
  h.push(x);
  let i = h.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (h[p]!.score <= h[i]!.score) break;
    [h[p], h[i]] = [h[i]!, h[p]!];
    i = p;
  }
}

function heapReplaceTop(h: ExactHit[], x: ExactHit): void {
  h[0] = x;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let m = i;
    if (l < h.length && h[l]!.score < h[m]!.score) m = l;
    if (r < h.length && h[r]!.score < h[m]!.score) m = r;
    if (m === i) return;
    [h[m], h[i]] = [h[i]!, h[m]!];
    i = m;
  }
}
