/**
 * The cold-start recommender end to end on the real stack (API + worker + Redis + embedded store + ONNX towers):
 * two kinds of generated clips, users who watch one kind, a new upload of that kind with no event on it reaching
 * those users' lists (and not the others') within seconds with a reason naming the clips they watched; a user
 * with no events gets the popular list; a session of three ids gets a list like them. Slow tier.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestService, waitForJob, type TestService } from '../helpers/service.ts';
import { corpusClip } from '../helpers/clips.ts';
import { multipart } from '../helpers/multipart.ts';

// Two kinds differing in every attribute the corpus draws, picture and sound.
const KINDS = {
  a: ['shape=circle', 'colour=red', 'background=black', 'motion=left', 'waveform=sine', 'pitch=low'],
  b: ['shape=star', 'colour=blue', 'background=checkerboard', 'motion=up', 'waveform=square', 'pitch=high'],
} as const;
type Kind = keyof typeof KINDS;
const PER_KIND = 6;
const EXPERIMENTS = JSON.stringify({ 'cold-start': { arms: [{ name: 'personal' }, { name: 'popular', mode: 'popular' }] } });

let svc: TestService;
const kindOf = new Map<string, Kind>();
const clips: Record<Kind, string[]> = { a: [], b: [] };
let seq = 0;

async function upload(kind: Kind, seed: number): Promise<{ videoId: string; jobId: string }> {
  const f = path.join(svc.config.dataDir, `${kind}${seed}.mp4`);
  const sets = KINDS[kind].flatMap((s) => ['--set', s]);
  await corpusClip(f, ['--seed', String(seed), '--seconds', '2', '--size', '128x128', ...sets]);
  const { payload, headers } = multipart({ title: `${kind} clip ${seed}` }, { data: await readFile(f) });
  const r = await svc.app.inject({ method: 'POST', url: '/v1/videos', payload, headers });
  assert.equal(r.statusCode, 202, r.body);
  kindOf.set(r.json().videoId, kind);
  return r.json();
}

async function events(userId: string, videoIds: string[], type = 'like') {
  const now = Date.now();
  const r = await svc.app.inject({
    method: 'POST',
    url: '/v1/events',
    payload: {
      events: videoIds.map((videoId, i) => ({
        eventId: `e${seq++}`,
        userId,
        videoId,
        type,
        completion: 0.9,
        timestamp: new Date(now - (videoIds.length - i) * 1000).toISOString(),
      })),
    },
  });
  assert.equal(r.statusCode, 202, r.body);
}

async function waitUser(userId: string, events: number, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  while (!((await svc.rt.store.getUser(userId))?.events === events)) {
    if (Date.now() > end) throw new Error(`user ${userId} has no vector of ${events} events`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

type Hit = { videoId: string; reason: { path: string; closest: Array<{ videoId: string; title: string; similarity: number }> } };
const list = async (userId: string, query = 'limit=4') => {
  const r = await svc.app.inject(`/v1/users/${userId}/recommendations?${query}`);
  assert.equal(r.statusCode, 200, r.body);
  return r.json() as { source: string; personalShare: number; hits: Hit[]; experiment?: { name: string; arm: string } };
};

before(async () => {
  // Three events make a list fully personal here, so what is asserted is the vectors and the new-item slot,
  // not the popular half of a blend.
  svc = await startTestService({ workers: true, env: { MONTAGE_RECOMMEND_PERSONAL_AT: '3', MONTAGE_RECOMMEND_EXPERIMENTS: EXPERIMENTS } });
  for (const kind of ['a', 'b'] as const) {
    for (let i = 0; i < PER_KIND; i++) {
      const { videoId, jobId } = await upload(kind, 700 + i);
      assert.equal((await waitForJob(svc, jobId)).state, 'completed');
      clips[kind].push(videoId);
    }
  }
});
after(async () => svc?.close());

test('a new upload reaches the users who watch its kind within seconds, with no event on it, and says why', async (t) => {
  if (!svc.rt.encoders.has('user') || !svc.rt.encoders.has('behaviour')) {
    t.skip(`generation ${svc.rt.encoders.generation.name} has no user/behaviour tower`);
    return;
  }
  // Fans watch three of their kind; someone else watches the rest, so only new uploads have no interactions.
  for (const kind of ['a', 'b'] as const) {
    for (const fan of [`fan-${kind}1`, `fan-${kind}2`]) await events(fan, clips[kind].slice(0, 3));
    await events('someone', clips[kind].slice(3), 'view');
  }
  for (const fan of ['fan-a1', 'fan-a2', 'fan-b1', 'fan-b2']) await waitUser(fan, 3);
  // The job wrote the fan's watched clips beside the vector: lists read them from there, not from the store.
  const profile = await svc.rt.profiles.get('fan-a1');
  assert.deepEqual(
    profile?.watched.map((w) => [w.videoId, w.behaviour?.length]),
    clips.a.slice(0, 3).map((id) => [id, svc.rt.encoders.generation.dim]),
  );

  const before = await list('fan-a1');
  assert.equal(before.source, 'personal');
  assert.deepEqual(
    before.hits.slice(0, 3).map((h) => kindOf.get(h.videoId)),
    ['a', 'a', 'a'],
    'an a fan is recommended the a clips they have not seen',
  );

  // One new clip of each kind: they compete for the new-item slot, each user's vector chooses.
  const t0 = Date.now();
  const aNew = await upload('a', 900);
  const bNew = await upload('b', 901);
  await Promise.all([waitForJob(svc, aNew.jobId), waitForJob(svc, bNew.jobId)]);
  const ready = Date.now();
  let seenAfterMs = -1;
  for (const deadline = ready + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    if ((await list('fan-a1')).hits.some((h) => h.videoId === aNew.videoId)) {
      seenAfterMs = Date.now() - ready;
      break;
    }
  }
  t.diagnostic(`new clip in its fans' lists ${seenAfterMs} ms after its job completed (${ready - t0} ms upload to ready)`);
  assert.ok(seenAfterMs >= 0, 'the new clip reached fan-a1 within 10 s of being ready');

  for (const fan of ['fan-a1', 'fan-a2']) {
    const l = await list(fan);
    const hit = l.hits.find((h) => h.videoId === aNew.videoId);
    assert.ok(hit, `${fan} gets the new a clip`);
    assert.equal(hit.reason.path, 'new-item');
    assert.ok(hit.reason.closest.length > 0, 'the reason names watched clips');
    for (const c of hit.reason.closest) assert.ok(clips.a.slice(0, 3).includes(c.videoId), `${c.title} is a watched a clip`);
    assert.match(hit.reason.closest[0]!.title, /^a clip/);
    assert.ok(!l.hits.some((h) => h.videoId === bNew.videoId), `${fan} does not get the new b clip`);
  }
  for (const fan of ['fan-b1', 'fan-b2']) {
    const l = await list(fan);
    assert.ok(!l.hits.some((h) => h.videoId === aNew.videoId), `${fan} does not get the new a clip`);
    assert.ok(
      l.hits.some((h) => h.videoId === bNew.videoId && h.reason.path === 'new-item'),
      `${fan} gets the new b clip`,
    );
  }
  const seen = await svc.rt.popularity.interacted([aNew.videoId]);
  assert.deepEqual(seen, [false], 'no event on the new clip');

  // More like this, in the behaviour space, for a clip nobody has viewed.
  const sim = await svc.app.inject(`/v1/videos/${aNew.videoId}/similar?space=behaviour&limit=3`);
  assert.equal(sim.statusCode, 200, sim.body);
  const simKinds = sim.json().hits.map((h: { videoId: string }) => kindOf.get(h.videoId));
  assert.deepEqual(simKinds, ['a', 'a', 'a'], 'behaviour neighbours of a new a clip are a clips');
});

test('a user with no events gets the popular list; a session of three ids gets a list like them', async () => {
  const cold = await list('never-seen-before', 'limit=3');
  assert.equal(cold.source, 'popular-fresh');
  assert.equal(cold.personalShare, 0);
  assert.ok(cold.hits.length > 0);
  const top = (await svc.rt.popularity.top(1))[0]!;
  assert.equal(cold.hits[0]!.videoId, top.videoId, 'the most popular first');
  assert.equal(cold.hits[0]!.reason.path, 'popular');
  assert.deepEqual(cold.hits[0]!.reason.closest, []);

  const r = await svc.app.inject({
    method: 'POST',
    url: '/v1/recommendations',
    payload: { watched: clips.b.slice(0, 3).map((videoId) => ({ videoId, watchRatio: 0.8 })), limit: 3 },
  });
  assert.equal(r.statusCode, 200, r.body);
  const s = r.json() as { source: string; hits: Hit[] };
  if (svc.rt.encoders.has('user')) {
    assert.equal(s.source, 'personal');
    const kinds = s.hits.filter((h) => h.reason.path === 'personal').map((h) => kindOf.get(h.videoId));
    assert.ok(kinds.length >= 2 && kinds.every((k) => k === 'b'), `personal hits of a b session are b clips: ${kinds}`);
    assert.ok(!s.hits.some((h) => clips.b.slice(0, 3).includes(h.videoId)), 'the session videos themselves are excluded');
  }
});

test('bad requests: unknown ids are named, limit over the cap and an undeclared experiment are 400s; arms are stable', async () => {
  const r = await svc.app.inject({
    method: 'POST',
    url: '/v1/recommendations',
    payload: { watched: [{ videoId: clips.a[0]! }, { videoId: 'f'.repeat(32) }, { videoId: 'nope' }], limit: 3 },
  });
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(r.json().unknownVideoIds, ['f'.repeat(32), 'nope']);
  assert.equal(r.json().history, 1);
  assert.ok(r.json().hits.length > 0, 'a list from the id that exists');

  const big = await svc.app.inject(`/v1/users/fan-a1/recommendations?limit=${svc.config.server.searchMaxLimit + 1}`);
  assert.equal(big.statusCode, 400);
  assert.equal(big.json().error.code, 'LIMIT_TOO_LARGE');
  assert.equal(big.json().error.field, 'limit');

  const unknown = await svc.app.inject('/v1/users/fan-a1/recommendations?experiment=nope');
  assert.equal(unknown.statusCode, 400);
  assert.equal(unknown.json().error.field, 'experiment');

  const arms = new Map<string, string>();
  for (let i = 0; i < 20; i++) {
    const l = await list(`u${i}`, 'limit=2&experiment=cold-start');
    assert.equal(l.experiment?.name, 'cold-start');
    arms.set(`u${i}`, l.experiment!.arm);
    assert.equal((await list(`u${i}`, 'limit=2&experiment=cold-start')).experiment?.arm, l.experiment!.arm, 'the same arm every time');
  }
  assert.deepEqual([...new Set(arms.values())].sort(), ['personal', 'popular'], 'both arms are drawn among 20 users');
  const popularArm = await list('fan-a1', 'limit=4&experiment=cold-start');
  if (popularArm.experiment!.arm === 'popular') assert.equal(popularArm.source, 'popular-fresh');
  else assert.equal(popularArm.source, 'personal');

  const offPage = await list('fan-a1', 'limit=2&offset=2');
  const full = await list('fan-a1', 'limit=4');
  assert.deepEqual(
    offPage.hits.map((h) => h.videoId),
    full.hits.slice(2).map((h) => h.videoId),
    'offset pages through the same list',
  );
  const excluded = await list('fan-a1', `limit=4&exclude=${full.hits[0]!.videoId}`);
  assert.ok(!excluded.hits.some((h) => h.videoId === full.hits[0]!.videoId), 'exclude leaves an item out');
  const filtered = await list('fan-a1', `limit=4&uploadedTo=${new Date(0).toISOString()}`);
  assert.equal(filtered.hits.length, 0, 'filters apply to every source');
});
