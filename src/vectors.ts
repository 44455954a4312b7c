/**
 * Vector maths on Float32Array, in one place: fusion, ranking, query normalisation and the exact ground truth of
 * the benchmarks all use these. Towers emit unit vectors, so most comparisons are plain dot products.
 */

/** Dot product; the cosine similarity when both are unit length. */
export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Dot product of `q` with row `row` of a flat row-major `matrix` of width `dim` (no view allocated per row). */
export function dotRow(matrix: Float32Array, dim: number, row: number, q: Float32Array): number {
  let s = 0;
  const o = row * dim;
  for (let j = 0; j < dim; j++) s += matrix[o + j]! * q[j]!;
  return s;
}

/** Cosine similarity of two vectors of any length (0 when either is all zeros). */
export function cosine(a: Float32Array, b: Float32Array): number {
  const aa = dot(a, a);
  const bb = dot(b, b);
  return aa === 0 || bb === 0 ? 0 : dot(a, b) / Math.sqrt(aa * bb);
}

/** A unit-norm copy, or null for a (near) zero vector, which has no direction to keep. */
export function unit(v: Float32Array): Float32Array | null {
  const norm = Math.sqrt(dot(v, v));
  if (!(norm > 1e-12)) return null;
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i]! / norm;
  return out;
}

/** `y += a * x` in place (float32 accumulation is plenty for a few hundred unit vectors). */
export function axpy(a: number, x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) y[i]! += a * x[i]!;
}
