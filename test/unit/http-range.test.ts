import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRange } from '../../src/server/routes/ops.ts';

test('byte ranges: closed, open-ended, suffix, clamped, and the unsatisfiable ones', () => {
  assert.deepEqual(parseRange('bytes=0-99', 1000), [0, 99]);
  assert.deepEqual(parseRange('bytes=500-', 1000), [500, 999]);
  assert.deepEqual(parseRange('bytes=-100', 1000), [900, 999]);
  assert.deepEqual(parseRange('bytes=900-5000', 1000), [900, 999]);
  assert.equal(parseRange('bytes=1000-', 1000), null);
  assert.equal(parseRange('bytes=5-2', 1000), null);
  assert.equal(parseRange('bytes=-', 1000), null);
  assert.equal(parseRange('bytes=0-1,5-6', 1000), null);
  assert.equal(parseRange('items=0-1', 1000), null);
});
