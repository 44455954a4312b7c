/**
 * Synthetic item vectors that look like embeddings: unit vectors clustered around `clusters`
 * random unit centroids (topics), each item = normalise(centroid + sigma * gaussian noise).
 * With dim 256 and sigma 0.06 an item sits at cosine ~0.7 from its centroid, and clusters are
 * near-orthogonal to each other: roughly what contrastive embeddings of a catalogue look like.
 * Every vector is generated from its own seed, so any process can regenerate item i alone.
 */
export interface SynthSpec {
  dim: number;
  clusters: number;
  sigma: number;
  seed: number;
}

export const DEFAULT_SPEC: SynthSpec = { dim: 256, clusters: 1000, sigma: 0.06, seed: 1 };

/** mulberry32: tiny, fast, good enough for synthetic data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
}

function normalizeInPlace(v: Float32Array): void {
  let n = 0;
  for (const x of v) n += x * x;
  const inv = 1 / Math.sqrt(n);
  for (let i = 0; i < v.length; i++) v[i]! *= inv;
}

export class Synth {
  readonly spec: SynthSpec;
  readonly #centroids: Float32Array[];

  constructor(spec: SynthSpec = DEFAULT_SPEC) {
    this.spec = spec;
    const r = rng(spec.seed * 7919);
    this.#centroids = Array.from({ length: spec.clusters }, () => {
      const c = Float32Array.from({ length: spec.dim }, () => gaussian(r));
      normalizeInPlace(c);
      return c;
    });
  }

  /** Writes vector `i` of stream `stream` (0 = items, 1 = queries) into `out`. */
  vector(i: number, out: Float32Array, stream = 0): Float32Array {
    const r = rng((this.spec.seed * 1_000_003 + stream * 2_000_000_011 + i * 2654435761) >>> 0);
    const c = this.#centroids[Math.floor(r() * this.spec.clusters)]!;
    for (let j = 0; j < this.spec.dim; j++) out[j] = c[j]! + this.spec.sigma * gaussian(r);
    normalizeInPlace(out);
    return out;
  }

  /** Items [from, to) as one flat matrix. */
  block(from: number, to: number, stream = 0): Float32Array {
    const d = this.spec.dim;
    const m = new Float32Array((to - from) * d);
    for (let i = from; i < to; i++) this.vector(i, m.subarray((i - from) * d, (i - from + 1) * d), stream);
    return m;
  }
}

/** The catalogue fields of synthetic item `i`: what the store holds beside its vectors and what a hit returns. */
export function synthPayload(i: number) {
  return {
    videoId: `v${i}`,
    title: `item ${i}`,
    description: '',
    tags: [`t${i % 50}`],
    durationS: 5 + (i % 600),
    uploadedAt: 1_700_000_000_000 + i * 1000,
    modalities: ['video', 'audio', 'text'] as Array<'video' | 'audio' | 'text'>,
    generation: 'bench',
    sha256: '',
  };
}
