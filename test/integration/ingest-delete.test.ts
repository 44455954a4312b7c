/**
 * A DELETE wins over a running ingest, wherever it lands: the job stops at its next check, completes as skipped,
 * and leaves nothing in the store, the catalog or on disk (the DELETE removes the upload and the vectors; a poster
 * written after it is the job's to remove). Real Redis, ffmpeg, ONNX generation and embedded store, with the
 * worker in process: the DELETE (the real video service's) is injected as a given stage begins, through the
 * processors' `onStage` hook, or between the job's last check and its write, through the store it writes to.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestService, waitForJob, type TestService } from '../helpers/service.ts';
import { lavfiClip } from '../helpers/clips.ts';
import { multipart } from '../helpers/multipart.ts';
import { deleteVideo, videoService } from '../../src/videos/service.ts';
import type { IngestStage } from '../../src/queue/index.ts';
import type { VectorStore } from '../../src/store/types.ts';

let svc: TestService;
/** Where the next job meets its DELETE. */
let plan: { atStage?: IngestStage; beforeWrite?: boolean } = {};
/** Videos the job wrote to the store (item or segments), in order. */
const writes: string[] = [];

/** The runtime's store, recording every write and running the planned DELETE just before the item write. */
function racingStore(store: VectorStore, deleteNow: (videoId: string) => Promise<void>): VectorStore {
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (prop === 'upsertItems') {
        return async (points: Parameters<VectorStore['upsertItems']>[0]) => {
          const videoId = points[0]!.payload.videoId;
          if (plan.beforeWrite) await deleteNow(videoId);
          writes.push(videoId);
          return target.upsertItems(points);
        };
      }
      if (prop === 'upsertSegments') {
        return async (videoId: string, points: Parameters<VectorStore['upsertSegments']>[1]) => {
          writes.push(videoId);
          return target.upsertSegments(videoId, points);
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

before(async () => {
  svc = await startTestService({
    workers: true,
    jobDeps: (rt) => {
      const deleteNow = (videoId: string) => deleteVideo(videoService(rt), videoId);
      return {
        store: racingStore(rt.store, deleteNow),
        onStage: async (stage, videoId) => {
          if (stage === plan.atStage) await deleteNow(videoId);
        },
      };
    },
  });
});
after(async () => svc?.close());

async function upload(size: string): Promise<{ videoId: string; jobId: string; file: Buffer }> {
  const p = path.join(svc.config.dataDir, `clip-${size}.mp4`);
  await lavfiClip(p, { seconds: 2, size });
  const file = await readFile(p);
  const { payload, headers } = multipart({ title: `clip ${size}`, tags: 'race' }, { data: file });
  const r = await svc.app.inject({ method: 'POST', url: '/v1/videos', payload, headers });
  assert.equal(r.statusCode, 202, r.body);
  return { ...(r.json() as { videoId: string; jobId: string }), file };
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** Nothing of the video is left: no record, no fresh-list entry, no item, no segments, no upload, no poster. */
async function assertGone({ videoId, uploadPath }: { videoId: string; uploadPath: string }): Promise<void> {
  const { rt } = svc;
  assert.equal(await rt.catalog.get(videoId), null, 'record');
  assert.ok(!(await rt.catalog.newest(100)).includes(videoId), 'listed among the fresh videos');
  assert.equal(await rt.store.getItem(videoId), null, 'item in the store');
  const probe = new Float32Array(rt.encoders.generation.dim).fill(1);
  const segs = await rt.store.searchSegments({ vector: probe, using: 'fused', limit: 100 });
  assert.ok(!segs.some((s) => s.videoId === videoId), 'segments in the store');
  assert.ok(!(await exists(uploadPath)), 'upload');
  assert.ok(!(await exists(path.join(svc.config.dataDir, 'posters', `${videoId}.jpg`))), 'poster');
}

/** Runs one ingest that meets a DELETE as planned; returns the finished job and what it wrote. */
async function raced(size: string, where: typeof plan) {
  plan = where;
  writes.length = 0;
  const { videoId, jobId } = await upload(size);
  const uploadPath = (await svc.rt.catalog.get(videoId))!.uploadPath;
  const job = await waitForJob(svc, jobId);
  plan = {};
  const result = (await svc.rt.jobs.ingestJob(jobId))!.result;
  return { videoId, job, result, wrote: writes.filter((w) => w === videoId).length, uploadPath };
}

for (const stage of ['probe', 'extract', 'encode', 'upsert'] as const) {
  test(`a DELETE as the ${stage} stage begins stops the job before it writes anything`, async () => {
    const r = await raced(`${160 + 16 * ['probe', 'extract', 'encode', 'upsert'].indexOf(stage)}x120`, { atStage: stage });
    assert.equal(r.job.state, 'completed');
    assert.equal(r.result?.skipped, 'deleted');
    assert.equal(r.wrote, 0, 'the job wrote to the store');
    await assertGone(r);
  });
}

test('a DELETE between the check before writing and the write: the job takes back what it wrote', async () => {
  const r = await raced('240x120', { beforeWrite: true });
  assert.equal(r.job.state, 'completed');
  assert.equal(r.result?.skipped, 'deleted');
  assert.equal(r.wrote, 2, 'the job wrote its item and segments after the DELETE (the race was injected)');
  await assertGone(r);
});

test('a DELETE as cleanup begins: the vectors go with the DELETE and the video is not marked ready', async () => {
  const r = await raced('256x120', { atStage: 'cleanup' });
  assert.equal(r.result?.skipped, 'deleted');
  assert.equal(r.wrote, 2);
  await assertGone(r);
});

test('the same bytes uploaded again after such a DELETE are ingested again', async () => {
  const first = await raced('272x120', { atStage: 'encode' });
  assert.equal(first.result?.skipped, 'deleted');
  const again = await upload('272x120');
  assert.equal(again.videoId, first.videoId);
  const job = await waitForJob(svc, again.jobId);
  assert.equal(job.state, 'completed');
  const rec = await svc.rt.catalog.get(again.videoId);
  assert.equal(rec?.status, 'ready');
  assert.ok(await svc.rt.store.getItem(again.videoId), 'the item is in the store');
});
