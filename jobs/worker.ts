/**
 * The worker process: one BullMQ Worker per job type, each with the policy table's concurrency and lock, an
 * `error` listener, and a clean shutdown (workers, then queues, then connections; each step runs even if one
 * before it failed).
 */
import { readdirSync } from 'node:fs';
import { getPriority, hostname, setPriority } from 'node:os';
import { Worker, type Job, type Processor } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../src/log.ts';
import type { Config } from '../src/config/index.ts';
import { JOB_POLICY, JOB_TYPES, assertHandlers, type JobType } from './policy.ts';

export type Handlers = Record<JobType, Processor>;

/**
 * Listeners for a job type's `failed` events: the only code that sees a job BullMQ fails without running its
 * processor (its workers died more than maxStalledCount times). A hook's own failure is logged, never thrown.
 */
export type FailedHooks = Partial<Record<JobType, (job: Job) => Promise<void>>>;

export interface RunningWorkers {
  workers: Worker[];
  close(): Promise<void>;
}

/**
 * Lowers this process's CPU priority by `increment` (nice, capped at 19), so a worker sharing cores with the API
 * yields to it. Linux keeps a nice value per thread and a new thread (or child process) inherits its creator's, so
 * every thread that exists now is lowered: the ones started later (ONNX Runtime's pools, libuv's, ffmpeg children)
 * then inherit it. Returns the nice value the main thread ends at.
 */
export function lowerWorkerPriority(increment: number, log: Logger): number {
  if (increment <= 0) return getPriority();
  let tids: number[] = [process.pid];
  try {
    tids = readdirSync('/proc/self/task').map(Number);
  } catch {
    // no /proc (not Linux): the main thread only
  }
  for (const tid of tids) {
    try {
      setPriority(tid, Math.min(19, getPriority(tid) + increment));
    } catch (err) {
      log.warn({ tid, err: (err as Error).message }, 'could not lower a worker thread priority');
    }
  }
  const nice = getPriority();
  log.info({ nice, threads: tids.length }, 'worker priority lowered');
  return nice;
}

/**
 * The worker's name, which BullMQ records on every job it takes and finishes (`processedBy`), so a job says which
 * process ran it.
 */
export function workerName(): string {
  return `montage-worker:${hostname()}:${process.pid}`;
}

export function startWorkers(
  config: Config,
  connection: Redis,
  handlers: Handlers,
  log: Logger,
  opts: { stalledIntervalMs?: number; lockMs?: number; onFailed?: FailedHooks } = {},
): RunningWorkers {
  assertHandlers(handlers);
  const workers = JOB_TYPES.map((type) => {
    const policy = JOB_POLICY[type];
    const concurrency = type === 'ingest' ? config.worker.ingestConcurrency : policy.concurrency;
    const w = new Worker(policy.queue, handlers[type], {
      name: workerName(),
      connection,
      prefix: config.redis.prefix,
      concurrency,
      lockDuration: opts.lockMs ?? config.worker.lockMs ?? policy.lockMs,
      stalledInterval: opts.stalledIntervalMs ?? config.worker.stalledIntervalMs,
      maxStalledCount: policy.maxStalledCount,
    });
    w.on('error', (err) => log.error({ err, queue: policy.queue }, 'worker error'));
    const hook = opts.onFailed?.[type];
    w.on('failed', (job, err) => {
      log.warn({ jobId: job?.id, queue: policy.queue, err: err.message }, 'job failed');
      if (job && hook) hook(job).catch((e: unknown) => log.error({ err: e, jobId: job.id, queue: policy.queue }, 'failed-job hook failed'));
    });
    w.on('completed', (job) => log.info({ jobId: job.id, queue: policy.queue }, 'job completed'));
    w.on('stalled', (jobId) => log.warn({ jobId, queue: policy.queue }, 'job stalled: its worker stopped renewing the lock'));
    return w;
  });
  return {
    workers,
    close: async () => {
      const results = await Promise.allSettled(workers.map((w) => w.close()));
      for (const r of results) if (r.status === 'rejected') log.error({ err: r.reason }, 'worker close failed');
    },
  };
}
