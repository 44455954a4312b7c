/**
 * The ffmpeg floor for bench/ingest: ffmpeg alone decoding the video, sampling and resizing the
 * same frames and resampling the same audio as the pipeline, into the null muxer. Nothing crosses
 * into Node, so its wall time is what the pipeline can never beat.
 */
import { performance } from 'node:perf_hooks';
import { audioOutputArgs } from './audio.ts';
import { frameOutputArgs } from './frames.ts';
import { DEFAULT_MEDIA_LIMITS, fileInput, hardenedInputArgs } from './limits.ts';
import { startFfmpeg } from './run.ts';
import type { FrameOptions } from './types.ts';

export type FloorOptions = FrameOptions & {
  sampleRate: number;
  /** From the probe; the audio branch is left out when false. */
  hasAudio: boolean;
  /** @defaultValue DEFAULT_MEDIA_LIMITS.timeoutMs */
  timeoutMs?: number;
};

/** Runs the floor once; returns its wall seconds. */
export async function ffmpegFloor(file: string, opts: FloorOptions): Promise<{ seconds: number }> {
  // One process, both branches: the video branch exactly as frames.ts asks for it, rgb24 raw.
  const audio = opts.hasAudio
    ? [...audioOutputArgs({ sampleRate: opts.sampleRate, maxDurationS: opts.durationS }), '-c:a', 'pcm_f32le']
    : [];
  const video = frameOutputArgs(opts).filter((a) => a !== '-an'); // '-an' would drop the audio branch
  const t0 = performance.now();
  const run = startFfmpeg({
    input: fileInput(file),
    inputOptions: ['-nostdin', '-hide_banner', '-loglevel', 'error', ...hardenedInputArgs(DEFAULT_MEDIA_LIMITS)],
    outputOptions: [...video, '-pix_fmt', 'rgb24', '-c:v', 'rawvideo', ...audio.filter((a) => a !== '-vn'), '-f', 'null'],
    output: '-',
    timeoutMs: opts.timeoutMs ?? DEFAULT_MEDIA_LIMITS.timeoutMs,
    doing: `ffmpeg floor on ${file}`,
  });
  await run.done;
  return { seconds: (performance.now() - t0) / 1000 };
}
