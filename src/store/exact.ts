/**
 * Exact brute-force nearest neighbours in pure TypeScript: the ground truth that approximate
 * indexes are measured against (bench/search.ts) and that store tests compare scores with.
 * Vectors are rows of one flat Float32Array so a scan is a tight loop over contiguous memory.
 */

export interface ExactHit {
  /** Row number in the matrix. */
  index: number;
  /** Dot product; cosine when rows and query are unit length. */
  score: number;
}

/** Dot product of `q` with row `row` of a flat `matrix` of width `dim`. */
export function dotRow(matrix: Float32Array, dim: number, row: number, q: Float32Array): number {
  let s = 0;
  const o = row * dim;
  for (let j = 0; j < dim; j++) s += matrix[o + j]! * q[j]!;
  return s;
}

/** Cosine similarity of two vectors (0 when either is all zeros). */
export function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
}

/** Returns a unit-length copy of `v` (a zero vector stays zero). */
export function normalize(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  const out = new Float32Array(v.length);
  if (n === 0) return out;
  const inv = 1 / Math.sqrt(n);
  for (let i = 0; i < v.length; i++) out[i] = v[i]! * inv;
  return out;
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
