/**
 * The enrich processor (issue 10): after the ingest job has made a video searchable, read what its frames show
 * (COCO objects, through the generation's objects.onnx) and say (on-screen text, tesseract), each engine its own
 * stage, and upgrade the item: the evidence is kept in the store payload (`evidence`, and `terms` for filters and
 * exact words), and its text, encoded with the generation's text tower, is blended into the item's fused vector
 * and into each segment's fused vector (the evidence inside the segment's time range) with
 * `config.enrich.vectorWeight`. Speech is not indexed: the only offline engine measured (pocketsphinx, WER
 * 0.772 on espeak-ng speech, bench/results/speech.json) did not earn it.
 *
 * Failure never costs the ingest: the job writes nothing to the store unless an engine found something, the
 * fused vectors are recomputed from the points' own per-modality vectors (so a retry or a re-run does not compound),
 * and every engine's outcome lands in the video record (GET /v1/videos/:id `enrichments`). A retryable failure is
 * retried as a whole (the engines are deterministic); on the last try the failed engine is recorded with its code
 * and what the others found is kept.
 */
import type { WebhookEmitter } from '../src/webhooks/index.ts';
import type { Job } from 'bullmq';
import { isAppError } from '../src/errors/index.ts';
import type { Catalog, EnrichmentName, EnrichmentStatus } from '../src/catalog/index.ts';
import type { EnrichConfig } from '../src/config/index.ts';
import type { Logger } from '../src/log.ts';
import { probe } from '../src/media/index.ts';
import type { MediaLimits } from '../src/media/types.ts';
import { loadManifest, type RuntimeOptions } from '../src/models/index.ts';
import type { Encoders } from '../src/models/types.ts';
import { fuseSegment, fuseVideo } from '../src/fusion/index.ts';
import type { SegmentPoint, StoredEvidence, VectorStore } from '../src/store/types.ts';
import { axpy, unit } from '../src/vectors.ts';
import { detectObjects, ObjectDetector, objectsSpec, readOnScreenText, type Evidence } from '../src/enrich/index.ts';
import type { SampleOptions } from '../src/enrich/sampler.ts';
import { evidenceTerms, evidenceText, toStored } from '../src/enrich/match.ts';
import { jobErrorReason } from '../src/queue/index.ts';
import { withTimeout } from './ingest.ts';
import { JOB_POLICY } from './policy.ts';

export interface EnrichData {
  videoId: string;
  uploadPath: string;
}

export const ENRICH_STAGES = ['probe', 'ocr', 'objects', 'speech', 'upgrade'] as const;
export type EnrichStage = (typeof ENRICH_STAGES)[number];

export interface EnrichResult {
  videoId: string;
  enrichments: Partial<Record<EnrichmentName, EnrichmentStatus>>;
  evidence: number;
  /** Wall seconds of the whole job, and per video minute. */
  seconds: number;
  secondsPerVideoMinute: number;
  skipped?: 'deleted' | 'not-ready';
}

export interface EnrichDeps {
  config: {
    media: { limits: MediaLimits };
    enrich: EnrichConfig;
    models: { generationDir: string; provider: RuntimeOptions['provider']; intraOpThreads: number };
  };
  encoders: Encoders;
  store: VectorStore;
  catalog: Catalog;
  log: Logger;
  /** Tells subscribers `enrichment.done` (src/webhooks); a failure to enqueue is logged, never fails the job. */
  webhooks?: WebhookEmitter;
}

/** Why speech has no engine, as the video's status says it. */
export const SPEECH_SKIPPED =
  'no speech engine: pocketsphinx measured WER 0.772 on generated speech (bench/results/speech.json), not indexed';

/** The statuses a freshly ingested video starts with (the ingest job writes them when it queues the job). */
export function pendingEnrichments(config: EnrichConfig): Partial<Record<EnrichmentName, EnrichmentStatus>> {
  return {
    ocr: config.ocr ? { state: 'pending' } : { state: 'skipped', reason: 'turned off (MONTAGE_ENRICH_OCR=off)' },
    objects: config.objects ? { state: 'pending' } : { state: 'skipped', reason: 'turned off (MONTAGE_ENRICH_OBJECTS=off)' },
    speech: { state: 'skipped', reason: SPEECH_SKIPPED },
  };
}

/** Blends the evidence vector into the ingest's fused vector: unit((1 - w) fused + w evidence). */
export function blendEvidence(fused: Float32Array, evidence: Float32Array, weight: number): Float32Array {
  const sum = new Float32Array(fused.length);
  axpy(1 - weight, fused, sum);
  axpy(weight, evidence, sum);
  return unit(sum) ?? fused;
}

/** One worker process opens the detector once (lazily: the ONNX session starts on the first frame). */
const detectors = new Map<string, Promise<ObjectDetector | null>>();
function detectorFor(deps: EnrichDeps): Promise<ObjectDetector | null> {
  const dir = deps.config.models.generationDir;
  let d = detectors.get(dir);
  if (!d) {
    d = loadManifest(dir).then((gen) =>
      objectsSpec(gen)
        ? new ObjectDetector(gen, { provider: deps.config.models.provider, intraOpThreads: deps.config.models.intraOpThreads }, deps.log)
        : null,
    );
    d.catch(() => detectors.delete(dir));
    detectors.set(dir, d);
  }
  return d;
}

export function makeEnrichProcessor(deps: EnrichDeps) {
  return async (job: Job<EnrichData>): Promise<EnrichResult> => {
    const finalTry = job.attemptsMade + 1 >= (job.opts.attempts ?? JOB_POLICY.enrich.attempts);
    try {
      return await withTimeout(
        (signal) => runEnrich(deps, job, finalTry, signal),
        JOB_POLICY.enrich.timeoutMs,
        `enrichment of ${job.data.videoId}`,
      );
    } catch (err) {
      const code = isAppError(err) ? err.code : 'INTERNAL';
      const message = err instanceof Error ? err.message : String(err);
      deps.log.warn({ videoId: job.data.videoId, jobId: job.id, code, err: message, finalTry }, 'enrichment failed');
      if (finalTry) await failPending(deps, job.data.videoId, { code, message });
      throw new Error(jobErrorReason(code, message), { cause: err });
    }
  };
}

/** The job itself failed for good (probe, timeout): every enrichment still pending names the error. */
async function failPending(deps: EnrichDeps, videoId: string, error: { code: string; message: string }): Promise<void> {
  const rec = await deps.catalog.get(videoId);
  if (!rec) return;
  const enrichments = { ...pendingEnrichments(deps.config.enrich), ...rec.enrichments };
  for (const [name, st] of Object.entries(enrichments)) {
    if (st.state === 'pending') enrichments[name as EnrichmentName] = { state: 'failed', error };
  }
  await deps.catalog.update(videoId, { enrichments });
}

async function runEnrich(deps: EnrichDeps, job: Job<EnrichData>, finalTry: boolean, signal: AbortSignal): Promise<EnrichResult> {
  const { catalog, config, log } = deps;
  const { videoId, uploadPath } = job.data;
  const t0 = performance.now();
  // A run past its timeout stops at the next stage and writes nothing (the retry writes the same evidence).
  const stage = async (s: EnrichStage, fraction = 0) => {
    if (fraction === 0) signal.throwIfAborted();
    await job.updateProgress({ stage: s, percent: Math.round(((ENRICH_STAGES.indexOf(s) + fraction) / ENRICH_STAGES.length) * 100) });
  };
  const rec = await catalog.get(videoId);
  const empty = { videoId, enrichments: {}, evidence: 0, seconds: 0, secondsPerVideoMinute: 0 };
  if (!rec) return { ...empty, skipped: 'deleted' };
  if (rec.status !== 'ready') return { ...empty, skipped: 'not-ready' };

  await stage('probe');
  const info = await probe(uploadPath, config.media.limits, videoId);
  const sampling: SampleOptions = {
    range: { startS: 0, endS: info.durationS },
    width: info.width,
    height: info.height,
    bounds: { timeoutMs: config.media.limits.timeoutMs, allowedContainers: config.media.limits.allowedContainers },
    label: videoId,
  };
  const statuses: Partial<Record<EnrichmentName, EnrichmentStatus>> = { ...pendingEnrichments(config.enrich) };
  const evidence: Evidence[] = [];
  const retryable: unknown[] = [];

  /** Runs one engine; its failure is recorded (or retried), never thrown past the other engines. */
  const engine = async (name: EnrichmentName, run: () => Promise<{ evidence: Evidence[]; frames: number } | string>) => {
    const t = performance.now();
    try {
      const out = await run();
      const seconds = round((performance.now() - t) / 1000);
      if (typeof out === 'string') statuses[name] = { state: 'skipped', reason: out };
      else {
        evidence.push(...out.evidence);
        statuses[name] = { state: 'done', items: out.evidence.length, frames: out.frames, seconds };
      }
    } catch (err) {
      const code = isAppError(err) ? err.code : 'INTERNAL';
      const message = err instanceof Error ? err.message : String(err);
      const retry = !isAppError(err) || err.retry;
      log.warn({ videoId, engine: name, code, err: message, finalTry }, 'enrichment engine failed');
      if (retry && !finalTry) retryable.push(err);
      statuses[name] = { state: 'failed', error: { code, message }, seconds: round((performance.now() - t) / 1000) };
    }
  };

  if (config.enrich.ocr) {
    await stage('ocr');
    await engine('ocr', () =>
      readOnScreenText(uploadPath, {
        sampling,
        tesseract: { binary: config.enrich.tesseractPath },
        onProgress: (f) => void stage('ocr', f).catch(() => undefined),
      }),
    );
  }
  if (config.enrich.objects) {
    await stage('objects');
    await engine('objects', async () => {
      const detector = await detectorFor(deps);
      if (!detector) return `generation ${deps.encoders.generation.name} ships no object detector (enrichment.objects)`;
      return detectObjects(uploadPath, detector, { sampling, onProgress: (f) => void stage('objects', f).catch(() => undefined) });
    });
  }
  await stage('speech');
  if (retryable.length > 0) throw retryable[0];

  await stage('upgrade');
  const stored = evidence.map(toStored);
  if (stored.length > 0 && !(await upgradeItem(deps, videoId, stored))) return { ...empty, skipped: 'deleted' };
  const seconds = round((performance.now() - t0) / 1000);
  if (!(await catalog.update(videoId, { enrichments: statuses }))) return { ...empty, skipped: 'deleted' };
  await job.updateProgress({ stage: 'upgrade', percent: 100 });
  const secondsPerVideoMinute = info.durationS > 0 ? round((seconds / info.durationS) * 60) : 0;
  await deps.webhooks?.emit('enrichment.done', { videoId, enrichments: statuses, evidence: stored.length }).catch((err: unknown) => {
    deps.log.warn({ videoId, err: err instanceof Error ? err.message : String(err) }, 'webhook emit failed');
  });
  return { videoId, enrichments: statuses, evidence: stored.length, seconds, secondsPerVideoMinute };
}

/**
 * Writes the evidence into the item's payload and its text into the fused vector. Returns false when the video
 * is gone (deleted meanwhile: what was written is taken back).
 */
async function upgradeItem(deps: EnrichDeps, videoId: string, evidence: StoredEvidence[]): Promise<boolean> {
  const { store, encoders, config, catalog } = deps;
  const item = await store.getItem(videoId, true);
  if (!item?.vectors) return false;
  const v = item.vectors;
  const vectors = { ...v };
  // The ingest's fused vector, recomputed from the item's own vectors, so enriching twice does not compound.
  const base = v.video || v.audio ? fuseVideo([{ video: v.video, audio: v.audio }], v.text).fused : v.fused;
  const text = evidenceText(evidence);
  if (base && text && config.enrich.vectorWeight > 0) {
    const [ev] = await encoders.encodeText([text]);
    vectors.fused = blendEvidence(base, ev!, config.enrich.vectorWeight);
  }
  const segments = await upgradedSegments(deps, videoId, evidence);
  await store.upsertItems([{ payload: { ...item.payload, evidence, terms: evidenceTerms(evidence) }, vectors }]);
  if (segments) await store.upsertSegments(videoId, segments);
  if (!(await catalog.get(videoId))) {
    await store.deleteVideo(videoId);
    return false;
  }
  return true;
}

/**
 * The video's segments with the evidence inside each blended into its fused vector (the same weight as the item),
 * recomputed from the segment's own video and audio vectors; null when there is nothing to change.
 */
async function upgradedSegments(deps: EnrichDeps, videoId: string, evidence: StoredEvidence[]): Promise<SegmentPoint[] | null> {
  const w = deps.config.enrich.vectorWeight;
  if (!(w > 0)) return null;
  const segments = await deps.store.getSegments(videoId);
  const texts = segments.map((s) => evidenceText(evidence.filter((e) => e.startS < s.payload.endS && e.endS > s.payload.startS)));
  const distinct = [...new Set(texts.filter(Boolean))];
  if (distinct.length === 0) return null;
  const encoded = new Map(distinct.map((t, i) => [t, i]));
  const vectors = await deps.encoders.encodeText(distinct);
  return segments.map((s, i) => {
    const { video, audio } = s.vectors;
    const base = video || audio ? fuseSegment({ video, audio }) : s.vectors.fused;
    const text = texts[i]!;
    if (!base) return s;
    return { ...s, vectors: { ...s.vectors, fused: text ? blendEvidence(base, vectors[encoded.get(text)!]!, w) : base } };
  });
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
