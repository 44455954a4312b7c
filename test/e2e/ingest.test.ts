/**
 * End to end on the real Redis, ffmpeg, ONNX files and embedded store: the API listens on loopback, the worker
 * is a separate process (`montage worker`), clips are rendered by the corpus generator and uploaded over HTTP.
 * Slow tier: `npm run test:e2e`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { listenLoopback, spawnWorker, startTestService, type TestService, type WorkerProcess } from '../helpers/service.ts';
import { corpusClip } from '../helpers/clips.ts';

let svc: TestService;
let base: string;
let worker: WorkerProcess;

before(async () => {
  svc = await startTestService();
  base = await listenLoopback(svc);
  worker = spawnWorker(svc, { LOG_LEVEL: 'info' });
});

after(async () => {
  await worker?.stop();
  await svc?.close();
});

async function uploadFile(file: string, fields: Record<string, string>): Promise<Response> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('file', new Blob([await readFile(file)], { type: 'video/mp4' }), path.basename(file));
  return fetch(`${base}/v1/videos`, { method: 'POST', body: form });
}

async function pollJob(jobId: string, timeoutMs = 180_000): Promise<{ final: Record<string, any>; stages: Set<string> }> {
  const stages = new Set<string>();
  const end = Date.now() + timeoutMs;
  for (;;) {
    const body = (await (await fetch(`${base}/v1/jobs/${encodeURIComponent(jobId)}`)).json()) as Record<string, any>;
    if (body.stage) stages.add(body.stage);
    if (body.state === 'completed' || body.state === 'failed') return { final: body, stages };
    if (Date.now() > end)
      throw new Error(`job ${jobId} still ${body.state} after ${timeoutMs} ms; worker log:\n${worker.log().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

test('upload → job done → item with named vectors, payload and modalities; same upload again → same job, one item', async () => {
  const file = path.join(svc.config.dataDir, 'clip.mp4');
  const info = await corpusClip(file, ['--seed', '11', '--seconds', '4', '--size', '256x256']);
  const res = await uploadFile(file, { title: 'A clip', description: info.caption, tags: 'demo, shapes' });
  assert.equal(res.status, 202, await res.clone().text());
  const accepted = (await res.json()) as { videoId: string; jobId: string; duplicate: boolean };
  assert.equal(accepted.duplicate, false);
  const { final, stages } = await pollJob(accepted.jobId);
  assert.equal(final.state, 'completed', JSON.stringify(final) + worker.log().slice(-3000));
  assert.equal(final.progress, 100);
  assert.ok(stages.size >= 1, 'progress reported stages');
  for (const s of ['probe', 'extract', 'encode', 'fuse', 'upsert', 'cleanup']) {
    assert.equal(typeof final.stageSeconds[s], 'number', s);
    const span = final.stageSpans[s] as { startS: number; endS: number };
    assert.ok(span && span.startS >= 0 && span.endS >= span.startS, `span of ${s}: ${JSON.stringify(span)}`);
  }
  // The towers start before the last frame is decoded is shown on a longer clip (test/integration/ingest-overlap);
  // here, that the first tower call comes after ffmpeg started and the last one no earlier than its end.
  assert.ok(final.stageSpans.encode.startS >= final.stageSpans.extract.startS, JSON.stringify(final.stageSpans));
  assert.ok(final.stageSpans.encode.endS >= final.stageSpans.extract.endS, JSON.stringify(final.stageSpans));

  const video = (await (await fetch(`${base}/v1/videos/${accepted.videoId}`)).json()) as Record<string, any>;
  assert.equal(video.status, 'ready');
  assert.deepEqual([...video.modalities].sort(), ['audio', 'text', 'video']);
  assert.equal(video.generation, svc.rt.encoders.generation.name);
  assert.ok(Math.abs(video.durationS - 4) < 0.3, `duration ${video.durationS}`);
  const poster = await fetch(`${base}${new URL(video.posterUrl, base).pathname}`);
  assert.equal(poster.headers.get('content-type'), 'image/jpeg');
  assert.ok((await poster.arrayBuffer()).byteLength > 500);

  const item = await svc.rt.store.getItem(accepted.videoId, true);
  assert.ok(item, 'item stored');
  const dim = svc.rt.encoders.generation.dim;
  const names = ['fused', 'video', 'audio', 'text', ...(svc.rt.encoders.has('behaviour') ? ['behaviour'] : [])];
  assert.deepEqual(Object.keys(item.vectors ?? {}).sort(), [...names].sort());
  for (const n of names) {
    const v: Float32Array = item.vectors![n as 'fused']!;
    assert.equal(v.length, dim);
    assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-3, `${n} is unit-norm`);
  }
  assert.equal(item.payload.title, 'A clip');
  assert.deepEqual(item.payload.tags, ['demo', 'shapes']);
  assert.equal(item.payload.generation, svc.rt.encoders.generation.name);
  assert.deepEqual([...item.payload.modalities].sort(), ['audio', 'text', 'video']);

  const again = await uploadFile(file, { title: 'A clip' });
  const dup = (await again.json()) as { videoId: string; jobId: string; duplicate: boolean };
  assert.equal(dup.jobId, accepted.jobId);
  assert.equal(dup.videoId, accepted.videoId);
  assert.equal(dup.duplicate, true);
  assert.equal(await svc.rt.store.countItems(), 1);
});

test('a silent clip is stored with video and text only', async () => {
  const file = path.join(svc.config.dataDir, 'silent.mp4');
  await corpusClip(file, ['--seed', '12', '--seconds', '3', '--size', '200x120', '--silent']);
  const res = await uploadFile(file, { title: 'Silent one' });
  const { jobId, videoId } = (await res.json()) as { videoId: string; jobId: string };
  const { final } = await pollJob(jobId);
  assert.equal(final.state, 'completed', JSON.stringify(final));
  const item = await svc.rt.store.getItem(videoId, true);
  assert.deepEqual([...item!.payload.modalities].sort(), ['text', 'video']);
  assert.equal(item!.vectors?.audio, undefined);
  assert.ok(item!.vectors?.video && item!.vectors?.fused && item!.vectors?.text);
});

test('a file that probes but does not decode fails its job once, without retry, touching nothing stored', async (t) => {
  const before = await svc.rt.store.countItems();
  const good = path.join(svc.config.dataDir, 'good.mp4');
  await corpusClip(good, ['--seed', '13', '--seconds', '4', '--size', '128x128']);
  // Keep the container header (ffprobe passes) and overwrite the coded picture data with noise.
  const bytes = await readFile(good);
  const mdat = bytes.indexOf(Buffer.from('mdat'));
  const moov = bytes.indexOf(Buffer.from('moov'));
  assert.ok(mdat > 0 && moov > 0);
  for (let i = mdat + 64; i < (moov > mdat ? moov : bytes.length) - 8; i++) bytes[i] = (i * 2654435761) >>> 24;
  const bad = path.join(svc.config.dataDir, 'bad.mp4');
  await writeFile(bad, bytes);
  const res = await uploadFile(bad, { title: 'broken' });
  t.diagnostic(`upload answered ${res.status}`);
  if (res.status !== 202) {
    // Refused at the door is also a correct outcome: then it must carry a media code and leave no file.
    const body = (await res.json()) as { error: { code: string } };
    assert.ok(['CORRUPT_MEDIA', 'UNSUPPORTED_MEDIA'].includes(body.error.code), JSON.stringify(body));
  } else {
    const { jobId, videoId } = (await res.json()) as { videoId: string; jobId: string };
    const { final } = await pollJob(jobId);
    assert.equal(final.state, 'failed', JSON.stringify(final));
    assert.equal(final.error.code, 'CORRUPT_MEDIA', JSON.stringify(final));
    assert.equal(final.attempts, 1, 'poison input is not retried');
    const video = (await (await fetch(`${base}/v1/videos/${videoId}`)).json()) as Record<string, any>;
    assert.equal(video.status, 'failed');
    assert.equal(video.error.code, 'CORRUPT_MEDIA');
    assert.equal(await svc.rt.store.getItem(videoId), null);
  }
  assert.equal(await svc.rt.store.countItems(), before, 'nothing already stored was touched');
  const sha = createHash('sha256').update(bytes).digest('hex');
  const uploads = await readdir(path.join(svc.config.dataDir, 'uploads'));
  assert.ok(!uploads.some((f) => f.startsWith(sha)), 'the bad upload was removed');
});

test('DELETE removes the vectors, the files and the record', async () => {
  const file = path.join(svc.config.dataDir, 'del.mp4');
  await corpusClip(file, ['--seed', '14', '--seconds', '2', '--size', '128x128']);
  const { jobId, videoId } = (await (await uploadFile(file, { title: 'to delete' })).json()) as { videoId: string; jobId: string };
  assert.equal((await pollJob(jobId)).final.state, 'completed');
  assert.ok(await svc.rt.store.getItem(videoId));
  const del = await fetch(`${base}/v1/videos/${videoId}`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  assert.equal(await svc.rt.store.getItem(videoId), null);
  assert.equal((await fetch(`${base}/v1/videos/${videoId}`)).status, 404);
  const uploads = await readdir(path.join(svc.config.dataDir, 'uploads'));
  assert.ok(!uploads.some((f) => f.startsWith(videoId)), 'upload file removed');
  const posters = await readdir(path.join(svc.config.dataDir, 'posters')).catch((): string[] => []);
  assert.ok(!posters.includes(`${videoId}.jpg`), 'poster removed');
});
