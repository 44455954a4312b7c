/**
 * Admitting and deleting videos: shared by POST/DELETE /v1/videos and `montage ingest`. An upload that reaches
 * here is already on disk under its content hash (VideoFiles.receive); admitting probes it (bad input is refused
 * at once and removed), records it and enqueues its ingest job under a deterministic id.
 */
import { AppError } from '../errors/index.ts';
import type { Catalog, VideoRecord } from '../catalog/index.ts';
import type { MediaLimits } from '../media/types.ts';
import type { VectorStore } from '../store/types.ts';
import type { JobQueue } from '../queue/index.ts';
import { probe } from '../media/index.ts';
import { parseJobError } from '../queue/index.ts';
import type { StoredUpload, VideoFiles } from './files.ts';

export interface VideoServiceDeps {
  catalog: Catalog;
  store: VectorStore;
  jobs: JobQueue;
  files: VideoFiles;
  /** What an upload is probed against (config.media.limits). */
  limits: MediaLimits;
  /** The generation this service writes (a video ingested by another one is admitted again). */
  generation: string;
}

/** The service's dependencies from the runtime's parts (what the routes, the CLI and the bench hold). */
export function videoService(parts: {
  config: { media: { limits: MediaLimits } };
  catalog: Catalog;
  store: VectorStore;
  jobs: JobQueue;
  files: VideoFiles;
  encoders: { generation: { name: string } };
}): VideoServiceDeps {
  const { catalog, store, jobs, files } = parts;
  return { catalog, store, jobs, files, limits: parts.config.media.limits, generation: parts.encoders.generation.name };
}

export interface VideoFields {
  title: string;
  description: string;
  tags: string[];
  externalId?: string;
}

export interface Admitted {
  videoId: string;
  jobId: string;
  status: VideoRecord['status'];
  duplicate: boolean;
}

/** videoId = first 128 bits of the content hash: the same bytes uploaded twice are the same video. */
export function videoIdFor(sha256: string): string {
  return sha256.slice(0, 32);
}

/** Job ids derive from the content hash and the generation: one job per (content, model generation). */
export function jobIdFor(sha256: string, generation: string): string {
  return `ingest-${sha256}-${generation}`;
}

export async function admitVideo(deps: VideoServiceDeps, stored: StoredUpload, fields: VideoFields): Promise<Admitted> {
  const { catalog, generation } = deps;
  const videoId = videoIdFor(stored.sha256);
  const jobId = jobIdFor(stored.sha256, generation);
  const stored0 = await catalog.get(videoId);
  // A video whose job died without saying so is failed too: uploading it again retries it.
  const existing = stored0 && (await reconcile(deps, stored0));
  if (existing && existing.status !== 'failed' && existing.generation === generation) {
    return { videoId, jobId: existing.jobId, status: existing.status, duplicate: true };
  }
  let probed;
  try {
    probed = await probe(stored.path, deps.limits, videoId);
  } catch (err) {
    // The stored path is the content's own: remove it unless an earlier record of the same bytes still uses it.
    if (!existing) await deps.files.removeUpload(stored.path);
    throw err;
  }
  const rec: VideoRecord = {
    videoId,
    ...fields,
    sha256: stored.sha256,
    sizeBytes: stored.sizeBytes,
    uploadPath: stored.path,
    status: 'queued',
    jobId,
    generation,
    modalities: [],
    uploadedAt: existing?.uploadedAt ?? Date.now(),
  };
  await catalog.put(rec);
  await deps.jobs.enqueueIngest(jobId, { videoId, uploadPath: stored.path, sha256: stored.sha256, generation, probe: probed });
  return { videoId, jobId, status: 'queued', duplicate: false };
}

/**
 * The record as its user should see it. A queued or processing video whose ingest job has failed is failed, with
 * the job's code: BullMQ fails a job whose workers died more often than the policy allows (JOB_STALLED) without
 * running any of our code, and the worker that did it may itself have died before its `failed` listener marked the
 * video. A job that is gone altogether (the queue lost it) makes the video failed with JOB_LOST. Written back when
 * the job's failure is final, so the record says it from then on.
 */
export async function reconcile(deps: Pick<VideoServiceDeps, 'catalog' | 'jobs'>, rec: VideoRecord): Promise<VideoRecord> {
  if (rec.status !== 'queued' && rec.status !== 'processing') return rec;
  const job = await deps.jobs.ingestJob(rec.jobId);
  if (job && job.state !== 'failed') return rec;
  if (!job) {
    const error = { code: 'JOB_LOST', message: `the ingest job ${rec.jobId} of video ${rec.videoId} is not in the queue` };
    return { ...rec, status: 'failed', error };
  }
  const error = parseJobError(job.failedReason) ?? { code: 'INTERNAL', message: 'the ingest job failed' };
  return (await deps.catalog.update(rec.videoId, { status: 'failed', error })) ?? { ...rec, status: 'failed', error };
}

/** A video's record, reconciled with its job (see reconcile); VIDEO_NOT_FOUND when there is none. */
export async function getVideo(deps: Pick<VideoServiceDeps, 'catalog' | 'jobs'>, videoId: string): Promise<VideoRecord> {
  const rec = await deps.catalog.get(videoId);
  if (!rec) throw new AppError('VIDEO_NOT_FOUND', `no video ${videoId}`, { field: 'id' });
  return reconcile(deps, rec);
}

/** Drops an upload that was not admitted (a bad request around it), unless a record of the same bytes owns it. */
export async function discardUpload(deps: Pick<VideoServiceDeps, 'catalog' | 'files'>, stored: StoredUpload): Promise<void> {
  if (!(await deps.catalog.get(videoIdFor(stored.sha256)))) await deps.files.removeUpload(stored.path);
}

/** Removes a video's record first (a running job re-checks it and stops), then its job, vectors and files. */
export async function deleteVideo(deps: VideoServiceDeps, videoId: string): Promise<void> {
  const rec = await deps.catalog.get(videoId);
  if (!rec) throw new AppError('VIDEO_NOT_FOUND', `no video ${videoId}`, { field: 'id' });
  await deps.catalog.delete(videoId);
  await deps.jobs.removeIngest(rec.jobId);
  await deps.store.deleteVideo(videoId);
  await deps.files.removeUpload(rec.uploadPath);
  await deps.files.removePoster(videoId);
}
