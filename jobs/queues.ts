/**
 * The Redis/BullMQ seam: connections, one queue per job type of the policy table, and `BullJobQueue`, the
 * implementation of the service's `JobQueue` (src/queue). Jobs enqueue follow-up work through `enqueue()`.
 */
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { AppError } from '../src/errors/index.ts';
import type { Config } from '../src/config/index.ts';
import type { Logger } from '../src/log.ts';
import { parseJobError } from '../src/queue/index.ts';
import type {
  FailedJobView,
  IngestData,
  IngestJobView,
  IngestResult,
  JobCounts,
  JobProgress,
  JobQueue,
  JobState,
} from '../src/queue/index.ts';
import { JOB_POLICY, JOB_TYPES, jobOptions, type EnqueueKey, type JobType } from './policy.ts';

/**
 * A Redis connection. `fail-fast` (the API, the queues, the catalog and event log, and so the processors): while
 * Redis is down a command fails at once instead of waiting in ioredis' offline queue, and one that gets no answer
 * fails after `commandTimeoutMs`, so no request hangs on a dead connection; the connection itself keeps
 * reconnecting, and work resumes when Redis is back. `blocking` (BullMQ workers, whose blocking fetch must wait and
 * be retried for ever: maxRetriesPerRequest null).
 */
export function connect(config: Config, role: string, mode: 'fail-fast' | 'blocking' = 'fail-fast'): Redis {
  const common = { connectionName: `montage:${role}`, lazyConnect: false };
  if (mode === 'blocking') return new Redis(config.redis.url, { ...common, maxRetriesPerRequest: null });
  return new Redis(config.redis.url, {
    ...common,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: config.redis.commandTimeoutMs,
    connectTimeout: Math.max(1000, config.redis.commandTimeoutMs),
  });
}

/** Waits until a fresh connection is ready (a fail-fast one refuses commands before that); QUEUE_UNAVAILABLE after `timeoutMs`. */
export async function redisReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return;
  let timer: NodeJS.Timeout | undefined;
  let onReady: (() => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      onReady = resolve;
      redis.once('ready', onReady);
      timer = setTimeout(() => reject(new AppError('QUEUE_UNAVAILABLE', `Redis is ${redis.status} after ${timeoutMs} ms`)), timeoutMs);
    });
  } finally {
    clearTimeout(timer);
    if (onReady) redis.off('ready', onReady);
  }
}

/** Fails fast with QUEUE_UNAVAILABLE when Redis does not answer, saying what the connection is doing. */
export async function pingRedis(redis: Redis, timeoutMs = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    throw new AppError('QUEUE_UNAVAILABLE', `Redis ping failed (connection ${redis.status}): ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

const COUNTED_STATES = ['waiting', 'active', 'completed', 'failed', 'delayed'] as const;

export class BullJobQueue implements JobQueue {
  readonly #redis: Redis;
  readonly #queues: Record<JobType, Queue>;

  /** One BullMQ queue per job type on `redis` (which the caller owns and closes), each with an error listener. */
  constructor(redis: Redis, prefix: string, log: Logger) {
    this.#redis = redis;
    this.#queues = Object.fromEntries(
      JOB_TYPES.map((type) => {
        const q = new Queue(JOB_POLICY[type].queue, { connection: redis, prefix });
        q.on('error', (err) => log.error({ err: err.message, queue: q.name }, 'queue error'));
        return [type, q];
      }),
    ) as Record<JobType, Queue>;
  }

  /** The BullMQ queue of a job type (the CLI and tests read jobs through it). */
  queue(type: JobType): Queue {
    return this.#queues[type];
  }

  /** Enqueues a job of any type with the options its policy gives. */
  async enqueue(type: JobType, data: object, key: EnqueueKey = {}): Promise<void> {
    await this.#queues[type].add(type, data, jobOptions(type, key));
  }

  async enqueueIngest(jobId: string, data: IngestData): Promise<void> {
    const old = await this.#queues.ingest.getJob(jobId);
    // A finished job under the id would swallow the new one: a failed try, or the run of a video deleted meanwhile.
    if (old && ((await old.isFailed()) || (await old.isCompleted()))) await old.remove();
    await this.enqueue('ingest', data, { jobId });
  }

  /** One enrich job per video: a finished one under the id (an earlier upload's) is removed first. */
  async enqueueEnrich(videoId: string, data: { videoId: string; uploadPath: string }): Promise<void> {
    const jobId = `enrich-${videoId}`;
    const old = await this.#queues.enrich.getJob(jobId);
    if (old && ((await old.isFailed()) || (await old.isCompleted()))) await old.remove();
    await this.enqueue('enrich', data, { jobId });
  }

  async ingestJob(jobId: string): Promise<IngestJobView | null> {
    let job = await this.#queues.ingest.getJob(jobId);
    if (!job) return null;
    const state = (await job.getState()) as JobState;
    // The job may have finished between the two reads: its result and failure are written with the move to
    // completed/failed, so a finished state reads the job again rather than report it without them.
    if (state === 'completed' || state === 'failed') job = (await this.#queues.ingest.getJob(jobId)) ?? job;
    return {
      id: job.id!,
      data: job.data as IngestData,
      state,
      progress: typeof job.progress === 'object' ? (job.progress as JobProgress) : null,
      result: (job.returnvalue as IngestResult | null) ?? null,
      attemptsMade: job.attemptsMade,
      createdAt: job.timestamp,
      finishedAt: job.finishedOn,
      failedReason: job.failedReason,
    };
  }

  async removeIngest(jobId: string): Promise<void> {
    const job = await this.#queues.ingest.getJob(jobId);
    // An active job holds a lock and cannot be removed; it re-checks the record before and after writing.
    if (job) await job.remove().catch(() => undefined);
  }

  async requestUserVector(userId: string): Promise<void> {
    await this.enqueue('user-vector', { userId }, { debounceKey: userId });
  }

  async counts(): Promise<Record<string, JobCounts>> {
    const out: Record<string, JobCounts> = {};
    for (const type of JOB_TYPES) out[type] = await this.#queues[type].getJobCounts(...COUNTED_STATES);
    return out;
  }

  async failed(limit: number): Promise<FailedJobView[]> {
    const out: FailedJobView[] = [];
    for (const type of JOB_TYPES) {
      for (const job of await this.#queues[type].getFailed(0, limit - 1)) {
        const videoId = (job.data as { videoId?: string } | undefined)?.videoId;
        out.push({
          type,
          id: job.id!,
          ...(videoId ? { videoId } : {}),
          error: parseJobError(job.failedReason) ?? { code: 'INTERNAL', message: 'no reason recorded' },
          attempts: job.attemptsMade,
          failedAt: job.finishedOn,
        });
      }
    }
    return out.sort((a, b) => (b.failedAt ?? 0) - (a.failedAt ?? 0)).slice(0, limit);
  }

  async retry(type: string, jobId: string): Promise<boolean> {
    if (!(JOB_TYPES as readonly string[]).includes(type)) return false;
    const job = await this.#queues[type as JobType].getJob(jobId);
    if (!job || !(await job.isFailed())) return false;
    await job.retry('failed');
    return true;
  }

  async ping(): Promise<void> {
    await pingRedis(this.#redis);
  }

  /** Closes every queue, each even if one before it failed; the connection is the caller's. */
  async close(): Promise<void> {
    const results = await Promise.allSettled(Object.values(this.#queues).map((q) => q.close()));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
