/**
 * `montage export-training <dir>`: what the trainers (encoders/montage_encoders/finetune.py) need from a running
 * deployment, written into one folder:
 *
 *   export.json                 format, generation, preprocessing, counts, options; written last (complete: true)
 *   items.jsonl                 {item, title, description, tags, captions, evidence, media}: every ready video
 *   vectors.jsonl               {item, vector}: its stored `fused` vector (what the user tower reads in production)
 *   events.jsonl                {user, item, timestamp (unix s), watch_ratio, type}: engaged events only, oldest first
 *                               (behaviour/data.py's generic events format)
 *   videos/<videoId>/frames.npy uint8 (S, T, H, W, 3): T frames of S sampled segments, decoded from the kept upload
 *                               exactly as the ingest does (the generation's frame size, fps and resize)
 *   videos/<videoId>/audio.npy  float32 (S, samples): the same segments' 16 kHz mono audio (absent: no audio track)
 *   videos/<videoId>/meta.json  {videoId, segments: [{index, startS, endS}], ...}; written last, so it marks done
 *
 * Streamed: one video in memory at a time, events read in pages. Resumable: a video whose meta.json exists is
 * skipped, so a second run only adds what the first did not finish. Bounded: `maxVideos` videos at most, and no new
 * media once the media under videos/ would pass `maxBytes` (the remaining videos keep their captions and vectors).
 * The media come from the uploads, which the service keeps until the video is deleted (src/videos/files.ts).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import type { Catalog, VideoRecord } from '../catalog/index.ts';
import type { Config } from '../config/index.ts';
import type { Encoders } from '../models/types.ts';
import type { VectorStore, ItemPayload } from '../store/types.ts';
import { engaged, type EventLog } from '../users/events.ts';
import { AppError, isAppError } from '../errors/index.ts';
import { extractAudio, iterateSegments, planSegments, probe, segmentAudio } from '../media/index.ts';

/** Version of the folder layout above; the trainers refuse another. */
export const TRAINING_EXPORT_FORMAT = 1;

export interface ExportOptions {
  dir: string;
  /** Videos exported at most (oldest upload first). @defaultValue all */
  maxVideos?: number;
  /** Bytes of media (frames + audio) under videos/ at most. @defaultValue unbounded */
  maxBytes?: number;
  /** Segments sampled per video, evenly over its length. @defaultValue 8 */
  maxSegments?: number;
  /** Called after each video with (done, total). */
  onProgress?: (done: number, total: number, failed: number) => void;
}

export interface ExportSummary {
  videos: number;
  withMedia: number;
  /** Videos whose media were already there (a resumed run). */
  resumed: number;
  /** Videos left without media: the upload is gone, the byte budget was spent, or decoding failed. */
  withoutMedia: number;
  /** Videos whose decoding failed (after retries): `videoId: CODE: message`; a rerun tries them again. */
  failed: string[];
  mediaBytes: number;
  events: number;
}

export interface ExportDeps {
  config: Pick<Config, 'media'>;
  catalog: Catalog;
  store: VectorStore;
  events: EventLog;
  encoders: Pick<Encoders, 'generation'>;
}

const PAGE = 500;

/** A numpy .npy (format 1.0) of a C-order array: the trainers read it with numpy.load, no parser of ours. */
export function npy(data: Uint8Array | Float32Array, shape: number[]): Buffer {
  const descr = data instanceof Uint8Array ? '|u1' : '<f4';
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n'; // the data starts on a 64-byte boundary
  const head = Buffer.alloc(10);
  Buffer.from([0x93]).copy(head, 0);
  head.write('NUMPY', 1, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** Evenly spread segment indices, at most `max` of `count`. */
export function sampleSegments(count: number, max: number): number[] {
  if (count <= max) return Array.from({ length: count }, (_, i) => i);
  return Array.from({ length: max }, (_, i) => Math.floor(((i + 0.5) * count) / max));
}

/** The captions of a video: its whole text (as the ingest encodes it), the title alone, and each evidence line. */
export function captionsOf(rec: Pick<VideoRecord, 'title' | 'description' | 'tags'>, payload?: Pick<ItemPayload, 'evidence'>): string[] {
  const whole = [rec.title, rec.description, rec.tags.join(' ')]
    .map((s) => s.trim())
    .filter(Boolean)
    .join('. ');
  const evidence = (payload?.evidence ?? []).map((e) => e.text.trim());
  return [...new Set([whole, rec.title.trim(), ...evidence].filter(Boolean))];
}

async function writeAtomic(file: string, data: string | Buffer): Promise<void> {
  await writeFile(`${file}.tmp`, data);
  await rename(`${file}.tmp`, file);
}

/** A JSONL file written through a temp name, renamed when closed: a crash never leaves half a file. */
class JsonlWriter {
  readonly #file: string;
  readonly #out;
  count = 0;
  constructor(file: string) {
    this.#file = file;
    this.#out = createWriteStream(`${file}.tmp`);
  }
  async write(row: unknown): Promise<void> {
    this.count++;
    if (!this.#out.write(`${JSON.stringify(row)}\n`)) await once(this.#out, 'drain');
  }
  async close(): Promise<void> {
    this.#out.end();
    await once(this.#out, 'finish');
    await rename(`${this.#file}.tmp`, this.#file);
  }
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const d of await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (d.isFile() && d.name.endsWith('.npy')) total += (await stat(path.join(d.parentPath, d.name))).size;
  }
  return total;
}

/**
 * Decodes the sampled segments of one upload and writes frames.npy, audio.npy, then meta.json. Returns the bytes
 * written, or null (nothing written) when they would pass `budget`.
 */
async function exportMedia(
  deps: ExportDeps,
  rec: VideoRecord,
  folder: string,
  maxSegments: number,
  budget: number,
): Promise<number | null> {
  const { limits } = deps.config.media;
  const bounds = { timeoutMs: limits.timeoutMs, allowedContainers: limits.allowedContainers };
  const { video: vp, audio: ap } = deps.encoders.generation.preprocessing;
  const info = await probe(rec.uploadPath, limits, rec.videoId);
  const plan = planSegments(info.durationS, vp.segment_seconds, vp.frames_per_segment);
  const keep = new Set(sampleSegments(plan.segments, maxSegments));
  const frameBytes = vp.frame_size * vp.frame_size * 3;
  const samples = ap.samples;
  const estimate = keep.size * (vp.frames_per_segment * frameBytes + (info.audioCodec ? samples * 4 : 0));
  if (estimate > budget) return null;
  const segments: Array<{ index: number; startS: number; endS: number }> = [];
  const frames = new Uint8Array(keep.size * vp.frames_per_segment * frameBytes);
  const opts = { segmentSeconds: vp.segment_seconds, framesPerSegment: vp.frames_per_segment, size: vp.frame_size, resize: vp.resize };
  for await (const seg of iterateSegments(rec.uploadPath, { ...opts, durationS: info.durationS, ...bounds }, rec.videoId)) {
    if (!keep.has(seg.index)) continue;
    seg.frames.forEach((f, t) => frames.set(f, (segments.length * vp.frames_per_segment + t) * frameBytes));
    segments.push({ index: seg.index, startS: seg.startS, endS: seg.endS });
  }
  if (segments.length === 0) throw new AppError('CORRUPT_MEDIA', `ffmpeg on ${rec.videoId} decoded no frames`);
  const shape = [segments.length, vp.frames_per_segment, vp.frame_size, vp.frame_size, 3];
  const framesNpy = npy(frames.subarray(0, segments.length * vp.frames_per_segment * frameBytes), shape);
  await writeAtomic(path.join(folder, 'frames.npy'), framesNpy);
  let bytes = framesNpy.length;
  const pcm = info.audioCodec
    ? await extractAudio(
        rec.uploadPath,
        { sampleRate: ap.sample_rate, hasAudio: true, maxDurationS: info.durationS, ...bounds },
        rec.videoId,
      )
    : null;
  if (pcm) {
    const windows = segmentAudio(pcm, ap.sample_rate, ap.segment_seconds, plan.segments);
    const audio = new Float32Array(segments.length * samples);
    segments.forEach((s, i) => audio.set(windows[s.index]!.subarray(0, samples), i * samples));
    const audioNpy = npy(audio, [segments.length, samples]);
    await writeAtomic(path.join(folder, 'audio.npy'), audioNpy);
    bytes += audioNpy.length;
  }
  const meta = { videoId: rec.videoId, sha256: rec.sha256, durationS: info.durationS, segments, audio: pcm !== null, framesShape: shape };
  await writeAtomic(path.join(folder, 'meta.json'), `${JSON.stringify(meta)}\n`);
  return bytes;
}

/**
 * Decoding can fail for passing reasons (fluent-ffmpeg reports "Output stream closed" when a loaded machine lets the
 * pipe close before the child's exit is seen; the ingest has BullMQ's retries for that): up to 3 attempts, but
 * input that cannot be decoded (CORRUPT_MEDIA, limits) is not retried.
 */
async function withRetries<T>(fn: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || (isAppError(err) && err.code !== 'INTERNAL' && err.code !== 'MEDIA_TIMEOUT')) throw err;
      await new Promise((r) => setTimeout(r, 200 * i));
    }
  }
}

export async function exportTraining(deps: ExportDeps, opts: ExportOptions): Promise<ExportSummary> {
  const dir = path.resolve(opts.dir);
  const videosDir = path.join(dir, 'videos');
  await mkdir(videosDir, { recursive: true });
  const maxVideos = opts.maxVideos ?? Number.MAX_SAFE_INTEGER;
  const maxBytes = opts.maxBytes ?? Number.MAX_SAFE_INTEGER;
  const maxSegments = opts.maxSegments ?? 8;
  const total = Math.min(await deps.catalog.readyCount(), maxVideos);
  const summary: ExportSummary = {
    videos: 0,
    withMedia: 0,
    resumed: 0,
    withoutMedia: 0,
    failed: [],
    mediaBytes: await folderBytes(videosDir),
    events: 0,
  };
  const items = new JsonlWriter(path.join(dir, 'items.jsonl'));
  const vectors = new JsonlWriter(path.join(dir, 'vectors.jsonl'));
  const exported = new Set<string>();
  let budgetSpent = false;
  for (let offset = 0; summary.videos < total;) {
    const ids = await deps.catalog.readyPage(offset, Math.min(PAGE, total - summary.videos));
    if (ids.length === 0) break;
    offset += ids.length;
    const [recs, hits] = await Promise.all([deps.catalog.getMany(ids), deps.store.getItems(ids, true)]);
    for (let i = 0; i < ids.length; i++) {
      const rec = recs[i];
      const hit = hits[i];
      const fused = hit?.vectors?.fused;
      if (!rec || rec.status !== 'ready' || !fused) continue; // deleted or re-ingesting meanwhile
      const folder = path.join(videosDir, rec.videoId);
      let media = await readFile(path.join(folder, 'meta.json'), 'utf8').then(
        () => true,
        () => false,
      );
      if (media) summary.resumed++;
      else if (!budgetSpent && (await stat(rec.uploadPath).catch(() => null))) {
        await mkdir(folder, { recursive: true });
        const bytes = await withRetries(() => exportMedia(deps, rec, folder, maxSegments, maxBytes - summary.mediaBytes)).catch(
          (err: unknown) => {
            summary.failed.push(`${rec.videoId}: ${isAppError(err) ? `${err.code}: ${err.message}` : String(err)}`);
            return undefined;
          },
        );
        if (bytes === null) budgetSpent = true;
        else if (bytes !== undefined) {
          summary.mediaBytes += bytes;
          media = true;
        }
      }
      if (media) summary.withMedia++;
      else summary.withoutMedia++;
      await items.write({
        item: rec.videoId,
        title: rec.title,
        description: rec.description,
        tags: rec.tags,
        captions: captionsOf(rec, hit.payload),
        evidence: hit.payload.evidence ?? [],
        durationS: rec.durationS,
        uploadedAt: rec.uploadedAt,
        media,
      });
      await vectors.write({ item: rec.videoId, vector: Array.from(fused, (x) => Math.round(x * 1e6) / 1e6) });
      exported.add(rec.videoId);
      summary.videos++;
      opts.onProgress?.(summary.videos, total, summary.failed.length);
    }
  }
  await items.close();
  await vectors.close();
  const events = new JsonlWriter(path.join(dir, 'events.jsonl'));
  for (let after: string | null = '-'; after !== null;) {
    const page = await deps.events.page(after, 1000);
    for (const e of page.events) {
      if (!engaged(e) || !exported.has(e.videoId)) continue;
      await events.write({
        user: e.userId,
        item: e.videoId,
        timestamp: Math.floor(e.timestamp / 1000),
        watch_ratio: e.completion ?? 1,
        type: e.type,
      });
    }
    after = page.next;
  }
  await events.close();
  summary.events = events.count;
  const g = deps.encoders.generation;
  await writeAtomic(
    path.join(dir, 'export.json'),
    `${JSON.stringify(
      {
        format: TRAINING_EXPORT_FORMAT,
        complete: true,
        generation: g.name,
        dim: g.dim,
        preprocessing: { video: g.preprocessing.video, audio: g.preprocessing.audio },
        exportedAt: new Date().toISOString(),
        options: { maxVideos: opts.maxVideos ?? null, maxBytes: opts.maxBytes ?? null, maxSegments },
        ...summary,
      },
      null,
      1,
    )}\n`,
  );
  return summary;
}
