/**
 * Admitting and deleting videos: shared by POST/DELETE /v1/videos and `montage ingest`. An upload that reaches
 * here is already on disk under its content hash; admitting probes it (bad input is refused at once and removed),
 * records it and enqueues its ingest job under a deterministic id.
 */
import { rm } from 'node:fs/promises';
import type { Queue } from 'bullmq';
import { AppError } from '../errors/index.ts';
import type { Config } from '../config/index.ts';
import type { Catalog, VideoRecord } from '../catalog/index.ts';
import type { VectorStore } from '../store/types.ts';
import { probe } from '../media/index.ts';
import { mediaLimits, type IngestData } from '../../jobs/ingest.ts';
import { jobOptions } from '../../jobs/policy.ts';

export interface VideoServiceDeps {
  config: Config;
  catalog: Catalog;
  store: VectorStore;
  ingestQueue: Queue;
  generation: string;
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

export async function admitVideo(
  deps: VideoServiceDeps,
  stored: { path: string; sha256: string; sizeBytes: number },
  fields: VideoFields,
): Promise<Admitted> {
  const { catalog, ingestQueue, generation } = deps;
  const videoId = videoIdFor(stored.sha256);
  const jobId = jobIdFor(stored.sha256, generation);
  const existing = await catalog.get(videoId);
  if (existing && existing.status !== 'failed' && existing.generation === generation) {
    return { videoId, jobId: existing.jobId, status: existing.status, duplicate: true };
  }
  let probed;
  try {
    probed = await probe(stored.path, mediaLimits(deps.config), videoId);
  } catch (err) {
    // The stored path is the content's own: remove it unless an earlier record of the same bytes still uses it.
    if (!existing) await rm(stored.path, { force: true });
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
  const old = await ingestQueue.getJob(jobId);
  if (old && (await old.isFailed())) await old.remove();
  const data: IngestData = { videoId, uploadPath: stored.path, sha256: stored.sha256, generation, probe: probed };
  await ingestQueue.add('ingest', data, jobOptions('ingest', jobId));
  return { videoId, jobId, status: 'queued', duplicate: false };
}

/** Removes a video's record first (a running job re-checks it and stops), then its job, vectors and files. */
export async function deleteVideo(deps: VideoServiceDeps, videoId: string): Promise<void> {
  const rec = await deps.catalog.get(videoId);
  if (!rec) throw new AppError('VIDEO_NOT_FOUND', `no video ${videoId}`, { field: 'id' });
  await deps.catalog.delete(videoId);
  const job = await deps.ingestQueue.getJob(rec.jobId);
  // An active job holds a lock and cannot be removed; it re-checks the record before and after writing.
  if (job) await job.remove().catch(() => undefined);
  await deps.store.deleteVideo(videoId);
  await rm(rec.uploadPath, { force: true });
  if (rec.posterPath) await rm(rec.posterPath, { force: true });
}
