/**
 * The evidence engines: what a video shows (COCO objects), reads (on-screen text) and says (no
 * engine yet: see README.md, speech). Each engine takes a video file and a time range and returns
 * evidence items `{ kind, text, startS, endS, confidence, frames, box? }`; the enrich job runs each
 * as its own stage, so one engine's failure names itself and leaves the others' evidence.
 *
 *   readOnScreenText(file, { sampling: { range, width, height, label } })        → OCR evidence
 *   detectObjects(file, new ObjectDetector(generation, runtime, log), { sampling }) → object evidence
 *   evidenceInRange(evidence, segment)                                             → a segment's share
 */
import type { Evidence, TimeRange } from './types.ts';

export type { Box, Evidence, EvidenceKind, Observation, SampledFrame, TimeRange } from './types.ts';
export { readOnScreenText, OCR_SAMPLING, type OcrOptions } from './ocr.ts';
export {
  detectObjects,
  ObjectDetector,
  objectsSpec,
  OBJECT_SAMPLING,
  type Detection,
  type ObjectsSpec,
  type ObjectEvidenceOptions,
} from './objects.ts';
export { sampleFrames, type SampleOptions, type SelectOptions } from './sampler.ts';
export { mergeReadings, type FrameReading, type MergeOptions } from './merge.ts';
export { readLines, type TesseractOptions, type LineOptions, type ViewOptions } from './tesseract.ts';
export { runEngine, type EngineFailure, type EngineRun } from './engine.ts';

/**
 * The evidence that overlaps `range` (a segment), clipped to it, for per-segment vectors and moments.
 * An item touching the range only at an end point is not in it.
 */
export function evidenceInRange(evidence: Evidence[], range: TimeRange): Evidence[] {
  return evidence
    .filter((e) => e.startS < range.endS && e.endS > range.startS)
    .map((e) => ({ ...e, startS: Math.max(e.startS, range.startS), endS: Math.min(e.endS, range.endS) }));
}
