/**
 * How long each ingest stage takes, learned from recent jobs: per stage, a line `seconds = fixed + perS x video
 * seconds`, fitted by weighted least squares over exponentially decayed sums of the jobs seen (kept in Redis, so
 * every worker learns from every job and a restart keeps what was learned), pulled toward a seed.
 *
 * Why a line and not one rate: a job has fixed costs (ffmpeg start, ONNX session warm-up, store write) that a pure
 * seconds-per-video-second rate spreads over the clip, so a rate learned on short clips overstates a long one (it
 * was 2.4x too high on a 60 s clip). The seed is the bench's 720p run (bench/results/ingest.json): the first job's
 * ETA, a prior worth SEED_WEIGHT jobs in the fit, and the line's shape while every job seen has had one duration.
 */
import type { Redis } from 'ioredis';
import { INGEST_STAGES, type IngestStage } from '../src/queue/index.ts';

export type StageSeconds = Record<IngestStage, number>;

/** Seconds = fixed + perS x duration, per stage: the default, from bench/results/ingest.json (10/60/300 s at 720p). */
export const ETA_SEED: Readonly<Record<IngestStage, { fixed: number; perS: number }>> = Object.freeze({
  probe: { fixed: 0.01, perS: 0 },
  // The towers encode while ffmpeg decodes (jobs/ingest-pipeline.ts): extract carries most of their time, and
  // encode is the last batch and the text.
  extract: { fixed: 0.2, perS: 0.028 },
  encode: { fixed: 0.02, perS: 0.0002 },
  fuse: { fixed: 0.002, perS: 0 },
  upsert: { fixed: 0.06, perS: 0.0001 },
  cleanup: { fixed: 0.005, perS: 0 },
});

/** Weight of the seed, in jobs: real jobs (decayed weight up to 1 / (1 - DECAY) = 5) soon outweigh it. */
export const SEED_WEIGHT = 0.5;
/** Each new job multiplies the weight of those before it by this. */
export const DECAY = 0.8;
/** The seed as two points, at these durations (s), each of half its weight. */
const SEED_AT = [10, 60];

/** Decay the stage's sums, then add one point: atomic, so concurrent workers do not lose each other's jobs. */
const LEARN = `
local d = tonumber(ARGV[1])
for i = 2, #ARGV, 3 do
  local f = ARGV[i]
  local x = tonumber(ARGV[i + 1])
  local y = tonumber(ARGV[i + 2])
  local s = redis.call('HMGET', KEYS[1], f..':w', f..':x', f..':y', f..':xx', f..':xy')
  local w, sx, sy, sxx, sxy = tonumber(s[1]) or 0, tonumber(s[2]) or 0, tonumber(s[3]) or 0, tonumber(s[4]) or 0, tonumber(s[5]) or 0
  redis.call('HSET', KEYS[1], f..':w', tostring(w * d + 1), f..':x', tostring(sx * d + x), f..':y', tostring(sy * d + y),
    f..':xx', tostring(sxx * d + x * x), f..':xy', tostring(sxy * d + x * y))
end
return 1`;

interface Sums {
  w: number;
  x: number;
  y: number;
  xx: number;
  xy: number;
}

/**
 * The fitted line of one stage from its sums plus the seed's points; slope and intercept kept >= 0. Jobs that have
 * all had (nearly) one duration say nothing about the slope: then the seed's line is scaled to pass through them
 * (same shape, this machine's speed).
 */
export function fitStage(observed: Sums, seed: { fixed: number; perS: number }): { fixed: number; perS: number } {
  if (observed.w > 0) {
    const meanX = observed.x / observed.w;
    const varX = observed.xx / observed.w - meanX * meanX;
    const atMean = seed.fixed + seed.perS * meanX;
    if (varX < 1 && atMean > 0) {
      const scale = observed.y / observed.w / atMean;
      return { fixed: seed.fixed * scale, perS: seed.perS * scale };
    }
  }
  const s = { ...observed };
  for (const x of SEED_AT) {
    const y = seed.fixed + seed.perS * x;
    const w = SEED_WEIGHT / SEED_AT.length;
    s.w += w;
    s.x += w * x;
    s.y += w * y;
    s.xx += w * x * x;
    s.xy += w * x * y;
  }
  const det = s.w * s.xx - s.x * s.x;
  let perS = det > 1e-12 ? (s.w * s.xy - s.x * s.y) / det : 0;
  let fixed = (s.y - perS * s.x) / s.w;
  if (perS < 0) [perS, fixed] = [0, s.y / s.w];
  if (fixed < 0) [fixed, perS] = [0, s.xy / s.xx];
  return { fixed, perS };
}

export class EtaModel {
  readonly #redis: Redis | undefined;
  readonly #key: string;

  /** Without Redis, the seed alone (nothing is learned). */
  constructor(redis: Redis | undefined, prefix: string) {
    this.#redis = redis;
    this.#key = `${prefix}:stats:eta`;
  }

  /** Predicted seconds per stage for a video of `durationS`. */
  async predict(durationS: number): Promise<StageSeconds> {
    const raw = this.#redis ? await this.#redis.hgetall(this.#key) : {};
    const out = {} as StageSeconds;
    for (const stage of INGEST_STAGES) {
      const get = (k: keyof Sums) => Number(raw[`${stage}:${k}`] ?? 0) || 0;
      const { fixed, perS } = fitStage({ w: get('w'), x: get('x'), y: get('y'), xx: get('xx'), xy: get('xy') }, ETA_SEED[stage]);
      out[stage] = fixed + perS * durationS;
    }
    return out;
  }

  /** Learns from a finished job: its duration and wall seconds per stage. */
  async learn(durationS: number, stages: StageSeconds): Promise<void> {
    if (!this.#redis || !(durationS > 0)) return;
    const args = INGEST_STAGES.flatMap((s) => [s, String(durationS), String(stages[s])]);
    await this.#redis.eval(LEARN, 1, this.#key, String(DECAY), ...args);
  }
}
