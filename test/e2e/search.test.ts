/**
 * Search on the real encoders and the real embedded store, with procedural clips ingested through the pipeline:
 * captions find their clip, a re-encode is the first "more like this" hit, the audio modality ranks by sound,
 * moments localise the second scene of a spliced clip, every filter is honoured, and diversity 1 never returns two
 * near-duplicates when distinct items exist. Slow tier.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestService, waitForJob, type TestService } from '../helpers/service.ts';
import { corpusClip, reencode, type ClipInfo } from '../helpers/clips.ts';
import { multipart } from '../helpers/multipart.ts';
import { dot } from '../../src/vectors.ts';
import { DUPLICATE_SIMILARITY } from '../../src/search/service.ts';

const N_CLIPS = Number(process.env.SEARCH_E2E_CLIPS ?? 50);
let svc: TestService;
const clips: Array<{ videoId: string; caption: string; spec: Record<string, unknown>; file: string }> = [];

async function ingest(file: string, fields: Record<string, string>): Promise<string> {
  const { payload, headers } = multipart(fields, { data: await readFile(file) });
  const r = await svc.app.inject({ method: 'POST', url: '/v1/videos', payload, headers });
  assert.equal(r.statusCode, 202, r.body);
  const { jobId, videoId } = r.json() as { jobId: string; videoId: string };
  const job = await waitForJob(svc, jobId, 300_000);
  assert.equal(job.state, 'completed', JSON.stringify(job));
  return videoId;
}

type Hit = { videoId: string; [k: string]: any };

async function search(body: Record<string, unknown>): Promise<Hit[]> {
  const r = await svc.app.inject({ method: 'POST', url: '/v1/search', payload: body });
  assert.equal(r.statusCode, 200, r.body);
  return r.json().hits;
}

before(async () => {
  svc = await startTestService({ workers: true });
  // Held-out attribute combinations (never seen in training); titles say nothing about the content.
  for (let i = 0; i < N_CLIPS; i++) {
    const file = path.join(svc.config.dataDir, `c${i}.mp4`);
    const info: ClipInfo = await corpusClip(file, ['--seed', String(1000 + i), '--split', 'test', '--seconds', '4', '--size', '160x160']);
    const tags = i % 2 === 0 ? 'even' : 'odd';
    const videoId = await ingest(file, { title: `clip ${i}`, tags: i % 5 === 0 ? `${tags},fifth` : tags });
    clips.push({ videoId, caption: info.caption, spec: info.spec as Record<string, unknown>, file });
  }
});
after(async () => svc?.close());

test(`a caption describing one clip finds it in the top 5 among ${N_CLIPS} clips`, async (t) => {
  let top5 = 0;
  for (const c of clips) {
    const hits = await search({ text: c.caption, limit: 5 });
    if (hits.some((h) => h.videoId === c.videoId)) top5++;
  }
  t.diagnostic(`caption → clip in top 5: ${top5}/${clips.length} (chance ${(5 / clips.length).toFixed(2)})`);
  assert.ok(top5 / clips.length >= 0.5, `only ${top5}/${clips.length} captions found their clip in the top 5`);
  // And a specific one, as a person would use the search box:
  const hits = await search({ text: clips[3]!.caption, limit: 5 });
  assert.ok(
    hits.some((h) => h.videoId === clips[3]!.videoId),
    `caption "${clips[3]!.caption}" missed its clip`,
  );
});

test('a re-encoded copy (other resolution and bitrate) is the first video → video hit of the original', async (t) => {
  const original = clips[7]!;
  const copy = path.join(svc.config.dataDir, 'copy.mp4');
  await reencode(original.file, copy, '96x96', '60k');
  const copyId = await ingest(copy, { title: 'a copy' });
  const r = await svc.app.inject(`/v1/videos/${original.videoId}/similar?limit=5`);
  assert.equal(r.statusCode, 200, r.body);
  t.diagnostic(
    `similar scores: ${r
      .json()
      .hits.map((h: { videoId: string; score: number }) => `${h.videoId === copyId ? 'COPY' : 'other'} ${h.score.toFixed(3)}`)
      .join(', ')}`,
  );
  assert.equal(r.json().hits[0].videoId, copyId);
  // collapseDuplicates drops it
  const collapsed = await svc.app.inject(`/v1/videos/${original.videoId}/similar?limit=5&collapseDuplicates=true`);
  assert.ok(!collapsed.json().hits.some((h: { videoId: string }) => h.videoId === copyId));
});

test('modality "audio" ranks a clip with the same sound above a clip with the same picture', async () => {
  const base = {
    shape: 'star',
    colour: 'yellow',
    size: 'large',
    motion: 'left',
    background: 'grey',
    waveform: 'square',
    pitch: 'low',
    rhythm: 'beeping',
    noise: 'none',
  };
  const sets = (o: Record<string, string>) => Object.entries(o).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
  const mk = async (name: string, o: Record<string, string>, seed: number) => {
    const f = path.join(svc.config.dataDir, `${name}.mp4`);
    await corpusClip(f, ['--seed', String(seed), '--seconds', '4', '--size', '160x160', ...sets(o)]);
    return ingest(f, { title: name });
  };
  const anchor = await mk('anchor', base, 1);
  const sameSound = await mk(
    'same-sound',
    { ...base, shape: 'ring', colour: 'blue', size: 'small', motion: 'up', background: 'checkerboard' },
    2,
  );
  const samePicture = await mk('same-picture', { ...base, waveform: 'sine', pitch: 'high', rhythm: 'rising', noise: 'white' }, 3);
  const rank = (hits: Array<{ videoId: string }>, id: string) => hits.findIndex((h) => h.videoId === id);
  const audio = await search({ videoId: anchor, modality: 'audio', limit: 60 });
  assert.ok(
    rank(audio, sameSound) >= 0 && rank(audio, sameSound) < rank(audio, samePicture),
    `audio: same sound at ${rank(audio, sameSound)}, same picture at ${rank(audio, samePicture)}`,
  );
  const video = await search({ videoId: anchor, modality: 'video', limit: 60 });
  assert.ok(
    rank(video, samePicture) < rank(video, sameSound),
    `video: same picture at ${rank(video, samePicture)}, same sound at ${rank(video, sameSound)}`,
  );
});

test('moments: a query describing the second scene of a spliced clip returns a range covering the second half', async () => {
  const f = path.join(svc.config.dataDir, 'spliced.mp4');
  const info = await corpusClip(f, [
    '--seed',
    '21',
    '--set',
    'shape=circle',
    '--set',
    'colour=red',
    '--set',
    'background=black',
    '--set',
    'motion=still',
    '--scene-seed',
    '22',
    '--scene-seconds',
    '4',
    '--seconds',
    '8',
    '--size',
    '160x160',
  ]);
  const scenes = info.scenes as Array<{ start: number; end: number; caption: string }>;
  assert.equal(scenes.length, 2);
  const videoId = await ingest(f, { title: 'spliced' });
  const hits = await search({ text: scenes[1]!.caption, moments: true, limit: 60 });
  const hit = hits.find((h) => h.videoId === videoId);
  assert.ok(hit, 'the spliced clip is among the moment hits');
  const best = hit.moments[0] as { startS: number; endS: number };
  assert.ok(
    best.startS >= scenes[1]!.start - 1e-6 && best.startS < scenes[1]!.end,
    `best moment ${JSON.stringify(best)} starts in the second scene ${JSON.stringify(scenes[1])}`,
  );
  assert.ok(
    hit.moments.some((m: { startS: number; endS: number }) => m.startS <= scenes[1]!.start + 2 && m.endS >= scenes[1]!.end - 0.5),
    `no moment covers the second half: ${JSON.stringify(hit.moments)}`,
  );
});

test('every filter is honoured', async () => {
  const q = { text: 'a shape moving', limit: 100 };
  const all = await search(q);
  assert.ok(all.length >= N_CLIPS);
  for (const h of await search({ ...q, filter: { tags: { any: ['fifth'] } } })) assert.ok(h.tags.includes('fifth'));
  assert.equal((await search({ ...q, filter: { tags: { any: ['fifth'] } } })).length, N_CLIPS / 5);
  for (const h of await search({ ...q, filter: { tags: { all: ['even', 'fifth'] } } }))
    assert.ok(h.tags.includes('even') && h.tags.includes('fifth'));
  assert.equal((await search({ ...q, filter: { tags: { all: ['even', 'fifth'] } } })).length, N_CLIPS / 10);
  const short = await search({ ...q, filter: { durationS: { max: 5 } } });
  assert.ok(short.length > 0 && short.every((h) => h.durationS <= 5));
  assert.ok((await search({ ...q, filter: { durationS: { min: 6 } } })).every((h) => h.durationS >= 6));
  const mid = new Date(Date.parse(all.map((h) => h.uploadedAt).sort()[Math.floor(all.length / 2)]!));
  const after = await search({ ...q, filter: { uploadedAt: { from: mid.toISOString() } } });
  assert.ok(after.length > 0 && after.length < all.length && after.every((h) => Date.parse(h.uploadedAt) >= mid.getTime()));
  const before = await search({ ...q, filter: { uploadedAt: { to: mid.toISOString() } } });
  assert.ok(before.every((h) => Date.parse(h.uploadedAt) <= mid.getTime()));
  const withAudio = await search({ ...q, filter: { modalities: ['audio'] } });
  assert.ok(withAudio.every((h) => h.modalities.includes('audio')));
  assert.ok(withAudio.length < all.length, 'the corpus has silent clips, which the audio filter drops');
  const excluded = await search({ ...q, exclude: [all[0]!.videoId] });
  assert.ok(!excluded.some((h) => h.videoId === all[0]!.videoId));
  // Moments take the same filters, applied to each segment's video (modalities are the video's, not the segment's).
  const fifthMoments = await search({ ...q, moments: true, filter: { tags: { any: ['fifth'] } } });
  assert.equal(fifthMoments.length, N_CLIPS / 5);
  assert.ok(fifthMoments.every((h) => h.tags.includes('fifth') && h.moments.length > 0));
  assert.ok((await search({ ...q, moments: true, filter: { modalities: ['text'] } })).length > 0);
  assert.ok(!(await search({ ...q, moments: true, exclude: [all[0]!.videoId] })).some((h) => h.videoId === all[0]!.videoId));
  const page2 = await search({ ...q, limit: 5, offset: 5 });
  assert.deepEqual(
    page2.map((h) => h.videoId),
    all.slice(5, 10).map((h) => h.videoId),
  );
});

test('diversity 1 returns no two near-duplicates when distinct items exist', async () => {
  const original = clips[11]!;
  for (const [i, size] of ['128x128', '112x112', '144x144'].entries()) {
    const f = path.join(svc.config.dataDir, `dup${i}.mp4`);
    await reencode(original.file, f, size, `${80 + 40 * i}k`);
    await ingest(f, { title: `dup ${i}` });
  }
  const plain = await search({ text: original.caption, limit: 6, modality: 'video' });
  const diverse = await search({ text: original.caption, limit: 6, modality: 'video', diversity: 1 });
  const vec = async (id: string) => (await svc.rt.store.getItem(id, true))!.vectors!.video!;
  const maxPairSim = async (hits: Array<{ videoId: string }>) => {
    const vs = await Promise.all(hits.map((h) => vec(h.videoId)));
    let m = -1;
    for (let i = 0; i < vs.length; i++) for (let j = i + 1; j < vs.length; j++) m = Math.max(m, dot(vs[i]!, vs[j]!));
    return m;
  };
  assert.ok((await maxPairSim(plain)) >= DUPLICATE_SIMILARITY, 'without diversity the near-copies crowd the list');
  assert.ok((await maxPairSim(diverse)) < DUPLICATE_SIMILARITY, 'with diversity 1 no two hits are near-duplicates');
});
