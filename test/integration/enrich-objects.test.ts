/**
 * The COCO detector on the real parts: the converter (python3 -m montage_encoders.detector) on a copy
 * of a generation, the ONNX graph against the original TF.js model (@tensorflow/tfjs, CPU) on a real
 * photograph, detections on Debian's darknet photos, and object evidence with time ranges from a clip.
 * Needs darknet's photos, ffmpeg, python3-onnx and the npm registry once (npm pack into .cache/).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { detectObjects, ObjectDetector, objectsSpec } from '../../src/enrich/objects.ts';
import { loadManifest, type VerifiedGeneration } from '../../src/models/manifest.ts';
import { lazyTower } from '../../src/models/onnx.ts';
import { generationWithObjects, HUMAN_MODELS_DIR, type DetectorGeneration } from '../helpers/enrich-generation.ts';
import { missingFiles, photoPath, sceneClip, TEST_BOUNDS } from '../helpers/enrich-media.ts';

const quiet = pino({ level: 'silent' });

async function photoRgb(name: string): Promise<{ rgb: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(photoPath(name)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { rgb: new Uint8Array(data), width: info.width, height: info.height };
}

/** The original model, run by TF.js on its CPU backend from the files the converter read. */
async function tfjsDetections(pixels: Float32Array, size: number): Promise<Float32Array> {
  const json = JSON.parse(await readFile(join(HUMAN_MODELS_DIR, 'centernet.json'), 'utf8')) as {
    modelTopology: object;
    weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[];
  };
  const bin = await readFile(join(HUMAN_MODELS_DIR, 'centernet.bin'));
  await tf.setBackend('cpu');
  const model = await tf.loadGraphModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
      weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) as ArrayBuffer,
    }),
  );
  const out = model.execute(tf.tensor4d(pixels, [1, size, size, 3]), 'tower_0/detections') as tf.Tensor;
  const data = (await out.data()) as Float32Array;
  tf.dispose(out);
  model.dispose();
  return data;
}

describe('COCO detector (objects.onnx)', () => {
  let gen: DetectorGeneration;
  let verified: VerifiedGeneration;
  let detector: ObjectDetector;
  before(async () => {
    assert.deepEqual(missingFiles(), [], 'apt packages darknet and fonts-dejavu-core provide these files');
    gen = await generationWithObjects();
    verified = await loadManifest(gen.dir);
    detector = new ObjectDetector(verified, { provider: 'cpu', intraOpThreads: 1 }, quiet);
  });
  after(async () => {
    await detector?.close();
    await gen?.cleanup();
  });

  test('the converted generation verifies: schema, sha256 of objects.onnx and README, credit in the model card', async () => {
    const spec = objectsSpec(verified)!;
    assert.ok(spec, 'manifest has enrichment.objects');
    assert.equal(spec.classes.length, 80);
    assert.equal(spec.classes[16], 'dog');
    assert.equal(spec.classes[17], 'horse');
    assert.deepEqual(spec.input.shape, [1, 512, 512, 3]);
    const card = await readFile(join(gen.dir, 'README.md'), 'utf8');
    assert.equal(card.split('## Object detector (`objects.onnx`)').length, 2, 'the credit appears once');
    assert.match(card, /@vladmandic\/human-models.*MIT/s);
  });

  test('the ONNX graph matches the TF.js original on the dog photograph', async () => {
    const spec = objectsSpec(verified)!;
    const { rgb, width, height } = await photoRgb('dog');
    const pixels = await detector.preprocess(rgb, width, height);
    const want = await tfjsDetections(pixels, spec.input.shape[1]);
    const tower = lazyTower(join(gen.dir, spec.file), [spec.input.name], spec.output.name, { provider: 'cpu', intraOpThreads: 1 }, quiet);
    const got = await tower.run({ [spec.input.name]: { data: pixels, dims: spec.input.shape } });
    await tower.close();
    assert.equal(got.length, 100);
    // Every TF.js detection that counts (score >= 0.05) is in the ONNX output: same class, same box
    // within 0.05 input pixels, same score within 1e-3 (order may differ only between equal scores).
    let compared = 0;
    for (let i = 0; i < 100; i++) {
      const w = want.subarray(i * 6, i * 6 + 6);
      if (w[4]! < 0.05) continue;
      compared++;
      const match = got.find(
        (g) => g[5] === w[5] && Math.abs(g[4]! - w[4]!) < 1e-3 && [0, 1, 2, 3].every((k) => Math.abs(g[k]! - w[k]!) < 0.05),
      );
      assert.ok(match, `TF.js row ${i} [${[...w].map((v) => v.toFixed(3))}] has no ONNX counterpart`);
    }
    assert.ok(compared >= 10, `only ${compared} rows above 0.05 to compare`);
  });

  test('the dog photograph yields dog and bicycle; the horses photograph yields horse', async () => {
    const labels = async (name: string) => {
      const { rgb, width, height } = await photoRgb(name);
      return (await detector.detect(rgb, width, height)).map((d) => d.label);
    };
    const dog = await labels('dog');
    assert.ok(dog.includes('dog') && dog.includes('bicycle'), `dog.jpg: ${dog}`);
    const horses = await labels('horses');
    assert.ok(horses.includes('horse'), `horses.jpg: ${horses}`);
    assert.ok(!horses.includes('dog'), `horses.jpg: ${horses}`);
  });

  test('a clip of the dog photo then the horses photo gives dog and horse evidence with their time ranges', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'montage-objects-'));
    try {
      const file = join(tmp, 'two.mp4');
      await sceneClip(file, [
        { seconds: 4, background: { photo: 'dog' } },
        { seconds: 4, background: { photo: 'horses' } },
      ]);
      const { evidence, frames } = await detectObjects(file, detector, {
        sampling: { range: { startS: 0, endS: 8 }, width: 1280, height: 720, bounds: TEST_BOUNDS, label: 'two photos' },
      });
      assert.ok(frames >= 2 && frames <= 8, `${frames} frames detected`);
      const dog = evidence.find((e) => e.text === 'dog');
      const horse = evidence.find((e) => e.text === 'horse');
      assert.ok(dog && horse, `evidence: ${JSON.stringify(evidence.map((e) => [e.text, e.startS, e.endS]))}`);
      assert.equal(dog.kind, 'object');
      assert.ok(dog.startS === 0 && dog.endS <= 4.5, `dog ${dog.startS}-${dog.endS}`);
      assert.ok(horse.startS >= 3.5 && horse.startS <= 4.5 && horse.endS === 8, `horse ${horse.startS}-${horse.endS}`);
      assert.ok(dog.confidence >= objectsSpec(verified)!.score_threshold);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
