/**
 * One user floods the event API: 50 batches of 1,000 skip events (half on random video ids, half on 2,000 videos
 * that have records but are not ready) plus views that would have made the popularity list grow. That user's
 * recommendations, another user's, and a search stay within bounds of a baseline measured in the same test, and
 * so does the API's memory (this process hosts the API): per-user state is capped and read in bounded time.
 *
 * Bounds (README "Limits"): after the flood, each median latency at most max(5 × baseline, baseline + 300 ms);
 * resident memory at most 300 MB above the baseline.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { InjectOptions } from 'fastify';
import { startTestService, waitForJob, type TestService } from '../helpers/service.ts';
import { lavfiClip } from '../helpers/clips.ts';
import { multipart } from '../helpers/multipart.ts';
import { fakeRecord } from '../helpers/records.ts';

const BATCHES = 50;
const PER_BATCH = 1000;
const KNOWN = 2000;
const RSS_BOUND_MB = 300;

let svc: TestService;
const ready: string[] = [];

before(async () => {
  svc = await startTestService({ workers: true });
  for (let i = 0; i < 3; i++) {
    const f = path.join(svc.config.dataDir, `flood-${i}.mp4`);
    await lavfiClip(f, { seconds: 2 + i, size: '160x120' });
    const { payload, headers } = multipart({ title: `flood ${i}` }, { data: await readFile(f) });
    const r = await svc.app.inject({ method: 'POST', url: '/v1/videos', payload, headers });
    assert.equal((await waitForJob(svc, r.json().jobId)).state, 'completed');
    ready.push(r.json().videoId);
  }
});
after(async () => svc?.close());

const hex = () => randomBytes(16).toString('hex');

async function median(req: InjectOptions, n = 15): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await svc.app.inject(req);
    ms.push(performance.now() - t0);
    assert.equal(r.statusCode, 200, r.body);
  }
  return ms.sort((a, b) => a - b)[Math.floor(n / 2)]!;
}

const probes: Record<string, InjectOptions> = {
  victim: { method: 'GET', url: '/v1/users/victim/recommendations?limit=10' },
  bystander: { method: 'GET', url: '/v1/users/bystander/recommendations?limit=10' },
  search: { method: 'POST', url: '/v1/search', payload: { text: 'a moving test pattern', limit: 10 } },
};

async function measure(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [name, req] of Object.entries(probes)) out[name] = await median(req);
  return out;
}

test('a flood of one user’s events leaves every request’s latency and the API’s memory within bounds', async (t) => {
  const now = Date.now();
  const view = (userId: string, videoId: string, i: number) => ({
    eventId: `seed-${userId}-${i}`,
    userId,
    videoId,
    type: 'view',
    timestamp: new Date(now - 1000 + i).toISOString(),
  });
  await svc.app.inject({
    method: 'POST',
    url: '/v1/events',
    payload: { events: [view('victim', ready[0]!, 0), view('bystander', ready[1]!, 1)] },
  });
  const known = Array.from({ length: KNOWN }, hex);
  for (let i = 0; i < KNOWN; i += 200) await Promise.all(known.slice(i, i + 200).map((id) => svc.rt.catalog.put(fakeRecord(id))));

  await measure(); // warm-up: sessions, JIT, store caches
  const base = await measure();
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  let refused = 0;
  try {
    for (let b = 0; b < BATCHES; b++) {
      const events = Array.from({ length: PER_BATCH }, (_, i) => ({
        eventId: `flood-${b}-${i}`,
        userId: 'victim',
        videoId: i % 2 ? hex() : known[(b * PER_BATCH + i) % KNOWN]!,
        // Mostly skips; every tenth a view, which would have grown the popularity list.
        type: i % 10 === 0 ? 'view' : 'skip',
        timestamp: new Date(now + b * PER_BATCH + i).toISOString(),
      }));
      const r = await svc.app.inject({ method: 'POST', url: '/v1/events', payload: { events } });
      assert.equal(r.statusCode, 202, r.body);
      refused += r.json().refusedCount ?? 0;
    }
    // Four of the flooded user's reads at once, as in the report.
    await Promise.all(Array.from({ length: 4 }, () => svc.app.inject(probes.victim!)));
  } finally {
    clearInterval(sampler);
  }
  const afterFlood = await measure();
  const grownMb = (peak - rss0) / 2 ** 20;
  t.diagnostic(`baseline ms ${JSON.stringify(roundAll(base))}, after the flood ${JSON.stringify(roundAll(afterFlood))}`);
  t.diagnostic(
    `rss ${(rss0 / 2 ** 20).toFixed(0)} MB before, peak ${(peak / 2 ** 20).toFixed(0)} MB (+${grownMb.toFixed(0)} MB); ${refused} events refused`,
  );

  assert.equal(refused, (BATCHES * PER_BATCH) / 2, 'every event on a random id is refused');
  const { users } = svc.config;
  const redis = svc.rt.redis;
  assert.ok((await redis.zcard(svc.rt.events.skipsKey('victim'))) <= users.skipsMax);
  assert.ok((await redis.zcard(svc.rt.events.seqKey('victim'))) <= users.sequenceMax);
  assert.ok((await svc.rt.events.seen('victim')).length <= users.skipsMax + users.sequenceMax);
  assert.ok((await redis.zcard(svc.rt.events.popularKey)) <= ready.length, 'popularity counts ready videos only');
  for (const [name, ms] of Object.entries(afterFlood)) {
    const bound = Math.max(5 * base[name]!, base[name]! + 300);
    assert.ok(ms <= bound, `${name}: ${ms.toFixed(1)} ms after the flood, bound ${bound.toFixed(1)} ms`);
  }
  assert.ok(grownMb <= RSS_BOUND_MB, `memory grew ${grownMb.toFixed(0)} MB (bound ${RSS_BOUND_MB})`);
});

function roundAll(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v * 10) / 10]));
}
