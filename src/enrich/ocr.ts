/**
 * On-screen text of a video: tesseract on the frames where the picture changes (sampler.ts), the
 * same line on neighbouring frames merged into one evidence item with its time range (merge.ts).
 * Cost is bounded by the sampler: at most `maxPerMinute` frames a minute (default 20), each about
 * 0.5-1.3 s of one core at 1280x720.
 */
import { mergeReadings, type FrameReading } from './merge.ts';
import { rangeProgress, sampleFrames, type SampleOptions } from './sampler.ts';
import { readLines, type LineOptions, type TesseractOptions, type ViewOptions } from './tesseract.ts';
import type { Evidence } from './types.ts';

/** Sampling defaults for OCR: two frames a second checked, at most 20 read a minute. */
export const OCR_SAMPLING: Partial<SampleOptions> = { fps: 2, minGapS: 1, maxPerMinute: 20, refreshS: 10, maxWidth: 1280 };

export interface OcrOptions {
  /** Range, source size, bounds and label are required; the rest defaults to OCR_SAMPLING. */
  sampling: SampleOptions;
  tesseract?: TesseractOptions & LineOptions & ViewOptions;
  /** Readings at least this similar on neighbouring frames are one line. @defaultValue 0.8 */
  similarity?: number;
  /** Called after each frame read with the share of the range done (0..1), for job progress. */
  onProgress?: (fraction: number) => void;
}

/** Lines of on-screen text in `file` over the sampled range. */
export async function readOnScreenText(file: string, opts: OcrOptions): Promise<{ evidence: Evidence[]; frames: number }> {
  const readings: FrameReading[] = [];
  for await (const frame of sampleFrames(file, { ...OCR_SAMPLING, ...opts.sampling })) {
    const doing = `tesseract on ${opts.sampling.label} at ${frame.timeS.toFixed(2)} s`;
    const observations = await readLines(frame.rgb, frame.width, frame.height, doing, opts.tesseract);
    readings.push({ timeS: frame.timeS, endS: frame.endS, observations });
    opts.onProgress?.(rangeProgress(frame.endS, opts.sampling.range));
  }
  return { evidence: mergeReadings(readings, { kind: 'ocr', similarity: opts.similarity ?? 0.8 }), frames: readings.length };
}
