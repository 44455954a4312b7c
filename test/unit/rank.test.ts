import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mmr, groupMoments } from '../../src/search/rank.ts';
import { dot } from '../../src/vectors.ts';

function unit(...xs: number[]): Float32Array {
  const v = Float32Array.from(xs);
  const n = Math.sqrt(dot(v, v));
  return v.map((x) => x / n);
}

test('mmr with diversity 0 keeps the relevance order', () => {
  const c = [
    { id: 'a', score: 0.9, vector: unit(1, 0, 0) },
    { id: 'b', score: 0.8, vector: unit(1, 0.01, 0) },
    { id: 'c', score: 0.5, vector: unit(0, 1, 0) },
  ];
  assert.deepEqual(
    mmr(c, 3, 0).map((x) => x.id),
    ['a', 'b', 'c'],
  );
});

test('mmr with diversity 1 returns no two near-duplicates when distinct items exist', () => {
  const c = [
    { id: 'a', score: 0.9, vector: unit(1, 0, 0) },
    { id: 'a2', score: 0.89, vector: unit(1, 0.02, 0) },
    { id: 'a3', score: 0.88, vector: unit(1, 0, 0.02) },
    { id: 'b', score: 0.5, vector: unit(0, 1, 0) },
    { id: 'c', score: 0.4, vector: unit(0, 0, 1) },
  ];
  const out = mmr(c, 3, 1).map((x) => x.id);
  assert.deepEqual(out.sort(), ['a', 'b', 'c']);
  // A mild diversity still puts the best first.
  assert.equal(mmr(c, 3, 0.3)[0]!.id, 'a');
});

test('groupMoments merges adjacent strong segments and ranks videos by their best moment', () => {
  const g = groupMoments([
    { videoId: 'v1', startS: 4, endS: 6, score: 0.8 },
    { videoId: 'v1', startS: 6, endS: 8, score: 0.78 },
    { videoId: 'v1', startS: 0, endS: 2, score: 0.2 },
    { videoId: 'v2', startS: 0, endS: 2, score: 0.9 },
  ]);
  assert.deepEqual(
    g.map((x) => x.videoId),
    ['v2', 'v1'],
  );
  assert.deepEqual(g[1]!.moments, [{ startS: 4, endS: 8, score: 0.8 }]);
});
