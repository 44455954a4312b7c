/**
 * The overlapped ingest on the real worker (in process), ffmpeg, ONNX files, Redis and embedded store: the towers
 * start on the first segments while ffmpeg is still decoding the rest (the job's stage spans overlap), and what
 * lands in the store equals the sequential path (every frame extracted, the whole track, then the towers at once).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestService, waitForJob, type TestService } from '../helpers/service.ts';
import { lavfiClip } from '../helpers/clips.ts';
import { multipart } from '../helpers/multipart.ts';
import { extractAudio, extractFrames, probe, segmentAudio } from '../../src/media/index.ts';
import { fuseSegment } from '../../src/fusion/index.ts';

let svc: TestService;

before(async () => {
  svc = await startTestService({ workers: true, env: { MONTAGE_ENRICH_OCR: 'off', MONTAGE_ENRICH_OBJECTS: 'off' } });
});
after(async () => {
  await svc?.close();
});

/** Largest absolute difference between two vectors of one length. */
function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('encoding starts before extraction ends, and the stored vectors equal the sequential path', async (t) => {
  const file = path.join(svc.config.dataDir, 'overlap.mp4');
  // 40 s at 640x360 25 fps: ~20 segments, long enough that ffmpeg is still decoding when the first batch is encoded.
  await lavfiClip(file, { seconds: 40, size: '640x360', fps: 25 });
  const res = await svc.app.inject({
    method: 'POST',
    url: '/v1/videos',
    ...multipart({ title: 'overlap' }, { data: await readFile(file) }),
  });
  assert.equal(res.statusCode, 202, res.body);
  const { jobId, videoId } = res.json() as { jobId: string; videoId: string };
  const job = (await waitForJob(svc, jobId, 300_000)) as {
    state: string;
    stageSeconds: Record<string, number>;
    stageSpans: Record<string, { startS: number; endS: number }>;
  };
  assert.equal(job.state, 'completed', JSON.stringify(job));
  const { extract, encode } = job.stageSpans;
  t.diagnostic(
    `spans: extract ${JSON.stringify(extract)} encode ${JSON.stringify(encode)}; stage seconds ${JSON.stringify(job.stageSeconds)}`,
  );
  assert.ok(extract && encode, 'extract and encode spans');
  assert.ok(encode.startS < extract.endS, `the towers started (${encode.startS} s) before ffmpeg ended (${extract.endS} s)`);
  // extract ends when ffmpeg exits, a few ms after its last frame: the towers may finish the last batch in between
  assert.ok(
    encode.endS >= extract.endS - 0.1,
    `the towers worked until the last frames (${encode.endS} s; ffmpeg exited at ${extract.endS} s)`,
  );
  for (const s of ['probe', 'fuse', 'upsert', 'cleanup']) assert.ok(job.stageSpans[s], `span of ${s}`);

  // The sequential path: all frames, the whole track, then the towers in full batches.
  const enc = svc.rt.encoders;
  const { video: vp, audio: ap } = enc.generation.preprocessing;
  const { limits } = svc.config.media;
  const bounds = { timeoutMs: limits.timeoutMs, allowedContainers: limits.allowedContainers };
  const info = await probe(file, limits, 'seq');
  const frames = await extractFrames(
    file,
    {
      segmentSeconds: vp.segment_seconds,
      framesPerSegment: vp.frames_per_segment,
      size: vp.frame_size,
      resize: vp.resize,
      durationS: info.durationS,
      ...bounds,
    },
    'seq',
  );
  const pcm = await extractAudio(file, { sampleRate: ap.sample_rate, hasAudio: true, maxDurationS: info.durationS, ...bounds }, 'seq');
  const video = await enc.encodeFrames(frames);
  const audio = await enc.encodeAudio(segmentAudio(pcm!, ap.sample_rate, ap.segment_seconds, frames.length));

  const stored = (await svc.rt.store.getSegments(videoId)).sort((a, b) => a.payload.index - b.payload.index);
  assert.equal(stored.length, frames.length, 'one stored segment per sequential segment');
  let worst = 0;
  stored.forEach((s, i) => {
    assert.equal(s.payload.startS, frames[i]!.startS);
    worst = Math.max(worst, maxDiff(s.vectors.video!, video[i]!), maxDiff(s.vectors.audio!, audio[i]!));
    worst = Math.max(worst, maxDiff(s.vectors.fused!, fuseSegment({ video: video[i], audio: audio[i] })));
  });
  t.diagnostic(`largest difference from the sequential path: ${worst}`);
  // Batches of other sizes may round differently in the last bits; anything beyond that is a misaligned segment.
  assert.ok(worst < 1e-4, `stored vectors differ from the sequential path by ${worst}`);
});
