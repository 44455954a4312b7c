/**
 * Frames where the picture changes, for the engines that are too slow to run on every frame (OCR
 * at ~0.5 s a frame, the detector at ~0.1 s).
 *
 * One ffmpeg pass (through src/media's runner, with its hardened input arguments) decodes the
 * range at `fps` frames a second, scaled to at most `maxWidth`, as RGB24. Each frame is reduced to
 * a grey thumbnail `THUMB_COLS` cells wide (box average), and compared with the thumbnail of the
 * last frame KEPT (not the previous frame, so a slow pan or a fade adds up until it counts). A frame
 * is kept when the share of cells whose mean grey level moved by more than `cellThreshold` reaches
 * `minChange`, at least `minGapS` after the last kept frame, and when the frame budget allows; the
 * first frame is always kept, and a frame `refreshS` after the last kept one is kept even without a
 * change, so a change below the threshold is not missed for long.
 *
 * The budget is a token bucket: `maxPerMinute` tokens a minute, at most `burst` saved. A picture that
 * changes all the time (a pan, a zoom, handheld footage) is therefore sampled evenly, every
 * 60/maxPerMinute seconds, rather than spending a minute's budget in its first seconds and going
 * blind for the rest (what a "N in any 60 s" window does); a few cuts in a row still get a frame each.
 *
 * A 14-character line of 24 px text appearing at 720p changes 0.4-0.5% of the 64x36 cells (on a
 * plain colour and on a photograph); a 48 px line about 1%. Averaging 20x20 pixels per cell, x264
 * noise or sensor noise on a still picture moves no cell by 4% grey. Hence minChange 0.2% (5 cells)
 * and cellThreshold 0.04. Each kept frame stands for the video from its time to the next kept frame's.
 */
import { AppError } from '../errors/index.ts';
import { fileInput, hardenedInputArgs } from '../media/limits.ts';
import { cutFrames, firstVideoStreamArgs } from '../media/frames.ts';
import { startFfmpeg } from '../media/run.ts';
import type { MediaLimits } from '../media/types.ts';
import type { SampledFrame, TimeRange } from './types.ts';

/** Columns of the change thumbnail (rows follow the aspect ratio). */
export const THUMB_COLS = 64;

export interface SelectOptions {
  /** Share of thumbnail cells that must change for a frame to count as new. @defaultValue 0.002 */
  minChange?: number;
  /** A cell changed when its mean grey level moved by more than this (0..1). @defaultValue 0.04 */
  cellThreshold?: number;
  /** Seconds between two kept frames at least. @defaultValue 1 */
  minGapS?: number;
  /** Kept frames a minute on average (the bucket's refill rate). @defaultValue 20 */
  maxPerMinute?: number;
  /** Frames the bucket can save up for a run of changes; the first frame is free. @defaultValue max(2, maxPerMinute / 10) */
  burst?: number;
  /** Keep a frame this long after the last kept one even without a change; 0 = never. @defaultValue 10 */
  refreshS?: number;
}

export interface SampleOptions extends SelectOptions {
  /** The part of the video to sample, in seconds. */
  range: TimeRange;
  /** The video's width and height as probed. */
  width: number;
  height: number;
  /** Frames are scaled down to at most this width (kept frames are handed to the engines at this size). @defaultValue 1280 */
  maxWidth?: number;
  /** Frames a second decoded and checked for change. @defaultValue 2 */
  fps?: number;
  /** ffmpeg's deadline and the containers it may open: the service's media config, no default here. */
  bounds: Pick<MediaLimits, 'timeoutMs' | 'allowedContainers'>;
  /** For messages: `ffmpeg sampling on <label>`. */
  label: string;
}

/** A grey thumbnail: cols x rows cell means in 0..1. */
export interface Thumbnail {
  cols: number;
  rows: number;
  cells: Float32Array;
}

/** Box-averaged grey thumbnail of an RGB24 frame (ITU-R 601 luma weights). */
export function thumbnail(rgb: Uint8Array, width: number, height: number, cols = THUMB_COLS): Thumbnail {
  const c = Math.min(cols, width);
  const r = Math.max(1, Math.min(height, Math.round((c * height) / width)));
  const sums = new Float64Array(c * r);
  const counts = new Uint32Array(c * r);
  for (let y = 0; y < height; y++) {
    const cy = Math.min(r - 1, Math.floor((y * r) / height));
    for (let x = 0; x < width; x++) {
      const cx = Math.min(c - 1, Math.floor((x * c) / width));
      const p = (y * width + x) * 3;
      sums[cy * c + cx]! += 0.299 * rgb[p]! + 0.587 * rgb[p + 1]! + 0.114 * rgb[p + 2]!;
      counts[cy * c + cx]!++;
    }
  }
  return { cols: c, rows: r, cells: Float32Array.from(sums, (s, i) => s / counts[i]! / 255) };
}

/** Share of cells whose grey level moved by more than cellThreshold. */
export function changeScore(a: Thumbnail, b: Thumbnail, cellThreshold: number): number {
  if (a.cells.length !== b.cells.length) return 1;
  let changed = 0;
  for (let i = 0; i < a.cells.length; i++) if (Math.abs(a.cells[i]! - b.cells[i]!) > cellThreshold) changed++;
  return changed / a.cells.length;
}

/** The keep/skip decision, frame by frame (pure; the time of each frame is given). */
export class FrameSelector {
  private last: Thumbnail | undefined;
  private lastS = -Infinity;
  private tokens: number;
  private tokensAtS = 0;
  private readonly o: Required<SelectOptions>;

  constructor(opts: SelectOptions = {}) {
    this.o = {
      minChange: opts.minChange ?? 0.002,
      cellThreshold: opts.cellThreshold ?? 0.04,
      minGapS: opts.minGapS ?? 1,
      maxPerMinute: opts.maxPerMinute ?? 20,
      burst: opts.burst ?? Math.max(2, (opts.maxPerMinute ?? 20) / 10),
      refreshS: opts.refreshS ?? 10,
    };
    if (this.o.maxPerMinute <= 0) throw new AppError('INVALID_FIELD', 'maxPerMinute must be positive', { field: 'maxPerMinute' });
    if (this.o.burst < 1) throw new AppError('INVALID_FIELD', 'burst must be at least 1', { field: 'burst' });
    this.tokens = this.o.burst;
  }

  /** Returns why the frame is kept, or null; `change` is its score against the last kept frame. */
  consider(timeS: number, thumb: Thumbnail): { reason: SampledFrame['reason'] | null; change: number } {
    if (!this.last) return this.keep(timeS, thumb, 'first', 1);
    const change = changeScore(this.last, thumb, this.o.cellThreshold);
    if (timeS - this.lastS < this.o.minGapS) return { reason: null, change };
    this.tokens = Math.min(this.o.burst, this.tokens + ((timeS - this.tokensAtS) * this.o.maxPerMinute) / 60);
    this.tokensAtS = timeS;
    if (this.tokens < 1 - 1e-9) return { reason: null, change }; // 10 x 0.1 s worth of tokens is a whole one
    if (change >= this.o.minChange) return this.keep(timeS, thumb, 'change', change);
    if (this.o.refreshS > 0 && timeS - this.lastS >= this.o.refreshS) return this.keep(timeS, thumb, 'refresh', change);
    return { reason: null, change };
  }

  private keep(timeS: number, thumb: Thumbnail, reason: SampledFrame['reason'], change: number) {
    if (reason !== 'first') this.tokens -= 1;
    this.last = thumb;
    this.lastS = timeS;
    this.tokensAtS = timeS;
    return { reason, change };
  }
}

/** Share of `range` covered up to `timeS` (0..1), for job progress. */
export function rangeProgress(timeS: number, range: TimeRange): number {
  return Math.min(1, Math.max(0, (timeS - range.startS) / (range.endS - range.startS)));
}

/** Output size: the probed size scaled to at most maxWidth, both sides even (what yuv scalers want). */
export function outputSize(width: number, height: number, maxWidth: number): { width: number; height: number } {
  const w = Math.max(2, Math.min(maxWidth, width) & ~1);
  const h = Math.max(2, Math.round((w * height) / width / 2) * 2);
  return { width: w, height: h };
}

/**
 * Streams the kept frames of `file` within `opts.range`, each once its span is known (the next kept
 * frame's time, or the end of the range). Breaking out of the loop kills ffmpeg.
 */
export async function* sampleFrames(file: string, opts: SampleOptions): AsyncGenerator<SampledFrame> {
  const { startS, endS } = opts.range;
  if (!(endS > startS) || startS < 0) {
    throw new AppError('INVALID_FIELD', `sampling range [${startS}, ${endS}] is empty`, { field: 'range' });
  }
  const fps = opts.fps ?? 2;
  const size = outputSize(opts.width, opts.height, opts.maxWidth ?? 1280);
  const frameBytes = size.width * size.height * 3;
  const run = startFfmpeg({
    input: fileInput(file),
    inputOptions: [
      '-nostdin',
      '-hide_banner',
      '-loglevel',
      'error',
      ...hardenedInputArgs(opts.bounds),
      '-ss',
      String(startS),
      '-t',
      String(endS - startS),
    ],
    outputOptions: [
      ...firstVideoStreamArgs(`setpts=PTS-STARTPTS,fps=fps=${fps},scale=w=${size.width}:h=${size.height}:flags=area,format=rgb24`),
      '-pix_fmt',
      'rgb24',
      '-f',
      'rawvideo',
    ],
    timeoutMs: opts.bounds.timeoutMs,
    doing: `ffmpeg sampling on ${opts.label}`,
  });
  const selector = new FrameSelector(opts);
  let pending: SampledFrame | undefined;
  let decoded = 0;
  let index = 0;
  let finished = false;
  try {
    for await (const rgb of cutFrames(run.stdout!, frameBytes)) {
      const timeS = startS + decoded++ / fps;
      if (timeS >= endS) break;
      const { reason, change } = selector.consider(timeS, thumbnail(rgb, size.width, size.height));
      if (!reason) continue;
      if (pending) yield { ...pending, endS: timeS };
      pending = { index: index++, timeS, endS, width: size.width, height: size.height, rgb, reason, change };
    }
    // A file whose tail does not decode still gave the frames before it; a timeout is always an error.
    await run.done.catch((err: unknown) => {
      if (decoded === 0 || (err instanceof AppError && err.code === 'MEDIA_TIMEOUT')) throw err;
    });
    finished = true;
  } finally {
    if (!finished) {
      run.kill();
      await run.done.catch(() => {});
    }
  }
  if (pending) yield pending;
  if (decoded === 0)
    throw new AppError('CORRUPT_MEDIA', `ffmpeg sampling on ${opts.label} failed: no frame decoded in [${startS}, ${endS}]`);
}
