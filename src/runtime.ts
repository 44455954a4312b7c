/**
 * The composition root: wires the service's parts from config, in one place (Redis, catalog, vector store,
 * encoders, the job queue, files), and applies the settings that belong to a process (ffmpeg/ffprobe paths). The
 * boot checks live here: the store refuses a generation whose dimension disagrees with its aliases, and the worker
 * refuses to start when a job type has no handler. With src/cli/, the only code in src/ that imports jobs/.
 */
import type { Redis } from 'ioredis';
import { loadConfig, type Config } from './config/index.ts';
import { createLogger, type Logger } from './log.ts';
import { Catalog } from './catalog/index.ts';
import { createStore } from './store/index.ts';
import type { VectorStore } from './store/types.ts';
import { loadEncoders } from './models/index.ts';
import type { Encoders } from './models/types.ts';
import { setFfmpegPath, setFfprobePath } from './media/index.ts';
import { EventLog } from './users/events.ts';
import { Popularity } from './recommend/popularity.ts';
import { UserProfiles } from './recommend/profiles.ts';
import { VideoFiles } from './videos/files.ts';
import { BullJobQueue, connect, pingRedis, redisReady } from '../jobs/queues.ts';
import { makeFailedHooks, makeHandlers, type JobDeps } from '../jobs/index.ts';
import { EtaModel } from '../jobs/eta.ts';
import { startWorkers, workerName, type RunningWorkers } from '../jobs/worker.ts';
import type { HealthSource } from './metrics/embedding.ts';
import { GenerationRouter, encoderLoader } from './generations/router.ts';
import { GenerationState } from './generations/state.ts';
import { RoutedHealth, healthFactory } from './generations/drift.ts';
import { Webhooks } from './webhooks/index.ts';
import { WorkerMetrics, type ItemObservation } from './metrics/worker.ts';

export interface Runtime {
  config: Config;
  log: Logger;
  redis: Redis;
  catalog: Catalog;
  /** Routes to the collections of the generation the request or job runs in (src/generations/router.ts). */
  store: VectorStore;
  /** Routes to the towers of the generation the request or job runs in. */
  encoders: Encoders;
  /** The generations this process serves: the served one, and the secondary while one is live. */
  generations: GenerationRouter;
  /** The lifecycle's state in Redis (secondary generation, backfill progress). */
  generationState: GenerationState;
  /** The job queue; `jobs.queue(type)` reaches the BullMQ queue of a job type. */
  jobs: BullJobQueue;
  events: EventLog;
  popularity: Popularity;
  /** Users' newest watched items beside their vectors, written by the user-vector job (src/recommend/profiles.ts). */
  profiles: UserProfiles;
  files: VideoFiles;
  /** Webhook subscriptions and deliveries (src/webhooks). */
  webhooks: Webhooks;
  /** Embedding drift against the generation's reference (src/metrics/embedding.ts), per generation. */
  health: HealthSource;
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
  setFfprobePath(config.media.ffprobePath);
  setFfmpegPath(config.media.ffmpegPath);
  const encoderOptions = {
    provider: config.models.provider,
    intraOpThreads: config.models.intraOpThreads,
    precision: config.models.precision,
    maxBatch: config.models.maxBatch,
    log,
  };
  const encoders = await loadEncoders(config.models.generationDir, encoderOptions);
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
    await redisReady(redis, 5000);
    await pingRedis(redis, 5000);
    // The admin store reads and moves the aliases (and creates them on a first boot); each served generation gets
    // a store pinned to its own collections (src/generations/router.ts).
    const admin = await createStore(config.store, { log, autoIndex: false });
    closers.push(['store', () => admin.close()]);
    await admin.open({ name: encoders.generation.name, dim: encoders.generation.dim });
    const generationState = new GenerationState(redis, config.redis.prefix);
    const generations = new GenerationRouter({
      boot: encoders,
      admin,
      newStore: () => createStore(config.store, { log, autoIndex: opts.buildIndexes ?? true }),
      load: encoderLoader(encoderOptions),
      generationsDir: config.models.generationsDir,
      refreshMs: config.models.refreshMs,
      state: generationState,
      log,
    });
    closers.push(['generations', () => generations.close()]);
    await generations.start();
    const jobs = new BullJobQueue(redis, config.redis.prefix, log);
    closers.push(['queues', () => jobs.close()]);
    const webhooks = new Webhooks(redis, config.redis.prefix, {
      ...config.webhooks,
      enqueue: (deliveryId) => jobs.enqueue('webhook', { deliveryId }, { jobId: deliveryId }),
    });
    await webhooks.noteGeneration(generations.served).catch((err: unknown) => log.warn({ err }, 'generation.switched webhook failed'));
    log.info(
      {
        generation: generations.served,
        secondary: generations.secondary,
        dim: encoders.generation.dim,
        store: config.store.qdrant ? 'qdrant' : 'embedded',
      },
      'runtime ready',
    );
    const catalog = new Catalog(redis, config.redis.prefix);
    return {
      config,
      log,
      redis,
      catalog,
      store: generations.store,
      encoders: generations.encoders,
      generations,
      generationState,
      jobs,
      events: new EventLog(redis, config.redis.prefix, catalog, config.users),
      popularity: new Popularity(redis, config.redis.prefix, { halfLifeH: config.recommend.halfLifeH, max: config.recommend.popularMax }),
      profiles: new UserProfiles(redis, config.redis.prefix, { ttlH: config.recommend.profileTtlH }),
      files: new VideoFiles(config.dataDir, config.server.maxUploadBytes),
      webhooks,
      health: new RoutedHealth(
        generations,
        healthFactory(redis, config.redis.prefix, {
          storeDir: config.store.embedded.dataDir,
          referenceItems: config.metrics.referenceItems,
          window: config.metrics.driftWindow,
        }),
      ),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Starts a worker for every job type on the runtime's parts; `override` replaces parts for the processors only
 * (tests inject a DELETE at a known ingest stage through `onStage`).
 */
export function startRuntimeWorkers(
  rt: Runtime,
  opts: { stalledIntervalMs?: number; lockMs?: number; override?: Partial<JobDeps> } = {},
): RunningWorkers {
  const { override, ...timing } = opts;
  const metrics = new WorkerMetrics(rt.redis, rt.config.redis.prefix, workerName(), {
    publishMs: rt.config.metrics.publishMs,
    health: rt.health,
  });
  const observeItem = (o: ItemObservation) => metrics.observeItem(o);
  const deps = { ...rt, observeItem, eta: new EtaModel(rt.redis, rt.config.redis.prefix), ...override };
  // Workers wait on Redis (a blocking fetch, retried for ever): their own connection, not the fail-fast one.
  const connection = connect(rt.config, 'worker', 'blocking');
  connection.on('error', (err) => rt.log.error({ err: err.message }, 'redis error (workers)'));
  const running = startWorkers(rt.config, connection, makeHandlers(deps), rt.log, { ...timing, onFailed: makeFailedHooks(deps) });
  metrics.attach(running.workers);
  return {
    workers: running.workers,
    close: async () => {
      await running.close();
      await metrics.close();
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
