/**
 * The handler registry: every job type of the policy table (jobs/policy.ts) mapped to its processor, built from
 * the runtime's parts. A new job type adds its row to the policy table and its processor here; `Handlers` is
 * typed over every job type, so a missing one does not compile (and the worker re-checks at boot).
 *
 * Every job runs in one generation's context (src/generations/router.ts): the served one, pinned for the whole
 * run, or for a backfill job the generation it fills. While a second generation is live (a backfill, or the
 * previous one kept after a switch), an ingested video is also queued for it and a user's vector is computed in
 * both, so neither falls behind.
 */
import type { Job } from 'bullmq';
import { makeBackfillProcessor, type BackfillData, type BackfillDeps } from './backfill.ts';
import { makeEnrichProcessor, type EnrichDeps } from './enrich.ts';
import { makeIngestFailedHook, makeIngestProcessor, type IngestDeps } from './ingest.ts';
import { makeUserVectorProcessor, type UserVectorData, type UserVectorDeps } from './user-vector.ts';
import { makeWebhookProcessor, type WebhookDeps } from './webhook.ts';
import type { FailedHooks, Handlers } from './worker.ts';
import type { IngestData, IngestResult } from '../src/queue/index.ts';

/** What the processors use, all together. */
export type JobDeps = IngestDeps & EnrichDeps & UserVectorDeps & WebhookDeps & BackfillDeps;

export function makeHandlers(deps: JobDeps): Handlers {
  const g = deps.generations;
  const ingest = makeIngestProcessor(deps);
  const userVector = makeUserVectorProcessor(deps);
  const served =
    <T>(fn: (job: Job<T>) => Promise<unknown>) =>
    (job: Job<T>) =>
      g.runServed(() => fn(job));
  return {
    ingest: async (job: Job<IngestData>): Promise<IngestResult> => {
      const out = await g.runServed(() => ingest(job));
      const other = g.secondary;
      if (other && !out.skipped) {
        const data: BackfillData = { videoId: out.videoId, generation: other };
        await deps.jobs.enqueue('backfill', data);
      }
      return out;
    },
    enrich: served(makeEnrichProcessor(deps)),
    'user-vector': async (job: Job<UserVectorData & { generation?: string }>) => {
      const only = job.data.generation;
      if (only) return g.run(only, () => userVector(job));
      const out = await g.runServed(() => userVector(job));
      const other = g.secondary;
      if (other) await g.run(other, () => userVector(job));
      return out;
    },
    webhook: makeWebhookProcessor(deps),
    backfill: makeBackfillProcessor(deps),
  };
}

/** What runs when a job of a type has failed, however it failed (see jobs/worker.ts `FailedHooks`). */
export function makeFailedHooks(deps: JobDeps): FailedHooks {
  return { ingest: makeIngestFailedHook(deps) };
}
