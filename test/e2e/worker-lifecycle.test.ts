/**
 * Worker lifecycle on the real Redis with worker processes: a worker killed mid-job (SIGKILL) leaves a stalled
 * job that another worker recovers; SIGTERM drains the active job before the worker exits. Time is compressed
 * with a short stalled-check interval, and a short lock for the worker that is killed (BullMQ's own suite does
 * the same). The worker that recovers keeps the policy's lock: ONNX Runtime runs on the event loop, so on a busy
 * machine a 1.5 s lock would let its own run stall too.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestService, type TestService } from '../helpers/service.ts';
import { lavfiClip } from '../helpers/clips.ts';
import { multipart } from '../helpers/multipart.ts';
import { ROOT } from '../helpers/generation.ts';
import { JOB_POLICY } from '../../jobs/policy.ts';

let svc: TestService;
const children: ChildProcess[] = [];

before(async () => {
  svc = await startTestService({ env: { MONTAGE_STALLED_INTERVAL_MS: '300' } });
});
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await svc?.close();
});

async function stopAll(): Promise<void> {
  await Promise.all(
    children
      .filter((c) => c.exitCode === null && c.signalCode === null)
      .map((c) => {
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        return exited;
      }),
  );
}

function startWorker(env: Record<string, string> = {}): ChildProcess {
  const c = spawn(process.execPath, [path.join(ROOT, 'src/cli/main.ts'), 'worker'], {
    env: { ...process.env, ...svc.env, ...env },
    stdio: process.env.WORKER_LOG ? ['ignore', 'inherit', 'inherit'] : 'ignore',
  });
  children.push(c);
  return c;
}

async function upload(seconds: number, seed: number) {
  const file = path.join(svc.config.dataDir, `clip-${seed}.mp4`);
  await lavfiClip(file, { seconds, size: '320x240' });
  const { payload, headers } = multipart({ title: `clip ${seed}` }, { data: await readFile(file) });
  const post = () => svc.app.inject({ method: 'POST', url: '/v1/videos', payload, headers });
  const r = await post();
  assert.equal(r.statusCode, 202, r.body);
  return { jobId: r.json().jobId as string, videoId: r.json().videoId as string, post };
}

async function enqueue(seconds: number, seed: number): Promise<string> {
  return (await upload(seconds, seed)).jobId;
}

const ingestJob = (jobId: string) => svc.rt.jobs.queue('ingest').getJob(jobId);

async function waitState(jobId: string, want: string[], timeoutMs = 120_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const job = await ingestJob(jobId);
    const s = job ? await job.getState() : 'missing';
    if (want.includes(s)) return s;
    if (Date.now() > end) throw new Error(`job ${jobId} is ${s}, wanted ${want}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the job reports one of `stages` (its progress), i.e. its worker is inside the pipeline. */
async function waitStage(jobId: string, stages: string[], timeoutMs = 120_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const stage = ((await ingestJob(jobId))?.progress as { stage?: string } | undefined)?.stage ?? 'none';
    if (stages.includes(stage)) return stage;
    if (Date.now() > end) throw new Error(`job ${jobId} is at stage ${stage}, wanted ${stages}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** BullMQ records the taking worker's name on the job; workers are named `montage-worker:<host>:<pid>`. */
const ranBy = (job: { processedBy?: string | undefined } | undefined, pid: number | undefined) =>
  job?.processedBy !== undefined && job.processedBy.endsWith(`:${pid}`);

test('a job whose worker was killed mid-job is finished by another worker', async () => {
  const jobId = await enqueue(40, 1);
  // Its job's lock lapses 1.5 s after the kill, so the next stalled check finds it.
  const w1 = startWorker({ MONTAGE_LOCK_MS: '1500' });
  // The first worker is inside the pipeline (past the probe) on this job when it is killed.
  await waitStage(jobId, ['extract', 'encode']);
  assert.ok(ranBy(await ingestJob(jobId), w1.pid), 'the first worker took the job');
  w1.kill('SIGKILL');
  await new Promise((r) => w1.once('exit', r));
  const orphaned = await ingestJob(jobId);
  assert.equal(await orphaned!.getState(), 'active', 'the killed worker left the job unfinished');
  assert.equal(orphaned!.returnvalue, null);

  const w2 = startWorker();
  const state = await waitState(jobId, ['completed', 'failed'], 180_000);
  const job = await ingestJob(jobId);
  assert.equal(state, 'completed', job!.failedReason);
  assert.ok(ranBy(job, w2.pid), `the second worker finished it (processedBy ${job!.processedBy}, second worker pid ${w2.pid})`);
  assert.ok(job!.stalledCounter >= 1, 'it was recovered as a stalled job');
  assert.ok(job!.attemptsStarted >= 2, 'it was started again');
  assert.ok((job!.returnvalue as { segments: number }).segments >= 20, 'the second run did the whole ingest');
  await stopAll();
});

test('SIGTERM drains: the active job completes before the worker exits cleanly', async () => {
  const jobId = await enqueue(20, 2);
  const w = startWorker();
  await waitState(jobId, ['active']);
  const exit = new Promise<number | null>((r) => w.once('exit', (code) => r(code)));
  w.kill('SIGTERM');
  assert.equal(await exit, 0);
  assert.equal(await waitState(jobId, ['completed', 'failed', 'active', 'waiting'], 5_000), 'completed');
});

/** Waits until the worker `pid` has taken the job and is inside the pipeline; false when the job failed meanwhile. */
async function waitTakenBy(jobId: string, pid: number | undefined, timeoutMs = 120_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const job = await ingestJob(jobId);
    if (job && (await job.getState()) === 'failed') return false;
    const stage = (job?.progress as { stage?: string } | undefined)?.stage;
    if (ranBy(job, pid) && (stage === 'extract' || stage === 'encode')) return true;
    if (Date.now() > end) throw new Error(`worker ${pid} did not take job ${jobId} (stage ${stage}, by ${job?.processedBy})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a job whose workers die more often than the stall limit leaves its video failed (JOB_STALLED), and uploading it again retries it', async (t) => {
  const { jobId, videoId, post } = await upload(30, 3);
  // Each kill is a stall; one more than maxStalledCount and BullMQ fails the job without running the processor.
  let kills = 0;
  for (let i = 0; i <= JOB_POLICY.ingest.maxStalledCount; i++) {
    const w = startWorker({ MONTAGE_LOCK_MS: '1500' });
    const taken = await waitTakenBy(jobId, w.pid);
    w.kill('SIGKILL');
    await new Promise((r) => w.once('exit', r));
    if (!taken) break; // its own run stalled on the busy machine: the limit was reached sooner
    kills++;
  }
  assert.ok(kills >= 1, 'at least one worker was killed inside the pipeline');
  t.diagnostic(`${kills} workers SIGKILLed inside the pipeline`);
  // A live worker finds the job stalled once too often; BullMQ fails it, and the worker's failed listener marks the video.
  startWorker();
  assert.equal(await waitState(jobId, ['failed'], 120_000), 'failed');
  const job = await ingestJob(jobId);
  assert.match(job!.failedReason, /stalled more than allowable limit/);
  // The worker's failed listener marks the record itself (no read of the video is needed for that).
  let rec = await svc.rt.catalog.get(videoId);
  for (const end = Date.now() + 10_000; Date.now() < end && rec?.status !== 'failed'; await new Promise((r) => setTimeout(r, 100))) {
    rec = await svc.rt.catalog.get(videoId);
  }
  assert.equal(rec?.status, 'failed', JSON.stringify(rec));
  assert.equal(rec?.error?.code, 'JOB_STALLED');
  const video = (await svc.app.inject({ method: 'GET', url: `/v1/videos/${videoId}` })).json();
  assert.equal(video.status, 'failed');
  assert.equal(video.error.code, 'JOB_STALLED');
  // Had that worker died before its listener ran, the read reconciles the record with the failed job.
  await svc.rt.catalog.update(videoId, { status: 'processing', error: undefined });
  const read = (await svc.app.inject({ method: 'GET', url: `/v1/videos/${videoId}` })).json();
  assert.equal(read.status, 'failed');
  assert.equal(read.error.code, 'JOB_STALLED');
  assert.equal((await svc.rt.catalog.get(videoId))?.status, 'failed', 'the read wrote the failure back');
  const jobView = (await svc.app.inject({ method: 'GET', url: `/v1/jobs/${jobId}` })).json();
  assert.equal(jobView.error?.code, 'JOB_STALLED');

  // The same file again: a retry, not a duplicate answer with nothing queued.
  const again = await post();
  assert.equal(again.statusCode, 202, again.body);
  assert.equal(again.json().duplicate, false);
  assert.equal(again.json().status, 'queued');
  assert.equal(await waitState(jobId, ['completed', 'failed'], 240_000), 'completed', (await ingestJob(jobId))?.failedReason);
  const ready = (await svc.app.inject({ method: 'GET', url: `/v1/videos/${videoId}` })).json();
  assert.equal(ready.status, 'ready');
  assert.equal(ready.error, undefined);
  await stopAll();
});

test('a queued video whose job is gone from the queue reads as failed (JOB_LOST), and uploading it again retries it', async () => {
  const { jobId, videoId, post } = await upload(2, 4);
  await svc.rt.jobs.queue('ingest').remove(jobId);
  const lost = (await svc.app.inject({ method: 'GET', url: `/v1/videos/${videoId}` })).json();
  assert.equal(lost.status, 'failed');
  assert.equal(lost.error.code, 'JOB_LOST');
  const again = await post();
  assert.equal(again.json().duplicate, false);
  assert.ok(await ingestJob(jobId), 'the job is queued again');
});
