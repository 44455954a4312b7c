/**
 * Frames for the video tower, in ONE ffmpeg pass over the whole video.
 *
 * Sampling: frame i of segment s belongs to time s*seg + (i+0.5)*seg/T (the model contract).
 * ffmpeg's fps filter at rate R = T/seg with its default rounding ("near") maps an input frame at
 * time t to output slot round(t*R) and emits, for slot k, the last input frame whose slot is <= k:
 * that is the frame on screen just before (k+0.5)/R, exactly the contract's sample time. So the
 * chain needs no offset, only `setpts=PTS-STARTPTS` so slot 0 starts at the first frame.
 *
 * The pipe carries rawvideo rgb24 frames of size*size*3 bytes; they are cut into segments as they
 * arrive, so memory holds one segment at a time however long the video is.
 */
import { AppError } from '../errors/index.ts';
import { fileInput, hardenedInputArgs } from './limits.ts';
import { startFfmpeg } from './run.ts';
import type { FrameOptions, MediaBounds, SegmentFrames } from './types.ts';

/** FrameOptions plus how the run is bounded (deadline, `-format_whitelist`), and who hears of each frame. */
export type ExtractFrameOptions = FrameOptions &
  MediaBounds & {
    /** Called as each frame arrives, with the frames seen and the frames the probed duration promises (progress). */
    onFrame?: (seen: number, expected: number) => void;
  };

export interface SegmentPlan {
  /** Seconds between two samples: segmentSeconds / framesPerSegment. */
  stepS: number;
  /** Sample times (k+0.5)*step that fall inside the video: frames ffmpeg is asked for. */
  samples: number;
  /** Segments, the last one partial when `samples` is not a multiple of framesPerSegment. */
  segments: number;
}

/** How many samples and segments a video of `durationS` gives. Always at least one of each. */
export function planSegments(durationS: number, segmentSeconds: number, framesPerSegment: number): SegmentPlan {
  const stepS = segmentSeconds / framesPerSegment;
  // Samples at (k+0.5)*step < duration; the epsilon keeps 2.0 s / 0.5 s from rounding to 5.
  const samples = Math.max(1, Math.ceil(durationS / stepS - 0.5 - 1e-9));
  return { stepS, samples, segments: Math.ceil(samples / framesPerSegment) };
}

/** The fps rate as an exact fraction ffmpeg accepts (`4/2`, `4000/1500`). */
function rate(framesPerSegment: number, segmentSeconds: number): string {
  const den = Math.round(segmentSeconds * 1000);
  return den % 1000 === 0 ? `${framesPerSegment}/${den / 1000}` : `${framesPerSegment * 1000}/${den}`;
}

/**
 * The filter chain: sample, convert to RGB, then resize. Sampling comes first so the scaler only
 * sees the few frames kept; RGB comes before the resize so a 1-pixel-wide video has no chroma
 * subsampling to round to zero.
 * - fill: stretch to size x size (the contract's default).
 * - cover: crop the centred square of the displayed picture, then scale.
 * - contain: scale the longer side to size, pad with black.
 */
export function frameFilter(opts: Pick<FrameOptions, 'framesPerSegment' | 'segmentSeconds' | 'size' | 'resize'>): string {
  const s = opts.size;
  const head = `setpts=PTS-STARTPTS,fps=fps=${rate(opts.framesPerSegment, opts.segmentSeconds)},format=rgb24`;
  const scale = `scale=w=${s}:h=${s}:flags=bilinear`;
  switch (opts.resize) {
    case 'fill':
      return `${head},${scale}`;
    case 'cover':
      return `${head},crop=w='min(iw,ih/sar)':h='min(ih,iw*sar)',${scale}`;
    case 'contain':
      return (
        `${head},scale=w='if(gte(dar,1),${s},max(1,round(${s}*dar)))':h='if(gte(dar,1),max(1,round(${s}/dar)),${s})'` +
        `:flags=bilinear,setsar=1,pad=w=${s}:h=${s}:x=(ow-iw)/2:y=(oh-ih)/2:color=black`
      );
  }
}

/** Output arguments shared by extraction and the ffmpeg floor, so both do the same work. */
export function frameOutputArgs(opts: FrameOptions): string[] {
  const plan = planSegments(opts.durationS, opts.segmentSeconds, opts.framesPerSegment);
  return [...firstVideoStreamArgs(frameFilter(opts)), '-frames:v', String(plan.samples)];
}

/**
 * The first video stream alone (no audio, subtitles or data) through `filter`, its frames passed through as the
 * filter made them: the fps filter already set the rate, so the muxer must not dup or drop.
 */
export function firstVideoStreamArgs(filter: string): string[] {
  return ['-map', '0:v:0', '-an', '-sn', '-dn', '-vf', filter, '-fps_mode', 'passthrough'];
}

/**
 * Streams the segments of `file` as they are decoded. Breaking out of the loop kills ffmpeg.
 * The last segment is filled by repeating its last frame; a video that decodes fewer frames than
 * its probed duration promised ends early (the segments it has are still right).
 */
export async function* iterateSegments(file: string, opts: ExtractFrameOptions, label: string): AsyncGenerator<SegmentFrames> {
  const { segmentSeconds: seg, framesPerSegment: T, size } = opts;
  const frameBytes = size * size * 3;
  const run = startFfmpeg({
    input: fileInput(file),
    inputOptions: ['-nostdin', '-hide_banner', '-loglevel', 'error', ...hardenedInputArgs(opts)],
    outputOptions: [...frameOutputArgs(opts), '-pix_fmt', 'rgb24', '-f', 'rawvideo'],
    timeoutMs: opts.timeoutMs,
    doing: `ffmpeg frames on ${label}`,
  });
  const makeSegment = (index: number, frames: Uint8Array[]): SegmentFrames => ({
    index,
    startS: index * seg,
    endS: Math.min(opts.durationS, (index + 1) * seg),
    frames,
    width: size,
    height: size,
  });
  let frames: Uint8Array[] = [];
  let index = 0;
  let finished = false;
  let seen = 0;
  const expected = planSegments(opts.durationS, seg, T).samples;
  try {
    for await (const frame of cutFrames(run.stdout!, frameBytes)) {
      opts.onFrame?.(++seen, expected);
      frames.push(frame);
      if (frames.length < T) continue;
      yield makeSegment(index++, frames);
      frames = [];
    }
    await run.done;
    finished = true;
  } finally {
    // Stopped early (the caller broke out, or threw): reap the child before returning.
    if (!finished) {
      run.kill();
      await run.done.catch(() => {});
    }
  }
  if (frames.length > 0) {
    while (frames.length < T) frames.push(frames[frames.length - 1]!);
    yield makeSegment(index++, frames);
  }
  if (index === 0) throw new AppError('CORRUPT_MEDIA', `ffmpeg frames on ${label} failed: no frame could be decoded`);
}

/** Every segment of `file` at once. Prefer iterateSegments for long videos in a pipeline. */
export async function extractFrames(file: string, opts: ExtractFrameOptions, label: string): Promise<SegmentFrames[]> {
  const out: SegmentFrames[] = [];
  for await (const segment of iterateSegments(file, opts, label)) out.push(segment);
  return out;
}

/** Cuts a byte stream into fixed-size frames; a trailing partial frame is dropped. */
export async function* cutFrames(stream: AsyncIterable<Buffer>, frameBytes: number): AsyncGenerator<Uint8Array> {
  let frame = new Uint8Array(frameBytes);
  let filled = 0;
  for await (const chunk of stream) {
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(frameBytes - filled, chunk.length - at);
      frame.set(chunk.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === frameBytes) {
        yield frame;
        frame = new Uint8Array(frameBytes);
        filled = 0;
      }
    }
  }
}
