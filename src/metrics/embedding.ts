/**
 * The health of the stored embeddings, per modality: how far the mean of the recently stored item vectors has
 * drifted from the generation's reference mean. Both sides share Redis: the worker records each stored item's
 * unit vectors (`record`), the API computes drift when scraped (`drift`).
 *
 * The reference is the generation's own `reference.json` when its exporter wrote one; otherwise it is the mean of
 * the first `referenceItems` items stored under the generation, frozen once and persisted beside the store
 * (`<store dir>/embedding-reference.<generation>.json`), so a restart or a cleared Redis keeps the same yardstick.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Modality } from '../store/types.ts';

export const CONTENT_MODALITIES: readonly Modality[] = ['video', 'audio', 'text'];

/** Per modality, the reference mean vector (not normalised) and how many items it averages. */
export interface EmbeddingReference {
  generation: string;
  source: 'export' | 'first-items';
  createdAt: string;
  modalities: Partial<Record<Modality, { items: number; mean: number[] }>>;
}

export interface EmbeddingHealthOptions {
  generation: string;
  /** The generation folder: an exported `reference.json` there wins. */
  generationDir: string;
  /** Where the first-items reference is persisted (beside the store). */
  storeDir: string;
  /** Items the first-items reference averages. */
  referenceItems: number;
  /** Recent items per modality the current mean averages. */
  window: number;
}

export interface ModalityDrift {
  modality: Modality;
  /** 1 - cos(mean of the recent window, reference mean): 0 = no drift, 1 = orthogonal, 2 = opposite. */
  drift: number;
  recentItems: number;
  referenceItems: number;
}

export class EmbeddingHealth {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #o: EmbeddingHealthOptions;
  #reference: EmbeddingReference | null = null;

  constructor(redis: Redis, prefix: string, opts: EmbeddingHealthOptions) {
    this.#redis = redis;
    this.#key = `${prefix}:metrics:emb:${opts.generation}`;
    this.#o = opts;
  }

  get referencePath(): string {
    return path.join(this.#o.storeDir, `embedding-reference.${this.#o.generation}.json`);
  }

  /** Records one stored item's per-modality unit vectors (worker side). */
  async record(vectors: Partial<Record<Modality, Float32Array>>): Promise<void> {
    const haveRef = (await this.reference()) !== null;
    const pipe = this.#redis.pipeline();
    for (const m of CONTENT_MODALITIES) {
      const v = vectors[m];
      if (!v) continue;
      const bytes = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      pipe.lpush(`${this.#key}:${m}:recent`, bytes).ltrim(`${this.#key}:${m}:recent`, 0, this.#o.window - 1);
      // Only the first N ever stored go here; the list is trimmed so a race of two workers cannot grow it.
      if (!haveRef) pipe.rpush(`${this.#key}:${m}:first`, bytes).ltrim(`${this.#key}:${m}:first`, 0, this.#o.referenceItems - 1);
    }
    await pipe.exec();
    if (!haveRef) await this.#freezeIfReady();
  }

  /** The reference, from the export, else the persisted first-items file; null until one exists. */
  async reference(): Promise<EmbeddingReference | null> {
    if (this.#reference) return this.#reference;
    for (const file of [path.join(this.#o.generationDir, 'reference.json'), this.referencePath]) {
      if (!existsSync(file)) continue;
      const ref = JSON.parse(await readFile(file, 'utf8')) as EmbeddingReference;
      if (ref.generation && ref.generation !== this.#o.generation) continue;
      this.#reference = { ...ref, source: file === this.referencePath ? 'first-items' : 'export' };
      return this.#reference;
    }
    return null;
  }

  /** Freezes the first-items reference once the first modality seen has N items (the video tower always runs). */
  async #freezeIfReady(): Promise<EmbeddingReference | null> {
    const lists = await Promise.all(CONTENT_MODALITIES.map((m) => this.#vectors(`${this.#key}:${m}:first`)));
    const counts = lists.map((l) => l.length);
    if (Math.max(...counts) < this.#o.referenceItems) return null;
    const ref: EmbeddingReference = {
      generation: this.#o.generation,
      source: 'first-items',
      createdAt: new Date().toISOString(),
      modalities: {},
    };
    CONTENT_MODALITIES.forEach((m, i) => {
      const mean = meanOf(lists[i]!);
      if (mean) ref.modalities[m] = { items: lists[i]!.length, mean: Array.from(mean) };
    });
    await mkdir(this.#o.storeDir, { recursive: true });
    const tmp = `${this.referencePath}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(ref));
    await rename(tmp, this.referencePath);
    this.#reference = ref;
    return ref;
  }

  /**
   * Records the share of a text query's words the generation's tokenizer does not know (API side), so any process
   * (`montage status`, every API replica's /metrics) reads the same recent window.
   */
  async recordQuery(unknownShare: number): Promise<void> {
    const key = `${this.#key}:queries`;
    await this.#redis
      .multi()
      .lpush(key, unknownShare.toFixed(4))
      .ltrim(key, 0, this.#o.window - 1)
      .exec();
  }

  /**
   * Of the recent text queries (at most `window`), how many there are and the share whose words are mostly
   * (more than half) unknown to the tokenizer; null before any query.
   */
  async unknownQueries(): Promise<{ queries: number; mostlyUnknownShare: number; meanUnknownWordShare: number } | null> {
    const raw = await this.#redis.lrange(`${this.#key}:queries`, 0, -1);
    if (raw.length === 0) return null;
    const shares = raw.map(Number);
    return {
      queries: shares.length,
      mostlyUnknownShare: shares.filter((x) => x > 0.5).length / shares.length,
      meanUnknownWordShare: shares.reduce((a, b) => a + b, 0) / shares.length,
    };
  }

  /** Drift per modality that has both a reference and recent items (API side). */
  async drift(): Promise<ModalityDrift[]> {
    const ref = (await this.reference()) ?? (await this.#freezeIfReady());
    if (!ref) return [];
    const out: ModalityDrift[] = [];
    for (const m of CONTENT_MODALITIES) {
      const r = ref.modalities[m];
      const recent = await this.#vectors(`${this.#key}:${m}:recent`);
      const mean = meanOf(recent);
      if (!r || !mean) continue;
      out.push({ modality: m, drift: 1 - cosine(mean, Float32Array.from(r.mean)), recentItems: recent.length, referenceItems: r.items });
    }
    return out;
  }

  async #vectors(key: string): Promise<Float32Array[]> {
    const raw = await this.#redis.lrangeBuffer(key, 0, -1);
    return raw.map((b) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
  }
}

/** What the service reads of a generation's embedding health (src/generations/health.ts routes it per generation). */
export type HealthSource = Pick<EmbeddingHealth, 'record' | 'drift' | 'reference' | 'recordQuery' | 'unknownQueries' | 'referencePath'>;

/** Plain mean (no renormalisation); null for no vectors. */
export function meanOf(vectors: readonly Float32Array[]): Float32Array | null {
  if (vectors.length === 0) return null;
  const out = new Float32Array(vectors[0]!.length);
  for (const v of vectors) for (let i = 0; i < out.length; i++) out[i]! += v[i]! / vectors.length;
  return out;
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

/** L2 norm. */
export function norm(v: Float32Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}
