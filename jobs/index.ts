/**
 * The handler registry: every job type of the policy table (jobs/policy.ts) mapped to its processor, built from
 * the runtime's parts. A new job type adds its row to the policy table and its processor here; `Handlers` is
 * typed over every job type, so a missing one does not compile (and the worker re-checks at boot).
 */
import { makeEnrichProcessor, type EnrichDeps } from './enrich.ts';
import { makeIngestFailedHook, makeIngestProcessor, type IngestDeps } from './ingest.ts';
import { makeUserVectorProcessor, type UserVectorDeps } from './user-vector.ts';
import { makeWebhookProcessor, type WebhookDeps } from './webhook.ts';
import type { FailedHooks, Handlers } from './worker.ts';

/** What the processors use, all together. */
export type JobDeps = IngestDeps & EnrichDeps & UserVectorDeps & WebhookDeps;

export function makeHandlers(deps: JobDeps): Handlers {
  return {
    ingest: makeIngestProcessor(deps),
    enrich: makeEnrichProcessor(deps),
    'user-vector': makeUserVectorProcessor(deps),
    webhook: makeWebhookProcessor(deps),
  };
}

/** What runs when a job of a type has failed, however it failed (see jobs/worker.ts `FailedHooks`). */
export function makeFailedHooks(deps: JobDeps): FailedHooks {
  return { ingest: makeIngestFailedHook(deps) };
}
