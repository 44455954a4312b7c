/**
 * The handler registry: every job type of the policy table (jobs/policy.ts) mapped to its processor, built from
 * the runtime's parts. A new job type adds its row to the policy table and its processor here; `Handlers` is
 * typed over every job type, so a missing one does not compile (and the worker re-checks at boot).
 */
import { makeEnrichProcessor, type EnrichDeps } from './enrich.ts';
import { makeIngestProcessor, type IngestDeps } from './ingest.ts';
import { makeUserVectorProcessor, type UserVectorDeps } from './user-vector.ts';
import type { Handlers } from './worker.ts';

/** What the processors use, all together. */
export type JobDeps = IngestDeps & EnrichDeps & UserVectorDeps;

export function makeHandlers(deps: JobDeps): Handlers {
  return {
    ingest: makeIngestProcessor(deps),
    enrich: makeEnrichProcessor(deps),
    'user-vector': makeUserVectorProcessor(deps),
  };
}
