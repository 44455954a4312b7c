/**
 * The vector store unreachable. Embedded store: its folder is taken away as a job reaches its write (moved aside,
 * a plain file left at its path: a volume that went away), for a few seconds. The job keeps retrying its write with
 * backoff inside the same try (MONTAGE_STORE_RETRY_MS) and completes once the folder is back; meanwhile an upload is
 * answered 202 at once (uploads never touch the store) and /readyz answers 503 naming the store. Qdrant: a URL on a
 * closed port fails fast with STORE_UNAVAILABLE, the retryable code the job's retry keys on.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { startTestService, waitForJob, type TestService } from '../helpers/service.ts';
import { lavfiClip } from '../helpers/clips.ts';
import { multipart } from '../helpers/multipart.ts';
import { QdrantStore } from '../../src/store/qdrant.ts';
import { isAppError } from '../../src/errors/index.ts';

const OUTAGE_MS = 5000;
let svc: TestService;
let target = '';
let takenAt = 0;
let storeDir = '';

const away = () => `${storeDir}.away`;
async function takeStoreAway(): Promise<void> {
  await rename(storeDir, away());
  await writeFile(storeDir, 'the volume is not mounted\n');
  takenAt = Date.now();
}
async function bringStoreBack(): Promise<void> {
  await rm(storeDir);
  await rename(away(), storeDir);
}

before(async () => {
  svc = await startTestService({
    workers: true,
    env: { MONTAGE_STORE_RETRY_MS: '60000' },
    // Times the fault: the store goes away as the target's job begins its write.
    jobDeps: () => ({
      onStage: async (stage, videoId) => {
        if (stage === 'upsert' && videoId === target && !takenAt) await takeStoreAway();
      },
    }),
  });
  storeDir = svc.config.store.embedded.dataDir;
});
after(async () => {
  if (takenAt) await bringStoreBack().catch(() => undefined);
  await svc?.close();
});

async function clip(name: string, seconds: number) {
  const f = path.join(svc.config.dataDir, name);
  await lavfiClip(f, { seconds, size: '160x120' });
  return multipart({ title: name }, { data: await readFile(f) });
}

test('the store unavailable during a write: the job retries with backoff and completes when it returns; uploads are answered at once', async (t) => {
  const a = await clip('outage-a.mp4', 3);
  const b = await clip('outage-b.mp4', 4);
  const ra = await svc.app.inject({ method: 'POST', url: '/v1/videos', ...a });
  assert.equal(ra.statusCode, 202, ra.body);
  target = ra.json().videoId;
  for (const end = Date.now() + 120_000; !takenAt; await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > end) throw new Error('the job never reached its write');
  }
  // While the store is gone: an upload is accepted at once, and readiness says why.
  const t0 = performance.now();
  const rb = await svc.app.inject({ method: 'POST', url: '/v1/videos', ...b });
  const uploadMs = performance.now() - t0;
  assert.equal(rb.statusCode, 202, rb.body);
  const ready = await svc.app.inject({ method: 'GET', url: '/readyz' });
  assert.equal(ready.statusCode, 503);
  const store = ready.json().checks.store;
  assert.equal(store.ok, false);
  assert.doesNotMatch(store.detail, /\/tmp\//, 'no server path in the detail');
  const rec = await svc.app.inject({ method: 'GET', url: `/v1/videos/${target}` });
  assert.equal(rec.json().status, 'processing', 'the job is waiting on the store, not failed');
  await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - takenAt))));
  await bringStoreBack();
  const back = Date.now();
  const doneA = await waitForJob(svc, ra.json().jobId, 120_000);
  t.diagnostic(
    `upload during the outage answered in ${uploadMs.toFixed(0)} ms; store away ${back - takenAt} ms; job done ${Date.now() - back} ms after it came back`,
  );
  assert.equal(doneA.state, 'completed', JSON.stringify(doneA.error));
  assert.equal(doneA.attempts, 1, 'retried inside its try: the decoded work was kept');
  assert.ok(uploadMs < 3000, `the upload took ${uploadMs.toFixed(0)} ms`);
  const doneB = await waitForJob(svc, rb.json().jobId, 120_000);
  assert.equal(doneB.state, 'completed');
  for (const id of [target, rb.json().videoId]) {
    assert.equal((await svc.app.inject({ method: 'GET', url: `/v1/videos/${id}` })).json().status, 'ready');
  }
  assert.equal(await svc.rt.store.countItems(), 2, 'each video indexed once');
  assert.equal((await svc.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
});

test('Qdrant on a closed port: STORE_UNAVAILABLE, fast', async () => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r)); // nothing listens there now
  const store = new QdrantStore({ url: `http://127.0.0.1:${port}`, timeoutMs: 2000 });
  const t0 = performance.now();
  await assert.rejects(store.open({ name: 'g1', dim: 8 }), (err) => {
    assert.ok(isAppError(err));
    assert.equal(err.code, 'STORE_UNAVAILABLE');
    assert.equal(err.retry, true);
    return true;
  });
  assert.ok(performance.now() - t0 < 2000, 'a refused connection fails at once, not at the timeout');
});
