/** The pure parts of `montage export-training`: the .npy writer, the segment sampling and the captions. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { captionsOf, npy, sampleSegments } from '../../src/training/export.ts';

test('npy writes a numpy 1.0 header padded so the data starts on a 64-byte boundary, then the raw data', () => {
  const data = new Float32Array([1, -2.5, 3, 4, 5, 6]);
  const buf = npy(data, [2, 3]);
  assert.equal(buf.subarray(0, 6).toString('latin1'), '\x93NUMPY');
  const headerLen = buf.readUInt16LE(8);
  assert.equal((10 + headerLen) % 64, 0);
  const header = buf.toString('latin1', 10, 10 + headerLen);
  assert.match(header, /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
  const body = buf.subarray(10 + headerLen);
  assert.deepEqual(Array.from(new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length))), Array.from(data));
  assert.match(npy(new Uint8Array(4), [4]).toString('latin1', 10, 80), /'descr': '\|u1'.*'shape': \(4,\)/);
});

test('sampleSegments keeps every segment of a short video and spreads the kept ones over a long one', () => {
  assert.deepEqual(sampleSegments(3, 8), [0, 1, 2]);
  assert.deepEqual(sampleSegments(100, 4), [12, 37, 62, 87]);
  assert.equal(new Set(sampleSegments(9, 8)).size, 8);
});

test('captionsOf: the whole text as the ingest encodes it, the title alone, each evidence line, without repeats', () => {
  const rec = { title: 'Harbour tour', description: 'boats at dawn', tags: ['sea', 'travel'] };
  const evidence = [
    { kind: 'ocr' as const, text: 'PORT OF CALL', startS: 0, endS: 2, confidence: 0.9 },
    { kind: 'object' as const, text: 'boat', startS: 1, endS: 3, confidence: 0.8 },
    { kind: 'object' as const, text: 'boat', startS: 5, endS: 6, confidence: 0.7 },
  ];
  assert.deepEqual(captionsOf(rec, { evidence }), ['Harbour tour. boats at dawn. sea travel', 'Harbour tour', 'PORT OF CALL', 'boat']);
  assert.deepEqual(captionsOf({ title: 'only', description: '', tags: [] }), ['only']);
});
