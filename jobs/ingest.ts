/**
 * The ingest processor: probe → extract → encode → fuse → upsert → cleanup (jobs/ingest-stages.ts), one BullMQ job
 * per upload. The stages run inside one job on purpose: decoded frames and PCM (megabytes per minute of video)
 * never cross Redis; progress is reported as each stage begins, and the job is retried as a whole, which is safe
 * because every write is an upsert under deterministic ids.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import { isAppError } from '../src/errors/index.ts';
import {
  INGEST_STAGES,
  jobErrorReason,
  parseJobError,
  type IngestData,
  type IngestResult,
  type IngestStage,
  type JobProgress,
} from '../src/queue/index.ts';
import {
  VideoDeleted,
  cleanupStage,
  encodeStage,
  extractStage,
  fuseStage,
  probeStage,
  upsertStage,
  type IngestContext,
  type IngestDeps,
} from './ingest-stages.ts';
import { JOB_POLICY } from './policy.ts';

export type { IngestDeps } from './ingest-stages.ts';

/** Share of the whole job each stage is expected to take, for progress %; measured on the bench clips. */
const STAGE_WEIGHT: Record<IngestStage, number> = { probe: 2, extract: 38, encode: 50, fuse: 1, upsert: 7, cleanup: 2 };

/** Times the stages, reports progress and ETA as each begins, and stops a run that has timed out. */
class StageClock {
  readonly times = Object.fromEntries(INGEST_STAGES.map((s) => [s, 0])) as Record<IngestStage, number>;
  /** The probed duration, once known: ETA = duration x measured seconds per video second x work left. */
  durationS = 0;
  #t = performance.now();
  #stage: IngestStage = 'probe';
  readonly #job: Job;
  readonly #rate: number | null;
  readonly #signal: AbortSignal;
  readonly #onStage: (stage: IngestStage) => Promise<void> | void;

  constructor(job: Job, rate: number | null, signal: AbortSignal, onStage: (stage: IngestStage) => Promise<void> | void) {
    this.#job = job;
    this.#rate = rate;
    this.#signal = signal;
    this.#onStage = onStage;
  }

  /** Every stage starts here: a run that has timed out stops at the next stage and writes nothing more. */
  async enter(stage: IngestStage): Promise<void> {
    this.#signal.throwIfAborted();
    this.#lap();
    this.#stage = stage;
    const done = INGEST_STAGES.slice(0, INGEST_STAGES.indexOf(stage)).reduce((a, s) => a + STAGE_WEIGHT[s], 0);
    const etaS = this.durationS && this.#rate ? Math.round(this.durationS * this.#rate * (1 - done / 100)) : null;
    await this.#job.updateProgress({ stage, percent: Math.round(done), etaS } satisfies JobProgress);
    await this.#onStage(stage);
  }

  #lap(): void {
    const now = performance.now();
    this.times[this.#stage] += (now - this.#t) / 1000;
    this.#t = now;
  }

  finish(): Record<IngestStage, number> {
    this.#lap();
    return this.times;
  }
}

/** Poison input (a non-retryable catalogue error) fails the job at once; anything else is retried. */
function classify(err: unknown, videoId: string): Error {
  if (isAppError(err) && !err.retry) return new UnrecoverableError(jobErrorReason(err.code, err.message));
  if (isAppError(err)) return new Error(jobErrorReason(err.code, err.message), { cause: err });
  const why = err instanceof Error ? err.message : String(err);
  return new Error(jobErrorReason('INTERNAL', `ingest of ${videoId} failed: ${why}`), { cause: err });
}

/** Rejects after `ms` and aborts the run's signal, so the timed-out run cannot write beside the retry. */
export function withTimeout<T>(run: (signal: AbortSignal) => Promise<T>, ms: number, what: string): Promise<T> {
  const ctl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new Error(`${what} timed out after ${ms} ms`);
      ctl.abort(err);
      reject(err);
    }, ms);
  });
  return Promise.race([run(ctl.signal), t]).finally(() => clearTimeout(timer));
}

export function makeIngestProcessor(deps: IngestDeps) {
  return async (job: Job<IngestData>): Promise<IngestResult> => {
    const { videoId } = job.data;
    try {
      return await withTimeout((signal) => runIngest(deps, job, signal), JOB_POLICY.ingest.timeoutMs, `ingest of ${videoId}`);
    } catch (err) {
      const out = classify(err, videoId);
      const finalTry = out instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      deps.log.warn({ videoId, jobId: job.id, err: out.message, finalTry }, 'ingest failed');
      if (finalTry) await failVideo(deps, job.data, out.message, out instanceof UnrecoverableError);
      throw out;
    }
  };
}

/** A video that will not be retried: record why, and drop its upload when the input itself is bad. */
async function failVideo(deps: IngestDeps, data: IngestData, reason: string, poison: boolean): Promise<void> {
  const error = parseJobError(reason) ?? undefined;
  const rec = await deps.catalog.update(data.videoId, { status: 'failed', error });
  // The record does not point at a poster any more (a re-upload makes a new one).
  await deps.files.removePoster(data.videoId);
  // Only poison input loses its upload (a transient failure keeps it for a re-upload to retry); the store is
  // never touched here: a failed job has written nothing.
  if (poison && rec) await deps.files.removeUpload(data.uploadPath);
}

async function runIngest(deps: IngestDeps, job: Job<IngestData>, signal: AbortSignal): Promise<IngestResult> {
  const { videoId } = job.data;
  const ctx: IngestContext = { deps, data: job.data, signal };
  const clock = new StageClock(job, await deps.catalog.rate(), signal, (stage) => deps.onStage?.(stage, videoId));
  try {
    await clock.enter('probe');
    const info = await probeStage(ctx);
    clock.durationS = info.durationS;
    await clock.enter('extract');
    const media = await extractStage(ctx, info);
    await clock.enter('encode');
    const encoded = await encodeStage(ctx, media);
    await clock.enter('fuse');
    const fused = fuseStage(ctx, media, encoded);
    await clock.enter('upsert');
    const rec = await upsertStage(ctx, info, fused);
    await clock.enter('cleanup');
    await cleanupStage(ctx, rec, fused, media.posterPath);
    const stages = clock.finish();
    const total = Object.values(stages).reduce((a, b) => a + b, 0);
    if (info.durationS > 0) await deps.catalog.recordRate(total / info.durationS);
    await job.updateProgress({ stage: 'cleanup', percent: 100, etaS: 0 } satisfies JobProgress);
    return { videoId, segments: media.segments.length, modalities: fused.item.modalities, durationS: info.durationS, stages };
  } catch (err) {
    // A stage can also fail because the DELETE pulled the upload from under ffmpeg: that is a deletion too.
    const gone = err instanceof VideoDeleted || !(await deps.catalog.get(videoId).catch(() => 'unknown'));
    if (!gone) throw err;
    // The DELETE removed the record, the vectors and the upload; a poster written after it is this run's to remove.
    await deps.files.removePoster(videoId);
    return { videoId, segments: 0, modalities: [], durationS: 0, stages: clock.finish(), skipped: 'deleted' };
  }
}
