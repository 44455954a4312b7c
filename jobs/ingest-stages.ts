/**
 * The six stages of one ingest, one function each, over a shared typed context: each takes what the stages before
 * it produced and returns what it adds. Extract and encode overlap: extract starts the towers on the segments as
 * ffmpeg decodes them (jobs/ingest-pipeline.ts) and returns when ffmpeg is done; encode waits for the last batch.
 * None touches the queue; the processor (jobs/ingest.ts) runs them in order and reports progress between them.
 *
 * A DELETE wins over a running job: the video record is re-checked when the job starts (probe), before its text is
 * read (encode), before writing and again after writing (upsert: what was written is taken back), and when it is
 * marked ready (cleanup). A stage that finds the record gone throws VideoDeleted.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { AppError, isAppError } from '../src/errors/index.ts';
import type { Catalog, VideoRecord } from '../src/catalog/index.ts';
import type { Logger } from '../src/log.ts';
import type { EnrichConfig } from '../src/config/index.ts';
import { pendingEnrichments } from './enrich.ts';
import type { MediaLimits, ProbeResult, SegmentFrames } from '../src/media/types.ts';
import type { Encoders } from '../src/models/types.ts';
import type { ItemPoint, SegmentPoint, VectorStore } from '../src/store/types.ts';
import type { IngestData, IngestStage } from '../src/queue/index.ts';
import type { VideoFiles } from '../src/videos/files.ts';
import type { EventLog } from '../src/users/events.ts';
import type { JobQueue } from '../src/queue/index.ts';
import { probe, iterateSegments, iterateAudioSegments, posterFrame } from '../src/media/index.ts';
import { BoundedQueue, encodeAsTheyArrive, type SegmentVectors } from './ingest-pipeline.ts';
import { fuseSegment, fuseVideo, type FusedVideo } from '../src/fusion/index.ts';
import type { ItemObservation } from '../src/metrics/worker.ts';
import type { EtaModel } from './eta.ts';
import type { WebhookEmitter, WebhookEvent } from '../src/webhooks/index.ts';

export interface IngestDeps {
  config: { media: { limits: MediaLimits }; enrich: EnrichConfig; store: { retryMs: number } };
  encoders: Encoders;
  store: VectorStore;
  catalog: Catalog;
  files: VideoFiles;
  log: Logger;
  /** Events that waited for the video: counted when it is ready, and their users' vectors recomputed. */
  events: Pick<EventLog, 'videoReady'>;
  /** Recomputes users' vectors; queues the video's enrichment once its ingest vectors have landed (jobs/enrich.ts). */
  jobs: Pick<JobQueue, 'requestUserVector'> & {
    enqueueEnrich(videoId: string, data: { videoId: string; uploadPath: string }): Promise<void>;
  };
  /**
   * Called as each stage begins, after its progress is reported. Tests inject a DELETE at a known stage here;
   * metrics may listen here too.
   */
  onStage?: (stage: IngestStage, videoId: string) => Promise<void> | void;
  /** Sees each item once fused, before it is written (embedding-health metrics, src/metrics/worker.ts). */
  observeItem?: (o: ItemObservation) => Promise<void>;
  /** Learned stage times for progress and ETA (jobs/eta.ts); without it, the seed alone. */
  eta?: EtaModel;
  /** Tells webhook subscribers a video is ready or failed (src/webhooks); only enqueues, never waits on a receiver. */
  webhooks?: WebhookEmitter;
}

/** What every stage may read. */
export interface IngestContext {
  readonly deps: IngestDeps;
  readonly data: IngestData;
  /** Aborted when the run has timed out: the run stops at the next stage and writes nothing more. */
  readonly signal: AbortSignal;
  /** How far the running stage is, 0..1 (frames decoded, segments encoded); throttled by the caller. */
  readonly progress?: (fraction: number) => void;
  /** When extraction's ffmpeg and the towers start and stop working: the two overlap, so their spans are reported apart. */
  readonly work?: (stage: 'extract' | 'encode', edge: 'start' | 'end') => void;
}

/** Thrown by a stage that finds the video deleted: the run stops, keeps nothing, and completes as skipped. */
export class VideoDeleted extends Error {
  constructor(videoId: string) {
    super(`video ${videoId} was deleted during its ingest`);
  }
}

/** Where a segment lies in the video; its frames went to the towers as they were decoded. */
export type SegmentSpan = Pick<SegmentFrames, 'index' | 'startS' | 'endS'>;

/** What extract leaves for the stages after it: the segments, the poster, and the towers' work still running. */
export interface Extracted {
  segments: SegmentSpan[];
  posterPath: string;
  /** The towers' vectors of every segment: still being computed as extract returns (the last batch); encode awaits it. */
  encoding: Promise<SegmentVectors>;
  /** From now on the towers report their progress (segments encoded of all) to `progress`: encode's. */
  reportEncoding(progress: (fraction: number) => void): void;
  /** Stops the towers and ffmpeg and waits for both: for a run that ends between extract and encode. */
  stop(): Promise<void>;
}

/** The towers' outputs: one video (and audio) vector per segment, one text vector per video. */
export interface Encoded {
  video: Float32Array[];
  audio: Float32Array[] | null;
  text: Float32Array | undefined;
}

/** The fused item vectors and the segment points, ready to write. */
export interface Fused {
  item: FusedVideo;
  segments: SegmentPoint[];
}

/** The video's record, or VideoDeleted when a DELETE has removed it. */
async function current(ctx: IngestContext): Promise<VideoRecord> {
  const rec = await ctx.deps.catalog.get(ctx.data.videoId);
  if (!rec) throw new VideoDeleted(ctx.data.videoId);
  return rec;
}

/** Text the text tower sees for an item: title, description and tags. */
export function itemText(rec: { title: string; description: string; tags: string[] }): string {
  return [rec.title, rec.description, rec.tags.join(' ')]
    .map((s) => s.trim())
    .filter(Boolean)
    .join('. ');
}

/** Marks the video processing and learns its duration, from the admission's probe when the job carries one. */
export async function probeStage(ctx: IngestContext): Promise<ProbeResult> {
  const { catalog, config } = ctx.deps;
  const { videoId, uploadPath } = ctx.data;
  if (!(await catalog.update(videoId, { status: 'processing' }))) throw new VideoDeleted(videoId);
  const info = ctx.data.probe ?? (await probe(uploadPath, config.media.limits, videoId));
  await catalog.update(videoId, { durationS: info.durationS });
  return info;
}

/** Segments per tower call: small enough that the tail after ffmpeg exits is short, large enough to batch. */
const ENCODE_BATCH = 16;
/** Batches of decoded segments that may wait for the towers; beyond them ffmpeg waits on its pipe (flat memory). */
const QUEUED_BATCHES = 2;

/**
 * Frames per segment (one ffmpeg), the audio windows (another) and the poster, decoded side by side, with the
 * towers encoding the segments as they come (jobs/ingest-pipeline.ts): returns once ffmpeg has decoded the last
 * frame, the towers still finishing the last batch.
 */
export async function extractStage(ctx: IngestContext, info: ProbeResult): Promise<Extracted> {
  const { encoders, files, config } = ctx.deps;
  const { videoId, uploadPath } = ctx.data;
  const { limits } = config.media;
  const bounds = { timeoutMs: limits.timeoutMs, allowedContainers: limits.allowedContainers };
  const { video: vp, audio: ap } = encoders.generation.preprocessing;
  const posterPath = await files.posterPath(videoId);
  const queue = new BoundedQueue<SegmentFrames>(QUEUED_BATCHES * ENCODE_BATCH);
  // A run that times out stops ffmpeg and the towers at once, not at the next stage.
  const onAbort = () => queue.fail(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  const segments: SegmentSpan[] = [];
  let report: ((fraction: number) => void) | undefined;
  const audioOpts = { sampleRate: ap.sample_rate, segmentSeconds: ap.segment_seconds, hasAudio: true, maxDurationS: info.durationS };
  const encoding = encodeAsTheyArrive(queue, {
    encoders,
    maxBatch: ENCODE_BATCH,
    audio: info.audioCodec && encoders.has('audio') ? iterateAudioSegments(uploadPath, { ...audioOpts, ...bounds }, videoId) : null,
    audioSamples: Math.round(ap.sample_rate * ap.segment_seconds),
    onRun: (edge) => ctx.work?.('encode', edge),
    // Known once extraction is done, which is when encode takes the reports.
    onBatch: (encoded) => report?.(encoded / segments.length),
  }).finally(() => ctx.signal.removeEventListener('abort', onAbort));
  encoding.catch(() => {}); // awaited by encode or stop(); a failure before then also fails the queue, seen below
  const decode = async () => {
    ctx.work?.('extract', 'start');
    try {
      const frames = iterateSegments(
        uploadPath,
        {
          segmentSeconds: vp.segment_seconds,
          framesPerSegment: vp.frames_per_segment,
          size: vp.frame_size,
          resize: vp.resize,
          durationS: info.durationS,
          ...bounds,
          ...(ctx.progress ? { onFrame: (seen: number, expected: number) => ctx.progress!(seen / expected) } : {}),
        },
        videoId,
      );
      for await (const segment of frames) {
        segments.push({ index: segment.index, startS: segment.startS, endS: segment.endS });
        await queue.put(segment);
      }
      queue.close();
    } catch (err) {
      queue.fail(err);
      throw err;
    } finally {
      ctx.work?.('extract', 'end');
    }
  };
  const settled = await Promise.allSettled([
    decode(),
    posterFrame(uploadPath, posterPath, Math.min(info.durationS / 2, 1), { label: videoId, ...bounds }),
  ]);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) {
    queue.fail(failed.reason);
    await encoding.catch(() => {});
    throw failed.reason;
  }
  if (segments.length === 0) throw new AppError('CORRUPT_MEDIA', `ffmpeg on ${videoId} decoded no frames`);
  return {
    segments,
    posterPath,
    encoding,
    reportEncoding: (progress) => {
      report = progress;
    },
    stop: async () => {
      queue.fail(new Error(`the ingest of ${videoId} stopped`));
      await encoding.catch(() => {});
    },
  };
}

/** Waits for the towers to finish the segments, and encodes the record's text (read now, so an edit is seen). */
export async function encodeStage(ctx: IngestContext, media: Extracted): Promise<Encoded> {
  const { encoders } = ctx.deps;
  const rec = await current(ctx);
  if (ctx.progress) media.reportEncoding(ctx.progress);
  const { video, audio } = await media.encoding;
  const text = itemText(rec);
  return { video, audio, text: text ? (await encoders.encodeText([text]))[0] : undefined };
}

/** One vector per segment and the video's vectors (src/fusion), and the segment points to write. */
export function fuseStage(ctx: IngestContext, media: Extracted, encoded: Encoded): Fused {
  const { videoId } = ctx.data;
  const generation = ctx.deps.encoders.generation.name;
  const perSegment = media.segments.map((_, i) => ({ video: encoded.video[i], audio: encoded.audio?.[i] }));
  const segments = media.segments.map((s, i): SegmentPoint => {
    const { video, audio } = perSegment[i]!;
    return {
      vectors: { fused: fuseSegment(perSegment[i]!), ...(video ? { video } : {}), ...(audio ? { audio } : {}) },
      payload: { videoId, index: s.index, startS: s.startS, endS: s.endS, generation, modalities: audio ? ['video', 'audio'] : ['video'] },
    };
  });
  return { item: fuseVideo(perSegment, encoded.text), segments };
}

/**
 * Writes the item and its segments, with the record's current title and tags. A DELETE that landed between the
 * check before writing and the write itself would have its vectors come back, so the record is checked once more
 * afterwards and what was written is taken back.
 */
export async function upsertStage(ctx: IngestContext, info: ProbeResult, fused: Fused): Promise<VideoRecord> {
  const { encoders, store } = ctx.deps;
  const { videoId } = ctx.data;
  const rec = await current(ctx);
  const { item } = fused;
  const vectors: ItemPoint['vectors'] = { fused: item.fused };
  for (const m of item.modalities) vectors[m] = item[m];
  if (encoders.has('behaviour')) vectors.behaviour = (await encoders.projectBehaviour([item.fused]))[0]!;
  ctx.signal.throwIfAborted();
  await whileStoreDown(ctx, async () => {
    await store.upsertItems([
      {
        vectors,
        payload: {
          videoId,
          title: rec.title,
          description: rec.description,
          tags: rec.tags,
          durationS: info.durationS,
          uploadedAt: rec.uploadedAt,
          modalities: item.modalities,
          generation: encoders.generation.name,
          sha256: rec.sha256,
          externalId: rec.externalId,
        },
      },
    ]);
    await store.upsertSegments(videoId, fused.segments);
  });
  if (!(await ctx.deps.catalog.get(videoId))) {
    await store.deleteVideo(videoId);
    throw new VideoDeleted(videoId);
  }
  return rec;
}

/**
 * Runs a store write again while the store answers STORE_UNAVAILABLE (a Qdrant that is down, an embedded store's
 * folder gone with its volume), with backoff from 0.5 s doubling to 8 s, for up to `config.store.retryMs`: the
 * job keeps its decoded and encoded work instead of failing the try and doing it all again. The writes are
 * upserts under deterministic ids, so a write that landed before its answer was lost is simply written again.
 */
async function whileStoreDown(ctx: IngestContext, write: () => Promise<void>): Promise<void> {
  const start = Date.now();
  for (let i = 0; ; i++) {
    try {
      return await write();
    } catch (err) {
      const wait = Math.min(8000, 500 * 2 ** i);
      if (!isAppError(err) || err.code !== 'STORE_UNAVAILABLE' || Date.now() - start + wait > ctx.deps.config.store.retryMs) throw err;
      ctx.deps.log.warn(
        { videoId: ctx.data.videoId, err: err.message, retryInMs: wait },
        'the store is unavailable; the write will be retried',
      );
      await delay(wait, undefined, { signal: ctx.signal });
    }
  }
}

/** Marks the video ready (with its modalities and poster) and lists it among the fresh ones. */
export async function cleanupStage(ctx: IngestContext, rec: VideoRecord, fused: Fused, posterPath: string): Promise<void> {
  const { catalog, encoders } = ctx.deps;
  const { videoId } = ctx.data;
  const { modalities } = fused.item;
  const ready = await catalog.update(videoId, {
    status: 'ready',
    modalities,
    generation: encoders.generation.name,
    posterPath,
    error: undefined,
    enrichments: pendingEnrichments(ctx.deps.config.enrich),
  });
  // Deleted after the vectors were written: the DELETE removes them itself (it deletes the record first).
  if (!ready) throw new VideoDeleted(videoId);
  await catalog.markReady(videoId, rec.uploadedAt);
  // Events that came while it was ingested count now: their users' vectors skipped it until this point.
  const waiting = await ctx.deps.events.videoReady(videoId);
  await Promise.all(waiting.map((userId) => ctx.deps.jobs.requestUserVector(userId)));
  // The fast path ends here: the video is searchable; its evidence comes from a job of its own, timed apart.
  await ctx.deps.jobs.enqueueEnrich(videoId, { videoId, uploadPath: ctx.data.uploadPath });
}

/** Emits a webhook event; a failure to enqueue it is logged and never fails the ingest. */
export async function notify(deps: IngestDeps, event: WebhookEvent, data: Record<string, unknown>): Promise<void> {
  await deps.webhooks?.emit(event, data).catch((err: unknown) => {
    deps.log.warn({ event, err: err instanceof Error ? err.message : String(err) }, 'webhook emit failed');
  });
}
