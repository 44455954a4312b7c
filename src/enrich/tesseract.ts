/**
 * On-screen text with Debian's tesseract (tesseract-ocr + tesseract-ocr-eng, LSTM engine), through
 * the engine seam: a frame goes in on stdin as a binary PPM (no encoding cost), the TSV report
 * comes out on stdout, and words are grouped into lines with their confidences and boxes.
 *
 * Settings, measured by bench/ocr.ts on frames with text burnt in by ffmpeg drawtext:
 * - page segmentation mode 11 (sparse text: find as much text as possible in no particular order),
 *   because captions and overlays are scattered lines, not a page;
 * - one thread per process (OMP_THREAD_LIMIT=1): tesseract's OpenMP threads slow it down on a
 *   busy machine, and the caller parallelises across frames if it wants;
 * - words under `minWordConfidence` are dropped, and a line is kept only if what remains has
 *   `minLineChars` letters or digits: on photographs without text, tesseract reads texture as
 *   short low-confidence "words" ("|", "ee", "—"), which these two cuts remove;
 * - the frame is read in its `bright` view: pixels with luma >= `brightThreshold` black, the rest
 *   white. Burnt-in captions are white or yellow, often outlined; on a photograph tesseract's own
 *   global binarisation loses them in the texture ("Walking the dog in the park" read as "Wa che dog
 *   inthe"), while the bright view isolates them (read exactly, confidence 0.96). Dark text on a
 *   light background is read too (the view is then inverted, which tesseract handles). On
 *   bench/ocr.ts's 80 frames the bright view alone has CER 0.033 and reads 90% of the sentences
 *   exactly; the frame as it is (`original`) has CER 0.36 (it fails on gradients and photos) and,
 *   united with the bright view, adds its false words (CER 0.067) for 2.4x the time. So the default
 *   is the bright view only; `views: ['bright', 'original']` adds the frame as it is, for dark text
 *   on a mid-tone background, and unites the lines (same place: the more confident letters win).
 */
import { runEngine } from './engine.ts';
import type { Box, Observation } from './types.ts';

export interface TesseractOptions {
  /** The executable. @defaultValue 'tesseract' (the service passes config.enrich.tesseractPath, TESSERACT_PATH) */
  binary?: string;
  /** Traineddata language(s), `+`-joined. @defaultValue 'eng' */
  lang?: string;
  /** Page segmentation mode. @defaultValue 11 */
  psm?: number;
  /** Per frame. @defaultValue 30000 */
  timeoutMs?: number;
  /** Cap on the TSV report. @defaultValue 1 MiB */
  maxOutputBytes?: number;
  /** OpenMP threads inside one tesseract process. @defaultValue 1 */
  threads?: number;
}

export type View = 'bright' | 'original';

export interface ViewOptions {
  /** Views of the frame read, each one tesseract run. @defaultValue ['bright'] */
  views?: View[];
  /** Luma (0..255) at or above which a pixel is text in the bright view. @defaultValue 215 */
  brightThreshold?: number;
}

export interface LineOptions {
  /** Words below this confidence (0..1) are dropped. @defaultValue 0.6 */
  minWordConfidence?: number;
  /** A line needs at least this many letters or digits after that. @defaultValue 3 */
  minLineChars?: number;
}

/** One word of tesseract's TSV report. */
export interface OcrWord {
  text: string;
  /** 0..1 */
  confidence: number;
  /** Pixels: left, top, right, bottom. */
  box: [number, number, number, number];
  /** (block, paragraph, line) numbers: the words of one line share them. */
  line: string;
}

/** A binary PPM (P6) of an RGB24 frame: what tesseract reads on stdin without any encoding. */
export function ppm(rgb: Uint8Array, width: number, height: number): Buffer {
  return Buffer.concat([Buffer.from(`P6\n${width} ${height}\n255\n`, 'ascii'), rgb]);
}

/** A binary PGM (P5) of the bright view: luma >= threshold black (text), the rest white. */
export function brightView(rgb: Uint8Array, width: number, height: number, threshold: number): Buffer {
  const header = Buffer.from(`P5\n${width} ${height}\n255\n`, 'ascii');
  const out = Buffer.alloc(header.length + width * height);
  header.copy(out);
  for (let i = 0, o = header.length; i < width * height; i++, o++) {
    const y = 0.299 * rgb[3 * i]! + 0.587 * rgb[3 * i + 1]! + 0.114 * rgb[3 * i + 2]!;
    out[o] = y >= threshold ? 0 : 255;
  }
  return out;
}

/** Parses tesseract's TSV (level 5 rows are words; -1 confidences are layout rows). */
export function parseTsv(tsv: string): OcrWord[] {
  const words: OcrWord[] = [];
  for (const row of tsv.split('\n').slice(1)) {
    const c = row.split('\t');
    if (c.length < 12 || c[0] !== '5') continue;
    const text = c.slice(11).join('\t').trim();
    const conf = Number(c[10]);
    if (!text || !(conf >= 0)) continue;
    const [left, top, width, height] = [c[6], c[7], c[8], c[9]].map(Number) as [number, number, number, number];
    words.push({ text, confidence: conf / 100, box: [left, top, left + width, top + height], line: `${c[2]}.${c[3]}.${c[4]}` });
  }
  return words;
}

function alnum(text: string): number {
  return (text.match(/[\p{L}\p{N}]/gu) ?? []).length;
}

/**
 * Words → lines: the confident words of each tesseract line, joined by spaces, with the mean
 * confidence of the words kept and their union box normalised to the frame.
 */
export function toLines(words: OcrWord[], width: number, height: number, opts: LineOptions = {}): Observation[] {
  const minConf = opts.minWordConfidence ?? 0.6;
  const minChars = opts.minLineChars ?? 3;
  const lines = new Map<string, OcrWord[]>();
  for (const w of words) {
    if (w.confidence < minConf || alnum(w.text) === 0) continue;
    lines.set(w.line, [...(lines.get(w.line) ?? []), w]);
  }
  const out: Observation[] = [];
  for (const ws of lines.values()) {
    const text = ws.map((w) => w.text).join(' ');
    if (alnum(text) < minChars) continue;
    const box: Box = [
      Math.min(...ws.map((w) => w.box[0])) / width,
      Math.min(...ws.map((w) => w.box[1])) / height,
      Math.max(...ws.map((w) => w.box[2])) / width,
      Math.max(...ws.map((w) => w.box[3])) / height,
    ];
    out.push({ text, confidence: ws.reduce((a, w) => a + w.confidence, 0) / ws.length, box });
  }
  // Reading order: top to bottom, then left to right.
  return out.sort((a, b) => a.box![1] - b.box![1] || a.box![0] - b.box![0]);
}

/** Runs tesseract on one image (PPM or PGM bytes) and returns its words. */
export async function recogniseWords(image: Uint8Array, doing: string, opts: TesseractOptions = {}): Promise<OcrWord[]> {
  const out = await runEngine({
    command: opts.binary ?? 'tesseract',
    args: ['stdin', 'stdout', '-l', opts.lang ?? 'eng', '--psm', String(opts.psm ?? 11), '--oem', '1', 'tsv'],
    input: image,
    timeoutMs: opts.timeoutMs ?? 30_000,
    maxOutputBytes: opts.maxOutputBytes ?? 1 << 20,
    env: { OMP_THREAD_LIMIT: String(opts.threads ?? 1) },
    doing,
  });
  return parseTsv(out.toString('utf8'));
}

/** Share of the smaller box covered by the other. */
function overlap(a: Box, b: Box): number {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const smaller = Math.min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]));
  return smaller > 0 ? (w * h) / smaller : 0;
}

/** Lines of several views → one list: of lines covering the same place, the most confident letters win. */
export function unionLines(views: Observation[][]): Observation[] {
  const weight = (o: Observation) => o.confidence * alnum(o.text);
  const kept: Observation[] = [];
  for (const line of views.flat().sort((a, b) => weight(b) - weight(a))) {
    if (kept.every((k) => overlap(k.box!, line.box!) < 0.5)) kept.push(line);
  }
  return kept.sort((a, b) => a.box![1] - b.box![1] || a.box![0] - b.box![0]);
}

/** The lines of text on one RGB24 frame, from each view (see the module comment). */
export async function readLines(
  rgb: Uint8Array,
  width: number,
  height: number,
  doing: string,
  opts: TesseractOptions & LineOptions & ViewOptions = {},
): Promise<Observation[]> {
  const views = opts.views ?? ['bright'];
  const read: Observation[][] = [];
  for (const view of views) {
    const image = view === 'bright' ? brightView(rgb, width, height, opts.brightThreshold ?? 215) : ppm(rgb, width, height);
    read.push(toLines(await recogniseWords(image, `${doing} (${view} view)`, opts), width, height, opts));
  }
  return unionLines(read);
}
