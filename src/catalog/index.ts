/**
 * Video records: what the service knows about an upload before and after it has vectors (title, status, job,
 * files). Kept in Redis beside the queue; the vector store holds the searchable copy of the payload.
 */
import type { Redis } from 'ioredis';
import type { Modality } from '../store/types.ts';

export type VideoStatus = 'queued' | 'processing' | 'ready' | 'failed';

export interface VideoRecord {
  videoId: string;
  title: string;
  description: string;
  tags: string[];
  externalId?: string | undefined;
  sha256: string;
  sizeBytes: number;
  /** Absolute path of the stored upload (removed on poison input or DELETE). */
  uploadPath: string;
  status: VideoStatus;
  jobId: string;
  generation: string;
  modalities: Modality[];
  durationS?: number | undefined;
  /** Unix milliseconds. */
  uploadedAt: number;
  posterPath?: string | undefined;
  error?: { code: string; message: string } | undefined;
}

export class Catalog {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  #key(videoId: string): string {
    return `${this.#prefix}:video:${videoId}`;
  }

  async get(videoId: string): Promise<VideoRecord | null> {
    const raw = await this.#redis.get(this.#key(videoId));
    return raw ? (JSON.parse(raw) as VideoRecord) : null;
  }

  /** Many records in one round trip (MGET), null where there is none, in the order asked. */
  async getMany(videoIds: string[]): Promise<Array<VideoRecord | null>> {
    if (videoIds.length === 0) return [];
    const raw = await this.#redis.mget(...videoIds.map((id) => this.#key(id)));
    return raw.map((r) => (r ? (JSON.parse(r) as VideoRecord) : null));
  }

  async put(rec: VideoRecord): Promise<void> {
    await this.#redis.set(this.#key(rec.videoId), JSON.stringify(rec));
  }

  /**
   * Read-modify-write of one record; a no-op (returning null) when the record is gone. The write is `SET XX`, so a
   * DELETE landing between the read and the write is not undone by bringing the record back.
   */
  async update(videoId: string, patch: Partial<VideoRecord>): Promise<VideoRecord | null> {
    const rec = await this.get(videoId);
    if (!rec) return null;
    const next = { ...rec, ...patch };
    return (await this.#redis.set(this.#key(videoId), JSON.stringify(next), 'XX')) === 'OK' ? next : null;
  }

  async delete(videoId: string): Promise<boolean> {
    const [[, n]] = (await this.#redis.multi().del(this.#key(videoId)).zrem(this.#freshKey, videoId).exec())! as [[unknown, number]];
    return n > 0;
  }

  get #freshKey(): string {
    return `${this.#prefix}:fresh`;
  }

  /** Ready videos by upload time: the "fresh" half of the cold-start fallback. */
  async markReady(videoId: string, uploadedAt: number): Promise<void> {
    await this.#redis.zadd(this.#freshKey, uploadedAt, videoId);
  }

  async newest(n: number): Promise<string[]> {
    return this.#redis.zrevrange(this.#freshKey, '0', String(n - 1));
  }

  /** Exponential moving average of wall seconds of processing per second of video, for job ETAs. */
  async recordRate(secondsPerVideoSecond: number): Promise<void> {
    const key = `${this.#prefix}:stats:ingest-rate`;
    const prev = Number(await this.#redis.get(key));
    const next = Number.isFinite(prev) && prev > 0 ? 0.8 * prev + 0.2 * secondsPerVideoSecond : secondsPerVideoSecond;
    await this.#redis.set(key, String(next));
  }

  async rate(): Promise<number | null> {
    const v = Number(await this.#redis.get(`${this.#prefix}:stats:ingest-rate`));
    return Number.isFinite(v) && v > 0 ? v : null;
  }
}
