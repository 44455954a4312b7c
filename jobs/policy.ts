/**
 * The one policy table for every job type (PeerTube's JOB_ATTEMPTS/JOB_TTL habit), and the one place a job type
 * is declared: a new type is a new row here. It does not compile until the row is complete, its queue exists
 * from then on (jobs/queues.ts builds one per row), and the worker refuses to boot until it has a handler.
 */
export interface JobPolicy {
  /** BullMQ queue name (under the configured prefix). */
  queue: string;
  /** Tries before the job is failed for good; poison input fails at once via UnrecoverableError. */
  attempts: number;
  /** Exponential backoff base delay between tries, ms. */
  backoffMs: number;
  /** The processor aborts a try that runs longer than this, ms. */
  timeoutMs: number;
  /** Jobs of this type one worker process runs at once (config may override ingest). */
  concurrency: number;
  /** Lock duration: a worker that stops renewing for this long is considered stalled and its job is retried. */
  lockMs: number;
  /** Times a job may stall (its worker died) and be picked up again before it is failed. */
  maxStalledCount: number;
  /**
   * Debounce window, ms: jobs enqueued with the same debounce key within it fold into one, run once the window
   * has passed (a burst of events makes one recomputation). Unset: every enqueue is a job.
   */
  debounceMs?: number;
  /** How long finished jobs stay queryable (GET /v1/jobs/:id), seconds, and how many at most. */
  keepCompleted: { age: number; count: number };
  keepFailed: { age: number; count: number };
}

export const JOB_POLICY = {
  ingest: {
    queue: 'ingest',
    attempts: 3,
    backoffMs: 2_000,
    timeoutMs: 30 * 60_000,
    concurrency: 1,
    lockMs: 60_000,
    maxStalledCount: 2,
    keepCompleted: { age: 7 * 86_400, count: 10_000 },
    keepFailed: { age: 30 * 86_400, count: 10_000 },
  },
  // Enrichment after ingest (jobs/enrich.ts): OCR + objects over the whole video, ~1-2x real time on a busy
  // core, so a long timeout; one at a time per worker so it never starves ingest of the second core; a lock
  // renewed by BullMQ while tesseract runs; retried once after a transient failure (a missing engine binary
  // fails the same way twice and is then recorded per engine).
  enrich: {
    queue: 'enrich',
    attempts: 2,
    backoffMs: 2_000,
    timeoutMs: 60 * 60_000,
    concurrency: 1,
    lockMs: 120_000,
    maxStalledCount: 2,
    keepCompleted: { age: 7 * 86_400, count: 10_000 },
    keepFailed: { age: 30 * 86_400, count: 10_000 },
  },
  'user-vector': {
    queue: 'user-vector',
    attempts: 5,
    backoffMs: 500,
    timeoutMs: 60_000,
    concurrency: 4,
    lockMs: 30_000,
    maxStalledCount: 2,
    debounceMs: 500,
    // Finished ones go at once: the debounce key must free up for the next burst of events.
    keepCompleted: { age: 60, count: 100 },
    keepFailed: { age: 7 * 86_400, count: 1_000 },
  },
  // One try of one webhook delivery (src/webhooks): retries at 2, 4, 8 ... 128 s cover a receiver down ~4 minutes.
  webhook: {
    queue: 'webhook',
    attempts: 8,
    backoffMs: 2_000,
    timeoutMs: 60_000,
    concurrency: 8,
    lockMs: 30_000,
    maxStalledCount: 2,
    keepCompleted: { age: 86_400, count: 10_000 },
    keepFailed: { age: 7 * 86_400, count: 10_000 },
  },
  // One video re-embedded into a new generation's collections (jobs/backfill.ts): an ingest without its record
  // updates, so the ingest's bounds; one at a time per worker, so a backfill never starves the uploads that keep
  // arriving (which have their own queue and concurrency).
  backfill: {
    queue: 'backfill',
    attempts: 3,
    backoffMs: 2_000,
    timeoutMs: 30 * 60_000,
    concurrency: 1,
    lockMs: 60_000,
    maxStalledCount: 2,
    keepCompleted: { age: 7 * 86_400, count: 100_000 },
    keepFailed: { age: 30 * 86_400, count: 100_000 },
  },
} as const satisfies Record<string, JobPolicy>;

export type JobType = keyof typeof JOB_POLICY;
export const JOB_TYPES = Object.keys(JOB_POLICY) as JobType[];

/** How one enqueue identifies its job (both optional). */
export interface EnqueueKey {
  /** Deterministic job id: enqueueing an id that exists is a no-op (at-least-once delivery, one job). */
  jobId?: string;
  /** Folds enqueues within the type's debounce window into one job (needs `debounceMs` in the policy). */
  debounceKey?: string;
}

/** BullMQ job options derived from the policy. */
export function jobOptions(type: JobType, key: EnqueueKey = {}) {
  const p: JobPolicy = JOB_POLICY[type];
  if (key.debounceKey !== undefined && p.debounceMs === undefined) throw new Error(`job type ${type} has no debounce window`);
  return {
    ...(key.jobId ? { jobId: key.jobId } : {}),
    ...(key.debounceKey !== undefined
      ? { delay: p.debounceMs, deduplication: { id: `${type}:${key.debounceKey}`, keepLastIfActive: true } }
      : {}),
    attempts: p.attempts,
    backoff: { type: 'exponential' as const, delay: p.backoffMs },
    removeOnComplete: p.keepCompleted,
    removeOnFail: p.keepFailed,
  };
}

/** Boot check: every job type has a handler, and no handler is for an unknown type. */
export function assertHandlers(handlers: Partial<Record<string, unknown>>, types: readonly JobType[] = JOB_TYPES): void {
  const missing = types.filter((t) => typeof handlers[t] !== 'function');
  const unknown = Object.keys(handlers).filter((t) => !(JOB_TYPES as readonly string[]).includes(t));
  if (missing.length > 0 || unknown.length > 0) {
    throw new Error(`job handlers do not match the policy table: missing [${missing.join(', ')}], unknown [${unknown.join(', ')}]`);
  }
}
