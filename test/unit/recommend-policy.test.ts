/** The recommendation policy's pure parts: the blend by history length, interleaving, new-item slots, arms, config. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignArm, interleave, newItemSlots, personalQuery, personalShare, placeNewItems } from '../../src/recommend/policy.ts';
import { parseExperiments } from '../../src/config/index.ts';
import { matches } from '../../src/recommend/service.ts';
import { WatchedCache } from '../../src/recommend/watched-cache.ts';
import type { ItemHit } from '../../src/store/types.ts';

test('the personal share grows linearly with history and is full at personalAt', () => {
  assert.equal(personalShare(0, 10), 0);
  assert.equal(personalShare(3, 10), 0.3);
  assert.equal(personalShare(10, 10), 1);
  assert.equal(personalShare(500, 10), 1);
});

test('interleave keeps the share in every prefix, skips repeats, and fills from the other list when one runs out', () => {
  const a = ['a1', 'a2', 'a3', 'a4'];
  const b = ['b1', 'a1', 'b2', 'b3', 'b4'];
  const out = interleave(a, b, 0.5, 6, (x) => x);
  assert.deepEqual(out, ['a1', 'b1', 'a2', 'b2', 'a3', 'b3']);
  assert.deepEqual(
    interleave(a, b, 0, 3, (x) => x),
    ['b1', 'a1', 'b2'],
  );
  assert.deepEqual(
    interleave(a, b, 1, 6, (x) => x),
    ['a1', 'a2', 'a3', 'a4', 'b1', 'b2'],
  );
  const quarter = interleave(a, b, 0.25, 4, (x) => x);
  assert.equal(quarter.filter((x) => x.startsWith('a')).length, 1, 'a quarter of 4');
  assert.equal(new Set(quarter).size, quarter.length);
});

test('new-item slots: a rounded share with at least one when on, none when off; placed spread, list length kept', () => {
  assert.equal(newItemSlots(10, 0.2), 2);
  assert.equal(newItemSlots(3, 0.1), 1);
  assert.equal(newItemSlots(10, 0), 0);
  const placed = placeNewItems(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9', 'm10'], ['n1', 'n2'], 10);
  assert.equal(placed.length, 10);
  assert.deepEqual([placed.indexOf('n1'), placed.indexOf('n2')], [2, 7]);
  assert.deepEqual(placeNewItems(['m1'], ['n1', 'n2'], 4), ['m1', 'n1', 'n2']);
});

test('arms: deterministic per subject, independent per experiment, and shared by weight', () => {
  const exp = parseExperiments('{"cold":{"arms":[{"name":"personal"},{"name":"popular","mode":"popular","weight":3}]}}').cold!;
  assert.equal(assignArm('cold', exp, 'alice').name, assignArm('cold', exp, 'alice').name);
  let popular = 0;
  for (let i = 0; i < 4000; i++) if (assignArm('cold', exp, `u${i}`).name === 'popular') popular++;
  assert.ok(Math.abs(popular / 4000 - 0.75) < 0.03, `popular arm share ${popular / 4000}`);
  let same = 0;
  for (let i = 0; i < 1000; i++) if (assignArm('cold', exp, `u${i}`).name === assignArm('other', exp, `u${i}`).name) same++;
  assert.ok(same < 800, `experiments are hashed independently (${same} of 1000 agree; 625 expected)`);
});

test('experiments config is refused at boot when it could not be served', () => {
  assert.deepEqual(parseExperiments(undefined), {});
  assert.throws(() => parseExperiments('{'), /not JSON/);
  assert.throws(() => parseExperiments('{"x":{"arms":[]}}'), /non-empty arms/);
  assert.throws(() => parseExperiments('{"x":{"arms":[{"name":"a","mode":"nope"}]}}'), /mode/);
  assert.throws(() => parseExperiments('{"x":{"arms":[{"name":"a","newItemShare":2}]}}'), /newItemShare/);
});

test('the in-memory filter agrees with the search filter fields', () => {
  const p = {
    videoId: 'v',
    title: 't',
    description: '',
    tags: ['Cats', 'dogs'],
    durationS: 5,
    uploadedAt: 1000,
    modalities: ['video' as const, 'audio' as const],
    generation: 'g',
    sha256: 's',
  };
  assert.ok(matches(p, { tagsAny: ['cats'], durationMinS: 5, modalities: ['video'] }));
  assert.ok(!matches(p, { tagsAll: ['cats', 'birds'] }));
  assert.ok(!matches(p, { durationMaxS: 4 }));
  assert.ok(!matches(p, { uploadedAfter: 1001 }));
  assert.ok(!matches(p, { modalities: ['text'] }));
  assert.ok(!matches(p, { excludeVideoIds: ['v'] }));
});

test('the personal query mixes the user vector with the watched centroid by the history weight', () => {
  const u = Float32Array.from([1, 0, 0]);
  const w1 = Float32Array.from([0, 1, 0]);
  const w2 = Float32Array.from([0, 0, 1]);
  assert.deepEqual(personalQuery(u, [w1, w2], 0), u, 'weight 0: the tower alone');
  const q = personalQuery(u, [w1, w2], 0.5)!;
  assert.ok(Math.abs(Math.hypot(...q) - 1) < 1e-6);
  assert.ok(Math.abs(q[0]! - q[1]! * Math.SQRT2) < 1e-6, 'half the user, half the unit centroid');
  assert.ok(Math.abs(q[1]! - q[2]!) < 1e-6);
  const c = personalQuery(undefined, [w1, w2], 0.5)!;
  assert.ok(Math.abs(c[1]! - Math.SQRT1_2) < 1e-6 && c[0] === 0, 'no user vector: the centroid');
  assert.equal(personalQuery(undefined, [], 0.5), undefined);
  assert.equal(personalQuery(u, [], 0.5), u);
});

test('the watched-items cache serves fresh entries, reloads past the ttl, and keeps its bound', async () => {
  const cache = new WatchedCache(1000, 2);
  let loads = 0;
  const load = async (ids: string[]) =>
    ids.map((id) => {
      loads++;
      return id === 'gone' ? null : { videoId: id, score: 1, payload: { title: `t-${id}` } as ItemHit['payload'] };
    });
  assert.deepEqual(
    (await cache.get(['a', 'gone'], load, 0)).map((i) => i?.title ?? null),
    ['t-a', null],
  );
  await cache.get(['a', 'gone'], load, 500);
  assert.equal(loads, 2, 'fresh entries, the missing one included, are not reloaded');
  await cache.get(['a'], load, 1500);
  assert.equal(loads, 3, 'past the ttl it reloads');
  await cache.get(['b', 'c'], load, 1500);
  await cache.get(['a'], load, 1600);
  assert.equal(loads, 6, 'the oldest entry went past the bound');
});
