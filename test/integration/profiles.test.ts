/** Users' profiles on the real Redis (a fresh prefix, removed after): round trip, the item cap, the expiry. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { PROFILE_ITEMS, UserProfiles, decodeProfile, encodeProfile } from '../../src/recommend/profiles.ts';
import type { WatchedItem } from '../../src/recommend/watched-cache.ts';
import { dropPrefix } from '../helpers/service.ts';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = new Redis(url);
const prefix = `montage-test-${randomUUID().slice(0, 8)}`;
after(async () => {
  await dropPrefix(url, prefix);
  redis.disconnect();
});

const item = (i: number, dim = 8, withVector = true): WatchedItem => ({
  videoId: `v${i}`,
  title: `clip ${i} ✓`,
  behaviour: withVector ? Float32Array.from({ length: dim }, (_, j) => Math.sin(i * 7 + j)) : undefined,
});

test('a profile reads back as written: ids, titles and behaviour vectors bit for bit, a missing vector stays missing', async () => {
  const profiles = new UserProfiles(redis, prefix, { ttlH: 1 });
  const watched = [item(1), item(2, 8, false), item(3)];
  await profiles.put('u1', { generation: 'g1', updatedAt: 1234, watched });
  const back = await profiles.get('u1');
  assert.ok(back);
  assert.equal(back.generation, 'g1');
  assert.equal(back.updatedAt, 1234);
  assert.deepEqual(
    back.watched.map((w) => [w.videoId, w.title]),
    watched.map((w) => [w.videoId, w.title]),
  );
  assert.deepEqual(back.watched[0]!.behaviour, watched[0]!.behaviour);
  assert.equal(back.watched[1]!.behaviour, undefined);
  assert.deepEqual(back.watched[2]!.behaviour, watched[2]!.behaviour);
  assert.equal(await profiles.get('nobody'), null);
});

test('a profile keeps the newest PROFILE_ITEMS items and expires after its ttl', async () => {
  const many = Array.from({ length: PROFILE_ITEMS + 5 }, (_, i) => item(i, 4));
  const decoded = decodeProfile(encodeProfile({ generation: 'g', updatedAt: 0, watched: many }));
  assert.deepEqual(
    decoded.watched.map((w) => w.videoId),
    many.slice(-PROFILE_ITEMS).map((w) => w.videoId),
  );
  const profiles = new UserProfiles(redis, prefix, { ttlH: 2 });
  await profiles.put('u2', { generation: 'g', updatedAt: 0, watched: many });
  const ttl = await redis.ttl(profiles.key('u2'));
  assert.ok(ttl > 7000 && ttl <= 7200, `ttl ${ttl} s`);
});
