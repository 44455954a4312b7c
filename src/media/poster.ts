/**
 * One JPEG poster frame per video, for display. ffmpeg seeks, decodes one frame and encodes it;
 * no raw frame crosses into Node.
 */
import { stat, unlink } from 'node:fs/promises';
import { AppError } from '../errors/index.ts';
import { fileInput, hardenedInputArgs } from './limits.ts';
import { startFfmpeg } from './run.ts';
import type { MediaBounds } from './types.ts';

export interface PosterOptions extends MediaBounds {
  /** The poster is at most this wide; narrower videos keep their width. @defaultValue 640 */
  maxWidth?: number;
  /** Names the video in messages. @defaultValue the file path */
  label?: string;
}

/**
 * Writes a JPEG of the frame at `atS` seconds to `outPath`. When `atS` lies past the last frame
 * (a probed duration longer than the video stream), falls back to the first frame.
 */
export async function posterFrame(file: string, outPath: string, atS: number, opts: PosterOptions): Promise<void> {
  if (await writePoster(file, outPath, Math.max(0, atS), opts)) return;
  if (atS > 0 && (await writePoster(file, outPath, 0, opts))) return;
  throw new AppError('CORRUPT_MEDIA', `ffmpeg poster on ${opts.label ?? file} failed: no frame could be decoded`);
}

async function writePoster(file: string, outPath: string, atS: number, opts: PosterOptions): Promise<boolean> {
  const w = opts.maxWidth ?? 640;
  const run = startFfmpeg({
    input: fileInput(file),
    inputOptions: ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', ...hardenedInputArgs(opts), '-ss', atS.toFixed(3)],
    outputOptions: [
      '-map',
      '0:v:0',
      '-frames:v',
      '1',
      // Keep the aspect; max(1, ...) so a 1-pixel-tall video does not round to zero rows.
      '-vf',
      `scale=w='min(${w},iw)':h='max(1,round(ow*ih/iw))':flags=bicubic,setsar=1`,
      '-pix_fmt',
      'yuvj420p',
      '-q:v',
      '3',
      '-f',
      'mjpeg',
    ],
    output: outPath,
    timeoutMs: opts.timeoutMs,
    doing: `ffmpeg poster on ${opts.label ?? file}`,
  });
  await run.done;
  const size = await stat(outPath).then(
    (s) => s.size,
    () => 0,
  );
  if (size === 0) await unlink(outPath).catch(() => {});
  return size > 0;
}
