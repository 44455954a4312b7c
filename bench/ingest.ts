/**
 * bench/ingest: wall seconds per stage for 720p clips of 60 s, 5 and 10 min through the whole pipeline (queue,
 * worker, ffmpeg, ONNX towers, fusion, embedded store), beside ffmpeg alone decoding and sampling the same frames
 * and audio in the same run (the floor), plus the worker's peak RSS. Writes bench/results/ingest.json.
 * Enrichment (OCR + objects, the enrich job the ingest queues when its vectors have landed) is timed apart: the
 * ingest time is the ingest job's alone, and each clip's enrichment is waited for before the next clip is
 * uploaded, so it never shares the cores with a measured ingest (`--no-enrich` turns it off).
 * The service runs with its default ONNX Runtime threads (one per core but one), not the tests' two.
 *   npm run bench:ingest [-- --clips 60,300,600]
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startTestService } from '../test/helpers/service.ts';
import { lavfiClip } from '../test/helpers/clips.ts';
import { ROOT } from '../test/helpers/generation.ts';
import { probe } from '../src/media/index.ts';
import type { IngestResult } from '../src/queue/index.ts';
import { admitVideo, videoService } from '../src/videos/service.ts';
import { ffmpegFloor } from './lib/floor.ts';
import { intraOpThreads } from '../src/models/onnx.ts';

const { values } = parseArgs({
  options: { clips: { type: 'string', default: '60,300,600' }, 'no-enrich': { type: 'boolean', default: false } },
});
const enrich = !values['no-enrich'];
const lengths = values.clips!.split(',').map(Number);

const svc = await startTestService({
  workers: true,
  env: {
    MONTAGE_MAX_DURATION_S: '900',
    MONTAGE_MAX_UPLOAD_BYTES: String(Number.MAX_SAFE_INTEGER),
    LOG_LEVEL: 'warn',
    MONTAGE_INTRA_OP_THREADS: '0',
    ...(enrich ? {} : { MONTAGE_ENRICH_OCR: 'off', MONTAGE_ENRICH_OBJECTS: 'off' }),
  },
});
const gen = svc.rt.encoders.generation;
const vp = gen.preprocessing.video;
const runs = [];
/** Uploads one file through the real admission path and waits for its ingest job; returns the finished job. */
async function ingestOnce(file: string, title: string) {
  const stored = await svc.rt.files.receive(createReadStream(file));
  const admitted = await admitVideo(videoService(svc.rt), stored, { title, description: '', tags: [] });
  for (;;) {
    const job = (await svc.rt.jobs.queue('ingest').getJob(admitted.jobId))!;
    const state = await job.getState();
    if (state === 'failed') throw new Error(`bench job failed: ${job.failedReason}`);
    // Read again when the state said completed before the job's return value was there to read.
    if (state === 'completed' && job.returnvalue) return job;
    await new Promise((r) => setTimeout(r, 50));
  }
}
/** Waits for the video's enrich job (queued by its ingest); returns its wall seconds in the worker. */
async function enrichOf(videoId: string): Promise<number> {
  for (;;) {
    const job = await svc.rt.jobs.queue('enrich').getJob(`enrich-${videoId}`);
    const state = job ? await job.getState() : 'missing';
    if (job && (state === 'completed' || state === 'failed')) return (job.finishedOn! - job.processedOn!) / 1000;
    await new Promise((r) => setTimeout(r, 100));
  }
}
try {
  // Warm-up: a long-running worker has opened its ONNX sessions and run ffmpeg before; so does the bench.
  const warm = path.join(svc.config.dataDir, 'warmup.mp4');
  await lavfiClip(warm, { seconds: 2, size: '320x240' });
  const warmJob = await ingestOnce(warm, 'warm-up');
  await enrichOf((warmJob.returnvalue as IngestResult).videoId);
  for (const seconds of lengths) {
    const file = path.join(svc.config.dataDir, `bench-${seconds}s.mp4`);
    await lavfiClip(file, { seconds, size: '1280x720' });
    const { limits } = svc.config.media;
    const info = await probe(file, limits, `bench-${seconds}s`);
    const floorOpts = {
      segmentSeconds: vp.segment_seconds,
      framesPerSegment: vp.frames_per_segment,
      size: vp.frame_size,
      resize: vp.resize,
      durationS: info.durationS,
      sampleRate: gen.preprocessing.audio.sample_rate,
      hasAudio: info.audioCodec !== null,
      timeoutMs: limits.timeoutMs,
      allowedContainers: limits.allowedContainers,
    };
    const loadBefore = os.loadavg()[0]!;
    const floorA = (await ffmpegFloor(file, floorOpts)).seconds;

    let peak = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const done = await ingestOnce(file, `bench ${seconds}s`);
    clearInterval(sampler);
    const result = done.returnvalue as IngestResult;
    // The enrichment this ingest queued runs now, alone, before the second floor and the next clip.
    const enrichS = await enrichOf(result.videoId);
    const floorB = (await ffmpegFloor(file, floorOpts)).seconds;
    const floor = Math.min(floorA, floorB);
    const pipeline = (done.finishedOn! - done.processedOn!) / 1000;
    const run = {
      clip_seconds: seconds,
      pipeline_s: +pipeline.toFixed(3),
      ffmpeg_floor_s: +floor.toFixed(3),
      ratio: +(pipeline / floor).toFixed(2),
      stages: Object.fromEntries(Object.entries(result.stages).map(([k, v]) => [k, +v.toFixed(3)])),
      seconds_per_video_minute: +((pipeline / seconds) * 60).toFixed(2),
      segments: result.segments,
      enrich_s: +enrichS.toFixed(3),
      enrich_seconds_per_video_minute: +((enrichS / seconds) * 60).toFixed(2),
      peak_rss_mb: Math.round(peak / 2 ** 20),
      // Seconds from the job's start: extract (ffmpeg) and encode (the towers) overlap.
      spans: result.spans,
      load_avg_1m: [+loadBefore.toFixed(1), +os.loadavg()[0]!.toFixed(1)],
    };
    console.log(JSON.stringify(run));
    runs.push(run);
  }
} finally {
  await svc.close();
}
const out = {
  generated_at: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memory_gb: Math.round(os.totalmem() / 2 ** 30) },
  generation: gen.name,
  clip: '1280x720 H.264 testsrc2 + 440 Hz sine (AAC), 10 fps',
  provider: svc.config.models.provider,
  intra_op_threads: intraOpThreads(svc.config.models.intraOpThreads),
  note: 'after a warm-up job; pipeline_s = job processing wall time in the worker (probe → cleanup, the probe reusing the one made at admission); ffmpeg_floor_s = best of two runs of ffmpeg alone decoding, sampling and resizing the same frames and resampling the same audio to the null muxer; peak_rss_mb = the bench process (API runtime + in-process worker) sampled every 20 ms during the ingest; spans = when extraction (ffmpeg) and encoding (the towers) ran, seconds from the job start; load_avg_1m = before the first floor and after the second (the machine is shared); enrich_s = the enrich job (OCR + objects) the ingest queued, run alone after the ingest finished and not counted in pipeline_s',
  enrichment: enrich,
  runs,
};
await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
await writeFile(path.join(ROOT, 'bench', 'results', 'ingest.json'), `${JSON.stringify(out, null, 2)}\n`);
