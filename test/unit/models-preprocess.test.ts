import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { audioToTensor, framesToTensor, imageToSegment } from '../../src/models/preprocess.ts';
import { inBatches, packUsers } from '../../src/models/batch.ts';
import { loadTokenizer } from '../../src/models/tokenizer.ts';
import type { VideoPreprocessing } from '../../src/models/types.ts';
import { ROOT } from '../helpers/generation.ts';

const video: VideoPreprocessing = {
  frame_size: 2,
  frames_per_segment: 2,
  segment_seconds: 1,
  mean: [0.5, 0.25, 0],
  std: [0.5, 0.25, 1],
  layout: 'NTCHW',
  resize: 'fill',
};

test('frames become NTCHW with (x/255 - mean)/std per channel', async () => {
  // 2x2 frames, pixel p of frame f has RGB (10p+f, 255, 0)
  const frame = (f: number) => Uint8Array.from([0, 1, 2, 3].flatMap((p) => [10 * p + f, 255, 0]));
  const out = await framesToTensor([{ frames: [frame(0), frame(1)], width: 2, height: 2 }], video);
  assert.equal(out.length, 1 * 2 * 3 * 2 * 2);
  const at = (t: number, c: number, y: number, x: number) => out[((t * 3 + c) * 2 + y) * 2 + x]!;
  const f32 = Math.fround;
  assert.equal(at(1, 0, 1, 0), f32(f32(f32(21 / 255) - 0.5) / 0.5)); // frame 1, red, pixel 2
  assert.equal(at(0, 1, 0, 1), f32(f32(1 - 0.25) / 0.25)); // green 255
  assert.equal(at(0, 2, 1, 1), 0); // blue 0, mean 0, std 1
});

test('a frame that is not frame_size square is resized with sharp', async () => {
  const big = new Uint8Array(8 * 4 * 3).fill(255); // 8x4 white
  const out = await framesToTensor([{ frames: [big, big], width: 8, height: 4 }], video);
  assert.equal(out.length, 2 * 3 * 4);
  assert.ok(out.every((v, i) => Math.abs(v - [1, 3, 1][Math.floor(i / 4) % 3]!) < 1e-6));
});

test('a segment with the wrong frame count or byte size is refused', async () => {
  await assert.rejects(framesToTensor([{ frames: [new Uint8Array(12)], width: 2, height: 2 }], video), /needs 2/);
  await assert.rejects(framesToTensor([{ frames: [new Uint8Array(5), new Uint8Array(5)], width: 2, height: 2 }], video), /5 bytes/);
});

test('audio is zero-padded or cut to samples', () => {
  const out = audioToTensor([Float32Array.from([1, 2]), Float32Array.from([1, 2, 3, 4, 5])], {
    sample_rate: 8000,
    segment_seconds: 1,
    samples: 3,
  });
  assert.deepEqual([...out], [1, 2, 0, 1, 2, 3]);
});

test('an image file becomes T copies of a frame_size RGB frame', async () => {
  // a greyscale PNG with alpha: the decoder must still hand the tower opaque RGB
  const grey = await sharp({ create: { width: 5, height: 3, channels: 4, background: { r: 128, g: 128, b: 128, alpha: 0.5 } } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
  assert.equal((await sharp(grey).metadata()).channels, 2);
  const seg = await imageToSegment(grey, { ...video, frames_per_segment: 3 });
  assert.equal(seg.frames.length, 3);
  assert.equal(seg.width, 2);
  assert.equal(seg.frames[0]!.length, 2 * 2 * 3);
  assert.ok(seg.frames[0]!.every((v) => Math.abs(v - 128) <= 1));
  await assert.rejects(imageToSegment(Buffer.from('not an image'), video), { code: 'UNSUPPORTED_MEDIA' });
});

test('inBatches splits, keeps order and rejects a bad batch size', async () => {
  const sizes: number[] = [];
  const out = await inBatches([1, 2, 3, 4, 5], 2, async (s) => (sizes.push(s.length), s.map((x) => x * 10)));
  assert.deepEqual(out, [10, 20, 30, 40, 50]);
  assert.deepEqual(sizes, [2, 2, 1]);
  await assert.rejects(
    inBatches([1], 0, async (s) => s),
    { code: 'CONFIG_INVALID' },
  );
});

test('packUsers left-pads, keeps the newest items and scales ages', () => {
  const v = (x: number) => Float32Array.from([x, -x]);
  const p = packUsers(
    [
      { items: [v(1)], ageSeconds: [60] },
      { items: [v(1), v(2), v(3), v(4)], ageSeconds: [400, 300, 200, 100] },
    ],
    3,
    2,
    100,
  );
  assert.deepEqual([...p.mask], [0, 0, 1, 1, 1, 1]);
  assert.deepEqual([...p.items], [0, 0, 0, 0, 1, -1, 2, -2, 3, -3, 4, -4]);
  assert.deepEqual(
    [...p.age].map((a) => Math.round(a * 100) / 100),
    [0, 0, 0.6, 3, 2, 1],
  );
  assert.throws(() => packUsers([{ items: [v(1)], ageSeconds: [] }], 3, 2, 1), { code: 'INVALID_FIELD' });
  assert.throws(() => packUsers([{ items: [Float32Array.of(1)], ageSeconds: [1] }], 3, 2, 1), { code: 'VECTOR_DIMENSION' });
});

test('the tokenizer loads offline from the folder, lowercases, pads and truncates', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'montage-tok-'));
  try {
    const special = (id: number, content: string) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    });
    await writeFile(
      join(dir, 'tokenizer.json'),
      JSON.stringify({
        version: '1.0',
        truncation: null,
        padding: null,
        added_tokens: [special(0, '[PAD]'), special(1, '[UNK]')],
        normalizer: { type: 'Lowercase' },
        pre_tokenizer: { type: 'Whitespace' },
        post_processor: null,
        decoder: null,
        model: { type: 'WordLevel', vocab: { '[PAD]': 0, '[UNK]': 1, a: 2, red: 3, circle: 4, ',': 5 }, unk_token: '[UNK]' },
      }),
    );
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ pad_token: '[PAD]', unk_token: '[UNK]' }));
    const tok = await loadTokenizer(dir, 5);
    const b = tok.encode(['A RED circle, blue', 'red red red red red red']);
    assert.deepEqual(b.dims, [2, 5]);
    assert.deepEqual([...b.inputIds].map(Number), [2, 3, 4, 5, 1, 3, 3, 3, 3, 3]);
    assert.deepEqual([...b.attentionMask].map(Number), [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    const short = tok.encode(['circle']);
    assert.deepEqual([...short.inputIds].map(Number), [4, 0, 0, 0, 0]);
    assert.deepEqual([...short.attentionMask].map(Number), [1, 0, 0, 0, 0]);
    await assert.rejects(loadTokenizer(join(dir, 'nope'), 5), { code: 'MODEL_INVALID' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('unknown words are those the tokenizer does not know whole: [UNK] (word level) or split into pieces (WordPiece)', async () => {
  const open = await loadTokenizer(join(ROOT, 'encoders/generations/mtg-2026.12-cpu'), 32);
  assert.equal(open.unknownShare('a dog running on the beach'), 0);
  assert.equal(open.unknownShare('zorblax quuxified flimflam'), 1, 'made-up words become subword pieces, not [UNK]');
  assert.equal(open.unknownShare('red zorblax'), 0.5);
  assert.equal(open.unknownShare('  ...  '), 0);
  const closed = await loadTokenizer(join(ROOT, 'encoders/generations/mtg-2026.11-cpu'), 32);
  assert.equal(closed.unknownShare('red circle'), 0);
  assert.equal(closed.unknownShare('red puppy'), 0.5, 'the procedural corpus never said puppy');
});
