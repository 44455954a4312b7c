/**
 * Audio for the audio tower: the first audio stream, downmixed to mono and resampled by ffmpeg to
 * float32 PCM (`-ac 1 -ar <rate> -f f32le`), then cut into segments aligned with the frames: all at
 * once (extractAudio + segmentAudio) or window by window as ffmpeg produces them (iterateAudioSegments).
 */
import { fileInput, hardenedInputArgs } from './limits.ts';
import { hasAudioStream } from './probe.ts';
import { startFfmpeg } from './run.ts';
import type { MediaBounds } from './types.ts';

export interface AudioOptions extends MediaBounds {
  /** Hz. The model's `preprocessing.audio.sample_rate`. */
  sampleRate: number;
  /** From the probe (`audioCodec !== null`); when left out, ffprobe is asked once more. */
  hasAudio?: boolean;
  /** Decode at most this many seconds (the probed duration): a lying container cannot flood memory. */
  maxDurationS?: number;
}

/** Output arguments shared by extraction and the ffmpeg floor. */
export function audioOutputArgs(opts: Pick<AudioOptions, 'sampleRate' | 'maxDurationS'>): string[] {
  const cap = opts.maxDurationS !== undefined ? ['-t', String(opts.maxDurationS)] : [];
  return ['-map', '0:a:0', '-vn', '-sn', '-dn', '-ac', '1', '-ar', String(opts.sampleRate), ...cap];
}

/** Mono float32 PCM of the whole file at `sampleRate`, or null when the file has no audio stream. */
export async function extractAudio(file: string, opts: AudioOptions, label: string): Promise<Float32Array | null> {
  const hasAudio = opts.hasAudio ?? (await hasAudioStream(file, opts, label));
  if (!hasAudio) return null;
  const run = startFfmpeg({
    input: fileInput(file),
    inputOptions: ['-nostdin', '-hide_banner', '-loglevel', 'error', ...hardenedInputArgs(opts)],
    outputOptions: [...audioOutputArgs(opts), '-f', 'f32le'],
    timeoutMs: opts.timeoutMs,
    doing: `ffmpeg audio on ${label}`,
  });
  const chunks: Buffer[] = [];
  let bytes = 0;
  try {
    for await (const chunk of run.stdout! as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      bytes += chunk.length;
    }
    await run.done;
  } catch (err) {
    run.kill();
    throw err;
  }
  // Copy chunk by chunk into one 4-byte-aligned buffer (a Buffer's byteOffset may not be), without
  // a Buffer.concat that would hold a third copy of a 5-minute track.
  const pcm = new Float32Array(Math.floor(bytes / 4));
  const view = new Uint8Array(pcm.buffer);
  let at = 0;
  for (const chunk of chunks.splice(0)) {
    const n = Math.min(chunk.length, view.length - at);
    view.set(chunk.subarray(0, n), at);
    at += n;
  }
  return pcm;
}

export interface AudioSegmentOptions extends AudioOptions {
  /** Seconds per window: the generation's audio `segment_seconds`, the same segments as the frames. */
  segmentSeconds: number;
}

/**
 * The windows of `segmentAudio`, streamed: window s (samples s*n to (s+1)*n) as soon as ffmpeg has decoded it,
 * the last one zero-padded. Reads only as fast as the caller asks, so ffmpeg waits on the pipe and memory holds a
 * window or two however long the track is. Yields nothing when the file has no audio stream. Breaking out of the
 * loop kills ffmpeg (a caller that needs fewer windows than the track holds).
 */
export async function* iterateAudioSegments(file: string, opts: AudioSegmentOptions, label: string): AsyncGenerator<Float32Array> {
  const hasAudio = opts.hasAudio ?? (await hasAudioStream(file, opts, label));
  if (!hasAudio) return;
  const run = startFfmpeg({
    input: fileInput(file),
    inputOptions: ['-nostdin', '-hide_banner', '-loglevel', 'error', ...hardenedInputArgs(opts)],
    outputOptions: [...audioOutputArgs(opts), '-f', 'f32le'],
    timeoutMs: opts.timeoutMs,
    doing: `ffmpeg audio on ${label}`,
  });
  const n = Math.round(opts.sampleRate * opts.segmentSeconds);
  let window = new Float32Array(n);
  // Bytes of the window filled so far; a sample may straddle two chunks, so bytes are copied, not floats.
  let filled = 0;
  let finished = false;
  try {
    for await (const chunk of run.stdout! as AsyncIterable<Buffer>) {
      let at = 0;
      while (at < chunk.length) {
        const view = new Uint8Array(window.buffer);
        const k = Math.min(view.length - filled, chunk.length - at);
        view.set(chunk.subarray(at, at + k), filled);
        filled += k;
        at += k;
        if (filled === view.length) {
          yield window;
          window = new Float32Array(n);
          filled = 0;
        }
      }
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
  // A trailing partial sample is dropped, as extractAudio does; the rest of the window stays zero.
  if (filled >= 4) {
    new Uint8Array(window.buffer).fill(0, filled - (filled % 4), filled);
    yield window;
  }
}

/**
 * `count` windows of `segmentSeconds` each, window s starting at s*segmentSeconds, zero-padded
 * past the end: the same segments as the frames, so segment s of both towers covers one span.
 */
export function segmentAudio(pcm: Float32Array, sampleRate: number, segmentSeconds: number, count: number): Float32Array[] {
  const n = Math.round(sampleRate * segmentSeconds);
  const out: Float32Array[] = [];
  for (let s = 0; s < count; s++) {
    const window = new Float32Array(n);
    const start = Math.min(pcm.length, s * n);
    window.set(pcm.subarray(start, Math.min(pcm.length, start + n)));
    out.push(window);
  }
  return out;
}
