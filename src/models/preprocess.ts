/**
 * Turns frames and PCM into the exact tensors the manifest describes. The arithmetic mirrors
 * the trainer's (float32 x/255, then (x - mean) / std per channel) so the Node side reproduces
 * the PyTorch inputs bit for bit on the golden frames.
 */
import sharp from 'sharp';
import { AppError } from '../errors/index.ts';
import type { AudioPreprocessing, FrameSegment, VideoPreprocessing } from './types.ts';

/** 256 normalised values per channel: a lookup beats three float ops per sub-pixel. */
export function channelTables(video: VideoPreprocessing): Float32Array[] {
  return [0, 1, 2].map((c) => {
    const mean = Math.fround(video.mean[c]!);
    const std = Math.fround(video.std[c]!);
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) table[v] = Math.fround(Math.fround(Math.fround(v / 255) - mean) / std);
    return table;
  });
}

/** Scales one RGB24 frame to size x size with sharp, using the manifest's resize mode. */
export async function resizeFrame(
  frame: Uint8Array,
  width: number,
  height: number,
  size: number,
  fit: VideoPreprocessing['resize'],
): Promise<Uint8Array> {
  if (frame.length !== width * height * 3) {
    throw new AppError('INVALID_FIELD', `frame has ${frame.length} bytes, expected ${width}x${height}x3`);
  }
  if (width === size && height === size) return frame;
  const out = await sharp(frame, { raw: { width, height, channels: 3 } })
    .resize(size, size, { fit, background: { r: 0, g: 0, b: 0 } })
    .raw()
    .toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** Writes one HWC frame into the CHW slot at `offset` of the NTCHW tensor. */
function writeFrame(out: Float32Array, offset: number, rgb: Uint8Array, plane: number, tables: Float32Array[]): void {
  const [r, g, b] = tables as [Float32Array, Float32Array, Float32Array];
  for (let p = 0; p < plane; p++) {
    out[offset + p] = r[rgb[3 * p]!]!;
    out[offset + plane + p] = g[rgb[3 * p + 1]!]!;
    out[offset + 2 * plane + p] = b[rgb[3 * p + 2]!]!;
  }
}

/** Segments -> float32 [batch, T, 3, S, S]. Every segment must carry exactly T frames. */
export async function framesToTensor(
  segments: FrameSegment[],
  video: VideoPreprocessing,
  tables = channelTables(video),
): Promise<Float32Array> {
  const { frame_size: s, frames_per_segment: t } = video;
  const plane = s * s;
  const out = new Float32Array(segments.length * t * 3 * plane);
  for (const [i, seg] of segments.entries()) {
    if (seg.frames.length !== t) {
      throw new AppError('INVALID_FIELD', `segment ${i} has ${seg.frames.length} frames, the generation needs ${t}`);
    }
    for (const [j, frame] of seg.frames.entries()) {
      const rgb = await resizeFrame(frame, seg.width, seg.height, s, video.resize);
      writeFrame(out, (i * t + j) * 3 * plane, rgb, plane, tables);
    }
  }
  return out;
}

/** PCM segments -> float32 [batch, samples], zero-padded or cut (the trainer pads with silence). */
export function audioToTensor(segments: Float32Array[], audio: AudioPreprocessing): Float32Array {
  const n = audio.samples;
  const out = new Float32Array(segments.length * n);
  segments.forEach((pcm, i) => out.set(pcm.length > n ? pcm.subarray(0, n) : pcm, i * n));
  return out;
}

/**
 * Any image file (JPEG, PNG, WebP...) -> a segment of the still image repeated T times, at
 * frame_size, so a photo can query the video tower as a motionless clip.
 */
export async function imageToSegment(image: Uint8Array, video: VideoPreprocessing): Promise<FrameSegment> {
  const s = video.frame_size;
  let rgb: Buffer;
  try {
    rgb = await sharp(image)
      .rotate() // honour EXIF orientation as a viewer would
      .removeAlpha()
      .toColourspace('srgb')
      .resize(s, s, { fit: video.resize, background: { r: 0, g: 0, b: 0 } })
      .raw()
      .toBuffer();
  } catch (err) {
    throw new AppError('UNSUPPORTED_MEDIA', `the image could not be decoded: ${(err as Error).message}`, { cause: err });
  }
  const frame = new Uint8Array(rgb.buffer, rgb.byteOffset, rgb.length);
  return { frames: Array.from({ length: video.frames_per_segment }, () => frame), width: s, height: s };
}
