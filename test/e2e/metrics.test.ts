/**
 * GET /metrics after a real run: the API in this process, the worker a separate process (`montage worker`), so the
 * worker's metrics reach the scrape only through its Redis snapshots. Clips are uploaded over HTTP: a clip with
 * sound, a silent one (degraded), one that probes but does not decode (a failed job) and a file that is not media
 * at all (refused at the door); then searches, known and unknown words, and a cold user's recommendations.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { listenLoopback, spawnWorker, startTestService, type TestService, type WorkerProcess } from '../helpers/service.ts';
import { corpusClip } from '../helpers/clips.ts';
import { parseProm, samples, total, type Sample } from '../helpers/prom.ts';

let svc: TestService;
let base: string;
let worker: WorkerProcess;

before(async () => {
  svc = await startTestService({ env: { MONTAGE_METRICS_REFERENCE_ITEMS: '2', MONTAGE_METRICS_PUBLISH_MS: '200' } });
  base = await listenLoopback(svc);
  worker = spawnWorker(svc);
});

after(async () => {
  await worker?.stop();
  await svc?.close();
});

async function upload(file: string, title: string): Promise<Response> {
  const form = new FormData();
  form.append('title', title);
  form.append('file', new Blob([await readFile(file)], { type: 'video/mp4' }), path.basename(file));
  return fetch(`${base}/v1/videos`, { method: 'POST', body: form });
}

async function finish(res: Response): Promise<Record<string, any>> {
  assert.equal(res.status, 202, await res.clone().text());
  const { jobId } = (await res.json()) as { jobId: string };
  for (const end = Date.now() + 180_000; Date.now() < end; await new Promise((r) => setTimeout(r, 150))) {
    const body = (await (await fetch(`${base}/v1/jobs/${jobId}`)).json()) as Record<string, any>;
    if (body.state === 'completed' || body.state === 'failed') return body;
  }
  throw new Error(`job ${jobId} did not finish; worker log:\n${worker.log().slice(-3000)}`);
}

async function scrape(): Promise<Sample[]> {
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return parseProm(await res.text());
}

test('a scrape after a real run holds every metric, with values that follow from what happened', async (t) => {
  const dir = svc.config.dataDir;
  const loud = path.join(dir, 'loud.mp4');
  const silent = path.join(dir, 'silent.mp4');
  await corpusClip(loud, ['--seed', '21', '--seconds', '4', '--size', '160x160']);
  await corpusClip(silent, ['--seed', '22', '--seconds', '3', '--size', '160x160', '--silent']);
  const first = await finish(await upload(loud, 'red circle moving'));
  assert.equal(first.state, 'completed', JSON.stringify(first) + worker.log().slice(-3000));
  assert.equal((await finish(await upload(silent, 'blue square'))).state, 'completed');

  // Probes but does not decode: the container header is kept, the coded data is noise → CORRUPT_MEDIA in the job.
  const bytes = await readFile(loud);
  const mdat = bytes.indexOf(Buffer.from('mdat'));
  const moov = bytes.indexOf(Buffer.from('moov'));
  for (let i = mdat + 64; i < (moov > mdat ? moov : bytes.length) - 8; i++) bytes[i] = (i * 2654435761) >>> 24;
  const broken = path.join(dir, 'broken.mp4');
  await writeFile(broken, bytes);
  const brokenRes = await upload(broken, 'broken');
  t.diagnostic(`broken upload answered ${brokenRes.status}`);
  if (brokenRes.status === 202) assert.equal((await finish(brokenRes)).state, 'failed');
  // Not media at all: refused at the door with a catalogue code.
  const junk = path.join(dir, 'junk.mp4');
  await writeFile(junk, Buffer.alloc(4096, 7));
  const junkRes = await upload(junk, 'junk');
  assert.ok(junkRes.status >= 400, `junk upload answered ${junkRes.status}`);
  const junkCode = ((await junkRes.json()) as { error: { code: string } }).error.code;

  const post = (body: object) =>
    fetch(`${base}/v1/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal((await post({ text: 'red circle', limit: 5 })).status, 200);
  assert.equal((await post({ text: 'zorblax quuxified flimflam', limit: 5 })).status, 200);
  assert.equal((await fetch(`${base}/v1/videos/${first.videoId}/similar?limit=3`)).status, 200);
  const recs = await fetch(`${base}/v1/users/newcomer/recommendations?limit=5`);
  assert.equal(recs.status, 200);
  assert.equal(((await recs.json()) as { source: string }).source, 'popular-fresh');

  // The worker publishes every 200 ms and after each job; the recommendation counters are counted after the reply.
  await new Promise((r) => setTimeout(r, 600));
  const m = await scrape();
  t.diagnostic(
    m
      .filter((s) => /^montage_(items|embedding_(drift|reference)|job_fail|api_err|cold|text_q|queue)/.test(s.name))
      .map((s) => `${s.name}${JSON.stringify(s.labels)} ${s.value}`)
      .join('\n'),
  );

  // Jobs: stage durations from the worker process, per stage, one observation per completed ingest.
  for (const stage of ['probe', 'extract', 'encode', 'fuse', 'upsert', 'cleanup']) {
    assert.equal(total(m, 'montage_ingest_stage_seconds_count', { stage }), 2, `stage ${stage}`);
  }
  assert.ok(total(m, 'montage_ingest_stage_seconds_sum', { stage: 'extract' }) > 0);
  assert.equal(total(m, 'montage_job_seconds_count', { type: 'ingest' }), 2);
  assert.ok(samples(m, 'montage_queue_jobs', { queue: 'ingest', state: 'completed' })[0]?.value === 2);
  assert.equal(total(m, 'montage_queue_jobs', { queue: 'ingest', state: 'active' }), 0);

  // Failures by code: the broken upload's job (or its refusal at the door) and the junk's refusal.
  if (brokenRes.status === 202) assert.equal(total(m, 'montage_job_failures_total', { type: 'ingest', code: 'CORRUPT_MEDIA' }), 1);
  assert.ok(total(m, 'montage_api_errors_total', { code: junkCode }) >= 1, junkCode);

  // HTTP counts by route pattern (never by raw URL) and status.
  assert.ok(total(m, 'montage_http_requests_total', { method: 'POST', route: '/v1/search', status: '200' }) >= 2);
  assert.ok(total(m, 'montage_http_requests_total', { method: 'POST', route: '/v1/videos', status: '202' }) >= 2);
  assert.equal(samples(m, 'montage_http_requests_total').filter((s) => /[0-9a-f]{32}/.test(s.labels.route ?? '')).length, 0);

  // Latency histograms.
  assert.equal(total(m, 'montage_search_seconds_count', { kind: 'text' }), 2);
  assert.equal(total(m, 'montage_search_seconds_count', { kind: 'similar' }), 1);
  assert.equal(total(m, 'montage_recommendation_seconds_count'), 1);

  // Embedding health: pre-normalisation norms in (0, 1] for segment means, ~1 for the text tower's own output.
  assert.equal(total(m, 'montage_embedding_norm_count', { modality: 'video' }), 2);
  assert.equal(total(m, 'montage_embedding_norm_count', { modality: 'audio' }), 1);
  const videoNormMean = total(m, 'montage_embedding_norm_sum', { modality: 'video' }) / 2;
  assert.ok(videoNormMean > 0.1 && videoNormMean <= 1.0001, `video norm ${videoNormMean}`);
  const textNormMean = total(m, 'montage_embedding_norm_sum', { modality: 'text' }) / 2;
  assert.ok(Math.abs(textNormMean - 1) < 0.01, `text norm ${textNormMean}`);
  // One of two stored items (the silent clip) lacks audio.
  assert.equal(total(m, 'montage_items_stored_total', { degraded: 'true' }), 1);
  assert.equal(total(m, 'montage_items_missing_modality_total', { modality: 'audio' }), 1);
  assert.equal(total(m, 'montage_items_degraded_ratio'), 0.5);
  // Drift: the reference is the first 2 items (persisted beside the store), the window holds the same items → ~0.
  assert.ok(existsSync(svc.rt.health.referencePath), 'reference persisted beside the store');
  const drift = samples(m, 'montage_embedding_drift', { modality: 'video' })[0];
  assert.ok(drift && drift.value >= -1e-6 && drift.value < 1e-3, `video drift ${drift?.value}`);
  assert.equal(total(m, 'montage_embedding_reference_items', { modality: 'video' }), 2);

  // Text queries: one of two is made of words the tokenizer has never seen.
  assert.equal(total(m, 'montage_text_queries_total', { mostly_unknown: 'true' }), 1);
  assert.equal(total(m, 'montage_text_queries_mostly_unknown_ratio'), 0.5);
  // Cold start: a user with no history gets popular-fresh, and every item served has no engagement yet.
  assert.equal(total(m, 'montage_recommendations_total', { source: 'popular-fresh' }), 1);
  assert.ok(total(m, 'montage_recommended_items_total', { cold: 'true' }) >= 1);
  assert.equal(total(m, 'montage_cold_start_exposure_ratio'), 1);
});
