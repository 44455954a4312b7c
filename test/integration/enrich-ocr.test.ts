/**
 * On-screen text on the real parts: ffmpeg drawtext makes the frames and clips, the real tesseract
 * reads them, the real ffmpeg samples the clips. Needs the apt packages ffmpeg, tesseract-ocr,
 * tesseract-ocr-eng, fonts-dejavu-core and darknet (photos): a missing one fails, never skips.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readOnScreenText } from '../../src/enrich/ocr.ts';
import { sampleFrames } from '../../src/enrich/sampler.ts';
import { readLines } from '../../src/enrich/tesseract.ts';
import { lineKey } from '../../src/enrich/text.ts';
import { missingFiles, sceneClip, TEST_BOUNDS, textFrame } from '../helpers/enrich-media.ts';

let tmp: string;
before(async () => {
  assert.deepEqual(missingFiles(), [], 'apt packages darknet and fonts-dejavu-core provide these files');
  tmp = await mkdtemp(join(tmpdir(), 'montage-ocr-'));
});
after(() => rm(tmp, { recursive: true, force: true }));

describe('reading a frame', () => {
  test('text burnt in on a plain background is read word for word', async () => {
    const rgb = await textFrame({ color: '0x203040' }, [{ text: 'BREAKING NEWS: river floods city', size: 56 }]);
    const lines = await readLines(rgb, 1280, 720, 'plain frame');
    assert.deepEqual(
      lines.map((l) => lineKey(l.text)),
      ['breaking news river floods city'],
    );
    assert.ok(lines[0]!.confidence > 0.8);
    const [x1, y1, x2, y2] = lines[0]!.box!;
    assert.ok(y1 > 0.7 && y2 < 0.9 && x1 < x2, `box ${lines[0]!.box}`);
  });

  test('outlined white text over a photograph is read (the bright view)', async () => {
    const rgb = await textFrame({ photo: 'dog' }, [{ text: 'Walking the dog in the park', size: 40, border: 2 }]);
    const lines = await readLines(rgb, 1280, 720, 'photo frame');
    assert.ok(
      lines.some((l) => lineKey(l.text) === 'walking the dog in the park'),
      `read: ${lines.map((l) => l.text)}`,
    );
  });

  test('dark text on a light background is read too', async () => {
    const rgb = await textFrame({ color: '0xf2efe6' }, [{ text: 'Top 10 beaches in Portugal', size: 40, color: '0x202020' }]);
    const lines = await readLines(rgb, 1280, 720, 'light frame');
    assert.deepEqual(
      lines.map((l) => lineKey(l.text)),
      ['top 10 beaches in portugal'],
    );
  });

  test('a photograph without text gives no line', async () => {
    const lines = await readLines(await textFrame({ photo: 'horses' }, []), 1280, 720, 'photo without text');
    assert.deepEqual(
      lines.map((l) => l.text),
      [],
    );
  });
});

describe('sampling and merging a clip', () => {
  let clip: string;
  before(async () => {
    clip = join(tmp, 'scenes.mp4');
    // 0-3 s: a photo; 3-7 s: a caption on a colour; 7-10 s: the same colour, a second caption added.
    await sceneClip(clip, [
      { seconds: 3, background: { photo: 'horses' } },
      { seconds: 4, background: { color: '0x203040' }, captions: [{ text: 'Montage finds the moment', size: 48 }] },
      {
        seconds: 3,
        background: { color: '0x203040' },
        captions: [
          { text: 'Montage finds the moment', size: 48 },
          { text: 'Filmed in Kent', size: 28, y: 80 },
        ],
      },
    ]);
  });

  test('the sampler keeps the first frame and the frames where the picture changed, nothing else', async () => {
    const kept = [];
    for await (const f of sampleFrames(clip, {
      range: { startS: 0, endS: 10 },
      width: 1280,
      height: 720,
      bounds: TEST_BOUNDS,
      label: 'scenes',
      refreshS: 0,
    })) {
      kept.push(f);
    }
    assert.deepEqual(
      kept.map((f) => f.reason),
      ['first', 'change', 'change'],
    );
    const [a, b, c] = kept.map((f) => f.timeS) as [number, number, number];
    assert.equal(a, 0);
    assert.ok(Math.abs(b - 3) <= 0.5, `second scene sampled at ${b}`);
    assert.ok(Math.abs(c - 7) <= 0.5, `small caption sampled at ${c}`);
    assert.deepEqual(
      kept.map((f) => f.endS),
      [b, c, 10],
    );
    assert.ok(kept.every((f) => f.width === 1280 && f.height === 720 && f.rgb.length === 1280 * 720 * 3));
  });

  test('a range in the middle is sampled from its own start', async () => {
    const kept = [];
    for await (const f of sampleFrames(clip, {
      range: { startS: 5, endS: 10 },
      width: 1280,
      height: 720,
      bounds: TEST_BOUNDS,
      label: 'scenes',
      maxWidth: 640,
      refreshS: 0,
    })) {
      kept.push(f);
    }
    assert.equal(kept[0]!.timeS, 5);
    assert.equal(kept[0]!.width, 640);
    assert.ok(kept.length === 2 && Math.abs(kept[1]!.timeS - 7) <= 0.5, `kept at ${kept.map((f) => f.timeS)}`);
  });

  test('each caption becomes one evidence item with its words and its time range', async () => {
    const { evidence, frames } = await readOnScreenText(clip, {
      sampling: { range: { startS: 0, endS: 10 }, width: 1280, height: 720, bounds: TEST_BOUNDS, label: 'scenes' },
    });
    assert.ok(frames >= 3 && frames <= 4, `${frames} frames read`);
    const moment = evidence.find((e) => lineKey(e.text) === 'montage finds the moment');
    const kent = evidence.find((e) => lineKey(e.text) === 'filmed in kent');
    assert.ok(moment && kent, `evidence: ${JSON.stringify(evidence.map((e) => [e.text, e.startS, e.endS]))}`);
    assert.equal(moment.kind, 'ocr');
    assert.ok(Math.abs(moment.startS - 3) <= 0.5 && moment.endS === 10, `moment ${moment.startS}-${moment.endS}`);
    assert.ok(Math.abs(kent.startS - 7) <= 0.5 && kent.endS === 10, `kent ${kent.startS}-${kent.endS}`);
    assert.ok(moment.frames >= 2, 'read on both frames that show it, merged into one item');
    assert.ok(
      !evidence.some((e) => e.startS < 2.5),
      `nothing read on the photo: ${JSON.stringify(evidence.filter((e) => e.startS < 2.5))}`,
    );
  });
});
