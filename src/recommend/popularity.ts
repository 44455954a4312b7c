/**
 * Popularity that forgets: every engaged event adds its weight (EVENT_WEIGHT) times 2^((t - epoch) / halfLife) to
 * one Redis sorted set, so the set's order at any moment is the order of the exponentially decayed sums, and the
 * score now is the stored score times 2^((epoch - now) / halfLife). Reading the top N is one ZREVRANGE, never a
 * walk over items. When the newest event's exponent passes 64 half-lives the set is rescaled in the same script
 * (one ZUNIONSTORE) and the epoch moves, so scores stay finite for ever. The set is bounded: past 2 * `max`
 * members it is cut back to the `max` most popular (trimming at every event would drop each newcomer, always the
 * lowest, before its second event). An item with any event, skips included (weight 0), is a member: "has
 * interactions"; an item trimmed away counts as having none again (README "Limits").
 *
 * Fed by recordEvents beside the event log; its own per-event key (`<prefix>:popularity:event:<id>`) makes a
 * replayed batch count once, as the log does.
 */
import type { Redis } from 'ioredis';
import { EVENT_WEIGHT, engaged, type BehaviourEvent } from '../users/events.ts';

const DEDUPE_TTL_S = 30 * 86_400;
/** Half-lives past the epoch before a rescale; 2^64 keeps doubles far from overflow and from losing small increments. */
const RESCALE_AFTER = 64;

const RECORD = `
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) == false then return 0 end
local ts = tonumber(ARGV[2])
local h = tonumber(ARGV[5])
local epoch = tonumber(redis.call('GET', KEYS[3]))
if not epoch then
  epoch = ts
  redis.call('SET', KEYS[3], ARGV[2])
end
local e = (ts - epoch) / h
if e > tonumber(ARGV[7]) then
  local shift = math.floor(e)
  redis.call('ZUNIONSTORE', KEYS[2], 1, KEYS[2], 'WEIGHTS', tostring(2 ^ -shift))
  epoch = epoch + shift * h
  redis.call('SET', KEYS[3], string.format('%.0f', epoch))
  e = e - shift
end
redis.call('ZINCRBY', KEYS[2], tostring(tonumber(ARGV[4]) * 2 ^ e), ARGV[3])
if redis.call('ZCARD', KEYS[2]) > 2 * tonumber(ARGV[6]) then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[6]) - 1) end
return 1`;

export class Popularity {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #halfLifeMs: number;
  readonly #max: number;

  constructor(redis: Redis, prefix: string, opts: { halfLifeH: number; max: number }) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#halfLifeMs = opts.halfLifeH * 3_600_000;
    this.#max = opts.max;
  }

  get #key(): string {
    return `${this.#prefix}:popularity`;
  }
  get #epochKey(): string {
    return `${this.#prefix}:popularity:epoch`;
  }

  /** Counts each event once (by eventId); returns how many were new here. */
  async record(events: BehaviourEvent[]): Promise<number> {
    if (events.length === 0) return 0;
    const pipe = this.#redis.pipeline();
    for (const e of events) {
      const weight = engaged(e) ? EVENT_WEIGHT[e.type] : 0;
      pipe.eval(
        RECORD,
        3,
        `${this.#prefix}:popularity:event:${e.eventId}`,
        this.#key,
        this.#epochKey,
        DEDUPE_TTL_S,
        e.timestamp,
        e.videoId,
        weight,
        this.#halfLifeMs,
        this.#max,
        RESCALE_AFTER,
      );
    }
    const res = (await pipe.exec()) ?? [];
    let n = 0;
    for (const [err, v] of res) {
      if (err) throw err;
      if (v === 1) n++;
    }
    return n;
  }

  /** The `n` most popular items now, with their decayed scores (weight units), most popular first. */
  async top(n: number, now = Date.now()): Promise<Array<{ videoId: string; score: number }>> {
    const [[e1, raw], [e2, epoch]] = (await this.#redis
      .multi()
      .zrevrange(this.#key, 0, n - 1, 'WITHSCORES')
      .get(this.#epochKey)
      .exec())! as [[Error | null, string[]], [Error | null, string | null]];
    if (e1 || e2) throw e1 ?? e2;
    const scale = epoch === null ? 1 : 2 ** ((Number(epoch) - now) / this.#halfLifeMs);
    const out: Array<{ videoId: string; score: number }> = [];
    for (let i = 0; i < raw.length; i += 2) out.push({ videoId: raw[i]!, score: Number(raw[i + 1]) * scale });
    return out;
  }

  /** Whether each item has had any event (one ZMSCORE). */
  async interacted(videoIds: string[]): Promise<boolean[]> {
    if (videoIds.length === 0) return [];
    const scores = await this.#redis.zmscore(this.#key, ...videoIds);
    return scores.map((s) => s !== null);
  }
}
