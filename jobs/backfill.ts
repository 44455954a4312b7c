/**
 * The backfill job: one stored video re-embedded into another generation's collections, with that generation's
 * towers and preprocessing (jobs/ingest-stages.ts extract → encode → fuse → upsert, inside the generation's context:
 * src/generations/router.ts), while the served generation keeps answering. The video's record is not touched: it
 * is already ready, and it stays so whichever generation serves. The job that finishes the last video of a
 * `montage generation backfill` queues every user's vector for recomputation in the new generation.
 */
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { UnrecoverableError, type Job } from 'bullmq';
import { probe } from '../src/media/index.ts';
import type { GenerationRouter } from '../src/generations/router.ts';
import type { GenerationState } from '../src/generations/state.ts';
import type { VideoFiles } from '../src/videos/files.ts';
import type { EventLog } from '../src/users/events.ts';
import { encodeStage, extractStage, fuseStage, upsertStage, VideoDeleted, type IngestContext, type IngestDeps } from './ingest-stages.ts';
import { withTimeout } from './ingest.ts';
import { JOB_POLICY, type JobType } from './policy.ts';

export interface BackfillData {
  videoId: string;
  generation: string;
  /** Enqueued by `montage generation backfill` (counted in its progress), not by a new upload's dual write. */
  counted?: boolean;
}

export interface BackfillResult {
  videoId: string;
  generation: string;
  segments: number;
  skipped?: 'not-ready' | 'deleted';
}

export interface BackfillDeps extends IngestDeps {
  generations: GenerationRouter;
  generationState: GenerationState;
  events: IngestDeps['events'] & Pick<EventLog, 'userIds'>;
  jobs: IngestDeps['jobs'] & { enqueue(type: JobType, data: object): Promise<void> };
}

export function makeBackfillProcessor(deps: BackfillDeps) {
  return async (job: Job<BackfillData>): Promise<BackfillResult> => {
    const { videoId, generation } = job.data;
    let result: BackfillResult;
    try {
      result = await withTimeout(
        (signal) => deps.generations.run(generation, () => reembed(deps, job, signal)),
        JOB_POLICY.backfill.timeoutMs,
        `backfill of ${videoId} into ${generation}`,
      );
    } catch (err) {
      const finalTry = err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      deps.log.warn({ videoId, generation, err: (err as Error).message, finalTry }, 'backfill failed');
      if (finalTry && job.data.counted) await finished(deps, generation, true);
      throw err;
    }
    if (job.data.counted) await finished(deps, generation, false);
    return result;
  };
}

/** The video through the generation's towers into its collections; the poster goes to a temp file and is dropped. */
async function reembed(deps: BackfillDeps, job: Job<BackfillData>, signal: AbortSignal): Promise<BackfillResult> {
  const { videoId, generation } = job.data;
  const rec = await deps.catalog.get(videoId);
  if (!rec || rec.status !== 'ready') return { videoId, generation, segments: 0, skipped: rec ? 'not-ready' : 'deleted' };
  const poster = path.join(tmpdir(), `montage-backfill-${process.pid}-${videoId}.jpg`);
  // extractStage asks `files` only for the poster's path; the served poster is not rewritten by a backfill.
  const files = { posterPath: async () => poster } as unknown as VideoFiles;
  const ctx: IngestContext = {
    deps: { ...deps, files },
    data: { videoId, uploadPath: rec.uploadPath, sha256: rec.sha256, generation },
    signal,
  };
  try {
    const info = await probe(rec.uploadPath, deps.config.media.limits, videoId);
    const media = await extractStage(ctx, info);
    const fused = fuseStage(ctx, media, await encodeStage(ctx, media));
    await upsertStage(ctx, info, fused);
    return { videoId, generation, segments: fused.segments.length };
  } catch (err) {
    if (err instanceof VideoDeleted) return { videoId, generation, segments: 0, skipped: 'deleted' };
    throw err;
  } finally {
    await rm(poster, { force: true });
  }
}

/** Counts one video of the backfill done; the last one queues every user's vector in the new generation. */
async function finished(deps: BackfillDeps, generation: string, failed: boolean): Promise<void> {
  if (!(await deps.generationState.videoDone(generation, failed))) return;
  const users = await deps.events.userIds();
  for (const userId of users) await deps.jobs.enqueue('user-vector', { userId, generation });
  await deps.generationState.finishBackfill(users.length);
  deps.log.info({ generation, users: users.length }, 'backfill done: user vectors queued');
}
