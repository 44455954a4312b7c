/**
 * Enrichment on the real stack (API + worker on Redis, the served generation with its objects.onnx, Debian's
 * tesseract): after the ingest job the enrich job reads on-screen text and detects objects, and search finds a
 * clip by a word burnt into it (with the time range it was on screen) and a photograph's clip by "dog" and
 * "puppy"; a video whose enrichment fails (tesseract path pointing at nothing) keeps its ingest vectors, stays
 * searchable and says which enrichment failed. Slow tier.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestService, waitForJob, type TestService } from '../helpers/service.ts';
import { multipart } from '../helpers/multipart.ts';
import { missingFiles, sceneClip } from '../helpers/enrich-media.ts';
import { defaultGenerationDir, generationWithout } from '../helpers/generation.ts';
import { rm } from 'node:fs/promises';

let svc: TestService;
const ids: Record<string, string> = {};

type Hit = { videoId: string; [k: string]: any };

async function ingest(s: TestService, file: string, title: string): Promise<string> {
  const { payload, headers } = multipart({ title }, { data: await readFile(file) });
  const r = await s.app.inject({ method: 'POST', url: '/v1/videos', payload, headers });
  assert.equal(r.statusCode, 202, r.body);
  const { jobId, videoId } = r.json() as { jobId: string; videoId: string };
  const job = await waitForJob(s, jobId, 300_000);
  assert.equal(job.state, 'completed', JSON.stringify(job));
  return videoId;
}

/** Polls GET /v1/videos/:id until no enrichment is pending; returns the video. */
async function enriched(s: TestService, videoId: string, timeoutMs = 400_000): Promise<Record<string, any>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await s.app.inject({ method: 'GET', url: `/v1/videos/${videoId}` });
    assert.equal(r.statusCode, 200, r.body);
    const v = r.json() as Record<string, any>;
    const states = Object.values(v.enrichments ?? { none: { state: 'pending' } }).map((e: any) => e.state);
    if (!states.includes('pending')) return v;
    if (Date.now() > end) throw new Error(`enrichment of ${videoId} still pending: ${JSON.stringify(v.enrichments)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function search(s: TestService, body: Record<string, unknown>): Promise<Hit[]> {
  const r = await s.app.inject({ method: 'POST', url: '/v1/search', payload: body });
  assert.equal(r.statusCode, 200, r.body);
  return r.json().hits;
}

before(async () => {
  assert.deepEqual(missingFiles(), [], 'apt packages darknet and fonts-dejavu-core are needed (scripts/deps.tsv)');
  svc = await startTestService({ workers: true });
  const dir = svc.config.dataDir;
  const size = { w: 640, h: 360 };
  // Text on screen from 4 s to 8 s only.
  await sceneClip(
    path.join(dir, 'text.mp4'),
    [
      { seconds: 4, background: { color: '0x203040' } },
      { seconds: 4, background: { color: '0x203040' }, captions: [{ text: 'FLOOD WARNING downtown', size: 36, border: 2 }] },
    ],
    size,
  );
  await sceneClip(path.join(dir, 'dog.mp4'), [{ seconds: 6, background: { photo: 'dog' } }], { ...size, zoom: true });
  await sceneClip(path.join(dir, 'horses.mp4'), [{ seconds: 6, background: { photo: 'horses' } }], { ...size, zoom: true });
  // Titles say nothing of the content: what finds them is the evidence.
  for (const name of ['text', 'dog', 'horses']) ids[name] = await ingest(svc, path.join(dir, `${name}.mp4`), `upload ${name}`);
});
after(async () => svc?.close());

test('a video is searchable at ingest end and its status says which enrichments are done', async () => {
  const v = await enriched(svc, ids.text!);
  assert.equal(v.status, 'ready');
  assert.equal(v.enrichments.ocr.state, 'done', JSON.stringify(v.enrichments));
  assert.ok(v.enrichments.ocr.items >= 1);
  assert.equal(v.enrichments.objects.state, 'done', JSON.stringify(v.enrichments));
  assert.equal(v.enrichments.speech.state, 'skipped');
  assert.match(v.enrichments.speech.reason, /WER 0\.772/);
});

test('a word of burnt-in text finds its clip, with the time range it was on screen', async (t) => {
  for (const name of Object.keys(ids)) await enriched(svc, ids[name]!);
  const hits = await search(svc, { text: 'flood', limit: 3 });
  t.diagnostic(JSON.stringify(hits.map((h) => [h.videoId === ids.text ? 'text' : h.videoId, h.score, h.evidence])));
  assert.equal(hits[0]?.videoId, ids.text);
  const ocr = hits[0]!.evidence.find((e: any) => e.kind === 'ocr');
  assert.ok(ocr, 'the hit carries the line it matched');
  assert.match(ocr.text, /FLOOD/);
  assert.deepEqual(ocr.words, ['flood']);
  // Sampled at 2 fps against the last kept frame: the caption shows up within a second of 4 s, and lasts to the end.
  assert.ok(ocr.startS >= 3 && ocr.startS <= 5, `caption starts at ${ocr.startS}`);
  assert.ok(ocr.endS >= 7.5 && ocr.endS <= 8.5, `caption ends at ${ocr.endS}`);

  const withMoments = await search(svc, { text: 'flood warning', limit: 3, moments: true });
  assert.equal(withMoments[0]?.videoId, ids.text);
  const m = withMoments[0]!.moments[0];
  assert.ok(m.startS >= 3 && m.endS <= 8.5 && m.startS < 5, `best moment ${JSON.stringify(m)}`);
  assert.ok(
    m.evidence?.some((e: any) => e.kind === 'ocr'),
    'the moment lists the line read in it',
  );

  // The words are in the payload: a filter on them keeps only that clip.
  const filtered = await search(svc, { text: 'anything', limit: 5, filter: { evidence: { any: ['Downtown'] } } });
  assert.deepEqual(
    filtered.map((h) => h.videoId),
    [ids.text],
  );
});

test('the dog photograph is found by "dog" and by "puppy"', async (t) => {
  for (const q of ['dog', 'puppy', 'a puppy']) {
    const hits = await search(svc, { text: q, limit: 3 });
    t.diagnostic(`${q}: ${JSON.stringify(hits.map((h) => [Object.keys(ids).find((k) => ids[k] === h.videoId), h.score.toFixed(3)]))}`);
    assert.equal(hits[0]?.videoId, ids.dog, `"${q}" → ${hits[0]?.videoId}`);
    const dog = hits[0]!.evidence.find((e: any) => e.kind === 'object' && e.text === 'dog');
    assert.ok(dog, `"${q}" hit says it saw a dog`);
    assert.ok(dog.startS <= 0.5 && dog.endS >= 5.5, `dog seen over ${dog.startS}-${dog.endS}`);
  }
  const horses = await search(svc, { text: 'horse', limit: 1 });
  assert.equal(horses[0]?.videoId, ids.horses);
});

test('a failed enrichment keeps the ingest vectors, the video searchable, and names the enrichment', async () => {
  const broken = await startTestService({ workers: true, env: { TESSERACT_PATH: '/nonexistent/tesseract' } });
  try {
    const file = path.join(broken.config.dataDir, 'text.mp4');
    await sceneClip(file, [{ seconds: 3, background: { color: '0x203040' }, captions: [{ text: 'FLOOD WARNING', size: 36 }] }], {
      w: 640,
      h: 360,
    });
    const videoId = await ingest(broken, file, 'upload broken');
    const before = await broken.rt.store.getItem(videoId, true);
    assert.ok(before?.vectors?.fused, 'searchable at ingest end');
    const v = await enriched(broken, videoId);
    assert.equal(v.status, 'ready');
    assert.equal(v.enrichments.ocr.state, 'failed');
    assert.equal(v.enrichments.ocr.error.code, 'INTERNAL');
    assert.match(v.enrichments.ocr.error.message, /tesseract/);
    assert.equal(v.enrichments.objects.state, 'done', 'the other engine still ran');
    const after = await broken.rt.store.getItem(videoId, true);
    assert.ok(after?.vectors?.fused && after.vectors.video, 'the ingest vectors are still there');
    const hits = await search(broken, { text: 'flood warning', limit: 5 });
    assert.ok(
      hits.some((h) => h.videoId === videoId),
      'still found by search',
    );
  } finally {
    await broken.close();
  }
});

test('a generation without a detector skips objects with its reason, and OCR turned off says so', async () => {
  const gen = await generationWithout(defaultGenerationDir()!, 'objects');
  const plain = await startTestService({ workers: true, env: { MONTAGE_GENERATION_DIR: gen, MONTAGE_ENRICH_OCR: 'off' } });
  try {
    const file = path.join(plain.config.dataDir, 'dog.mp4');
    await sceneClip(file, [{ seconds: 2, background: { photo: 'dog' } }], { w: 640, h: 360 });
    const videoId = await ingest(plain, file, 'upload plain');
    const v = await enriched(plain, videoId);
    assert.equal(v.enrichments.objects.state, 'skipped');
    assert.match(v.enrichments.objects.reason, /ships no object detector/);
    assert.equal(v.enrichments.ocr.state, 'skipped');
    assert.match(v.enrichments.ocr.reason, /MONTAGE_ENRICH_OCR=off/);
    const item = await plain.rt.store.getItem(videoId, true);
    assert.ok(item?.vectors?.fused, 'the ingest vectors are there');
    assert.equal(item.payload.evidence, undefined, 'nothing found, nothing written');
  } finally {
    await plain.close();
    await rm(gen, { recursive: true, force: true });
  }
});
