/**
 * What the generation lifecycle keeps in Redis, beside the store's aliases (which alone say what serves):
 * - the secondary generation: the backfill target, or after a switch the generation switched from, which keeps
 *   receiving new uploads and user vectors so a rollback loses nothing (`generation retire` drops it);
 * - the backfill's progress: how many of the videos it enqueued are left, and when it started and finished.
 */
import type { Redis } from 'ioredis';

export interface BackfillState {
  generation: string;
  /** Videos the backfill enqueued. */
  total: number;
  /** Of those, not finished yet (completed or failed for good). */
  remaining: number;
  failed: number;
  startedAt: number;
  /** Set when the last video finished and the users' recomputation was queued. */
  finishedAt?: number;
  /** Users whose vectors were queued for recomputation in the new generation. */
  users?: number;
}

export class GenerationState {
  readonly #redis: Redis;
  readonly #p: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#p = `${prefix}:generation`;
  }

  async secondary(): Promise<string | null> {
    return this.#redis.get(`${this.#p}:secondary`);
  }

  async setSecondary(name: string | null): Promise<void> {
    if (name) await this.#redis.set(`${this.#p}:secondary`, name);
    else await this.#redis.del(`${this.#p}:secondary`);
  }

  /** Starts a backfill's bookkeeping (replacing a previous one's). */
  async startBackfill(generation: string, total: number): Promise<void> {
    const key = `${this.#p}:backfill`;
    await this.#redis.multi().del(key).hset(key, { generation, total, remaining: total, failed: 0, startedAt: Date.now() }).exec();
  }

  /**
   * One enqueued video finished (ok or failed for good). True for exactly one caller: the one that finished the
   * last video (HINCRBY is atomic), which then queues the users' recomputation.
   */
  async videoDone(generation: string, failed: boolean): Promise<boolean> {
    const key = `${this.#p}:backfill`;
    if ((await this.#redis.hget(key, 'generation')) !== generation) return false;
    if (failed) await this.#redis.hincrby(key, 'failed', 1);
    return (await this.#redis.hincrby(key, 'remaining', -1)) === 0;
  }

  async finishBackfill(users: number): Promise<void> {
    await this.#redis.hset(`${this.#p}:backfill`, { finishedAt: Date.now(), users });
  }

  async backfill(): Promise<BackfillState | null> {
    const h = await this.#redis.hgetall(`${this.#p}:backfill`);
    if (!h.generation) return null;
    return {
      generation: h.generation,
      total: Number(h.total),
      remaining: Number(h.remaining),
      failed: Number(h.failed ?? 0),
      startedAt: Number(h.startedAt),
      ...(h.finishedAt ? { finishedAt: Number(h.finishedAt) } : {}),
      ...(h.users ? { users: Number(h.users) } : {}),
    };
  }
}
