/**
 * The learning loop's first half on the real stack: clips ingested over the API (real ffmpeg, ONNX, Redis, embedded
 * store), events posted, `montage export-training` run as a process (resumable, bounded), the Python fine-tune run on
 * its folder for a few steps, and the result loaded by the Node runtime as a generation whose manifest and card carry
 * the held-out metrics of both generations on the same split. Slow tier (about two minutes on one core).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startTestService, waitForJob, type TestService } from '../helpers/service.ts';
import { corpusClip } from '../helpers/clips.ts';
import { multipart } from '../helpers/multipart.ts';
import { ROOT } from '../helpers/generation.ts';
import { loadEncoders, loadManifest } from '../../src/models/index.ts';
import { createLogger } from '../../src/log.ts';

const run = promisify(execFile);
let svc: TestService;
let out: string;
const ids: string[] = [];
const captions: string[] = [];
/**
 * Titles the served generation has no reason to link with these clips (its captions name shapes and colours): what
 * a platform's catalogue teaches that the base could not know.
 */
const TITLES = ['quokka', 'tardigrade', 'axolotl', 'narwhal', 'pangolin'];

let gensDir: string;

before(async () => {
  // generations imported by the last test land in a temp folder, not in encoders/generations
  gensDir = await mkdtemp(path.join(tmpdir(), 'montage-ft-gens-'));
  svc = await startTestService({
    workers: true,
    env: { MONTAGE_GENERATIONS_DIR: gensDir, MONTAGE_GENERATION_REFRESH_MS: '200', MONTAGE_RECOMMEND_PERSONAL_AT: '2' },
  });
  out = await mkdtemp(path.join(tmpdir(), 'montage-finetune-'));
  for (let i = 0; i < 5; i++) {
    const f = path.join(svc.config.dataDir, `c${i}.mp4`);
    const clip = await corpusClip(f, ['--seed', String(700 + i), '--seconds', '4', '--size', '128x128']);
    const { payload, headers } = multipart(
      { title: TITLES[i]!, description: clip.caption, tags: 'catalogue' },
      { data: await readFile(f) },
    );
    const r = await svc.app.inject({ method: 'POST', url: '/v1/videos', payload, headers });
    assert.equal(r.statusCode, 202, r.body);
    assert.equal((await waitForJob(svc, r.json().jobId)).state, 'completed');
    ids.push(r.json().videoId);
    captions.push(clip.caption);
  }
  // 8 users, each watching every clip once in an order of their own, one skip each (not exported) and a rewatch
  const t0 = Date.parse('2026-11-01T00:00:00Z');
  const events = [];
  for (let u = 0; u < 8; u++) {
    const order = ids.map((_, i) => ids[(i * (u % 2 ? 2 : 1) + u) % ids.length]!);
    order.forEach((v, k) =>
      events.push({
        eventId: `u${u}-${k}`,
        userId: `user-${u}`,
        videoId: v,
        type: 'view',
        completion: 0.9,
        timestamp: new Date(t0 + (u * 100 + k) * 60_000).toISOString(),
      }),
    );
    events.push({
      eventId: `u${u}-skip`,
      userId: `user-${u}`,
      videoId: ids[u % ids.length]!,
      type: 'skip',
      timestamp: new Date(t0 + (u * 100 + 10) * 60_000).toISOString(),
    });
    events.push({
      eventId: `u${u}-again`,
      userId: `user-${u}`,
      videoId: order[0]!,
      type: 'like',
      timestamp: new Date(t0 + (u * 100 + 11) * 60_000).toISOString(),
    });
  }
  const r = await svc.app.inject({ method: 'POST', url: '/v1/events', payload: { events } });
  assert.equal(r.statusCode, 202, r.body);
});
after(async () => {
  await svc?.close();
  if (out) await rm(out, { recursive: true, force: true });
  if (gensDir) await rm(gensDir, { recursive: true, force: true });
});

async function montage(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [path.join(ROOT, 'src/cli/main.ts'), ...args], { env: { ...process.env, ...svc.env }, timeout: 300_000 });
}

test('export-training writes frames, audio, captions, vectors and events; a rerun resumes; --max-videos and --max-bytes bound it', async () => {
  const dir = path.join(out, 'export');
  const first = await montage(['export-training', dir, '--max-segments', '2']);
  const summary = JSON.parse(first.stdout);
  assert.deepEqual([summary.videos, summary.withMedia, summary.resumed, summary.events], [5, 5, 0, 48], first.stderr);
  assert.match(first.stderr, /5\/5 done/, 'a progress bar');
  const info = JSON.parse(await readFile(path.join(dir, 'export.json'), 'utf8'));
  assert.equal(info.complete, true);
  const frames = await readFile(path.join(dir, 'videos', ids[0]!, 'frames.npy'));
  assert.equal(frames.subarray(1, 6).toString('latin1'), 'NUMPY');
  const size = info.preprocessing.video.frame_size;
  assert.match(
    frames.toString('latin1', 10, 128),
    new RegExp(`'shape': \\(2, ${info.preprocessing.video.frames_per_segment}, ${size}, ${size}, 3\\)`),
  );
  const items = (await readFile(path.join(dir, 'items.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(new Set(items.map((i) => i.item)), new Set(ids));
  const first0 = items.find((i) => i.item === ids[0]);
  assert.equal(first0.captions[0], `${TITLES[0]}. ${captions[0]}. catalogue`, 'title, description and tags, as the ingest encodes them');
  assert.equal(first0.captions[1], TITLES[0], 'and the title alone');
  const vec = JSON.parse((await readFile(path.join(dir, 'vectors.jsonl'), 'utf8')).split('\n')[0]!);
  assert.equal(vec.vector.length, info.dim);
  const ev = (await readFile(path.join(dir, 'events.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.ok(
    ev.every((e) => e.type !== 'skip' && typeof e.timestamp === 'number' && e.timestamp < 2e9),
    'engaged events, unix seconds',
  );

  const again = JSON.parse((await montage(['export-training', dir, '--max-segments', '2'])).stdout);
  assert.equal(again.resumed, 5, 'a second run redoes no media');

  const oneVideo = frames.length + (await readFile(path.join(dir, 'videos', ids[0]!, 'audio.npy'))).length;
  const small = JSON.parse(
    (await montage(['export-training', path.join(out, 'small'), '--max-videos', '2', '--max-bytes', String(oneVideo + 10)])).stdout,
  );
  assert.equal(small.videos, 2);
  assert.equal(small.withMedia, 1, 'the byte budget holds the media of one video only');
  assert.ok(small.mediaBytes <= oneVideo + 10, `media bytes ${small.mediaBytes}`);
});

test('the fine-tune starts from the served generation and exports a generation the runtime loads, with both held-out metrics', async () => {
  const dir = path.join(out, 'export');
  const base = svc.config.models.generationDir;
  const dest = path.join(out, 'generations');
  const started = Date.now();
  const sets = ['steps=30', 'batch_size=16', 'replay_clips=24', 'procedural_test=40', 'behaviour_epochs=3', 'behaviour_budget_s=20'];
  const r = await run(
    '/usr/bin/python3',
    [
      '-m',
      'montage_encoders.finetune',
      '--data',
      dir,
      '--base',
      base,
      '--name',
      'ft-test',
      '--dest',
      dest,
      ...sets.flatMap((s) => ['--set', s]),
    ],
    {
      cwd: path.join(ROOT, 'encoders'),
      env: { ...process.env, OMP_NUM_THREADS: '1' },
      timeout: 300_000,
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  console.log(`fine-tune took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  assert.match(r.stdout, /golden max abs diff/);
  const folder = path.join(dest, 'ft-test');
  const verified = await loadManifest(folder); // sha256 of every file, schema
  const manifest = JSON.parse(await readFile(path.join(folder, 'manifest.json'), 'utf8'));
  const baseManifest = JSON.parse(await readFile(path.join(base, 'manifest.json'), 'utf8'));
  assert.equal(manifest.generation, 'ft-test');
  assert.equal(manifest.training.fine_tuned_from, baseManifest.generation);
  assert.equal(manifest.files['video.onnx'], baseManifest.files['video.onnx'], 'the video tower is locked');
  assert.notEqual(manifest.files['text.onnx'], baseManifest.files['text.onnx'], 'the text tower moved');
  assert.notEqual(manifest.files['user.onnx'], baseManifest.files['user.onnx'], 'the user tower moved');
  const fm = manifest.metrics.finetune;
  for (const side of ['previous', 'new']) {
    assert.equal(fm.content[side].catalogue_text_to_video.queries, fm.heldout_videos.length);
    assert.equal(fm.content[side].procedural_text_to_video.gallery_size, 40);
    assert.equal(typeof fm.behaviour[side].test_ndcg_at_10, 'number');
  }
  assert.ok(fm.heldout_videos.length >= 1 && fm.heldout_videos.every((v: string) => ids.includes(v)));
  console.log(JSON.stringify({ content: fm.content, behaviour: { previous: fm.behaviour.previous, new: fm.behaviour.new } }));
  const fixed = fm.content.training.fixed_batch_loss;
  assert.ok(fixed.after < fixed.before, `the steps learnt: loss on a fixed batch ${fixed.before} -> ${fixed.after}`);
  const titles = (side: string) => fm.content[side].catalogue_trained_titles_to_video.r1;
  assert.ok(titles('new') > titles('previous'), `the catalogue's titles were learnt: R@1 ${titles('previous')} -> ${titles('new')}`);
  // the forgetting guard: what the base knew (procedural held-out) stays within a margin after fine-tuning
  const proc = (side: string) => fm.content[side].procedural_text_to_video.r1;
  assert.ok(proc('new') >= proc('previous') - fm.forgetting.margin, `procedural R@1 ${proc('previous')} -> ${proc('new')}`);
  assert.deepEqual([fm.forgetting.previous, fm.forgetting.new, fm.forgetting.within_margin], [proc('previous'), proc('new'), true]);
  const card = await readFile(path.join(folder, 'README.md'), 'utf8');
  assert.match(card, /previous \(`[^`]+`\) \| new \(`ft-test`\)/);
  assert.match(card, /procedural text→video R@1\/5\/10 \| [0-9.]+ \/ [0-9.]+ \/ [0-9.]+ \| [0-9.]+ \//);
  assert.match(card, /Forgetting check: .*\*\*within the margin\*\*/);
  assert.equal(verified.info.dim, baseManifest.dim);

  const enc = await loadEncoders(folder, { provider: 'cpu', intraOpThreads: 1, maxBatch: 8, log: createLogger('silent') });
  try {
    assert.equal(enc.generation.name, 'ft-test');
    const [v] = await enc.encodeText([captions[0]!]);
    assert.equal(v!.length, baseManifest.dim);
    assert.ok(Math.abs(Math.hypot(...v!) - 1) < 1e-3);
  } finally {
    await enc.close();
  }
});

/** A text search through the API: the generation that answered (body and header agree) and the ids, best first. */
async function search(text: string): Promise<{ generation: string; ids: string[] }> {
  const r = await svc.app.inject({ method: 'POST', url: '/v1/search', payload: { text, limit: 5 } });
  assert.equal(r.statusCode, 200, r.body);
  const body = r.json() as { generation: string; hits: Array<{ videoId: string }> };
  assert.equal(r.headers['x-montage-generation'], body.generation);
  return { generation: body.generation, ids: body.hits.map((h) => h.videoId) };
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// The whole loop of issue 14 on one deployment: the generation fine-tuned above from this deployment's own export is
// imported, backfilled, switched to (search and recommendations answer from it, and it knows the catalogue's
// titles), and rolled back. Runs after the fine-tune test (node:test runs a file's tests in order).
test('the fine-tuned generation goes live: import, backfill, switch, rollback', async () => {
  const folder = path.join(out, 'generations', 'ft-test');
  const served = svc.rt.encoders.generation.name;
  const cli = async (...args: string[]) => JSON.parse((await montage(['generation', ...args])).stdout) as Record<string, unknown>;
  const imported = await cli('import', folder);
  assert.equal(imported.ok, true, JSON.stringify(imported.problems));
  assert.equal((await cli('backfill', 'ft-test', '--detach')).total, 5);
  // search answers throughout the backfill, from the served generation only
  let answered = 0;
  await until('the backfill', async () => {
    const done = Boolean((await svc.rt.generationState.backfill())?.finishedAt);
    assert.equal((await search('quokka')).generation, served, 'search answers from the served generation during the backfill');
    answered++;
    return done;
  });
  assert.ok(answered >= 1);
  assert.equal((await search('quokka')).generation, served, 'the served generation answers until the switch');
  const titlesFirst = async () => {
    let n = 0;
    for (let i = 0; i < TITLES.length; i++) if ((await search(TITLES[i]!)).ids[0] === ids[i]) n++;
    return n;
  };
  const before = await titlesFirst();
  assert.equal((await cli('switch', 'ft-test')).previous, served);
  await until('search from ft-test', async () => (await search('quokka')).generation === 'ft-test', 10_000);
  const after = await titlesFirst();
  assert.ok(after > before, `titles that find their own clip first: ${before} of 5 served by ${served}, ${after} after the switch`);
  const rec = await svc.app.inject('/v1/users/user-0/recommendations?limit=3');
  assert.equal(rec.statusCode, 200, rec.body);
  assert.equal((rec.json() as { generation: string }).generation, 'ft-test');
  assert.equal((await cli('rollback')).served, served);
  await until(`search from ${served}`, async () => (await search('quokka')).generation === served, 10_000);
});
