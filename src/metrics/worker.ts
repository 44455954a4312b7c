/**
 * Metrics a worker process measures (stage and job durations, failed tries by code, pre-normalisation norms,
 * degraded items), and how the API sees them: each worker keeps its own prom-client registry and publishes a
 * JSON snapshot of it to Redis (every `publishMs` and after each job); the API's /metrics aggregates the snapshots
 * of all live workers with prom-client's AggregatorRegistry (counters and histograms summed). A worker that has
 * not published for `ttlS` drops out, and its counts with it, which Prometheus reads as a counter reset.
 */
import { AggregatorRegistry, Counter, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { Redis } from 'ioredis';
import type { Job, Worker } from 'bullmq';
import { parseJobError, type IngestResult } from '../queue/index.ts';
import type { Modality } from '../store/types.ts';
import { CONTENT_MODALITIES, norm, type HealthSource } from './embedding.ts';

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

const SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600];
/** Unit-vector tower outputs give 1; a mean of segment vectors is below 1 by how much the segments disagree. */
const NORM_BUCKETS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01, 1.1, 2];

/** What the worker sees of one item as it is fused: the towers' raw outputs and the modalities stored. */
export interface ItemObservation {
  /** One unit vector per segment from the video tower, and from the audio tower when there is audio. */
  video: Float32Array[];
  audio: Float32Array[] | null;
  /** The text tower's output, before fusion renormalises it. */
  text: Float32Array | undefined;
  /** The item-level unit vectors that were stored, per modality. */
  stored: Partial<Record<Modality, Float32Array>>;
  /** The content modalities the generation has towers for: any of them missing makes the item degraded. */
  expected: readonly Modality[];
}

export class WorkerMetrics {
  readonly registry = new Registry();
  readonly #stage = new Histogram({
    name: 'montage_ingest_stage_seconds',
    help: 'Wall seconds of each ingest stage, per finished job',
    labelNames: ['stage'],
    buckets: SECONDS_BUCKETS,
    registers: [this.registry],
  });
  readonly #job = new Histogram({
    name: 'montage_job_seconds',
    help: 'Wall seconds of a job try that completed, by job type',
    labelNames: ['type'],
    buckets: SECONDS_BUCKETS,
    registers: [this.registry],
  });
  readonly #failures = new Counter({
    name: 'montage_job_failures_total',
    help: 'Failed job tries, by job type and error code (a retried job counts once per failed try)',
    labelNames: ['type', 'code'],
    registers: [this.registry],
  });
  readonly #norms = new Histogram({
    name: 'montage_embedding_norm',
    help: 'Per-modality item vector norm before normalisation (mean of the unit segment vectors; the text tower output)',
    labelNames: ['modality'],
    buckets: NORM_BUCKETS,
    registers: [this.registry],
  });
  readonly #stored = new Counter({
    name: 'montage_items_stored_total',
    help: 'Items written to the store, by whether a modality the generation has was missing (degraded)',
    labelNames: ['degraded'],
    registers: [this.registry],
  });
  readonly #missing = new Counter({
    name: 'montage_items_missing_modality_total',
    help: 'Items stored without a modality the generation has, by that modality',
    labelNames: ['modality'],
    registers: [this.registry],
  });
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #name: string;
  readonly #ttlS: number;
  readonly #health: HealthSource | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(redis: Redis, prefix: string, name: string, opts: { publishMs: number; ttlS?: number; health?: HealthSource }) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#name = name;
    this.#ttlS = opts.ttlS ?? 3600;
    this.#health = opts.health;
    this.#timer = setInterval(() => void this.publish().catch(() => undefined), opts.publishMs);
    this.#timer.unref();
  }

  /** Listens to the workers' completed and failed events. */
  attach(workers: readonly Worker[]): void {
    for (const w of workers) {
      w.on('completed', (job: Job) => {
        if (job.processedOn && job.finishedOn) this.#job.observe({ type: job.name }, (job.finishedOn - job.processedOn) / 1000);
        const stages = (job.returnvalue as Partial<IngestResult> | null)?.stages;
        if (job.name === 'ingest' && stages) for (const [stage, s] of Object.entries(stages)) this.#stage.observe({ stage }, s);
        void this.publish().catch(() => undefined);
      });
      w.on('failed', (job: Job | undefined, err: Error) => {
        this.#failures.inc({ type: job?.name ?? 'unknown', code: parseJobError(err.message)?.code ?? 'INTERNAL' });
        void this.publish().catch(() => undefined);
      });
    }
  }

  /** Called by the ingest processor once an item is fused (before it is written). */
  async observeItem(o: ItemObservation): Promise<void> {
    for (const [m, segs] of [['video', o.video] as const, ['audio', o.audio] as const]) {
      if (segs && segs.length) this.#norms.observe({ modality: m }, norm(meanRaw(segs)));
    }
    if (o.text) this.#norms.observe({ modality: 'text' }, norm(o.text));
    const missing = o.expected.filter((m) => !o.stored[m]);
    this.#stored.inc({ degraded: String(missing.length > 0) });
    for (const m of missing) this.#missing.inc({ modality: m });
    await this.#health?.record(o.stored);
  }

  /** Writes this process's snapshot to Redis, where the API's /metrics finds it. */
  async publish(): Promise<void> {
    const json = JSON.stringify(await this.registry.getMetricsAsJSON());
    await this.#redis
      .multi()
      .set(snapshotKey(this.#prefix, this.#name), json, 'EX', this.#ttlS)
      .sadd(workersKey(this.#prefix), this.#name)
      .exec();
  }

  /** Stops the timer after a last snapshot. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.publish().catch(() => undefined);
  }
}

function meanRaw(vectors: Float32Array[]): Float32Array {
  const out = new Float32Array(vectors[0]!.length);
  for (const v of vectors) for (let i = 0; i < out.length; i++) out[i]! += v[i]! / vectors.length;
  return out;
}

const snapshotKey = (prefix: string, name: string) => `${prefix}:metrics:worker:${name}`;
const workersKey = (prefix: string) => `${prefix}:metrics:workers`;

/** Every live worker's snapshot, aggregated into one registry (API side); names whose snapshot expired are forgotten. */
export async function aggregateWorkers(redis: Redis, prefix: string): Promise<Registry> {
  const names = await redis.smembers(workersKey(prefix));
  const snaps = names.length ? await redis.mget(...names.map((n) => snapshotKey(prefix, n))) : [];
  const gone = names.filter((_, i) => snaps[i] === null);
  if (gone.length) await redis.srem(workersKey(prefix), ...gone);
  const live = snaps.filter((s): s is string => s !== null).map((s) => JSON.parse(s) as MetricsJson);
  return live.length ? AggregatorRegistry.aggregate(live) : new Registry();
}

export { CONTENT_MODALITIES };
