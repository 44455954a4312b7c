/**
 * The ingest processor: probe → extract → encode → fuse → upsert → cleanup (jobs/ingest-stages.ts), one BullMQ job
 * per upload; the towers encode segments while extract's ffmpeg is still decoding (jobs/ingest-pipeline.ts). The stages run inside one job on purpose: decoded frames and PCM (megabytes per minute of video)
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
  type StageSpan,
} from '../src/queue/index.ts';
import {
  VideoDeleted,
  cleanupStage,
  encodeStage,
  extractStage,
  fuseStage,
  notify,
  probeStage,
  upsertStage,
  type Encoded,
  type Fused,
  type IngestContext,
  type IngestDeps,
} from './ingest-stages.ts';
import { JOB_POLICY } from './policy.ts';
import { EtaModel, type StageSeconds } from './eta.ts';

export type { IngestDeps } from './ingest-stages.ts';

/** Least time between two progress reports within a stage, ms: a report is a Redis write and an event. */
const PROGRESS_EVERY_MS = 50;

/**
 * Times the stages and reports progress and ETA: as each stage begins and, throttled, as the stages report how far
 * they are (frames decoded, segments encoded). Percent and ETA come from the learned per-stage times for this video's
 * duration (jobs/eta.ts), so they move in proportion to where the time actually goes. Stops a run that has timed out.
 */
class StageClock {
  readonly times = Object.fromEntries(INGEST_STAGES.map((s) => [s, 0])) as Record<IngestStage, number>;
  /** When each stage ran, seconds from the job's start: the stage's own time, or its reported work (extract, encode). */
  readonly #spans: Partial<Record<IngestStage, StageSpan>> = {};
  readonly #work: Partial<Record<IngestStage, StageSpan>> = {};
  readonly #t0 = performance.now();
  #t = this.#t0;
  #stage: IngestStage = 'probe';
  /** Predicted seconds per stage, once the duration is known. */
  #plan: StageSeconds | null = null;
  #lastReport = 0;
  #lastPercent = -1;
  #reports: Promise<unknown> = Promise.resolve();
  readonly #job: Job;
  readonly #signal: AbortSignal;
  readonly #onStage: (stage: IngestStage) => Promise<void> | void;

  constructor(job: Job, signal: AbortSignal, onStage: (stage: IngestStage) => Promise<void> | void) {
    this.#job = job;
    this.#signal = signal;
    this.#onStage = onStage;
  }

  /** The predicted seconds per stage for this video: from now on progress has weights and an ETA. */
  plan(predicted: StageSeconds): void {
    this.#plan = predicted;
  }

  /** Every stage starts here: a run that has timed out stops at the next stage and writes nothing more. */
  async enter(stage: IngestStage): Promise<void> {
    this.#signal.throwIfAborted();
    this.#lap();
    this.#stage = stage;
    this.#report(0, true);
    await this.#reports;
    await this.#onStage(stage);
  }

  /** How far the current stage is, 0..1; reported at most every PROGRESS_EVERY_MS and only when the percent moves. */
  readonly within = (fraction: number): void => {
    if (performance.now() - this.#lastReport < PROGRESS_EVERY_MS) return;
    this.#report(Math.min(1, Math.max(0, fraction)), false);
  };

  #report(fraction: number, always: boolean): void {
    const p = this.#progress(fraction);
    if (!always && p.percent === this.#lastPercent) return;
    this.#lastPercent = p.percent;
    this.#lastReport = performance.now();
    // Chained, so reports land in order; a failed write is not worth failing the job for.
    this.#reports = this.#reports.then(() => this.#job.updateProgress(p).catch(() => undefined));
  }

  #progress(fraction: number): JobProgress {
    const plan = this.#plan;
    if (!plan) return { stage: this.#stage, percent: 0, etaS: null };
    const at = INGEST_STAGES.indexOf(this.#stage);
    const total = INGEST_STAGES.reduce((a, s) => a + plan[s], 0);
    const done = INGEST_STAGES.slice(0, at).reduce((a, s) => a + plan[s], 0) + plan[this.#stage] * fraction;
    // One decimal: at ~1 s per video minute, whole seconds would sit at 0 or 1 for most of a short job.
    const etaS = Math.round(Math.max(0, total - done) * 10) / 10;
    return { stage: this.#stage, percent: Math.min(99, Math.floor((100 * done) / total)), etaS };
  }

  /** A stage's work starts or ends (extraction's ffmpeg, the towers); its span runs from the first start to the last end. */
  readonly work = (stage: IngestStage, edge: 'start' | 'end'): void => {
    const t = this.#since(performance.now());
    const span = this.#work[stage];
    if (!span) this.#work[stage] = { startS: t, endS: t };
    else if (edge === 'end') span.endS = t;
  };

  #since(t: number): number {
    return Math.round(t - this.#t0) / 1000;
  }

  #lap(): void {
    const now = performance.now();
    this.times[this.#stage] += (now - this.#t) / 1000;
    const span = this.#spans[this.#stage];
    if (span) span.endS = this.#since(now);
    else this.#spans[this.#stage] = { startS: this.#since(this.#t), endS: this.#since(now) };
    this.#t = now;
  }

  async finish(): Promise<Record<IngestStage, number>> {
    this.#lap();
    await this.#reports;
    return this.times;
  }

  /** Every stage's span: its reported work where it reported any, else the time the job spent in it. */
  spans(): Partial<Record<IngestStage, StageSpan>> {
    return { ...this.#spans, ...this.#work };
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
      if (finalTry) await notify(deps, 'video.failed', { videoId, jobId: job.id, error: parseJobError(out.message) });
      throw out;
    }
  };
}

/**
 * The worker's `failed` listener for ingest jobs. BullMQ fails a job whose workers died more often than the policy's
 * maxStalledCount without running the processor, so the processor's own handling never sees it: this marks its
 * video failed (JOB_STALLED) and keeps the upload, so uploading the same file again retries it. A try that will be
 * retried, and a record that already says how it ended, are left alone. (If this worker dies too before it gets
 * here, the API's read of the video reconciles it with the job: src/videos/service.ts `reconcile`.)
 */
export function makeIngestFailedHook(deps: IngestDeps) {
  return async (job: Job<IngestData>): Promise<void> => {
    if ((await job.getState()) !== 'failed') return;
    const rec = await deps.catalog.get(job.data.videoId);
    if (!rec || rec.jobId !== job.id || rec.status === 'failed' || rec.status === 'ready') return;
    deps.log.warn({ videoId: rec.videoId, jobId: job.id, reason: job.failedReason }, 'ingest failed outside its processor');
    await failVideo(deps, job.data, job.failedReason || 'the ingest job failed', false);
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

/** Hands the fused item to the metrics; a metrics failure is logged, never fails the ingest. */
async function observe(deps: IngestDeps, encoded: Encoded, fused: Fused): Promise<void> {
  if (!deps.observeItem) return;
  const { item } = fused;
  const expected = (['video', 'audio', 'text'] as const).filter((m) => deps.encoders.has(m));
  const stored = Object.fromEntries(item.modalities.map((m) => [m, item[m]!]));
  await deps.observeItem({ video: encoded.video, audio: encoded.audio, text: encoded.text, stored, expected }).catch((err: unknown) => {
    deps.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'item metrics failed');
  });
}

async function runIngest(deps: IngestDeps, job: Job<IngestData>, signal: AbortSignal): Promise<IngestResult> {
  const { videoId } = job.data;
  const clock = new StageClock(job, signal, (stage) => deps.onStage?.(stage, videoId));
  const ctx: IngestContext = { deps, data: job.data, signal, progress: clock.within, work: clock.work };
  const eta = deps.eta ?? new EtaModel(undefined, '');
  try {
    await clock.enter('probe');
    const info = await probeStage(ctx);
    clock.plan(await eta.predict(info.durationS));
    await clock.enter('extract');
    const media = await extractStage(ctx, info);
    let encoded: Encoded;
    try {
      await clock.enter('encode');
      encoded = await encodeStage(ctx, media);
    } catch (err) {
      await media.stop(); // the towers (and the audio's ffmpeg) may still be at work on the last batch
      throw err;
    }
    await clock.enter('fuse');
    const fused = fuseStage(ctx, media, encoded);
    await observe(deps, encoded, fused);
    await clock.enter('upsert');
    const rec = await upsertStage(ctx, info, fused);
    await clock.enter('cleanup');
    await cleanupStage(ctx, rec, fused, media.posterPath);
    const stages = await clock.finish();
    await eta.learn(info.durationS, stages).catch((err: unknown) => deps.log.warn({ err, videoId }, 'learning the ETA failed'));
    await job.updateProgress({ stage: 'cleanup', percent: 100, etaS: 0 } satisfies JobProgress);
    await notify(deps, 'video.ready', { videoId, jobId: job.id, modalities: fused.item.modalities, durationS: info.durationS });
    const spans = clock.spans();
    return { videoId, segments: media.segments.length, modalities: fused.item.modalities, durationS: info.durationS, stages, spans };
  } catch (err) {
    // A stage can also fail because the DELETE pulled the upload from under ffmpeg: that is a deletion too.
    const gone = err instanceof VideoDeleted || !(await deps.catalog.get(videoId).catch(() => 'unknown'));
    if (!gone) throw err;
    // The DELETE removed the record, the vectors and the upload; a poster written after it is this run's to remove.
    await deps.files.removePoster(videoId);
    return { videoId, segments: 0, modalities: [], durationS: 0, stages: await clock.finish(), skipped: 'deleted' };
  }
}
