/**
 * Wires the service's parts from config, in one place: Redis, catalog, vector store, encoders, queues. The boot
 * checks live here: the store refuses a generation whose dimension disagrees with its aliases, and the worker
 * refuses to start when a job type has no handler.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadConfig, type Config } from './config/index.ts';
import { createLogger, type Logger } from './log.ts';
import { Catalog } from './catalog/index.ts';
import { createStore } from './store/index.ts';
import type { VectorStore } from './store/types.ts';
import { loadEncoders } from './models/index.ts';
import type { Encoders } from './models/types.ts';
import { connect, queueFor, pingRedis } from '../jobs/queues.ts';
import { EventLog } from './users/events.ts';

export interface Runtime {
  config: Config;
  log: Logger;
  redis: Redis;
  catalog: Catalog;
  store: VectorStore;
  encoders: Encoders;
  queues: { ingest: Queue; userVector: Queue };
  events: EventLog;
  /** Closes everything, in order, each step even if one before it failed. */
  close(): Promise<void>;
}

export interface RuntimeOptions {
  config?: Config;
  log?: Logger;
  /** Names the Redis connection. */
  role: string;
  /**
   * Build and refresh the embedded store's ANN indexes in this process. Processes that write (workers) do;
   * the API server and read-only tools do not, so two processes never train the same index.
   * @defaultValue true
   */
  buildIndexes?: boolean;
}

export async function createRuntime(opts: RuntimeOptions): Promise<Runtime> {
  const config = opts.config ?? loadConfig();
  const log = opts.log ?? createLogger(config.logLevel);
  const encoders = await loadEncoders(config.models.generationDir, {
    provider: config.models.provider,
    intraOpThreads: config.models.intraOpThreads,
    maxBatch: config.models.maxBatch,
    log,
  });
  const redis = connect(config, opts.role);
  redis.on('error', (err) => log.error({ err: err.message }, 'redis error'));
  const closers: Array<[string, () => Promise<unknown>]> = [
    ['encoders', () => encoders.close()],
    ['redis', () => redis.quit()],
  ];
  const close = async () => {
    for (const [name, fn] of [...closers].reverse()) {
      try {
        await fn();
      } catch (err) {
        log.error({ err, part: name }, 'close failed');
      }
    }
  };
  try {
    await pingRedis(redis, 5000);
    const store = await createStore(config, { log, autoIndex: opts.buildIndexes ?? true });
    closers.push(['store', () => store.close()]);
    await store.open({ name: encoders.generation.name, dim: encoders.generation.dim });
    const ingest = queueFor('ingest', redis, config.redis.prefix);
    const userVector = queueFor('user-vector', redis, config.redis.prefix);
    for (const q of [ingest, userVector]) {
      q.on('error', (err) => log.error({ err: err.message, queue: q.name }, 'queue error'));
      closers.push([`queue ${q.name}`, () => q.close()]);
    }
    log.info(
      { generation: encoders.generation.name, dim: encoders.generation.dim, store: config.store.qdrantUrl ? 'qdrant' : 'embedded' },
      'runtime ready',
    );
    return {
      config,
      log,
      redis,
      catalog: new Catalog(redis, config.redis.prefix),
      store,
      encoders,
      queues: { ingest, userVector },
      events: new EventLog(redis, config.redis.prefix),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
