/**
 * Media for the evidence engines' tests and benchmarks, made with ffmpeg: frames and clips with
 * text burnt in by drawtext (DejaVu fonts, Debian's fonts-dejavu-core), on plain colours, gradients
 * or Debian's darknet sample photographs. Text goes through `textfile=`, so no escaping games.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const PHOTOS_DIR = '/usr/share/darknet/data';
export const FONTS_DIR = '/usr/share/fonts/truetype/dejavu';
export const FONTS = {
  sans: 'DejaVuSans.ttf',
  serif: 'DejaVuSerif.ttf',
  mono: 'DejaVuSansMono.ttf',
  bold: 'DejaVuSans-Bold.ttf',
} as const;
export type FontName = keyof typeof FONTS;

/** ffmpeg bounds for the clips the tests make (the service passes its media config instead). */
export const TEST_BOUNDS = { timeoutMs: 120_000, allowedContainers: ['mov', 'mp4'] };

export function photoPath(name: string): string {
  return join(PHOTOS_DIR, `${name}.jpg`);
}

/** Says which of the files the tests need are missing (so a test fails loudly, never skips silently). */
export function missingFiles(): string[] {
  const wanted = [photoPath('dog'), photoPath('horses'), join(FONTS_DIR, FONTS.sans)];
  return wanted.filter((p) => !existsSync(p));
}

/** A background: a plain colour, an ffmpeg gradient, or a darknet photograph scaled to fill. */
export type Background = { color: string } | { gradient: true } | { photo: string };

export interface Caption {
  text: string;
  /** Pixels. @defaultValue 48 */
  size?: number;
  /** @defaultValue 'sans' */
  font?: FontName;
  /** @defaultValue 'white' */
  color?: string;
  /** Outline width in pixels (black). @defaultValue 0 */
  border?: number;
  /** A half-transparent black box behind the text. @defaultValue false */
  box?: boolean;
  /** Top-left corner; default: centred horizontally, at 75% of the height. */
  x?: number | string;
  y?: number | string;
}

export interface Scene {
  seconds: number;
  background: Background;
  captions?: Caption[];
}

function inputArgs(bg: Background, w: number, h: number, seconds: number, rate: number): string[] {
  if ('color' in bg) return ['-f', 'lavfi', '-i', `color=c=${bg.color}:s=${w}x${h}:r=${rate}:d=${seconds}`];
  if ('gradient' in bg) return ['-f', 'lavfi', '-i', `gradients=s=${w}x${h}:r=${rate}:d=${seconds}:speed=0.002:seed=7`];
  return ['-loop', '1', '-framerate', String(rate), '-t', String(seconds), '-i', photoPath(bg.photo)];
}

async function drawtextChain(dir: string, captions: Caption[], tag: string): Promise<string> {
  const parts: string[] = [];
  for (const [i, c] of captions.entries()) {
    const file = join(dir, `${tag}-${i}.txt`);
    await writeFile(file, c.text);
    const opts = [
      `fontfile=${join(FONTS_DIR, FONTS[c.font ?? 'sans'])}`,
      `textfile=${file}`,
      'expansion=none',
      `fontsize=${c.size ?? 48}`,
      `fontcolor=${c.color ?? 'white'}`,
      `x=${c.x ?? '(w-text_w)/2'}`,
      `y=${c.y ?? 'h*0.75'}`,
    ];
    if (c.border) opts.push(`borderw=${c.border}`, 'bordercolor=black');
    if (c.box) opts.push('box=1', 'boxcolor=black@0.55', 'boxborderw=12');
    parts.push(`drawtext=${opts.join(':')}`);
  }
  return parts.join(',');
}

/** One frame as RGB24 bytes (w x h). */
export async function textFrame(background: Background, captions: Caption[], w = 1280, h = 720): Promise<Uint8Array> {
  const dir = await mkdtemp(join(tmpdir(), 'montage-frame-'));
  try {
    const draw = await drawtextChain(dir, captions, 'c');
    const vf = [`scale=${w}:${h}`, 'setsar=1', ...(draw ? [draw] : [])].join(',');
    const out = join(dir, 'frame.rgb');
    await run('ffmpeg', [
      '-v',
      'error',
      '-y',
      ...inputArgs(background, w, h, 1, 1),
      '-vf',
      vf,
      '-frames:v',
      '1',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      out,
    ]);
    return new Uint8Array(await readFile(out));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A clip of scenes in sequence (H.264, yuv420p, `rate` fps, no audio), each scene a background with
 * its captions; photos are scaled to fill w x h and slowly zoomed when `zoom` is set.
 */
export async function sceneClip(
  out: string,
  scenes: Scene[],
  opts: { w?: number; h?: number; rate?: number; zoom?: boolean } = {},
): Promise<void> {
  const { w = 1280, h = 720, rate = 10 } = opts;
  const dir = await mkdtemp(join(tmpdir(), 'montage-clip-'));
  try {
    const inputs: string[] = [];
    const chains: string[] = [];
    for (const [i, s] of scenes.entries()) {
      inputs.push(...inputArgs(s.background, w, h, s.seconds, rate));
      const draw = await drawtextChain(dir, s.captions ?? [], `s${i}`);
      const frames = Math.round(s.seconds * rate);
      const zoom =
        opts.zoom && 'photo' in s.background
          ? `scale=${w * 2}:${h * 2},zoompan=z='1+0.1*on/${frames}':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d=1:s=${w}x${h}:fps=${rate}`
          : `scale=${w}:${h}`;
      chains.push(`[${i}:v]${zoom},setsar=1,fps=${rate},format=yuv420p${draw ? ',' + draw : ''},trim=end_frame=${frames}[v${i}]`);
    }
    const concat = `${scenes.map((_, i) => `[v${i}]`).join('')}concat=n=${scenes.length}:v=1:a=0[out]`;
    await run('ffmpeg', [
      '-v',
      'error',
      '-y',
      ...inputs,
      '-filter_complex',
      `${chains.join(';')};${concat}`,
      '-map',
      '[out]',
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-pix_fmt',
      'yuv420p',
      out,
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
