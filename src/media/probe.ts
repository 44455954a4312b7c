/**
 * ffprobe, hardened, and the rules a video must pass before it is decoded.
 *
 * ffprobe is spawned with execFile rather than through fluent-ffmpeg's `ffprobe()`: fluent's
 * probe exposes no child and no timeout, and a probe is where a hostile file is met first, so it
 * must be killable. The argv is fixed; the only variable part is our own stored path.
 *
 * Which refusal is which (clients switch on the code):
 * - UNSUPPORTED_MEDIA (415): we cannot tell the file is a video we accept. Not media at all
 *   (text, random bytes, an empty file), a still image (png_pipe, image2), an audio-only file, a
 *   container or codec off the allowlist.
 * - CORRUPT_MEDIA (422): the file says it is an allowed container (its magic bytes, or a probe
 *   that found one) but cannot be read: a truncated mp4 whose index is gone, no dimensions, no
 *   duration. Extraction that decodes no frame at all also ends here.
 */
import { execFile } from 'node:child_process';
import { open, stat } from 'node:fs/promises';
import { AppError, wrap } from '../errors/index.ts';
import { allowedName, fileInput, hardenedInputArgs } from './limits.ts';
import type { MediaBounds, MediaLimits, ProbeResult } from './types.ts';

/** MediaLimits plus the size cap the upload already enforces; checked again here for files from disk. */
export type ProbeLimits = MediaLimits & {
  /** Refuse files above this many bytes with UPLOAD_TOO_LARGE. @defaultValue no cap */
  maxSizeBytes?: number;
};

let ffprobePath = 'ffprobe';
/** Where ffprobe is found: `ffprobe` on PATH until the runtime sets the configured one (FFPROBE_PATH). */
export function setFfprobePath(path: string): void {
  ffprobePath = path;
}

/** The subset of `ffprobe -print_format json -show_format -show_streams` that we read. */
export interface FfprobeStream {
  index: number;
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  duration?: string;
  disposition?: { attached_pic?: number };
}
export interface FfprobeOutput {
  streams?: FfprobeStream[];
  format?: { format_name?: string; duration?: string; nb_streams?: number };
}

/** Probes `file` and checks it against `limits`. `label` names the file in messages (a video id). */
export async function probe(file: string, limits: ProbeLimits, label: string = file): Promise<ProbeResult> {
  const sizeBytes = await checkFile(file, limits, label);
  const raw = await runFfprobe(file, limits, label);
  return validateProbe(raw, limits, sizeBytes, label);
}

async function checkFile(file: string, limits: ProbeLimits, label: string): Promise<number> {
  const st = await stat(file).catch((err: unknown) => {
    throw wrap('INTERNAL', `stat on ${label}`, err);
  });
  // A fifo or a device would make ffprobe block or read forever; uploads are regular files.
  if (!st.isFile()) throw new AppError('UNSUPPORTED_MEDIA', `ffprobe on ${label} failed: not a regular file`);
  if (st.size === 0) throw new AppError('UNSUPPORTED_MEDIA', `ffprobe on ${label} failed: the file is empty`);
  if (limits.maxSizeBytes !== undefined && st.size > limits.maxSizeBytes) {
    throw new AppError('UPLOAD_TOO_LARGE', `${label} is ${st.size} bytes, above the cap of ${limits.maxSizeBytes}`);
  }
  return st.size;
}

/** Runs ffprobe with a SIGKILL deadline and returns its parsed JSON. */
export async function runFfprobe(file: string, limits: MediaBounds, label: string): Promise<FfprobeOutput> {
  const args = [
    '-v',
    'error',
    '-hide_banner',
    ...hardenedInputArgs(limits),
    '-print_format',
    'json',
    '-show_format',
    '-show_streams',
    fileInput(file),
  ];
  try {
    const stdout = await execFfprobe(args, limits.timeoutMs);
    return JSON.parse(stdout) as FfprobeOutput;
  } catch (err) {
    throw await classifyProbeFailure(err, file, limits, label);
  }
}

function execFfprobe(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const opts = { timeout: timeoutMs, killSignal: 'SIGKILL' as const, maxBuffer: 8 << 20, windowsHide: true };
    const child = execFile(ffprobePath, args, opts, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const why = stderr.trim().split('\n').slice(-3).join(' | ') || err.message;
      reject(Object.assign(new Error(why, { cause: err }), { killed: err.killed, signal: err.signal, code: err.code }));
    });
    child.stdin?.end();
  });
}

async function classifyProbeFailure(err: unknown, file: string, limits: MediaBounds, label: string): Promise<AppError> {
  const e = err as Error & { killed?: boolean; signal?: string; code?: unknown };
  const doing = `ffprobe on ${label}`;
  if (e.killed || e.signal === 'SIGKILL') {
    return new AppError('MEDIA_TIMEOUT', `${doing} failed: killed after ${limits.timeoutMs} ms`, { cause: err });
  }
  if (e.code === 'ENOENT' || e.code === 'EACCES') return wrap('INTERNAL', doing, err); // no ffprobe: ours, retry
  if (/not on whitelist/.test(e.message)) return wrap('UNSUPPORTED_MEDIA', doing, err);
  const claims = await sniffContainer(file);
  const allowed = claims !== null && allowedName(claims, limits.allowedContainers);
  return wrap(allowed ? 'CORRUPT_MEDIA' : 'UNSUPPORTED_MEDIA', doing, err);
}

/**
 * The container the first bytes claim, if any. Used only after ffprobe failed, to tell a broken
 * video (CORRUPT_MEDIA) from something that never was one (UNSUPPORTED_MEDIA).
 */
export async function sniffContainer(file: string): Promise<string | null> {
  const fh = await open(file, 'r');
  const head = Buffer.alloc(192);
  try {
    await fh.read(head, 0, head.length, 0);
  } finally {
    await fh.close();
  }
  const ascii = (at: number, n: number) => head.toString('latin1', at, at + n);
  if (['ftyp', 'moov', 'mdat', 'wide', 'free', 'skip'].includes(ascii(4, 4))) return 'mp4';
  if (head.readUInt32BE(0) === 0x1a45dfa3) return 'matroska';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'AVI ') return 'avi';
  if (ascii(0, 4) === 'OggS') return 'ogg';
  if (head[0] === 0x47 && head[188] === 0x47) return 'mpegts';
  return null;
}

/** Applies the limits to ffprobe's answer. Pure, so the rules are unit-testable. */
export function validateProbe(raw: FfprobeOutput, limits: MediaLimits, sizeBytes: number, label: string): ProbeResult {
  const doing = `ffprobe on ${label}`;
  const refuse = (code: ConstructorParameters<typeof AppError>[0], why: string) =>
    new AppError(code, `${doing} failed: ${why}`, { details: { label } });
  const container = raw.format?.format_name ?? '';
  if (!container.split(',').some((c) => allowedName(c, limits.allowedContainers))) {
    throw refuse('UNSUPPORTED_MEDIA', `container "${container || 'unknown'}" is not accepted`);
  }
  const streams = raw.streams ?? [];
  const count = raw.format?.nb_streams ?? streams.length;
  if (count > limits.maxStreams) throw refuse('TOO_MANY_STREAMS', `${count} streams, at most ${limits.maxStreams}`);
  // Cover art is a video stream with attached_pic set: not the picture we want.
  const video = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  if (!video) throw refuse('UNSUPPORTED_MEDIA', 'no video stream');
  const videoCodec = video.codec_name ?? 'unknown';
  if (!allowedName(videoCodec, limits.allowedVideoCodecs)) {
    throw refuse('UNSUPPORTED_MEDIA', `video codec "${videoCodec}" is not accepted`);
  }
  const audio = streams.find((s) => s.codec_type === 'audio');
  const audioCodec = audio ? (audio.codec_name ?? 'unknown') : null;
  if (audioCodec !== null && !allowedName(audioCodec, limits.allowedAudioCodecs)) {
    throw refuse('UNSUPPORTED_MEDIA', `audio codec "${audioCodec}" is not accepted`);
  }
  const { width, height } = checkResolution(video, limits, refuse);
  const durationS = checkDuration(raw, video, limits, refuse);
  const fps = frameRate(video);
  // A decoder bomb: few bytes that decode to a flood of frames (every frame is decoded before it is sampled).
  if (width * height * fps > limits.maxPixelRate) {
    throw refuse(
      'PIXEL_RATE_TOO_HIGH',
      `${width}x${height} at ${fps.toFixed(1)} fps decodes ${((width * height * fps) / 1e6).toFixed(0)} M pixels a second, above ${(limits.maxPixelRate / 1e6).toFixed(0)} M`,
    );
  }
  return { durationS, width, height, fps, container, videoCodec, audioCodec, streams: count, sizeBytes };
}

type Refuse = (
  code: 'CORRUPT_MEDIA' | 'RESOLUTION_TOO_LARGE' | 'VIDEO_TOO_LONG' | 'VIDEO_TOO_SHORT' | 'PIXEL_RATE_TOO_HIGH',
  why: string,
) => AppError;

function checkResolution(video: FfprobeStream, limits: MediaLimits, refuse: Refuse) {
  const width = video.width ?? 0;
  const height = video.height ?? 0;
  if (width <= 0 || height <= 0) throw refuse('CORRUPT_MEDIA', 'the video stream has no dimensions');
  if (width > limits.maxWidth || height > limits.maxHeight) {
    throw refuse('RESOLUTION_TOO_LARGE', `${width}x${height} is above ${limits.maxWidth}x${limits.maxHeight}`);
  }
  return { width, height };
}

function checkDuration(raw: FfprobeOutput, video: FfprobeStream, limits: MediaLimits, refuse: Refuse): number {
  // The container's duration covers every stream; a raw stream may only know its own.
  const durationS = Number(raw.format?.duration ?? video.duration ?? NaN);
  if (!Number.isFinite(durationS) || durationS <= 0) throw refuse('CORRUPT_MEDIA', 'the duration is unknown');
  if (durationS > limits.maxDurationS) {
    throw refuse('VIDEO_TOO_LONG', `${durationS.toFixed(2)} s is above ${limits.maxDurationS} s`);
  }
  if (durationS < limits.minDurationS) {
    throw refuse('VIDEO_TOO_SHORT', `${durationS.toFixed(2)} s is below ${limits.minDurationS} s`);
  }
  return durationS;
}

function frameRate(video: FfprobeStream): number {
  for (const rate of [video.avg_frame_rate, video.r_frame_rate]) {
    const [num, den] = (rate ?? '0/0').split('/').map(Number);
    if (num && den) return num / den;
  }
  return 0;
}

/** Whether the file has an audio stream, for callers that did not keep the probe result. */
export async function hasAudioStream(file: string, limits: MediaBounds, label: string): Promise<boolean> {
  const raw = await runFfprobe(file, limits, label);
  return (raw.streams ?? []).some((s) => s.codec_type === 'audio');
}
