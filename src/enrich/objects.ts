/**
 * Objects seen in a video: the COCO detector a generation ships as `objects.onnx` (manifest section
 * `enrichment.objects`, written by `montage_encoders.detector`), run through src/models/onnx.ts.
 *
 * The graph returns the model's own decode: up to 100 rows of x1, y1, x2, y2 (input pixels), score,
 * class index, sorted by score. Here: keep scores >= `score_threshold`, then class-agnostic NMS at
 * `nms_iou` (CenterNet's max-pool peak picking leaves the same box under two classes, car/truck,
 * and near-duplicate peaks of one object), then at most `max_detections`; all three come from the
 * manifest and can be overridden per call. Frames come from the change sampler; the class names of
 * neighbouring frames merge into evidence items with time ranges.
 */
import { join } from 'node:path';
import sharp from 'sharp';
import { AppError } from '../errors/index.ts';
import type { Logger } from '../log.ts';
import type { VerifiedGeneration } from '../models/manifest.ts';
import { lazyTower, type RuntimeOptions, type Tower } from '../models/onnx.ts';
import { mergeReadings } from './merge.ts';
import { rangeProgress, sampleFrames, type SampleOptions } from './sampler.ts';
import type { Box, Evidence, Observation } from './types.ts';

/** `manifest.json` → `enrichment.objects` (schemas/manifest.schema.json, $defs.objects). */
export interface ObjectsSpec {
  file: string;
  input: { name: string; shape: [1, number, number, 3]; dtype: 'float32'; layout: 'NHWC' };
  output: { name: string; shape: [number, 6]; columns: string[]; boxes: 'input pixels' };
  preprocessing: { resize: 'fill'; interpolation: string; channel_order: 'RGB'; scale: string };
  classes: string[];
  score_threshold: number;
  nms_iou: number;
  max_detections: number;
}

export interface Detection {
  label: string;
  classIndex: number;
  /** 0..1 */
  score: number;
  /** Normalised to the frame. */
  box: Box;
}

export interface DecodeOptions {
  /** @defaultValue the manifest's score_threshold */
  scoreThreshold?: number;
  /** @defaultValue the manifest's nms_iou */
  nmsIou?: number;
  /** @defaultValue the manifest's max_detections */
  maxDetections?: number;
}

/** The generation's detector section, or null when it ships none. Shape errors are MODEL_INVALID. */
export function objectsSpec(generation: VerifiedGeneration): ObjectsSpec | null {
  const spec = (generation.raw.enrichment as { objects?: ObjectsSpec } | undefined)?.objects;
  if (!spec) return null;
  const files = generation.raw.files as Record<string, string>;
  if (!(spec.file in files)) {
    throw new AppError('MODEL_INVALID', `enrichment.objects.file ${spec.file} is not listed in manifest.files`, {
      field: 'enrichment.objects.file',
    });
  }
  const [, h, w, c] = spec.input.shape;
  if (c !== 3 || !(h > 0 && w > 0) || spec.output.shape[1] !== 6) {
    throw new AppError(
      'MODEL_INVALID',
      `enrichment.objects shapes [${spec.input.shape}] -> [${spec.output.shape}] are not [1,H,W,3] -> [N,6]`,
      {
        field: 'enrichment.objects',
      },
    );
  }
  return spec;
}

export function iou(a: Box, b: Box): number {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/** Greedy class-agnostic non-maximum suppression; input in any order, output by score. */
export function nms(detections: Detection[], iouThreshold: number): Detection[] {
  const kept: Detection[] = [];
  for (const d of [...detections].sort((a, b) => b.score - a.score)) {
    if (kept.every((k) => iou(k.box, d.box) <= iouThreshold)) kept.push(d);
  }
  return kept;
}

/** The graph's rows → detections: threshold, NMS, cap. Pure. */
export function decodeDetections(rows: Float32Array[], spec: ObjectsSpec, opts: DecodeOptions = {}): Detection[] {
  const [, h, w] = spec.input.shape;
  const threshold = opts.scoreThreshold ?? spec.score_threshold;
  const clamp = (v: number) => Math.min(1, Math.max(0, v));
  const candidates: Detection[] = [];
  for (const r of rows) {
    const [x1, y1, x2, y2, score, cls] = r as unknown as [number, number, number, number, number, number];
    const label = spec.classes[cls];
    if (!(score >= threshold) || label === undefined) continue;
    candidates.push({ label, classIndex: cls, score, box: [clamp(x1 / w), clamp(y1 / h), clamp(x2 / w), clamp(y2 / h)] });
  }
  return nms(candidates, opts.nmsIou ?? spec.nms_iou).slice(0, opts.maxDetections ?? spec.max_detections);
}

/** The detector of one generation: a lazily opened ONNX session plus the manifest's decode settings. */
export class ObjectDetector {
  readonly spec: ObjectsSpec;
  private readonly tower: Tower;

  constructor(generation: VerifiedGeneration, runtime: RuntimeOptions, log: Logger) {
    const spec = objectsSpec(generation);
    if (!spec) throw new AppError('TOWER_MISSING', `generation ${generation.info.name} ships no object detector (enrichment.objects)`);
    this.spec = spec;
    this.tower = lazyTower(join(generation.dir, spec.file), [spec.input.name], spec.output.name, runtime, log);
  }

  /** The model's input: the frame stretched to H x W (bilinear), RGB 0..255 as float32, NHWC. */
  async preprocess(rgb: Uint8Array, width: number, height: number): Promise<Float32Array> {
    const [, h, w] = this.spec.input.shape;
    const resized = await sharp(rgb, { raw: { width, height, channels: 3 } })
      .resize(w, h, { fit: 'fill', kernel: 'linear' })
      .raw()
      .toBuffer();
    return Float32Array.from(resized);
  }

  async detect(rgb: Uint8Array, width: number, height: number, opts: DecodeOptions = {}): Promise<Detection[]> {
    const pixels = await this.preprocess(rgb, width, height);
    const rows = await this.tower.run({ [this.spec.input.name]: { data: pixels, dims: this.spec.input.shape } });
    return decodeDetections(rows, this.spec, opts);
  }

  close(): Promise<void> {
    return this.tower.close();
  }
}

/** Sampling defaults for objects: a frame a second checked, and a look at least every 4 s. */
export const OBJECT_SAMPLING: Partial<SampleOptions> = { fps: 1, minGapS: 1, maxPerMinute: 30, refreshS: 4, maxWidth: 640 };

export interface ObjectEvidenceOptions extends DecodeOptions {
  /** Range, source size, bounds and label are required; the rest defaults to OBJECT_SAMPLING. */
  sampling: SampleOptions;
  /** Called after each frame with the share of the range done (0..1), for job progress. */
  onProgress?: (fraction: number) => void;
}

/** Objects in `file` over the sampled range, merged across neighbouring frames. */
export async function detectObjects(
  file: string,
  detector: ObjectDetector,
  opts: ObjectEvidenceOptions,
): Promise<{ evidence: Evidence[]; frames: number }> {
  const readings = [];
  for await (const frame of sampleFrames(file, { ...OBJECT_SAMPLING, ...opts.sampling })) {
    const found = await detector.detect(frame.rgb, frame.width, frame.height, opts);
    const observations: Observation[] = found.map((d) => ({ text: d.label, confidence: d.score, box: d.box }));
    readings.push({ timeS: frame.timeS, endS: frame.endS, observations });
    opts.onProgress?.(rangeProgress(frame.endS, opts.sampling.range));
  }
  return { evidence: mergeReadings(readings, { kind: 'object', similarity: 1, containment: false }), frames: readings.length };
}
