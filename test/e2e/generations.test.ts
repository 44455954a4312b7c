/**
 * The generation lifecycle end to end on the real stack (API + in-process workers + Redis + embedded store in a temp
 * dir + real ffmpeg and ONNX towers), driven through the real CLI (`montage generation ...` as child processes):
 * ingest clips and post events under the default generation, import the other committed generation (copied to a
 * temp folder, as if made elsewhere), backfill it while search keeps answering (no request fails, every response
 * names one generation: the served one), upload during the backfill (written to both), switch (search and
 * recommendations answer from the new generation, with the users' recomputed vectors), roll back (and again).
 * Slow tier.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startTestService, waitForJob, type TestService } from '../helpers/service.ts';
import { corpusClip } from '../helpers/clips.ts';
import { multipart } from '../helpers/multipart.ts';
import { ROOT } from '../helpers/generation.ts';
import { loadManifest } from '../../src/models/manifest.ts';

const run = promisify(execFile);
const OLD = 'mtg-2026.12-cpu'; // the default, served first
const NEW = 'mtg-2026.11-cpu'; // the other committed generation, imported as the "new" one
const KINDS = {
  a: ['shape=circle', 'colour=red', 'background=black', 'motion=left', 'waveform=sine', 'pitch=low'],
  b: ['shape=star', 'colour=blue', 'background=checkerboard', 'motion=up', 'waveform=square', 'pitch=high'],
} as const;

let svc: TestService;
let gensDir: string;
let outside: string;
const videos: string[] = [];
let seq = 0;

async function cli(...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, [path.join(ROOT, 'src/cli/main.ts'), 'generation', ...args], {
    env: { ...process.env, ...svc.env },
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout) as Record<string, unknown>;
}

async function upload(kind: keyof typeof KINDS, seed: number): Promise<string> {
  const f = path.join(svc.config.dataDir, `${kind}${seed}.mp4`);
  await corpusClip(f, ['--seed', String(seed), '--seconds', '2', '--size', '128x128', ...KINDS[kind].flatMap((s) => ['--set', s])]);
  const { payload, headers } = multipart({ title: `${kind} clip ${seed}` }, { data: await readFile(f) });
  const r = await svc.app.inject({ method: 'POST', url: '/v1/videos', payload, headers });
  assert.equal(r.statusCode, 202, r.body);
  const { videoId, jobId } = r.json() as { videoId: string; jobId: string };
  assert.equal((await waitForJob(svc, jobId, 300_000)).state, 'completed');
  return videoId;
}

/** A text search; asserts it answered and names one generation in the body and the header. */
async function search(text = 'a red circle'): Promise<{ generation: string; ids: string[] }> {
  const r = await svc.app.inject({ method: 'POST', url: '/v1/search', payload: { text, limit: 10 } });
  assert.equal(r.statusCode, 200, r.body);
  const body = r.json() as { generation: string; hits: Array<{ videoId: string }> };
  assert.equal(r.headers['x-montage-generation'], body.generation);
  return { generation: body.generation, ids: body.hits.map((h) => h.videoId) };
}

async function recommend(userId: string): Promise<{ generation: string; source: string; ids: string[] }> {
  const r = await svc.app.inject(`/v1/users/${userId}/recommendations?limit=4`);
  assert.equal(r.statusCode, 200, r.body);
  const body = r.json() as { generation: string; source: string; hits: Array<{ videoId: string }> };
  return { generation: body.generation, source: body.source, ids: body.hits.map((h) => h.videoId) };
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 300_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Waits until search answers from `gen` (each API process re-reads the aliases every MONTAGE_GENERATION_REFRESH_MS). */
async function servedBy(gen: string): Promise<void> {
  await until(`search from ${gen}`, async () => (await search()).generation === gen, 10_000);
}

before(async () => {
  gensDir = await mkdtemp(path.join(tmpdir(), 'montage-gens-'));
  outside = await mkdtemp(path.join(tmpdir(), 'montage-outside-'));
  await cp(path.join(ROOT, 'encoders', 'generations', NEW), path.join(outside, NEW), { recursive: true });
  svc = await startTestService({
    workers: true,
    env: {
      MONTAGE_GENERATION_DIR: path.join(ROOT, 'encoders', 'generations', OLD),
      MONTAGE_GENERATIONS_DIR: gensDir,
      MONTAGE_GENERATION_REFRESH_MS: '200',
      MONTAGE_RECOMMEND_PERSONAL_AT: '2',
      MONTAGE_ENRICH_OCR: 'false',
      MONTAGE_ENRICH_OBJECTS: 'false',
    },
  });
  for (const [kind, seed] of [
    ['a', 1],
    ['a', 2],
    ['b', 3],
    ['b', 4],
  ] as const)
    videos.push(await upload(kind, 900 + seed));
  const r = await svc.app.inject({
    method: 'POST',
    url: '/v1/events',
    payload: {
      events: videos.slice(0, 2).map((videoId, i) => ({
        eventId: `e${seq++}`,
        userId: 'u1',
        videoId,
        type: 'like',
        completion: 0.9,
        timestamp: new Date(Date.now() - (2 - i) * 1000).toISOString(),
      })),
    },
  });
  assert.equal(r.statusCode, 202, r.body);
  await until('u1 vector', async () => (await svc.rt.store.getUser('u1'))?.events === 2, 60_000);
});

after(async () => {
  await svc?.close();
  await rm(gensDir, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

test('import, backfill with search answering throughout, switch, rollback', { timeout: 1_200_000 }, async () => {
  // served: the default generation
  const first = await search();
  assert.equal(first.generation, OLD);
  assert.ok(first.ids.length >= 4, `all four clips found: ${first.ids}`);
  assert.equal((await recommend('u1')).generation, OLD);

  // import the "outside" generation: checked, copied under MONTAGE_GENERATIONS_DIR
  const imported = await cli('import', path.join(outside, NEW));
  assert.equal(imported.ok, true, JSON.stringify(imported.problems));
  assert.equal(imported.dest, path.join(gensDir, NEW));

  // no switch to a generation whose collections are not filled
  await assert.rejects(cli('switch', NEW), (err: { stderr?: string }) => /no finished backfill/.test(err.stderr ?? ''));

  // backfill in the background while searching: every request answers, from the served generation only
  const started = await cli('backfill', NEW, '--detach');
  assert.equal(started.generation, NEW);
  assert.equal(started.total, 4);
  let answered = 0;
  let added = '';
  const searching = (async () => {
    for (;;) {
      const s = await svc.rt.generationState.backfill();
      const res = await search();
      assert.equal(res.generation, OLD, 'search answers from the served generation during the backfill');
      answered++;
      if (s?.finishedAt) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  // an upload during the backfill is written to both generations
  await until('the workers see the secondary', async () => svc.rt.generations.secondary === NEW, 10_000);
  added = await upload('a', 905);
  await searching;
  assert.ok(answered >= 3, `search answered ${answered} times during the backfill`);
  const state = await svc.rt.generationState.backfill();
  assert.deepEqual([state?.remaining, state?.failed, state?.users], [0, 0, 1]);
  const newStore = svc.rt.generations.pair(NEW).store;
  await until('the new upload in the new generation', async () => (await newStore.getItem(added)) !== null, 120_000);
  for (const id of videos) assert.equal((await newStore.getItem(id))?.payload.generation, NEW, `${id} backfilled`);
  await until('u1 recomputed in the new generation', async () => (await newStore.getUser('u1'))?.generation === NEW, 60_000);

  // switch: every alias at once; search and recommendations answer from the new generation
  const switched = await cli('switch', NEW);
  assert.equal(switched.previous, OLD);
  await servedBy(NEW);
  const after = await search();
  assert.deepEqual(new Set(after.ids), new Set([...videos, added]), 'every video searchable in the new generation');
  const rec = await recommend('u1');
  assert.equal(rec.generation, NEW);
  assert.equal(rec.source, 'personal', 'u1 has a vector of the new generation');
  assert.ok(rec.ids.length > 0);
  const status = await cli('status');
  assert.equal(status.served, NEW);
  assert.equal(status.secondary, OLD);
  assert.equal((status.drift as { generation: string }).generation, NEW);

  // roll back: the default again, with the upload made during the backfill
  const back = await cli('rollback');
  assert.equal(back.served, OLD);
  await servedBy(OLD);
  const again = await search();
  assert.ok(again.ids.includes(added));
  const rec2 = await recommend('u1');
  assert.equal(rec2.generation, OLD);
  assert.equal(rec2.source, 'personal');

  // a drift reference for the imported generation from its stored items; the folder still verifies
  const ref = await cli('reference', NEW, '--items', '10');
  assert.deepEqual(ref.items, { video: 5, audio: 5, text: 5 });
  await loadManifest(path.join(gensDir, NEW));
  const drift = (await cli('drift', NEW)) as { generation: string; reference: { source: string } | null; stale: boolean };
  assert.equal(drift.generation, NEW);
  assert.equal(drift.reference?.source, 'export');
  // the served generation's staleness is a metric
  const metrics = await svc.app.inject('/metrics');
  assert.match(metrics.body, new RegExp(`montage_generation_stale\\{generation="${OLD}"\\} [01]`));
  assert.match(metrics.body, new RegExp(`montage_generation_new_items_per_day\\{generation="${OLD}"\\} \\d`));
});
