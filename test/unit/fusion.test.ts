import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAppError } from '../../src/errors/index.ts';
import { DEFAULT_FUSION_WEIGHTS, fuseSegment, fuseVideo, renormalisedWeights } from '../../src/fusion/index.ts';
import { unit } from '../../src/vectors.ts';

const D = 8;
/** The unit basis vector e_k of dimension D. */
const e = (k: number) => Float32Array.from({ length: D }, (_, i) => (i === k ? 1 : 0));
const norm = (v: Float32Array) => Math.hypot(...v);
const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const close = (a: number, b: number, msg?: string) => assert.ok(Math.abs(a - b) < 1e-6, `${msg ?? ''} ${a} vs ${b}`);

test('weights are renormalised over the modalities present', () => {
  assert.deepEqual(renormalisedWeights(['video', 'audio', 'text']), { video: 0.5, audio: 0.2, text: 0.3 });
  const w = renormalisedWeights(['video', 'text']);
  close(w.video!, 0.5 / 0.8);
  close(w.text!, 0.3 / 0.8);
  assert.deepEqual(renormalisedWeights(['audio']), { audio: 1 });
});

test('bad weights are refused', () => {
  assert.throws(
    () => renormalisedWeights(['video'], { video: -1, audio: 0, text: 0 }),
    (e) => isAppError(e) && e.code === 'CONFIG_INVALID',
  );
  assert.throws(
    () => renormalisedWeights(['audio'], { video: 1, audio: 0, text: 0 }),
    (e) => isAppError(e) && e.code === 'CONFIG_INVALID',
  );
  assert.throws(() => renormalisedWeights(['text'], { video: 1, audio: 1, text: Number.NaN }), /CONFIG|weight/);
});

test('a segment vector is the weighted sum of its towers, unit norm', () => {
  const v = fuseSegment({ video: e(0), audio: e(1) });
  close(norm(v), 1);
  // Orthogonal inputs: the components keep the ratio of the weights, 0.5 : 0.2.
  close(v[0]! / v[1]!, 0.5 / 0.2);
  assert.deepEqual(fuseSegment({ video: e(3) }), e(3));
  assert.deepEqual(fuseSegment({ audio: e(2) }), e(2));
});

test('a silent video is not penalised for its missing audio', () => {
  const text = e(2);
  const silent = fuseVideo([{ video: e(0) }, { video: e(0) }], text);
  close(norm(silent.fused), 1);
  assert.deepEqual(silent.modalities, ['video', 'text']);
  assert.equal(silent.audio, undefined);
  // Same as fusing with weights renormalised over video and text only.
  close(silent.fused[0]! / silent.fused[2]!, 0.5 / 0.3);
  // Against a query that is pure video, the silent item scores higher than the full one: its
  // video share is 0.5/0.8 of the weight, not 0.5/1.0, instead of zero audio dragging it down.
  const full = fuseVideo([{ video: e(0), audio: e(1) }], text);
  assert.ok(dot(silent.fused, e(0)) > dot(full.fused, e(0)));
});

test('per-modality item vectors are renormalised segment means', () => {
  const a = unit(Float32Array.from([1, 1, 0, 0, 0, 0, 0, 0]))!;
  const out = fuseVideo([{ video: e(0), audio: e(4) }, { video: e(1), audio: e(4) }, { video: a }]);
  close(norm(out.video!), 1);
  close(norm(out.audio!), 1);
  // mean of e0, e1 and (e0+e1)/sqrt2 points along e0+e1.
  close(out.video![0]!, Math.SQRT1_2);
  close(out.video![1]!, Math.SQRT1_2);
  // Audio is averaged over the two segments that have it, not diluted by the one without.
  assert.deepEqual(out.audio, e(4));
  assert.deepEqual(out.modalities, ['video', 'audio']);
  assert.equal(out.text, undefined);
});

test('the fused vector follows the weights', () => {
  const segs = [{ video: e(0), audio: e(1) }];
  const text = e(2);
  const def = fuseVideo(segs, text);
  close(norm(def.fused), 1);
  const expected = unit(Float32Array.from([0.5, 0.2, 0.3, 0, 0, 0, 0, 0]))!;
  for (let i = 0; i < D; i++) close(def.fused[i]!, expected[i]!, `component ${i}`);
  const textOnly = fuseVideo(segs, text, { video: 0, audio: 0, text: 1 });
  assert.deepEqual(textOnly.fused, e(2));
  assert.deepEqual(textOnly.modalities, ['video', 'audio', 'text'], 'all present, even at weight 0');
  assert.equal(DEFAULT_FUSION_WEIGHTS.video + DEFAULT_FUSION_WEIGHTS.audio + DEFAULT_FUSION_WEIGHTS.text, 1);
});

test('a text vector that is not unit norm is normalised; text alone is a valid item', () => {
  const out = fuseVideo([], Float32Array.from([0, 0, 3, 4, 0, 0, 0, 0]));
  close(norm(out.text!), 1);
  assert.deepEqual(out.fused, out.text);
  assert.deepEqual(out.modalities, ['text']);
});

test('nothing to fuse, or mixed dimensions, is an error', () => {
  assert.throws(
    () => fuseVideo([{}], undefined),
    (err) => isAppError(err) && err.code === 'INTERNAL',
  );
  assert.throws(() => fuseSegment({}), /no modality/);
  assert.throws(
    () => fuseSegment({ video: e(0), audio: new Float32Array(4).fill(0.5) }),
    (err) => isAppError(err) && err.code === 'VECTOR_DIMENSION',
  );
});
