/**
 * Worker lifecycle on the real Redis with worker processes: a worker killed mid-job (SIGKILL) leaves a stalled
 * job that another worker recovers; SIGTERM drains the active job before the worker exits. Time is compressed
 * with a short lock and stalled-check interval (BullMQ's own suite does the same).
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

let svc: TestService;
const children: ChildProcess[] = [];

before(async () => {
  svc = await startTestService({ env: { MONTAGE_LOCK_MS: '1500', MONTAGE_STALLED_INTERVAL_MS: '300' } });
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

function startWorker(): ChildProcess {
  const c = spawn(process.execPath, [path.join(ROOT, 'src/cli/main.ts'), 'worker'], {
    env: { ...process.env, ...svc.env },
    stdio: 'ignore',
  });
  children.push(c);
  return c;
}

async function enqueue(seconds: number, seed: number): Promise<string> {
  const file = path.join(svc.config.dataDir, `clip-${seed}.mp4`);
  await lavfiClip(file, { seconds, size: '320x240' });
  const { payload, headers } = multipart({ title: `clip ${seed}` }, { data: await readFile(file) });
  const r = await svc.app.inject({ method: 'POST', url: '/v1/videos', payload, headers });
  assert.equal(r.statusCode, 202, r.body);
  return r.json().jobId as string;
}

async function waitState(jobId: string, want: string[], timeoutMs = 120_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const job = await svc.rt.queues.ingest.getJob(jobId);
    const s = job ? await job.getState() : 'missing';
    if (want.includes(s)) return s;
    if (Date.now() > end) throw new Error(`job ${jobId} is ${s}, wanted ${want}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a job whose worker was killed mid-job is recovered by another worker', async () => {
  const jobId = await enqueue(40, 1);
  const w1 = startWorker();
  await waitState(jobId, ['active']);
  w1.kill('SIGKILL');
  await new Promise((r) => w1.once('exit', r));
  startWorker();
  assert.equal(await waitState(jobId, ['completed', 'failed'], 180_000), 'completed');
  const job = await svc.rt.queues.ingest.getJob(jobId);
  assert.ok((job!.stalledCounter ?? 0) >= 1 || job!.attemptsMade >= 1, 'the job was picked up again after stalling');
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
