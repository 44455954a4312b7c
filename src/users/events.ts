/**
 * Behaviour events: a durable log (a Redis stream, `<prefix>:events`) plus each user's recent sequence, the
 * items they skipped, and item popularity, all written by one Lua script per event so a replayed batch (same
 * event ids) is accepted once and a crash never leaves half an event. At scale the stream would be a Kafka topic
 * (partitioned by user) feeding the same per-user state; the API and the job would not change.
 */
import type { Redis } from 'ioredis';

export type EventType = 'view' | 'like' | 'skip' | 'share';

export interface BehaviourEvent {
  eventId: string;
  userId: string;
  videoId: string;
  type: EventType;
  /** Unix milliseconds. */
  timestamp: number;
  watchSeconds?: number;
  completion?: number;
}

/** Popularity weight of each event type; a skip counts against nothing but is remembered as "seen". */
export const EVENT_WEIGHT: Record<EventType, number> = { view: 1, like: 2, share: 3, skip: 0 };
/** Views that stop this early are treated like skips: the user did not engage. */
export const MIN_ENGAGED_COMPLETION = 0.1;
const DEDUPE_TTL_S = 30 * 86_400;

const APPEND = `
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) == false then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000000', '*', 'e', ARGV[2])
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[3], 'GT', ARGV[3], ARGV[4])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -tonumber(ARGV[7]) - 1)
else
  redis.call('SADD', KEYS[4], ARGV[4])
end
if tonumber(ARGV[6]) > 0 then redis.call('ZINCRBY', KEYS[5], ARGV[6], ARGV[4]) end
return 1`;

export function engaged(e: BehaviourEvent): boolean {
  if (e.type === 'skip') return false;
  return !(e.type === 'view' && e.completion !== undefined && e.completion < MIN_ENGAGED_COMPLETION);
}

export class EventLog {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #keepPerUser: number;

  /** @param keepPerUser how many recent engaged items a user's sequence keeps (the user tower reads the newest). */
  constructor(redis: Redis, prefix: string, keepPerUser = 200) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#keepPerUser = keepPerUser;
  }

  seqKey(userId: string): string {
    return `${this.#prefix}:user:${userId}:seq`;
  }
  skippedKey(userId: string): string {
    return `${this.#prefix}:user:${userId}:skipped`;
  }
  get popularKey(): string {
    return `${this.#prefix}:popular`;
  }
  get streamKey(): string {
    return `${this.#prefix}:events`;
  }

  /** Appends events not seen before (by eventId); returns the users whose state changed. */
  async append(events: BehaviourEvent[]): Promise<{ accepted: number; duplicates: number; users: string[] }> {
    const pipe = this.#redis.pipeline();
    for (const e of events) {
      pipe.eval(
        APPEND,
        5,
        `${this.#prefix}:event:${e.eventId}`,
        this.streamKey,
        this.seqKey(e.userId),
        this.skippedKey(e.userId),
        this.popularKey,
        DEDUPE_TTL_S,
        JSON.stringify(e),
        e.timestamp,
        e.videoId,
        engaged(e) ? '1' : '0',
        engaged(e) ? EVENT_WEIGHT[e.type] : 0,
        this.#keepPerUser,
      );
    }
    const res = (await pipe.exec()) ?? [];
    const users = new Set<string>();
    let accepted = 0;
    res.forEach(([err, v], i) => {
      if (err) throw err;
      if (v === 1) {
        accepted++;
        users.add(events[i]!.userId);
      }
    });
    return { accepted, duplicates: events.length - accepted, users: [...users] };
  }

  /** The user's newest engaged items, oldest first, with their timestamps (ms). */
  async recent(userId: string, n: number): Promise<Array<{ videoId: string; timestamp: number }>> {
    const raw = await this.#redis.zrange(this.seqKey(userId), String(-n), '-1', 'WITHSCORES');
    const out: Array<{ videoId: string; timestamp: number }> = [];
    for (let i = 0; i < raw.length; i += 2) out.push({ videoId: raw[i]!, timestamp: Number(raw[i + 1]) });
    return out;
  }

  /** Everything the user has engaged with or skipped: excluded from their recommendations. */
  async seen(userId: string): Promise<string[]> {
    const [engagedIds, skipped] = await Promise.all([
      this.#redis.zrange(this.seqKey(userId), '0', '-1'),
      this.#redis.smembers(this.skippedKey(userId)),
    ]);
    return [...new Set([...engagedIds, ...skipped])];
  }

  async popular(n: number): Promise<string[]> {
    return this.#redis.zrevrange(this.popularKey, '0', String(n - 1));
  }
}
