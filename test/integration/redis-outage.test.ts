/**
 * Redis down, on a throwaway redis-server this test starts, SIGKILLs and restarts: every route that needs Redis
 * answers 503 QUEUE_UNAVAILABLE within a bounded time (no request waits on a dead connection), /readyz says why,
 * and when Redis is back (append-only file: what was acknowledged survives) work resumes: an upload is ingested by
 * the in-process worker and the events from before the outage are still there.
 */
import { test, before, after } from 'node:test';
import type { InjectOptions } from 'fastify';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestService, waitForJob, type TestService } from '../helpers/service.ts';
import { throwawayRedis, type ThrowawayRedis } from '../helpers/redis-server.ts';
import { lavfiClip } from '../helpers/clips.ts';
import { multipart } from '../helpers/multipart.ts';
import { fakeRecord } from '../helpers/records.ts';

/** The bound this test holds the API to: the command timeout plus generous room for a loaded machine. */
const COMMAND_TIMEOUT_MS = 1_000;
const BOUND_MS = COMMAND_TIMEOUT_MS + 4_000;

let redis: ThrowawayRedis;
let svc: TestService;

before(async () => {
  redis = await throwawayRedis();
  await redis.start();
  svc = await startTestService({
    workers: true,
    env: { REDIS_URL: redis.url, MONTAGE_REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS) },
  });
  await svc.rt.catalog.put(fakeRecord('a'.repeat(32))); // events are taken only for a video with a record
});
after(async () => {
  redis?.resume();
  await redis?.start(); // running again for the service's own cleanup, whatever the test left
  await svc?.close();
  await redis?.destroy();
});

const event = (i: number) => ({
  eventId: `outage-${i}`,
  userId: 'outage-user',
  videoId: 'a'.repeat(32),
  type: 'view',
  timestamp: new Date().toISOString(),
});

async function clip(seed: number) {
  const file = path.join(svc.config.dataDir, `outage-${seed}.mp4`);
  await lavfiClip(file, { seconds: 2 + seed, size: '160x120' });
  return multipart({ title: `outage ${seed}` }, { data: await readFile(file) });
}

async function timed(req: InjectOptions) {
  const t0 = performance.now();
  const res = await svc.app.inject(req);
  return { res, ms: performance.now() - t0 };
}

test('Redis down: 503 QUEUE_UNAVAILABLE within a bound, /readyz says why, and work resumes when it is back', async (t) => {
  const before = await svc.app.inject({ method: 'POST', url: '/v1/events', payload: { events: [event(1)] } });
  assert.equal(before.statusCode, 202, before.body);
  const upload = await clip(1);

  await redis.kill();
  const requests: Record<string, InjectOptions> = {
    upload: { method: 'POST' as const, url: '/v1/videos', ...upload },
    video: { method: 'GET' as const, url: `/v1/videos/${'a'.repeat(32)}` },
    events: { method: 'POST' as const, url: '/v1/events', payload: { events: [event(2)] } },
    job: { method: 'GET' as const, url: '/v1/jobs/ingest-x' },
    recommendations: { method: 'GET' as const, url: '/v1/users/outage-user/recommendations' },
  };
  for (const [name, req] of Object.entries(requests)) {
    const { res, ms } = await timed(req);
    t.diagnostic(`${name} with Redis down: ${res.statusCode} in ${ms.toFixed(0)} ms`);
    assert.equal(res.statusCode, 503, `${name}: ${res.body}`);
    assert.equal(res.json().error.code, 'QUEUE_UNAVAILABLE', name);
    assert.ok(ms < BOUND_MS, `${name} answered in ${ms.toFixed(0)} ms (bound ${BOUND_MS})`);
  }
  const { res: ready, ms } = await timed({ method: 'GET', url: '/readyz' });
  assert.equal(ready.statusCode, 503);
  assert.ok(ms < BOUND_MS, `readyz answered in ${ms.toFixed(0)} ms`);
  const checks = ready.json().checks;
  assert.equal(checks.redis.ok, false);
  assert.match(checks.redis.detail, /Redis/);
  assert.equal(checks.store.ok, true, 'the store check is not held up by Redis');

  await redis.start();
  const end = Date.now() + 30_000;
  let readyAgain = false;
  while (!readyAgain && Date.now() < end) {
    readyAgain = (await svc.app.inject({ method: 'GET', url: '/readyz' })).statusCode === 200;
    if (!readyAgain) await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(readyAgain, '/readyz is 200 again within 30 s of Redis coming back');
  // What was acknowledged before the outage survived it (append-only file).
  assert.equal(await svc.rt.redis.exists(svc.rt.events.seqKey('outage-user')), 1);
  // Work resumes: an upload is admitted and the worker ingests it.
  const again = await svc.app.inject({ method: 'POST', url: '/v1/videos', ...upload });
  assert.equal(again.statusCode, 202, again.body);
  const job = await waitForJob(svc, again.json().jobId as string, 120_000);
  assert.equal(job.state, 'completed', JSON.stringify(job));
  const after = await svc.app.inject({ method: 'POST', url: '/v1/events', payload: { events: [event(3)] } });
  assert.equal(after.statusCode, 202);
});

test('Redis hung (connections open, no answers): requests answer 503 after the command timeout, not never', async (t) => {
  redis.pause();
  try {
    for (const req of [
      { method: 'GET' as const, url: `/v1/videos/${'b'.repeat(32)}` },
      { method: 'POST' as const, url: '/v1/events', payload: { events: [event(4)] } },
    ]) {
      const { res, ms } = await timed(req);
      t.diagnostic(`${req.method} ${req.url} with Redis hung: ${res.statusCode} in ${ms.toFixed(0)} ms`);
      assert.equal(res.statusCode, 503, res.body);
      assert.equal(res.json().error.code, 'QUEUE_UNAVAILABLE');
      assert.ok(ms >= COMMAND_TIMEOUT_MS * 0.9 && ms < BOUND_MS, `answered in ${ms.toFixed(0)} ms`);
    }
  } finally {
    redis.resume();
  }
  const end = Date.now() + 30_000;
  let ok = false;
  while (!ok && Date.now() < end) {
    ok = (await svc.app.inject({ method: 'POST', url: '/v1/events', payload: { events: [event(5)] } })).statusCode === 202;
    if (!ok) await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(ok, 'events are taken again once Redis answers');
});
