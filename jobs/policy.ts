/**
 * The one policy table for every job type (PeerTube's JOB_ATTEMPTS/JOB_TTL habit): a new job type does not
 * compile until it has a policy here, and the worker refuses to boot when a type has no handler.
 */
export const JOB_TYPES = ['ingest', 'user-vector'] as const;
export type JobType = (typeof JOB_TYPES)[number];

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
    // Finished ones go at once: the debounce key must free up for the next burst of events.
    keepCompleted: { age: 60, count: 100 },
    keepFailed: { age: 7 * 86_400, count: 1_000 },
  },
} as const satisfies Record<JobType, JobPolicy>;

/** BullMQ job options derived from the policy. */
export function jobOptions(type: JobType, jobId?: string) {
  const p: JobPolicy = JOB_POLICY[type];
  return {
    ...(jobId ? { jobId } : {}),
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
