/** One test file's share of the real Redis: a connection, a fresh key prefix and temp folders, all removed after. */
import { after } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { dropPrefix } from './service.ts';

export interface RedisPrefix {
  url: string;
  redis: Redis;
  /** `montage-test-<random>`: every key the file writes goes under it. */
  prefix: string;
  /** A new temp folder, removed after the file's tests. */
  tempDir(name: string): Promise<string>;
}

/** Call at a test file's top level: registers the `after` hook that drops the prefix's keys and the temp folders. */
export function redisPrefix(): RedisPrefix {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = `montage-test-${randomUUID().slice(0, 8)}`;
  const redis = new Redis(url);
  const dirs: string[] = [];
  after(async () => {
    redis.disconnect();
    await dropPrefix(url, prefix);
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  return {
    url,
    redis,
    prefix,
    async tempDir(name) {
      const dir = await mkdtemp(path.join(tmpdir(), `montage-${name}-`));
      dirs.push(dir);
      return dir;
    },
  };
}
