/**
 * Configuration: loaded once at boot from the environment, typed, validated, and failing loudly with the bad
 * value in the message. Every option has a documented default; README "Configuration" lists the variables.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError } from '../errors/index.ts';
import { MEDIA_ALLOWLISTS } from '../media/limits.ts';
import type { MediaLimits } from '../media/types.ts';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface Config {
  server: {
    /** @defaultValue '127.0.0.1' (MONTAGE_HOST) */
    host: string;
    /** @defaultValue 8080 (MONTAGE_PORT) */
    port: number;
    /** Size cap enforced while the upload streams. @defaultValue 512 MiB (MONTAGE_MAX_UPLOAD_BYTES) */
    maxUploadBytes: number;
    /** Largest `limit` a search may ask for. @defaultValue 100 (MONTAGE_SEARCH_MAX_LIMIT) */
    searchMaxLimit: number;
    /** Public base URL used in poster links. @defaultValue '' (relative links; MONTAGE_PUBLIC_URL) */
    publicUrl: string;
  };
  /** Uploads, posters and the embedded store live here. @defaultValue '<project>/var' (MONTAGE_DATA_DIR) */
  dataDir: string;
  redis: {
    /** @defaultValue 'redis://127.0.0.1:6379' (REDIS_URL) */
    url: string;
    /** BullMQ key prefix; tests use a fresh one per run. @defaultValue 'montage' (MONTAGE_QUEUE_PREFIX) */
    prefix: string;
    /**
     * A Redis command of the API and the processors that has no answer after this fails (QUEUE_UNAVAILABLE), and
     * while Redis is down commands fail at once instead of queueing, so no request waits on a dead connection.
     * @defaultValue 2000 ms (MONTAGE_REDIS_COMMAND_TIMEOUT_MS)
     */
    commandTimeoutMs: number;
  };
  store: StoreConfig;
  models: {
    /** @defaultValue the single folder under encoders/generations/ (MONTAGE_GENERATION_DIR) */
    generationDir: string;
    /**
     * Where generations live by name: `generation import` copies into it, and a process that serves or backfills a
     * generation other than the configured one loads it from `<generationsDir>/<name>`.
     * @defaultValue encoders/generations (MONTAGE_GENERATIONS_DIR)
     */
    generationsDir: string;
    /**
     * How long a process trusts its last read of the aliases (which generation serves) before reading them again, ms:
     * after `generation switch` every API process answers from the new generation within this long.
     * @defaultValue 1000 (MONTAGE_GENERATION_REFRESH_MS)
     */
    refreshMs: number;
    /** @defaultValue 'auto' = cuda when its files are installed, else cpu (MONTAGE_EXECUTION_PROVIDER) */
    provider: 'auto' | 'cpu' | 'cuda' | 'webgpu';
    /** @defaultValue 0 = one per core but one, left to ffmpeg (MONTAGE_INTRA_OP_THREADS) */
    intraOpThreads: number;
    /**
     * Tower encoding: 'int8' runs the generation's `variants.int8` graphs (float32 for any tower it lacks).
     * @defaultValue 'float32' (MONTAGE_MODEL_PRECISION)
     */
    precision: 'float32' | 'int8';
    /** @defaultValue 32 (MONTAGE_MAX_BATCH) */
    maxBatch: number;
  };
  media: {
    /** What every upload is probed against and every ffmpeg run is bounded by; defaults in MEDIA_DEFAULTS. */
    limits: MediaLimits;
    /** @defaultValue 'ffprobe' on PATH (FFPROBE_PATH) */
    ffprobePath: string;
    /** @defaultValue 'ffmpeg' on PATH (FFMPEG_PATH) */
    ffmpegPath: string;
  };
  worker: {
    /** Ingest jobs run at once in one worker process. @defaultValue 1 (MONTAGE_INGEST_CONCURRENCY) */
    ingestConcurrency: number;
    /** How often workers look for stalled jobs (a crashed worker's), ms. @defaultValue 30000 (MONTAGE_STALLED_INTERVAL_MS) */
    stalledIntervalMs: number;
    /** Overrides every job type's lock duration from the policy table, ms. @defaultValue unset (MONTAGE_LOCK_MS) */
    lockMs: number | undefined;
    /**
     * Added to a `montage worker` process's nice value at start (every thread, and so the ffmpeg children and ONNX
     * threads it starts), so an API on the same cores keeps its share while ingest runs (bench/load.ts measures
     * it). 0 leaves the priority alone. Not applied by `montage start`, where API and worker are one process.
     * @defaultValue 10 (MONTAGE_WORKER_NICE)
     */
    nice: number;
  };
  /** Metrics (GET /metrics) and embedding health; README "Metrics". */
  metrics: {
    /** How often a worker publishes its metrics snapshot to Redis, ms. @defaultValue 5000 (MONTAGE_METRICS_PUBLISH_MS) */
    publishMs: number;
    /**
     * Items the drift reference averages when the generation has no exported reference.json: the first N stored.
     * @defaultValue 100 (MONTAGE_METRICS_REFERENCE_ITEMS)
     */
    referenceItems: number;
    /** Recently stored items per modality whose mean is compared with the reference. @defaultValue 500 (MONTAGE_METRICS_DRIFT_WINDOW) */
    driftWindow: number;
    /**
     * A modality whose mean-vector drift (1 - cos) exceeds this marks the generation stale (`montage status`,
     * `montage_generation_stale`). @defaultValue 0.1 (MONTAGE_STALE_DRIFT)
     */
    staleDrift: number;
    /**
     * A share of text queries with mostly unknown words above this marks the generation stale.
     * @defaultValue 0.3 (MONTAGE_STALE_UNKNOWN_SHARE)
     */
    staleUnknownShare: number;
  };
  /** Webhook deliveries; README "Operations: webhooks". */
  webhooks: {
    /** Let subscriptions reach loopback and private addresses (tests, a receiver on the same host). @defaultValue false (MONTAGE_WEBHOOK_ALLOW_PRIVATE) */
    allowPrivate: boolean;
    /** A try that gets no answer in this long fails (and is retried), ms. @defaultValue 10000 (MONTAGE_WEBHOOK_TIMEOUT_MS) */
    timeoutMs: number;
  };
  access: AccessConfig;
  /** Per-user state the event log keeps, each capped with the oldest dropped (README "Limits"). */
  users: {
    /** Newest engaged items kept per user. @defaultValue 200 (MONTAGE_USER_SEQUENCE_MAX) */
    sequenceMax: number;
    /** Newest skipped items kept per user. @defaultValue 1000 (MONTAGE_USER_SKIPS_MAX) */
    skipsMax: number;
  };
  enrich: EnrichConfig;
  recommend: RecommendConfig;
  /** @defaultValue 'info' (LOG_LEVEL) */
  logLevel: string;
}

export type Scope = 'read' | 'write' | 'admin';

/** API keys and rate limits (src/server/access.ts). */
export interface AccessConfig {
  /**
   * The keys, as sha256 hashes only, each with its scope: `MONTAGE_API_KEYS="<sha256 hex>:read,<sha256 hex>:admin"`
   * (`printf %s "$KEY" | sha256sum`). Empty: the API is open, allowed on a loopback host only (or with
   * MONTAGE_API_OPEN=true). @defaultValue [] (MONTAGE_API_KEYS)
   */
  keys: Array<{ digest: Buffer; scope: Scope }>;
  /**
   * Requests per minute per key (per client address on an open API), counted in Redis; 0 = no limit.
   * @defaultValue 6000 with keys configured, 0 on an open (loopback) API (MONTAGE_RATE_LIMIT_PER_MIN)
   */
  rateLimitPerMinute: number;
  /**
   * How long a client may take to send a whole request, upload included, before the connection is refused with
   * REQUEST_TIMEOUT. @defaultValue 600000 ms (MONTAGE_UPLOAD_TIMEOUT_MS)
   */
  uploadTimeoutMs: number;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

function apiKeys(env: Env): AccessConfig['keys'] {
  const raw = env.MONTAGE_API_KEYS ?? '';
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const m = /^([0-9a-f]{64}):(read|write|admin)$/i.exec(entry);
      if (!m) {
        throw new AppError(
          'CONFIG_INVALID',
          `MONTAGE_API_KEYS entry ${JSON.stringify(entry.slice(0, 80))} must be <sha256 hex>:<read|write|admin>`,
        );
      }
      return { digest: Buffer.from(m[1]!.toLowerCase(), 'hex'), scope: m[2]!.toLowerCase() as Scope };
    });
}

function accessConfig(env: Env, host: string): AccessConfig {
  const keys = apiKeys(env);
  if (keys.length === 0 && !LOOPBACK.test(host) && env.MONTAGE_API_OPEN !== 'true') {
    throw new AppError(
      'CONFIG_INVALID',
      `MONTAGE_HOST=${JSON.stringify(host)} is not loopback and MONTAGE_API_KEYS is empty: set keys, or MONTAGE_API_OPEN=true to serve open`,
    );
  }
  return {
    keys,
    rateLimitPerMinute: int(env, 'MONTAGE_RATE_LIMIT_PER_MIN', keys.length ? 6000 : 0, 0, 10_000_000),
    uploadTimeoutMs: int(env, 'MONTAGE_UPLOAD_TIMEOUT_MS', 600_000, 1000, 86_400_000),
  };
}

/** The enrich job (issue 10): which engines run after ingest, and how their evidence weighs in search. */
export interface EnrichConfig {
  /** Read on-screen text with tesseract. @defaultValue true (MONTAGE_ENRICH_OCR=on|off) */
  ocr: boolean;
  /** Detect COCO objects with the generation's objects.onnx (skipped when it has none). @defaultValue true (MONTAGE_ENRICH_OBJECTS) */
  objects: boolean;
  /**
   * Weight of the evidence text vector (the text tower on what was read and seen) blended into the item's fused
   * vector: fused' = unit((1 - w) fused + w evidence). @defaultValue 0.2 (MONTAGE_ENRICH_VECTOR_WEIGHT, 0..1)
   */
  vectorWeight: number;
  /**
   * Added to a search hit's score per unit of evidence match (an exact word read on screen or an object named by
   * the query counts 1, a related word its word-vector similarity). @defaultValue 0.5 (MONTAGE_EVIDENCE_BOOST)
   */
  evidenceBoost: number;
  /** The tesseract executable. @defaultValue 'tesseract' on PATH (TESSERACT_PATH) */
  tesseractPath: string;
}

/** The recommendation policy (README "Recommendations"); an experiment arm may override the tunables. */
export interface RecommendConfig {
  /** Popularity decays by half every this many hours (events weighted view 1, like 2, share 3). @defaultValue 24 (MONTAGE_RECOMMEND_HALF_LIFE_H) */
  halfLifeH: number;
  /**
   * Engaged events at which a user's list is fully personal: the personal share is min(1, n / personalAt), the
   * rest popular-and-fresh. @defaultValue 10 (MONTAGE_RECOMMEND_PERSONAL_AT)
   */
  personalAt: number;
  /**
   * Weight of the watched items' centroid in the personal query: q = unit((1 - w) * userVector + w * unit(mean of
   * the newest 20 watched items' behaviour vectors)); w = 0 is the user tower alone. The centroid also stands in
   * when the user has events but no vector yet. @defaultValue 0.8 (MONTAGE_RECOMMEND_HISTORY_WEIGHT)
   */
  historyWeight: number;
  /** Share of each list reserved for items with no interactions yet, chosen by the user's vector; 0 turns it off. @defaultValue 0.2 (MONTAGE_RECOMMEND_NEW_ITEM_SHARE) */
  newItemShare: number;
  /** How recent an upload must be to compete for a new-item slot, hours. @defaultValue 72 (MONTAGE_RECOMMEND_NEW_ITEM_WINDOW_H) */
  newItemWindowH: number;
  /** Items the decayed popularity set keeps (the least popular are dropped past it). @defaultValue 100000 (MONTAGE_RECOMMEND_POPULAR_MAX) */
  popularMax: number;
  /** Declared experiments by name (JSON). @defaultValue {} (MONTAGE_RECOMMEND_EXPERIMENTS) */
  experiments: Record<string, Experiment>;
  /**
   * Hours a user's profile (their newest watched items with behaviour vectors, src/recommend/profiles.ts) stays in
   * Redis after the user-vector job last wrote it; a user without one is served by reading the store.
   * @defaultValue 168 (MONTAGE_RECOMMEND_PROFILE_TTL_H)
   */
  profileTtlH: number;
}

export interface Experiment {
  arms: ExperimentArm[];
}

/** One arm: a name, a weight (share of users, relative), and the policy it overrides. */
export interface ExperimentArm {
  name: string;
  /** @defaultValue 1 */
  weight: number;
  /** 'popular' serves every user the popular-and-fresh list (the control of the staged A/B test). @defaultValue 'blend' */
  mode: 'blend' | 'popular';
  newItemShare?: number;
  personalAt?: number;
  historyWeight?: number;
}

/** Parses MONTAGE_RECOMMEND_EXPERIMENTS, refusing at boot anything the recommender could not serve. */
export function parseExperiments(raw: string | undefined): Record<string, Experiment> {
  if (!raw) return {};
  const bad = (why: string) => new AppError('CONFIG_INVALID', `MONTAGE_RECOMMEND_EXPERIMENTS ${why}: ${raw}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw bad('is not JSON');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw bad('must be an object of experiments by name');
  const out: Record<string, Experiment> = {};
  for (const [name, exp] of Object.entries(parsed as Record<string, { arms?: unknown }>)) {
    if (!Array.isArray(exp?.arms) || exp.arms.length < 1) throw bad(`experiment ${name} needs a non-empty arms list`);
    const arms = (exp.arms as Array<Partial<ExperimentArm>>).map((a, i): ExperimentArm => {
      if (typeof a?.name !== 'string' || !a.name) throw bad(`${name}.arms.${i} needs a name`);
      const weight = a.weight ?? 1;
      if (!(typeof weight === 'number' && weight > 0)) throw bad(`${name}.arms.${i}.weight must be > 0`);
      const mode = a.mode ?? 'blend';
      if (mode !== 'blend' && mode !== 'popular') throw bad(`${name}.arms.${i}.mode must be blend or popular`);
      if (a.newItemShare !== undefined && !(a.newItemShare >= 0 && a.newItemShare <= 1))
        throw bad(`${name}.arms.${i}.newItemShare must be in [0, 1]`);
      if (a.personalAt !== undefined && !(a.personalAt >= 1)) throw bad(`${name}.arms.${i}.personalAt must be >= 1`);
      if (a.historyWeight !== undefined && !(a.historyWeight >= 0 && a.historyWeight <= 1))
        throw bad(`${name}.arms.${i}.historyWeight must be in [0, 1]`);
      return {
        name: a.name,
        weight,
        mode,
        ...(a.newItemShare !== undefined ? { newItemShare: a.newItemShare } : {}),
        ...(a.personalAt !== undefined ? { personalAt: a.personalAt } : {}),
        ...(a.historyWeight !== undefined ? { historyWeight: a.historyWeight } : {}),
      };
    });
    out[name] = { arms };
  }
  return out;
}

/** Which vector store, with its options: Qdrant when `qdrant` is set, the embedded store otherwise. */
export interface StoreConfig {
  /** @defaultValue unset (QDRANT_URL, QDRANT_API_KEY) */
  qdrant: { url: string; apiKey: string | undefined } | undefined;
  /**
   * How long an ingest keeps retrying its write while the store is unavailable (backoff 0.5 s doubling to 8 s),
   * holding its encoded vectors, before the try fails and the job's own retries (jobs/policy.ts) take over.
   * @defaultValue 120000 ms (MONTAGE_STORE_RETRY_MS)
   */
  retryMs: number;
  embedded: {
    /** @defaultValue '<dataDir>/store' (MONTAGE_STORE_DIR) */
    dataDir: string;
    /**
     * How stale a read may be, in seconds, before it looks for another process's writes (the worker's, seen by
     * the API). 0 checks on every read, which costs ~15% of a search's CPU at 1M items.
     * @defaultValue 1 (MONTAGE_STORE_READ_CONSISTENCY_S)
     */
    readConsistencyS: number;
    /**
     * Keep an in-memory HNSW graph of the items' fused vectors beside the table and answer searches by fused from it
     * (src/store/lance/graph.ts): ~1 ms instead of ~12 at 1M items, ~1.5 GB of memory per process at 1M.
     * @defaultValue true (MONTAGE_STORE_GRAPH)
     */
    graph: boolean;
    /** The graph search's ef: candidates explored per query; more is slower and finds more. At 300k items ef 64 gave recall@10 0.967, 160 gave 0.988 (~0.1 ms more); a larger catalogue needs more. @defaultValue 256 (MONTAGE_STORE_GRAPH_EF) */
    graphEf: number;
  };
}

/** The media limits' defaults, the one place they are set (README "Configuration"). */
export const MEDIA_DEFAULTS = {
  /** @defaultValue 600 s (MONTAGE_MAX_DURATION_S) */
  maxDurationS: 600,
  /** Below this there is not one frame per segment worth encoding. @defaultValue 0.3 s (MONTAGE_MIN_DURATION_S) */
  minDurationS: 0.3,
  /** Largest width or height. @defaultValue 4096 (MONTAGE_MAX_SIDE) */
  maxSide: 4096,
  /** Video + a few audio tracks + subtitles; hundreds of streams is an attack. @defaultValue 8 (MONTAGE_MAX_STREAMS) */
  maxStreams: 8,
  /**
   * Decoded pixels per second of video (width x height x frame rate) at most: every frame is decoded before it is
   * sampled, so this bounds a video's decode work, not its side or length alone. A few hundred bytes of VP8 can
   * declare 4096x4096 frames at 1000 fps (17 G pixels a second). DCI 4K at 60 fps (and 1080p at 240 fps) pass.
   * @defaultValue 4096 x 2160 x 60 = 530841600 (MONTAGE_MAX_PIXEL_RATE)
   */
  maxPixelRate: 4096 * 2160 * 60,
  /** ffprobe/ffmpeg are SIGKILLed after this. @defaultValue 300000 ms (MONTAGE_MEDIA_TIMEOUT_MS) */
  timeoutMs: 300_000,
} as const;

type Env = Record<string, string | undefined>;

function int(env: Env, key: string, dflt: number, min: number, max: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new AppError('CONFIG_INVALID', `${key}=${JSON.stringify(raw)} must be an integer in [${min}, ${max}]`);
  }
  return v;
}

function num(env: Env, key: string, dflt: number, min: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min) {
    throw new AppError('CONFIG_INVALID', `${key}=${JSON.stringify(raw)} must be a number >= ${min}`);
  }
  return v;
}

function unitNum(env: Env, key: string, dflt: number): number {
  const v = num(env, key, dflt, 0);
  if (v > 1) throw new AppError('CONFIG_INVALID', `${key}=${JSON.stringify(env[key])} must be a number in [0, 1]`);
  return v;
}

function oneOf<T extends string>(env: Env, key: string, dflt: T, allowed: readonly T[]): T {
  const raw = env[key];
  if (raw === undefined || raw === '') return dflt;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new AppError('CONFIG_INVALID', `${key}=${JSON.stringify(raw)} must be one of ${allowed.join(', ')}`);
  }
  return raw as T;
}

function unitInterval(env: Env, key: string, dflt: number): number {
  const v = num(env, key, dflt, 0);
  if (v > 1) throw new AppError('CONFIG_INVALID', `${key}=${v} must be in [0, 1]`);
  return v;
}

function bool(env: Env, key: string, dflt: boolean): boolean {
  const raw = env[key];
  if (raw === undefined || raw === '') return dflt;
  if (['1', 'true', 'on', 'yes'].includes(raw)) return true;
  if (['0', 'false', 'off', 'no'].includes(raw)) return false;
  throw new AppError('CONFIG_INVALID', `${key}=${JSON.stringify(raw)} must be on or off`);
}

function url(env: Env, key: string, dflt: string | undefined): string | undefined {
  const raw = env[key] || dflt;
  if (raw === undefined) return undefined;
  try {
    new URL(raw);
  } catch {
    throw new AppError('CONFIG_INVALID', `${key}=${JSON.stringify(raw)} is not a URL`);
  }
  return raw;
}

/**
 * The committed default generation: the folder named in encoders/generations/DEFAULT (one line), else
 * the single folder under encoders/generations/ (several and no DEFAULT: say which).
 */
export function defaultGenerationDir(root = PROJECT_ROOT): string {
  const base = path.join(root, 'encoders', 'generations');
  const pointer = path.join(base, 'DEFAULT');
  if (existsSync(pointer)) {
    const name = readFileSync(pointer, 'utf8').trim();
    // a name, not a path: DEFAULT cannot point outside encoders/generations/
    if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name) || !existsSync(path.join(base, name, 'manifest.json'))) {
      throw new AppError('CONFIG_INVALID', `${pointer} names ${JSON.stringify(name)}, which is not a generation folder under ${base}`);
    }
    return path.join(base, name);
  }
  const names = existsSync(base)
    ? readdirSync(base, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort()
    : [];
  if (names.length !== 1) {
    // Two generations side by side is a backfill in progress: which one serves must be said, not guessed.
    throw new AppError('CONFIG_INVALID', `${names.length} generations under ${base} (${names.join(', ')}); set MONTAGE_GENERATION_DIR`);
  }
  return path.join(base, names[0]!);
}

/** The media limits from the environment; with no variables set, the documented defaults (tests use that). */
export function mediaLimits(env: Env = {}): MediaLimits {
  const side = int(env, 'MONTAGE_MAX_SIDE', MEDIA_DEFAULTS.maxSide, 16, 16384);
  return {
    maxDurationS: num(env, 'MONTAGE_MAX_DURATION_S', MEDIA_DEFAULTS.maxDurationS, 0.1),
    minDurationS: num(env, 'MONTAGE_MIN_DURATION_S', MEDIA_DEFAULTS.minDurationS, 0),
    maxWidth: side,
    maxHeight: side,
    maxStreams: int(env, 'MONTAGE_MAX_STREAMS', MEDIA_DEFAULTS.maxStreams, 1, 64),
    maxPixelRate: int(env, 'MONTAGE_MAX_PIXEL_RATE', MEDIA_DEFAULTS.maxPixelRate, 1, Number.MAX_SAFE_INTEGER),
    timeoutMs: int(env, 'MONTAGE_MEDIA_TIMEOUT_MS', MEDIA_DEFAULTS.timeoutMs, 1, 86_400_000),
    allowedContainers: [...MEDIA_ALLOWLISTS.allowedContainers],
    allowedVideoCodecs: [...MEDIA_ALLOWLISTS.allowedVideoCodecs],
    allowedAudioCodecs: [...MEDIA_ALLOWLISTS.allowedAudioCodecs],
  };
}

/** The only reader of the environment: everything else gets its settings from the Config this returns. */
export function loadConfig(env: Env = process.env): Config {
  const dataDir = path.resolve(env.MONTAGE_DATA_DIR || path.join(PROJECT_ROOT, 'var'));
  const generationDir = env.MONTAGE_GENERATION_DIR ? path.resolve(env.MONTAGE_GENERATION_DIR) : defaultGenerationDir();
  if (!existsSync(path.join(generationDir, 'manifest.json'))) {
    throw new AppError('CONFIG_INVALID', `MONTAGE_GENERATION_DIR=${JSON.stringify(generationDir)} has no manifest.json`);
  }
  const qdrantUrl = url(env, 'QDRANT_URL', undefined);
  const host = env.MONTAGE_HOST || '127.0.0.1';
  return {
    access: accessConfig(env, host),
    server: {
      host,
      port: int(env, 'MONTAGE_PORT', 8080, 0, 65535),
      maxUploadBytes: int(env, 'MONTAGE_MAX_UPLOAD_BYTES', 512 * 1024 * 1024, 1, Number.MAX_SAFE_INTEGER),
      searchMaxLimit: int(env, 'MONTAGE_SEARCH_MAX_LIMIT', 100, 1, 10_000),
      publicUrl: (env.MONTAGE_PUBLIC_URL || '').replace(/\/$/, ''),
    },
    dataDir,
    redis: {
      url: url(env, 'REDIS_URL', 'redis://127.0.0.1:6379')!,
      prefix: env.MONTAGE_QUEUE_PREFIX || 'montage',
      commandTimeoutMs: int(env, 'MONTAGE_REDIS_COMMAND_TIMEOUT_MS', 2000, 50, 600_000),
    },
    store: {
      qdrant: qdrantUrl ? { url: qdrantUrl, apiKey: env.QDRANT_API_KEY || undefined } : undefined,
      retryMs: int(env, 'MONTAGE_STORE_RETRY_MS', 120_000, 0, 86_400_000),
      embedded: {
        dataDir: path.resolve(env.MONTAGE_STORE_DIR || path.join(dataDir, 'store')),
        readConsistencyS: num(env, 'MONTAGE_STORE_READ_CONSISTENCY_S', 1, 0),
        graph: bool(env, 'MONTAGE_STORE_GRAPH', true),
        graphEf: int(env, 'MONTAGE_STORE_GRAPH_EF', 256, 10, 4096),
      },
    },
    models: {
      generationDir,
      generationsDir: path.resolve(env.MONTAGE_GENERATIONS_DIR || path.join(PROJECT_ROOT, 'encoders', 'generations')),
      refreshMs: int(env, 'MONTAGE_GENERATION_REFRESH_MS', 1000, 0, 3_600_000),
      provider: oneOf(env, 'MONTAGE_EXECUTION_PROVIDER', 'auto', ['auto', 'cpu', 'cuda', 'webgpu'] as const),
      intraOpThreads: int(env, 'MONTAGE_INTRA_OP_THREADS', 0, 0, 256),
      precision: oneOf(env, 'MONTAGE_MODEL_PRECISION', 'float32', ['float32', 'int8'] as const),
      maxBatch: int(env, 'MONTAGE_MAX_BATCH', 32, 1, 4096),
    },
    media: {
      limits: mediaLimits(env),
      ffprobePath: env.FFPROBE_PATH || 'ffprobe',
      ffmpegPath: env.FFMPEG_PATH || 'ffmpeg',
    },
    worker: {
      ingestConcurrency: int(env, 'MONTAGE_INGEST_CONCURRENCY', 1, 1, 64),
      stalledIntervalMs: int(env, 'MONTAGE_STALLED_INTERVAL_MS', 30_000, 50, 3_600_000),
      lockMs: env.MONTAGE_LOCK_MS ? int(env, 'MONTAGE_LOCK_MS', 0, 500, 3_600_000) : undefined,
      nice: int(env, 'MONTAGE_WORKER_NICE', 10, 0, 19),
    },
    metrics: {
      publishMs: int(env, 'MONTAGE_METRICS_PUBLISH_MS', 5000, 100, 3_600_000),
      referenceItems: int(env, 'MONTAGE_METRICS_REFERENCE_ITEMS', 100, 1, 100_000),
      driftWindow: int(env, 'MONTAGE_METRICS_DRIFT_WINDOW', 500, 1, 100_000),
      staleDrift: num(env, 'MONTAGE_STALE_DRIFT', 0.1, 0),
      staleUnknownShare: unitNum(env, 'MONTAGE_STALE_UNKNOWN_SHARE', 0.3),
    },
    webhooks: {
      allowPrivate: bool(env, 'MONTAGE_WEBHOOK_ALLOW_PRIVATE', false),
      timeoutMs: int(env, 'MONTAGE_WEBHOOK_TIMEOUT_MS', 10_000, 100, 600_000),
    },
    users: {
      sequenceMax: int(env, 'MONTAGE_USER_SEQUENCE_MAX', 200, 1, 100_000),
      skipsMax: int(env, 'MONTAGE_USER_SKIPS_MAX', 1000, 0, 100_000),
    },
    enrich: {
      ocr: bool(env, 'MONTAGE_ENRICH_OCR', true),
      objects: bool(env, 'MONTAGE_ENRICH_OBJECTS', true),
      vectorWeight: unitInterval(env, 'MONTAGE_ENRICH_VECTOR_WEIGHT', 0.2),
      evidenceBoost: num(env, 'MONTAGE_EVIDENCE_BOOST', 0.5, 0),
      tesseractPath: env.TESSERACT_PATH || 'tesseract',
    },
    recommend: {
      halfLifeH: num(env, 'MONTAGE_RECOMMEND_HALF_LIFE_H', 24, 0.01),
      personalAt: int(env, 'MONTAGE_RECOMMEND_PERSONAL_AT', 10, 1, 10_000),
      historyWeight: unitNum(env, 'MONTAGE_RECOMMEND_HISTORY_WEIGHT', 0.8),
      newItemShare: unitNum(env, 'MONTAGE_RECOMMEND_NEW_ITEM_SHARE', 0.2),
      newItemWindowH: num(env, 'MONTAGE_RECOMMEND_NEW_ITEM_WINDOW_H', 72, 0.01),
      popularMax: int(env, 'MONTAGE_RECOMMEND_POPULAR_MAX', 100_000, 1, 100_000_000),
      experiments: parseExperiments(env.MONTAGE_RECOMMEND_EXPERIMENTS),
      profileTtlH: num(env, 'MONTAGE_RECOMMEND_PROFILE_TTL_H', 168, 0.01),
    },
    logLevel: oneOf(env, 'LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
  };
}
