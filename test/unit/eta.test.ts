import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DECAY, ETA_SEED, fitStage } from '../../jobs/eta.ts';

const none = { w: 0, x: 0, y: 0, xx: 0, xy: 0 };

/** Decayed sums of (duration, seconds) points, oldest first, as the Redis script keeps them. */
function sums(points: Array<[number, number]>) {
  const s = { ...none };
  for (const [x, y] of points) {
    s.w = s.w * DECAY + 1;
    s.x = s.x * DECAY + x;
    s.y = s.y * DECAY + y;
    s.xx = s.xx * DECAY + x * x;
    s.xy = s.xy * DECAY + x * y;
  }
  return s;
}

test('with no jobs seen, the fit is the seed', () => {
  const f = fitStage(none, ETA_SEED.extract);
  assert.ok(Math.abs(f.fixed - ETA_SEED.extract.fixed) < 1e-9 && Math.abs(f.perS - ETA_SEED.extract.perS) < 1e-9, JSON.stringify(f));
});

test('jobs of several lengths on a line (fixed 1 s + 0.05 s per video second) pull the fit to that line', () => {
  const pts: Array<[number, number]> = [5, 20, 40, 10, 30, 15, 60, 8].map((x) => [x, 1 + 0.05 * x]);
  const f = fitStage(sums(pts), ETA_SEED.extract);
  // The seed still counts as half a job: the fit is close to the data's line, not equal to it.
  assert.ok(Math.abs(f.fixed + f.perS * 60 - 4) / 4 < 0.15, `60 s predicted ${f.fixed + f.perS * 60}`);
  assert.ok(Math.abs(f.fixed + f.perS * 5 - 1.25) / 1.25 < 0.15, `5 s predicted ${f.fixed + f.perS * 5}`);
});

test('jobs all of one length: the seed line scaled through the time seen at that length', () => {
  const f = fitStage(sums(Array.from({ length: 6 }, (): [number, number] => [10, 2])), ETA_SEED.extract);
  assert.ok(Math.abs(f.fixed + f.perS * 10 - 2) < 1e-9, `10 s predicted ${f.fixed + f.perS * 10}`);
  assert.ok(Math.abs(f.perS / f.fixed - ETA_SEED.extract.perS / ETA_SEED.extract.fixed) < 1e-9, 'the seed line, scaled');
});

test('slope and intercept never go negative', () => {
  const f = fitStage(
    sums([
      [5, 3],
      [50, 0.1],
      [100, 0.1],
    ]),
    ETA_SEED.encode,
  );
  assert.ok(f.fixed >= 0 && f.perS >= 0, JSON.stringify(f));
});
