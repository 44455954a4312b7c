/**
 * Knowing when a generation is stale. Per generation, three signals against what it was trained on:
 * - per modality, the drift of the mean of recently stored item vectors from the generation's reference mean
 *   (src/metrics/embedding.ts; the reference is the generation's `reference.json`, else its first stored items);
 * - the share of recent text queries whose words are mostly unknown to its tokenizer;
 * - how many items arrived per day since it was trained (its manifest's `created_at`).
 * A drift above `staleDrift` in any modality, or a mostly-unknown query share above `staleUnknownShare`, marks it
 * stale (`montage status`, `montage generation drift`, `montage_generation_stale` in /metrics). Items per day are
 * reported, not judged: how many new items a model tolerates depends on how different they are, which the drift
 * measures.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Catalog } from '../catalog/index.ts';
import {
  EmbeddingHealth,
  CONTENT_MODALITIES,
  meanOf,
  type EmbeddingReference,
  type HealthSource,
  type ModalityDrift,
} from '../metrics/embedding.ts';
import type { Redis } from 'ioredis';
import type { LoadedEncoders } from '../models/index.ts';
import type { VectorStore } from '../store/types.ts';
import type { GenerationRouter } from './router.ts';

export interface StaleThresholds {
  /** `config.metrics.staleDrift` */
  drift: number;
  /** `config.metrics.staleUnknownShare` */
  unknownShare: number;
}

export interface DriftReport {
  generation: string;
  /** The manifest's created_at (when it was trained/exported). */
  trainedAt: string | null;
  reference: { source: EmbeddingReference['source']; items: Partial<Record<string, number>> } | null;
  modalities: ModalityDrift[];
  queries: { queries: number; mostlyUnknownShare: number; meanUnknownWordShare: number } | null;
  newItems: { sinceTraining: number; days: number; perDay: number } | null;
  thresholds: StaleThresholds;
  stale: boolean;
  /** Why it is stale, one line per signal over its threshold. */
  reasons: string[];
}

export interface DriftDeps {
  health: HealthSource;
  encoders: Pick<LoadedEncoders, 'generation' | 'manifest'>;
  catalog: Pick<Catalog, 'readySince'>;
  thresholds: StaleThresholds;
  now?: number;
}

/** The drift report of the context's generation. */
export async function driftReport(deps: DriftDeps): Promise<DriftReport> {
  const { health, encoders, thresholds } = deps;
  const now = deps.now ?? Date.now();
  const created = encoders.manifest.raw.created_at;
  const trainedAt = typeof created === 'string' && !Number.isNaN(Date.parse(created)) ? created : null;
  const [ref, modalities, queries] = await Promise.all([health.reference(), health.drift(), health.unknownQueries()]);
  let newItems: DriftReport['newItems'] = null;
  if (trainedAt) {
    const since = Date.parse(trainedAt);
    const sinceTraining = await deps.catalog.readySince(since);
    const days = Math.max((now - since) / 86_400_000, 1 / 24);
    newItems = { sinceTraining, days: round(days), perDay: round(sinceTraining / days) };
  }
  const reasons: string[] = [];
  for (const d of modalities) {
    if (d.drift > thresholds.drift) reasons.push(`${d.modality} drift ${round(d.drift)} > ${thresholds.drift}`);
  }
  if (queries && queries.mostlyUnknownShare > thresholds.unknownShare) {
    reasons.push(`mostly-unknown query share ${round(queries.mostlyUnknownShare)} > ${thresholds.unknownShare}`);
  }
  return {
    generation: encoders.generation.name,
    trainedAt,
    reference: ref
      ? { source: ref.source, items: Object.fromEntries(Object.entries(ref.modalities).map(([m, r]) => [m, r?.items ?? 0])) }
      : null,
    modalities,
    queries,
    newItems,
    thresholds,
    stale: reasons.length > 0,
    reasons,
  };
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}

/**
 * Embedding health per generation: each generation keeps its own recent vectors, queries and reference, and the
 * calls go to the context's generation (the one the request or job runs in).
 */
export class RoutedHealth implements HealthSource {
  readonly #make: (generation: string, generationDir: string) => EmbeddingHealth;
  readonly #router: GenerationRouter;
  readonly #byGen = new Map<string, EmbeddingHealth>();

  constructor(router: GenerationRouter, make: (generation: string, generationDir: string) => EmbeddingHealth) {
    this.#router = router;
    this.#make = make;
  }

  #current(): EmbeddingHealth {
    const { encoders } = this.#router.pair();
    const name = encoders.generation.name;
    let h = this.#byGen.get(name);
    if (!h) this.#byGen.set(name, (h = this.#make(name, encoders.manifest.dir)));
    return h;
  }
  get referencePath(): string {
    return this.#current().referencePath;
  }
  record(vectors: Parameters<EmbeddingHealth['record']>[0]): Promise<void> {
    return this.#current().record(vectors);
  }
  drift(): Promise<ModalityDrift[]> {
    return this.#current().drift();
  }
  reference(): Promise<EmbeddingReference | null> {
    return this.#current().reference();
  }
  recordQuery(unknownShare: number): Promise<void> {
    return this.#current().recordQuery(unknownShare);
  }
  unknownQueries(): ReturnType<EmbeddingHealth['unknownQueries']> {
    return this.#current().unknownQueries();
  }
}

/** Builds a generation's EmbeddingHealth with the runtime's settings. */
export function healthFactory(
  redis: Redis,
  prefix: string,
  o: { storeDir: string; referenceItems: number; window: number },
): (generation: string, generationDir: string) => EmbeddingHealth {
  return (generation, generationDir) => new EmbeddingHealth(redis, prefix, { generation, generationDir, ...o });
}

/**
 * A drift reference for a generation from the items it has stored: the mean per modality of up to `items` of its
 * item vectors (the newest ready videos' items in its own collections). Written to `<generation dir>/reference.json`
 * (temp file, then rename); the caller updates the manifest's sha256 list (writeReference does both).
 */
export async function referenceFromStore(
  generation: string,
  store: Pick<VectorStore, 'getItems'>,
  videoIds: string[],
): Promise<EmbeddingReference> {
  const hits = (await store.getItems(videoIds, true)).filter((h) => h !== null);
  const ref: EmbeddingReference = { generation, source: 'export', createdAt: new Date().toISOString(), modalities: {} };
  for (const m of CONTENT_MODALITIES) {
    const vs = hits.map((h) => h.vectors?.[m]).filter((v): v is Float32Array => v !== undefined);
    const mean = meanOf(vs);
    if (mean) ref.modalities[m] = { items: vs.length, mean: Array.from(mean, (x) => Math.round(x * 1e6) / 1e6) };
  }
  return ref;
}

/**
 * Writes `reference.json` into a generation folder and records its sha256 in the manifest's `files`, so the folder
 * still verifies (src/models/manifest.ts). Both written to a temp file, then renamed.
 */
export async function writeReference(dir: string, ref: EmbeddingReference, sha256: (file: string) => Promise<string>): Promise<void> {
  const file = path.join(dir, 'reference.json');
  await writeFile(`${file}.tmp`, `${JSON.stringify(ref)}\n`);
  await rename(`${file}.tmp`, file);
  const mpath = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(await readFile(mpath, 'utf8')) as { files: Record<string, string> };
  manifest.files['reference.json'] = await sha256(file);
  manifest.files = Object.fromEntries(Object.entries(manifest.files).sort(([a], [b]) => a.localeCompare(b)));
  await writeFile(`${mpath}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(`${mpath}.tmp`, mpath);
}
