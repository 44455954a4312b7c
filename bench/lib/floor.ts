/**
 * The ffmpeg floor for bench/ingest (it serves only the benchmark): ffmpeg alone decoding the
 * video, sampling and resizing the same frames and resampling the same audio as the pipeline,
 * into the null muxer. Nothing crosses into Node, so its wall time is what the pipeline can never
 * beat.
 */
import { performance } from 'node:perf_hooks';
import { audioOutputArgs } from '../../src/media/audio.ts';
import { frameOutputArgs } from '../../src/media/frames.ts';
import { fileInput, hardenedInputArgs } from '../../src/media/limits.ts';
import { startFfmpeg } from '../../src/media/run.ts';
import type { FrameOptions, MediaBounds } from '../../src/media/types.ts';

export type FloorOptions = FrameOptions &
  MediaBounds & {
    sampleRate: number;
    /** From the probe; the audio branch is left out when false. */
    hasAudio: boolean;
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
    inputOptions: ['-nostdin', '-hide_banner', '-loglevel', 'error', ...hardenedInputArgs(opts)],
    outputOptions: [...video, '-pix_fmt', 'rgb24', '-c:v', 'rawvideo', ...audio.filter((a) => a !== '-vn'), '-f', 'null'],
    output: '-',
    timeoutMs: opts.timeoutMs,
    doing: `ffmpeg floor on ${file}`,
  });
  await run.done;
  return { seconds: (performance.now() - t0) / 1000 };
}
