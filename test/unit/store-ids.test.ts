import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validate, version } from 'uuid';
import { itemPointId, segmentPointId, userPointId } from '../../src/store/ids.ts';

test('item ids are deterministic UUIDv5 and differ per video', () => {
  const a = itemPointId('video-1');
  assert.equal(a, itemPointId('video-1'));
  assert.ok(validate(a));
  assert.equal(version(a), 5);
  assert.notEqual(a, itemPointId('video-2'));
});

test('items, users and segments live in distinct namespaces', () => {
  const ids = new Set([itemPointId('x'), userPointId('x'), segmentPointId('x', 0)]);
  assert.equal(ids.size, 3);
});

test('segment ids depend on video and index', () => {
  assert.equal(segmentPointId('v', 3), segmentPointId('v', 3));
  assert.notEqual(segmentPointId('v', 3), segmentPointId('v', 4));
  assert.notEqual(segmentPointId('v', 0), segmentPointId('w', 0));
  // `v#1` + index 0 must not equal `v` + index 1 style collisions in practice
  assert.notEqual(segmentPointId('v#1', 0), segmentPointId('v', 1));
});
