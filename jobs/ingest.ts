/**
 * The ingest processor: probe → extract → encode → fuse → upsert → cleanup, one BullMQ job per upload.
 * The stages run inside one job on purpose: decoded frames and PCM (megabytes per minute of video) never cross
 * Redis; each stage reports progress, and the job is retried as a whole, which is safe because every write is an
 * upsert under deterministic ids.
 */
import { rm, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { UnrecoverableError, type Job } from 'bullmq';
import { AppError, isAppError } from '../src/errors/index.ts';
import type { Config } from '../src/config/index.ts';
import type { Logger } from '../src/log.ts';
import type { Catalog } from '../src/catalog/index.ts';
import type { Encoders } from '../src/models/types.ts';
import type { VectorStore, ItemPoint, SegmentPoint, Modality } from '../src/store/types.ts';
import type { MediaLimits, ProbeResult, SegmentFrames } from '../src/media/types.ts';
import { probe, extractFrames, extractAudio, segmentAudio, posterFrame, DEFAULT_MEDIA_LIMITS } from '../src/media/index.ts';
import { fuseSegment, fuseVideo } from '../src/fusion/index.ts';
import { JOB_POLICY } from './policy.ts';

export interface IngestData {
  videoId: string;
  uploadPath: string;
  sha256: string;
  generation: string;
  /** The probe made when the upload was admitted (same bytes: the file is named by its hash); probed again when absent. */
  probe?: ProbeResult;
}

export interface IngestResult {
  videoId: string;
  segments: number;
  modalities: Modality[];
  durationS: number;
  /** Wall seconds per stage. */
  stages: Record<Stage, number>;
  skipped?: 'deleted';
}

export const STAGES = ['probe', 'extract', 'encode', 'fuse', 'upsert', 'cleanup'] as const;
export type Stage = (typeof STAGES)[number];
/** Share of the whole job each stage is expected to take, for progress %; measured on the bench clips. */
const STAGE_WEIGHT: Record<Stage, number> = { probe: 2, extract: 38, encode: 50, fuse: 1, upsert: 7, cleanup: 2 };

export interface JobProgress {
  stage: Stage;
  percent: number;
  etaS: number | null;
}

export interface IngestDeps {
  config: Config;
  encoders: Encoders;
  store: VectorStore;
  catalog: Catalog;
  log: Logger;
}

/** The media limits in force: the media module's documented defaults, with the configured bounds on top. */
export function mediaLimits(config: Config): MediaLimits {
  return {
    ...DEFAULT_MEDIA_LIMITS,
    maxDurationS: config.media.maxDurationS,
    minDurationS: config.media.minDurationS,
    maxWidth: config.media.maxSide,
    maxHeight: config.media.maxSide,
    maxStreams: config.media.maxStreams,
    timeoutMs: config.media.timeoutMs,
  };
}

/** Text the text tower sees for an item: title, description and tags. */
export function itemText(rec: { title: string; description: string; tags: string[] }): string {
  return [rec.title, rec.description, rec.tags.join(' ')]
    .map((s) => s.trim())
    .filter(Boolean)
    .join('. ');
}

class StageClock {
  readonly times = Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<Stage, number>;
  #t = performance.now();
  #stage: Stage = 'probe';
  readonly #job: Job;
  readonly #etaFor: (done: number) => number | null;
  readonly #signal: AbortSignal;
  constructor(job: Job, etaFor: (done: number) => number | null, signal: AbortSignal) {
    this.#job = job;
    this.#etaFor = etaFor;
    this.#signal = signal;
  }
  /** Every stage starts here: a run that has timed out stops at the next stage and writes nothing more. */
  async enter(stage: Stage): Promise<void> {
    this.#signal.throwIfAborted();
    this.#lap();
    this.#stage = stage;
    const done = STAGES.slice(0, STAGES.indexOf(stage)).reduce((a, s) => a + STAGE_WEIGHT[s], 0);
    const progress: JobProgress = { stage, percent: Math.round(done), etaS: this.#etaFor(done / 100) };
    await this.#job.updateProgress(progress);
  }
  #lap(): void {
    const now = performance.now();
    this.times[this.#stage] += (now - this.#t) / 1000;
    this.#t = now;
  }
  finish(): Record<Stage, number> {
    this.#lap();
    return this.times;
  }
}

/** Poison input (a non-retryable catalogue error) fails the job at once; anything else is retried. */
function classify(err: unknown, videoId: string): Error {
  if (isAppError(err) && !err.retry) return new UnrecoverableError(`${err.code}: ${err.message}`);
  if (isAppError(err)) return new Error(`${err.code}: ${err.message}`, { cause: err });
  const why = err instanceof Error ? err.message : String(err);
  return new Error(`INTERNAL: ingest of ${videoId} failed: ${why}`, { cause: err });
}

/** Parses the `CODE: message` form that failed jobs carry. */
export function parseJobError(reason: string | undefined): { code: string; message: string } | null {
  if (!reason) return null;
  const m = /^([A-Z][A-Z_]+): ([\s\S]*)$/.exec(reason);
  return m ? { code: m[1]!, message: m[2]! } : { code: 'INTERNAL', message: reason };
}

/** Rejects after `ms` and aborts the run's signal, so the timed-out run cannot write beside the retry. */
function withTimeout<T>(run: (signal: AbortSignal) => Promise<T>, ms: number, what: string): Promise<T> {
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
  // Only poison input loses its upload (a transient failure keeps it for a re-upload to retry); the store is
  // never touched here: a failed job has written nothing.
  if (poison && rec) await rm(data.uploadPath, { force: true });
}

async function runIngest(deps: IngestDeps, job: Job<IngestData>, signal: AbortSignal): Promise<IngestResult> {
  const { config, encoders, store, catalog } = deps;
  const { videoId, uploadPath } = job.data;
  const gen = encoders.generation;
  const rate = await catalog.rate();
  let duration = 0;
  // ETA = probed duration x measured seconds-per-video-second (moving average over past jobs) x work left.
  const clock = new StageClock(job, (done) => (duration && rate ? Math.round(duration * rate * (1 - done)) : null), signal);

  await clock.enter('probe');
  const rec0 = await catalog.update(videoId, { status: 'processing' });
  if (!rec0) return skipped(videoId, clock);
  const limits = mediaLimits(config);
  const info: ProbeResult = job.data.probe ?? (await probe(uploadPath, limits, videoId));
  duration = info.durationS;
  await catalog.update(videoId, { durationS: info.durationS });

  await clock.enter('extract');
  const vp = gen.preprocessing.video;
  const ap = gen.preprocessing.audio;
  const posterPath = path.join(config.dataDir, 'posters', `${videoId}.jpg`);
  await mkdir(path.dirname(posterPath), { recursive: true });
  const [segments, pcm] = await Promise.all([
    extractFrames(
      uploadPath,
      {
        segmentSeconds: vp.segment_seconds,
        framesPerSegment: vp.frames_per_segment,
        size: vp.frame_size,
        resize: vp.resize,
        durationS: info.durationS,
        timeoutMs: limits.timeoutMs,
        allowedContainers: limits.allowedContainers,
      },
      videoId,
    ),
    info.audioCodec && encoders.has('audio')
      ? extractAudio(
          uploadPath,
          {
            sampleRate: ap.sample_rate,
            hasAudio: true,
            maxDurationS: info.durationS,
            timeoutMs: limits.timeoutMs,
            allowedContainers: limits.allowedContainers,
          },
          videoId,
        )
      : Promise.resolve(null),
    posterFrame(uploadPath, posterPath, Math.min(info.durationS / 2, 1), { label: videoId }),
  ]);
  if (segments.length === 0) throw new AppError('CORRUPT_MEDIA', `ffmpeg on ${videoId} decoded no frames`);

  await clock.enter('encode');
  const rec = await catalog.get(videoId);
  if (!rec) return skipped(videoId, clock);
  const videoVecs = await encoders.encodeFrames(segments);
  const audioVecs = pcm ? await encoders.encodeAudio(segmentAudio(pcm, ap.sample_rate, ap.segment_seconds, segments.length)) : null;
  const text = itemText(rec);
  const textVec = text ? (await encoders.encodeText([text]))[0] : undefined;

  await clock.enter('fuse');
  const perSegment = segments.map((_, i) => ({ video: videoVecs[i], audio: audioVecs?.[i] }));
  const item = fuseVideo(perSegment, textVec);
  const segVecs = perSegment.map((s) => fuseSegment(s));

  await clock.enter('upsert');
  // Re-check after the slow steps: a video deleted meanwhile must not come back.
  const fresh = await catalog.get(videoId);
  if (!fresh) return skipped(videoId, clock);
  const modalities = item.modalities as Modality[];
  const vectors: ItemPoint['vectors'] = { fused: item.fused };
  if (item.video) vectors.video = item.video;
  if (item.audio) vectors.audio = item.audio;
  if (item.text) vectors.text = item.text;
  if (encoders.has('behaviour')) vectors.behaviour = (await encoders.projectBehaviour([item.fused]))[0]!;
  await store.upsertItems([
    {
      vectors,
      payload: {
        videoId,
        title: fresh.title,
        description: fresh.description,
        tags: fresh.tags,
        durationS: info.durationS,
        uploadedAt: fresh.uploadedAt,
        modalities,
        generation: gen.name,
        sha256: fresh.sha256,
        externalId: fresh.externalId,
      },
    },
  ]);
  await store.upsertSegments(
    videoId,
    segments.map((s: SegmentFrames, i): SegmentPoint => {
      const v: SegmentPoint['vectors'] = { fused: segVecs[i]! };
      if (videoVecs[i]) v.video = videoVecs[i];
      if (audioVecs?.[i]) v.audio = audioVecs[i];
      return {
        vectors: v,
        payload: {
          videoId,
          index: s.index,
          startS: s.startS,
          endS: s.endS,
          generation: gen.name,
          modalities: audioVecs?.[i] ? ['video', 'audio'] : ['video'],
        },
      };
    }),
  );

  // A DELETE that landed while we wrote must win: take back what we just wrote.
  if (!(await catalog.get(videoId))) {
    await store.deleteVideo(videoId);
    return skipped(videoId, clock);
  }

  await clock.enter('cleanup');
  await catalog.update(videoId, { status: 'ready', modalities, generation: gen.name, posterPath, error: undefined });
  await catalog.markReady(videoId, fresh.uploadedAt);
  const stages = clock.finish();
  const total = Object.values(stages).reduce((a, b) => a + b, 0);
  if (info.durationS > 0) await catalog.recordRate(total / info.durationS);
  await job.updateProgress({ stage: 'cleanup', percent: 100, etaS: 0 } satisfies JobProgress);
  return { videoId, segments: segments.length, modalities, durationS: info.durationS, stages };
}

function skipped(videoId: string, clock: StageClock): IngestResult {
  return { videoId, segments: 0, modalities: [], durationS: 0, stages: clock.finish(), skipped: 'deleted' };
}
