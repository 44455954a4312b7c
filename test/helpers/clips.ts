/** Test media made by the tests: corpus clips (encoders/montage_encoders/corpus.py) and ffmpeg lavfi sources. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { ROOT } from './generation.ts';

const run = promisify(execFile);

export interface ClipInfo {
  caption: string;
  spec?: Record<string, unknown>;
  [k: string]: unknown;
}

/** Renders a procedural clip with the corpus CLI; returns the JSON line it prints (spec + caption). */
export async function corpusClip(out: string, args: string[] = []): Promise<ClipInfo> {
  const { stdout } = await run('/usr/bin/python3', ['-m', 'montage_encoders.corpus', 'clip', '--out', out, ...args], {
    cwd: path.join(ROOT, 'encoders'),
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as ClipInfo;
}

/** A clip from ffmpeg's own sources: testsrc2 picture, optional sine audio. */
export async function lavfiClip(
  out: string,
  opts: { seconds: number; size?: string; audio?: boolean; codec?: string; fps?: number; frequency?: number } = { seconds: 2 },
): Promise<void> {
  const args = [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=${opts.size ?? '160x120'}:rate=${opts.fps ?? 10}:duration=${opts.seconds}`,
  ];
  if (opts.audio !== false)
    args.push('-f', 'lavfi', '-i', `sine=frequency=${opts.frequency ?? 440}:sample_rate=16000:duration=${opts.seconds}`);
  args.push('-c:v', opts.codec ?? 'libx264', '-pix_fmt', 'yuv420p', ...(opts.audio !== false ? ['-c:a', 'aac'] : []), '-shortest', out);
  await run('ffmpeg', args);
}

/** Re-encodes a clip at another resolution and bitrate (a near-duplicate). */
export async function reencode(input: string, out: string, size: string, bitrate: string): Promise<void> {
  await run('ffmpeg', [
    '-v',
    'error',
    '-y',
    '-i',
    input,
    '-vf',
    `scale=${size}`,
    '-b:v',
    bitrate,
    '-c:v',
    'libx264',
    '-pix_fmt',
    'yuv420p',
    '-c:a',
    'aac',
    out,
  ]);
}
