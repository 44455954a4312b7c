/**
 * Video records: what the service knows about an upload before and after it has vectors (title, status, job,
 * files). Kept in Redis beside the queue; the vector store holds the searchable copy of the payload.
 */
import type { Redis } from 'ioredis';
import type { Modality } from '../store/types.ts';

export type VideoStatus = 'queued' | 'processing' | 'ready' | 'failed';

/** The enrichments a video gets after ingest (the enrich job, jobs/enrich.ts). */
export const ENRICHMENTS = ['ocr', 'objects', 'speech'] as const;
export type EnrichmentName = (typeof ENRICHMENTS)[number];

/**
 * Where one enrichment of a video stands: pending (queued or running), done (with what it found), failed (with the
 * error's code; the ingest vectors stay and the video stays searchable), or skipped (turned off, no model in the
 * generation, or no engine: `reason` says which).
 */
export interface EnrichmentStatus {
  state: 'pending' | 'done' | 'failed' | 'skipped';
  /** Evidence items found (done). */
  items?: number | undefined;
  /** Frames the engine read (done). */
  frames?: number | undefined;
  /** Wall seconds the engine took (done or failed). */
  seconds?: number | undefined;
  reason?: string | undefined;
  error?: { code: string; message: string } | undefined;
}

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
  /** Per enrichment, once the ingest has queued the enrich job. */
  enrichments?: Partial<Record<EnrichmentName, EnrichmentStatus>> | undefined;
}

export class Catalog {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  #key(videoId: string): string {
    return this.recordKey(videoId);
  }

  /** The key of a video's record (the event log takes an event only for a video that has one). */
  recordKey(videoId: string): string {
    return `${this.#prefix}:video:${videoId}`;
  }

  /** The sorted set of ready videos by upload time (markReady). */
  get readyKey(): string {
    return this.#freshKey;
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

  /** Which of `videoIds` are ready (one round trip): only those can come back from a search. */
  async readyAmong(videoIds: string[]): Promise<string[]> {
    if (videoIds.length === 0) return [];
    const scores = await this.#redis.zmscore(this.#freshKey, ...videoIds);
    return videoIds.filter((_, i) => scores[i] !== null);
  }

  /** How many ready videos were uploaded at or after `since` (Unix ms): new items since a generation was trained. */
  async readySince(since: number): Promise<number> {
    return this.#redis.zcount(this.#freshKey, since, '+inf');
  }

  /** Every ready video, oldest first (a backfill re-embeds them all). */
  async allReady(): Promise<string[]> {
    return this.#redis.zrange(this.#freshKey, '0', '-1');
  }

  async newest(n: number): Promise<string[]> {
    return this.#redis.zrevrange(this.#freshKey, '0', String(n - 1));
  }

  /** Ready videos, oldest upload first, `count` from position `offset` (a page of the whole catalogue). */
  async readyPage(offset: number, count: number): Promise<string[]> {
    return this.#redis.zrange(this.#freshKey, String(offset), String(offset + count - 1));
  }

  async readyCount(): Promise<number> {
    return this.#redis.zcard(this.#freshKey);
  }
}
