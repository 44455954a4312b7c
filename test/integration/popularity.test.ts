/** Decayed popularity on the real Redis (a fresh prefix, removed after): half-life, replay, rescale, bound. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { Popularity } from '../../src/recommend/popularity.ts';
import type { BehaviourEvent } from '../../src/users/events.ts';
import { dropPrefix } from '../helpers/service.ts';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = new Redis(url);
const prefixes: string[] = [];
after(async () => {
  for (const p of prefixes) await dropPrefix(url, p);
  redis.disconnect();
});
const fresh = (opts = { halfLifeH: 1, max: 1000 }) => {
  const p = `montage-test-${randomUUID().slice(0, 8)}`;
  prefixes.push(p);
  return new Popularity(redis, p, opts);
};
const H = 3_600_000;
let n = 0;
const ev = (videoId: string, type: BehaviourEvent['type'], timestamp: number): BehaviourEvent => ({
  eventId: `e${n++}`,
  userId: 'u',
  videoId,
  type,
  timestamp,
});

test('an event loses half its weight per half-life; newer events outrank more but older ones', async () => {
  const pop = fresh();
  const t0 = 1_700_000_000_000;
  // old: 3 shares (9) two half-lives ago = 2.25 now; recent: one like (2) now
  await pop.record([ev('old', 'share', t0), ev('old', 'share', t0), ev('old', 'share', t0), ev('recent', 'like', t0 + 2 * H)]);
  const top = await pop.top(10, t0 + 2 * H);
  assert.deepEqual(
    top.map((t) => t.videoId),
    ['old', 'recent'],
  );
  assert.ok(Math.abs(top[0]!.score - 2.25) < 1e-9, `old scores ${top[0]!.score}`);
  assert.ok(Math.abs(top[1]!.score - 2) < 1e-9);
  const later = await pop.top(10, t0 + 3 * H);
  assert.ok(Math.abs(later[0]!.score - 1.125) < 1e-9, 'read later, everything halves');
  await pop.record([ev('recent', 'view', t0 + 2 * H)]);
  assert.equal((await pop.top(1, t0 + 2 * H))[0]!.videoId, 'recent', '3 now beats 2.25');
});

test('a replayed event counts once; a skip marks an interaction without weight', async () => {
  const pop = fresh();
  const e = ev('a', 'view', 1_700_000_000_000);
  assert.equal(await pop.record([e, ev('b', 'skip', e.timestamp)]), 2);
  assert.equal(await pop.record([e]), 0);
  const top = await pop.top(10, e.timestamp);
  assert.equal(top.find((t) => t.videoId === 'a')!.score, 1);
  assert.equal(top.find((t) => t.videoId === 'b')!.score, 0);
  assert.deepEqual(await pop.interacted(['a', 'b', 'never']), [true, true, false]);
});

test('a year of events at a one-hour half-life stays finite (the set is rescaled) and the order holds', async () => {
  const pop = fresh();
  const t0 = 1_700_000_000_000;
  await pop.record([ev('x', 'view', t0)]);
  for (let d = 1; d <= 365; d += 30) await pop.record([ev('x', 'view', t0 + d * 24 * H)]);
  const end = t0 + 361 * 24 * H;
  await pop.record([ev('y', 'share', end)]);
  const top = await pop.top(10, end);
  assert.ok(top.every((t) => Number.isFinite(t.score)));
  assert.equal(top[0]!.videoId, 'y');
  assert.ok(Math.abs(top[0]!.score - 3) < 1e-6, `y scores ${top[0]!.score}`);
  assert.ok(Math.abs(top[1]!.score - 1) < 1e-6, `x's last view (just now) dominates: ${top[1]!.score}`);
});

test('the set keeps its bound (2 * max before a cut back to max), dropping the least popular', async () => {
  const pop = fresh({ halfLifeH: 24, max: 3 });
  const t = 1_700_000_000_000;
  const events: BehaviourEvent[] = [];
  for (let i = 0; i < 10; i++) for (let k = 0; k <= i; k++) events.push(ev(`v${i}`, 'view', t));
  await pop.record(events);
  const top = await pop.top(100, t);
  assert.ok(top.length <= 6, `${top.length} members`);
  assert.equal(top[0]!.videoId, 'v9');
  assert.ok(!top.some((x) => x.videoId === 'v0'), 'the least popular went');
});
