/**
 * On-screen text: accuracy and speed of the OCR engine (Debian tesseract 5, `eng`, LSTM) on 1280x720
 * frames with text burnt in by ffmpeg drawtext, and its cost per video minute with the change sampler.
 *
 *   node bench/ocr.ts [--out bench/results/ocr.json]
 *
 * Frames: 4 text sizes (20, 28, 40, 64 px) x 4 fonts (DejaVu Sans, Serif, Sans Mono, Sans Bold) x 5
 * backgrounds (dark, light with dark text, gradient, photo with outlined text, photo with a box), one
 * sentence each (80 frames). Each frame is read once per view (src/enrich/tesseract.ts: the bright
 * view, the frame as it is), at page segmentation mode 11, and scored three ways: each view alone and
 * both with their lines united (what the service does; its time is the sum). Per way: character error rate and word error rate of
 * the lines the engine keeps (src/enrich/tesseract.ts filters) against the drawn sentence, the share
 * of frames whose sentence is read exactly (normalised), and ms per frame. Also: lines read on the
 * seven darknet photographs with no text drawn (false positives), and a 60 s clip of 12 scenes
 * (photos and colours, a caption each) through readOnScreenText: frames read, seconds, evidence found.
 * Needs: ffmpeg, tesseract-ocr, tesseract-ocr-eng, fonts-dejavu-core, darknet (photos).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readOnScreenText } from '../src/enrich/ocr.ts';
import { brightView, ppm, recogniseWords, toLines, unionLines, type View } from '../src/enrich/tesseract.ts';
import type { Observation } from '../src/enrich/types.ts';
import { editDistance, lineKey, normaliseWords } from '../src/enrich/text.ts';
import {
  FONTS,
  sceneClip,
  TEST_BOUNDS,
  textFrame,
  type Background,
  type Caption,
  type FontName,
  type Scene,
} from '../test/helpers/enrich-media.ts';
import { ROOT } from '../test/helpers/generation.ts';

const { values: args } = parseArgs({
  options: {
    out: { type: 'string', default: join(ROOT, 'bench', 'results', 'ocr.json') },
  },
});

const SENTENCES = [
  'Breaking news: river floods the old town',
  'Chapter 3 - The long road home',
  'Subscribe for more cooking videos',
  'Live from Berlin at 7:30 pm',
  'Final score 2 - 1 after extra time',
  'How to fix a flat bicycle tyre',
  'Warning: slippery road ahead',
  'Grandma makes apple pie',
  'Top 10 beaches in Portugal',
  'Sale ends Sunday, 40% off',
];
const SIZES = [20, 28, 40, 64];
const FONT_NAMES = Object.keys(FONTS) as FontName[];
const BACKGROUNDS: { name: string; bg: Background; caption: Partial<Caption> }[] = [
  { name: 'dark', bg: { color: '0x203040' }, caption: { color: 'white' } },
  { name: 'light', bg: { color: '0xf2efe6' }, caption: { color: '0x202020' } },
  { name: 'gradient', bg: { gradient: true }, caption: { color: 'white', border: 2 } },
  { name: 'photo-outline', bg: { photo: 'dog' }, caption: { color: 'white', border: 2 } },
  { name: 'photo-box', bg: { photo: 'horses' }, caption: { color: 'yellow', box: true } },
];
const PHOTOS = ['dog', 'horses', 'person', 'giraffe', 'eagle', 'kite', 'scream'];

interface FrameResult {
  size: number;
  font: string;
  background: string;
  reference: string;
  read: string;
  cer: number;
  wer: number;
  exact: boolean;
  ms: number;
}

function summarise(rows: FrameResult[]) {
  const chars = rows.reduce((a, r) => a + lineKey(r.reference).length, 0);
  const words = rows.reduce((a, r) => a + normaliseWords(r.reference).length, 0);
  return {
    frames: rows.length,
    cer: rows.reduce((a, r) => a + r.cer * lineKey(r.reference).length, 0) / chars,
    wer: rows.reduce((a, r) => a + r.wer * normaliseWords(r.reference).length, 0) / words,
    exact: rows.filter((r) => r.exact).length / rows.length,
    ms_per_frame: rows.reduce((a, r) => a + r.ms, 0) / rows.length,
  };
}

function groupBy(rows: FrameResult[], key: (r: FrameResult) => string | number) {
  const groups = new Map<string, FrameResult[]>();
  for (const r of rows) groups.set(String(key(r)), [...(groups.get(String(key(r))) ?? []), r]);
  return Object.fromEntries([...groups].map(([k, rs]) => [k, summarise(rs)]));
}

const WAYS = ['bright+original', 'original', 'bright'] as const;
type Way = (typeof WAYS)[number];

/** Reads one frame in each view; returns the lines and milliseconds of each way of combining them. */
async function readWays(rgb: Uint8Array, label: string): Promise<Record<Way, { lines: Observation[]; ms: number }>> {
  const read = async (view: View) => {
    const image = view === 'bright' ? brightView(rgb, 1280, 720, 215) : ppm(rgb, 1280, 720);
    const t = performance.now();
    const lines = toLines(await recogniseWords(image, `${label} (${view})`), 1280, 720);
    return { lines, ms: performance.now() - t };
  };
  const bright = await read('bright');
  const original = await read('original');
  return {
    'bright+original': { lines: unionLines([bright.lines, original.lines]), ms: bright.ms + original.ms },
    original: { lines: unionLines([original.lines]), ms: original.ms },
    bright: { lines: unionLines([bright.lines]), ms: bright.ms },
  };
}

async function frames(): Promise<Record<Way, FrameResult[]>> {
  const rows: Record<Way, FrameResult[]> = { 'bright+original': [], original: [], bright: [] };
  let n = 0;
  for (const size of SIZES) {
    for (const font of FONT_NAMES) {
      for (const b of BACKGROUNDS) {
        const reference = SENTENCES[n++ % SENTENCES.length]!;
        const rgb = await textFrame(b.bg, [{ text: reference, size, font, ...b.caption }]);
        const ways = await readWays(rgb, `bench frame ${n}`);
        for (const way of WAYS) {
          const { lines, ms } = ways[way];
          const read = lines.map((l) => l.text).join(' ');
          const [ref, hyp] = [lineKey(reference), lineKey(read)];
          rows[way].push({
            size,
            font,
            background: b.name,
            reference,
            read,
            cer: editDistance(ref, hyp) / ref.length,
            wer: editDistance(normaliseWords(reference), normaliseWords(read)) / normaliseWords(reference).length,
            exact: lines.some((l) => lineKey(l.text) === ref) || hyp === ref,
            ms,
          });
        }
      }
    }
  }
  return rows;
}

async function falsePositives(): Promise<Record<Way, Record<string, string[]>>> {
  const out: Record<Way, Record<string, string[]>> = { 'bright+original': {}, original: {}, bright: {} };
  for (const photo of PHOTOS) {
    const ways = await readWays(await textFrame({ photo }, []), `bench photo ${photo}`);
    for (const way of WAYS) out[way][photo] = ways[way].lines.map((l) => `${l.text} (${l.confidence.toFixed(2)})`);
  }
  return out;
}

async function clipMinute() {
  const dir = await mkdtemp(join(tmpdir(), 'montage-ocr-bench-'));
  try {
    const scenes: Scene[] = Array.from({ length: 12 }, (_, i) => ({
      seconds: 5,
      background: i % 2 ? { photo: PHOTOS[i % PHOTOS.length]! } : { color: ['0x203040', '0x402020', '0x204020'][i % 3]! },
      captions: [{ text: SENTENCES[i % SENTENCES.length]!, size: 40, border: 2 }],
    }));
    const file = join(dir, 'minute.mp4');
    await sceneClip(file, scenes, { zoom: true });
    const t = performance.now();
    const { evidence, frames: read } = await readOnScreenText(file, {
      sampling: { range: { startS: 0, endS: 60 }, width: 1280, height: 720, bounds: TEST_BOUNDS, label: 'bench minute' },
    });
    const seconds = (performance.now() - t) / 1000;
    const found = scenes.filter((s, i) =>
      evidence.some((e) => lineKey(e.text) === lineKey(s.captions![0]!.text) && e.startS <= i * 5 + 1 && e.endS >= i * 5 + 4),
    ).length;
    return {
      video_seconds: 60,
      scenes: 12,
      frames_read: read,
      seconds,
      seconds_per_video_minute: seconds,
      captions_read_exactly_with_their_scene: found,
      evidence: evidence.map((e) => ({
        text: e.text,
        startS: e.startS,
        endS: e.endS,
        confidence: Number(e.confidence.toFixed(3)),
        frames: e.frames,
      })),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const rows = await frames();
  const fps = await falsePositives();
  const byViews: Record<string, unknown> = {};
  for (const way of WAYS) {
    const all = summarise(rows[way]);
    console.log(
      `views ${way}: CER ${all.cer.toFixed(3)} WER ${all.wer.toFixed(3)} exact ${all.exact.toFixed(2)} ${all.ms_per_frame.toFixed(0)} ms/frame`,
    );
    byViews[way] = {
      all,
      by_size: groupBy(rows[way], (r) => r.size),
      by_font: groupBy(rows[way], (r) => r.font),
      by_background: groupBy(rows[way], (r) => r.background),
      false_positives_on_photos: fps[way],
      misread: rows[way]
        .filter((r) => !r.exact)
        .map((r) => ({ size: r.size, font: r.font, background: r.background, reference: r.reference, read: r.read })),
    };
  }
  const minute = await clipMinute();
  console.log(
    `60 s clip: ${minute.frames_read} frames read in ${minute.seconds.toFixed(1)} s, ${minute.captions_read_exactly_with_their_scene}/12 captions exact`,
  );
  const result = {
    engine: 'tesseract 5.3.0 (Debian tesseract-ocr, tesseract-ocr-eng 4.1.0 traineddata), --oem 1 --psm 11, one thread',
    frames: '1280x720, text by ffmpeg drawtext; filters of src/enrich/tesseract.ts (word confidence >= 0.6, line >= 3 letters/digits)',
    metrics:
      'CER/WER: edit distance of the normalised reading (lower case, punctuation removed) to the drawn sentence, over its length; exact: the sentence read exactly',
    views: byViews,
    clip_minute: minute,
    seconds: (performance.now() - started) / 1000,
    machine: { cpus: cpus().length, loadavg_1m: loadavg()[0] },
  };
  await mkdir(join(args.out, '..'), { recursive: true });
  await writeFile(args.out, JSON.stringify(result, null, 2) + '\n');
  console.log(`wrote ${args.out}`);
}

await main();
