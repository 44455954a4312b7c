/** The Redis/BullMQ seam: connections and queues, built from config. */
import { Redis } from 'ioredis';
import { Queue, type ConnectionOptions } from 'bullmq';
import { AppError } from '../src/errors/index.ts';
import type { Config } from '../src/config/index.ts';
import { JOB_POLICY, type JobType } from './policy.ts';

/** A Redis connection for BullMQ (blocking commands need maxRetriesPerRequest: null). */
export function connect(config: Config, role: string): Redis {
  return new Redis(config.redis.url, { maxRetriesPerRequest: null, connectionName: `montage:${role}`, lazyConnect: false });
}

export function queueFor(type: JobType, connection: ConnectionOptions, prefix: string): Queue {
  return new Queue(JOB_POLICY[type].queue, { connection, prefix });
}

/** Fails fast with QUEUE_UNAVAILABLE when Redis does not answer. */
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
    throw new AppError('QUEUE_UNAVAILABLE', `Redis ping failed: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
