/** Pure logic of the evidence engines: merging readings, frame selection, detection decode, OCR lines, text metrics. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { evidenceInRange, type Evidence } from '../../src/enrich/index.ts';
import { mergeReadings, type FrameReading } from '../../src/enrich/merge.ts';
import { decodeDetections, iou, nms, type Detection, type ObjectsSpec } from '../../src/enrich/objects.ts';
import { changeScore, FrameSelector, outputSize, thumbnail, type Thumbnail } from '../../src/enrich/sampler.ts';
import { brightView, parseTsv, toLines, unionLines } from '../../src/enrich/tesseract.ts';
import { contentWords, editDistance, lineKey, lineSimilarity, normaliseWords, wordErrors } from '../../src/enrich/text.ts';

describe('text', () => {
  test('normalisation, edit distances, similarity, content words', () => {
    assert.deepEqual(normaliseWords("BREAKING NEWS: river's floods!"), ['breaking', 'news', 'rivers', 'floods']);
    assert.equal(lineKey('  Chapter 2 -- the  Horses. '), 'chapter 2 the horses');
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(wordErrors(['the', 'red', 'balloon'], ['the', 'red', 'soda', 'really']), 2);
    assert.equal(lineSimilarity('BREAKING NEWS:', 'breaking news'), 1);
    assert.ok(lineSimilarity('Walking the dog', 'Walking the dag') > 0.9);
    assert.ok(lineSimilarity('Walking the dog', 'Top 10 beaches') < 0.3);
    assert.deepEqual(contentWords(['the', 'dog', 'runs', 'along', 'the', 'beach']), ['runs', 'along', 'beach']);
  });
});

describe('mergeReadings', () => {
  const frame = (timeS: number, endS: number, ...lines: [string, number][]): FrameReading => ({
    timeS,
    endS,
    observations: lines.map(([text, confidence]) => ({ text, confidence })),
  });

  test('the same line on neighbouring frames is one item spanning them; the most confident reading wins', () => {
    const out = mergeReadings(
      [
        frame(0, 2, ['BREAKING NEWS:', 0.8]),
        frame(2, 4, ['BREAKING NEWS', 0.9], ['Live', 0.7]),
        frame(4, 6, ['BREAKING NEWS', 0.95]),
        frame(6, 8, ['Weather', 0.9]),
      ],
      { kind: 'ocr' },
    );
    assert.deepEqual(
      out.map((e) => [e.text, e.startS, e.endS, e.frames, e.confidence]),
      [
        ['BREAKING NEWS', 0, 6, 3, 0.95],
        ['Live', 2, 4, 1, 0.7],
        ['Weather', 6, 8, 1, 0.9],
      ],
    );
    assert.ok(out.every((e) => e.kind === 'ocr'));
  });

  test('a line missed on one frame continues; missed on two it starts again', () => {
    const once = mergeReadings([frame(0, 1, ['dog', 0.5]), frame(1, 2), frame(2, 3, ['dog', 0.6])], {
      kind: 'object',
      similarity: 1,
      containment: false,
    });
    assert.deepEqual(
      once.map((e) => [e.startS, e.endS, e.frames]),
      [[0, 3, 2]],
    );
    const twice = mergeReadings([frame(0, 1, ['dog', 0.5]), frame(1, 2), frame(2, 3), frame(3, 4, ['dog', 0.6])], {
      kind: 'object',
      similarity: 1,
    });
    assert.deepEqual(
      twice.map((e) => [e.startS, e.endS]),
      [
        [0, 1],
        [3, 4],
      ],
    );
  });

  test('a partial reading at the same place continues the line; the fuller reading is kept', () => {
    const at = (text: string, confidence: number, box: [number, number, number, number]) => ({ text, confidence, box });
    const line: [number, number, number, number] = [0.1, 0.7, 0.8, 0.8];
    const out = mergeReadings(
      [
        { timeS: 0, endS: 1, observations: [at('Chapter 3 The', 0.95, [0.1, 0.7, 0.4, 0.8])] },
        { timeS: 1, endS: 2, observations: [at('Chapter 3 The long road home', 0.93, line)] },
        { timeS: 2, endS: 3, observations: [at('long road home', 0.96, [0.45, 0.7, 0.8, 0.8]), at('road', 0.9, [0.1, 0.1, 0.2, 0.15])] },
      ],
      { kind: 'ocr' },
    );
    assert.deepEqual(
      out.map((e) => [e.text, e.startS, e.endS, e.frames]),
      [
        ['Chapter 3 The long road home', 0, 3, 3],
        ['road', 2, 3, 1],
      ],
      'a word elsewhere on the frame is another line',
    );
    const objects = mergeReadings(
      [
        { timeS: 0, endS: 1, observations: [at('hot dog', 0.5, line)] },
        { timeS: 1, endS: 2, observations: [at('dog', 0.5, line)] },
      ],
      { kind: 'object', similarity: 1, containment: false },
    );
    assert.equal(objects.length, 2, 'classes never merge by containment');
  });

  test('duplicates within a frame fold into one; exact matching keeps distinct classes apart', () => {
    const out = mergeReadings([frame(0, 1, ['horse', 0.6], ['horse', 0.7], ['house', 0.5])], {
      kind: 'object',
      similarity: 1,
      containment: false,
    });
    assert.deepEqual(
      out.map((e) => [e.text, e.confidence, e.frames]),
      [
        ['horse', 0.7, 1],
        ['house', 0.5, 1],
      ],
    );
  });
});

test('evidenceInRange keeps what overlaps a segment, clipped to it', () => {
  const e = (text: string, startS: number, endS: number): Evidence => ({ kind: 'ocr', text, startS, endS, confidence: 1, frames: 1 });
  assert.deepEqual(
    evidenceInRange([e('a', 0, 2), e('b', 1, 5), e('c', 4, 6), e('d', 2, 4)], { startS: 2, endS: 4 }).map((x) => [
      x.text,
      x.startS,
      x.endS,
    ]),
    [
      ['b', 2, 4],
      ['d', 2, 4],
    ],
  );
});

describe('frame selection', () => {
  const thumb = (values: number[]): Thumbnail => ({ cols: values.length, rows: 1, cells: Float32Array.from(values) });

  test('thumbnail averages cells; change counts cells moved past the threshold', () => {
    // 4x2 RGB frame: left half black, right half white -> 2x1 thumbnail [0, 1]
    const rgb = Uint8Array.from([0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255].concat([0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255]));
    const t = thumbnail(rgb, 4, 2, 2);
    assert.deepEqual([t.cols, t.rows, ...t.cells], [2, 1, 0, 1]);
    assert.equal(changeScore(thumb([0, 0, 0, 0]), thumb([0.5, 0.03, 0, 0.1]), 0.04), 0.5);
  });

  test('first frame kept, a change kept, a still picture not, a refresh after refreshS, the minimum gap respected', () => {
    const s = new FrameSelector({ minChange: 0.25, cellThreshold: 0.04, minGapS: 1, maxPerMinute: 60, refreshS: 10 });
    const a = thumb([0, 0, 0, 0]);
    const b = thumb([1, 1, 0, 0]);
    assert.equal(s.consider(0, a).reason, 'first');
    assert.equal(s.consider(0.5, b).reason, null, 'inside minGapS');
    assert.equal(s.consider(1, b).reason, 'change');
    assert.equal(s.consider(2, b).reason, null, 'same picture');
    assert.equal(s.consider(11, b).reason, 'refresh');
  });

  test('a picture that never stops changing is sampled evenly by the budget, after a short burst', () => {
    const s = new FrameSelector({ minChange: 0.25, minGapS: 1, maxPerMinute: 6, burst: 2, refreshS: 0 });
    const kept: number[] = [];
    for (let t = 0; t < 60; t++) if (s.consider(t, thumb([t, t])).reason) kept.push(t); // every frame differs from every other
    assert.deepEqual(kept, [0, 1, 2, 11, 21, 31, 41, 51]);
  });

  test('the change is measured against the last kept frame, so a slow drift adds up', () => {
    const s = new FrameSelector({ minChange: 0.5, cellThreshold: 0.1, minGapS: 0, refreshS: 0 });
    s.consider(0, thumb([0, 0]));
    assert.equal(s.consider(1, thumb([0.06, 0.06])).reason, null);
    assert.equal(s.consider(2, thumb([0.12, 0.12])).reason, 'change');
  });

  test('output size keeps the aspect, caps the width, and is even', () => {
    assert.deepEqual(outputSize(1920, 1080, 1280), { width: 1280, height: 720 });
    assert.deepEqual(outputSize(641, 481, 1280), { width: 640, height: 480 });
  });
});

describe('detection decode', () => {
  const spec = {
    input: { shape: [1, 100, 200, 3] },
    classes: ['person', 'dog', 'cat'],
    score_threshold: 0.3,
    nms_iou: 0.5,
    max_detections: 2,
  } as unknown as ObjectsSpec;
  const row = (...v: number[]) => Float32Array.from(v);

  test('threshold, normalised boxes clamped to the frame, class-agnostic NMS, cap', () => {
    const out = decodeDetections(
      [
        row(0, 0, 100, 50, 0.9, 1), // dog, left top quarter
        row(2, 2, 102, 52, 0.5, 2), // cat on the same place: suppressed
        row(150, 50, 250, 100, 0.4, 0), // person, right bottom, x2 past the edge
        row(0, 50, 50, 100, 0.35, 0), // a third kept box: over the cap
        row(0, 0, 10, 10, 0.2, 0), // under the threshold
        row(0, 0, 10, 10, 0.9, 7), // unknown class
      ],
      spec,
    );
    assert.deepEqual(
      out.map((d) => [d.label, d.score, d.box]),
      [
        ['dog', Math.fround(0.9), [0, 0, 0.5, 0.5]],
        ['person', Math.fround(0.4), [0.75, 0.5, 1, 1]],
      ],
    );
  });

  test('iou and nms', () => {
    assert.equal(iou([0, 0, 1, 1], [0, 0, 1, 1]), 1);
    assert.equal(iou([0, 0, 1, 1], [1, 1, 2, 2]), 0);
    assert.ok(Math.abs(iou([0, 0, 2, 1], [1, 0, 3, 1]) - 1 / 3) < 1e-12);
    const d = (score: number, x: number): Detection => ({ label: 'x', classIndex: 0, score, box: [x, 0, x + 1, 1] });
    assert.deepEqual(
      nms([d(0.5, 0.1), d(0.9, 0), d(0.7, 2)], 0.5).map((k) => k.score),
      [0.9, 0.7],
    );
  });
});

describe('OCR lines', () => {
  const tsv = [
    'level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext',
    '1\t1\t0\t0\t0\t0\t0\t0\t1280\t720\t-1\t',
    '4\t1\t1\t1\t1\t0\t80\t560\t900\t60\t-1\t',
    '5\t1\t1\t1\t1\t1\t80\t560\t300\t60\t96.5\tBREAKING',
    '5\t1\t1\t1\t1\t2\t400\t560\t200\t60\t97\tNEWS:',
    '5\t1\t1\t1\t1\t3\t620\t565\t20\t50\t30\triver',
    '5\t1\t2\t1\t1\t1\t10\t10\t20\t20\t91\t|',
    '5\t1\t3\t1\t1\t1\t10\t100\t40\t20\t88\tee',
  ].join('\n');

  test('TSV words, low-confidence words and letterless lines dropped, boxes normalised, reading order', () => {
    const words = parseTsv(tsv);
    assert.equal(words.length, 5);
    assert.deepEqual(words[0], { text: 'BREAKING', confidence: 0.965, box: [80, 560, 380, 620], line: '1.1.1' });
    const lines = toLines(words, 1280, 720);
    assert.equal(lines.length, 1, 'the "|" line has no letters, "ee" is under 3 letters');
    assert.equal(lines[0]!.text, 'BREAKING NEWS:');
    assert.ok(Math.abs(lines[0]!.confidence - 0.9675) < 1e-9);
    assert.deepEqual(lines[0]!.box, [80 / 1280, 560 / 720, 600 / 1280, 620 / 720]);
  });

  test('lines of two views on the same place: the more confident letters win; elsewhere both stay', () => {
    const a = { text: 'Wa che dog inthe', confidence: 0.83, box: [0.1, 0.7, 0.6, 0.8] as [number, number, number, number] };
    const b = { text: 'Walking the dog in the park', confidence: 0.96, box: [0.1, 0.7, 0.7, 0.8] as [number, number, number, number] };
    const c = { text: 'Live', confidence: 0.9, box: [0.1, 0.1, 0.2, 0.15] as [number, number, number, number] };
    assert.deepEqual(
      unionLines([[a, c], [b]]).map((l) => l.text),
      ['Live', 'Walking the dog in the park'],
    );
  });

  test('the bright view is a PGM: bright pixels black, the rest white', () => {
    const pgm = brightView(Uint8Array.from([255, 255, 255, 250, 250, 0, 10, 10, 10]), 3, 1, 215);
    const header = 'P5\n3 1\n255\n';
    assert.equal(pgm.subarray(0, header.length).toString(), header);
    assert.deepEqual([...pgm.subarray(header.length)], [0, 0, 255], 'white and yellow are text; dark is not');
  });
});
