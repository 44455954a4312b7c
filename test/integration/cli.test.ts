/**
 * `montage ingest <dir>` backfills a folder through the real ingest flow with a progress bar and says which files
 * failed; `montage status` reports the store and queues. Real Redis, ffmpeg, ONNX files and embedded store.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, writeFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { testEnv, dropPrefix } from '../helpers/service.ts';
import { lavfiClip } from '../helpers/clips.ts';
import { ROOT } from '../helpers/generation.ts';

const run = promisify(execFile);
let env: Record<string, string>;

after(async () => {
  if (!env) return;
  await dropPrefix(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', env.MONTAGE_QUEUE_PREFIX!);
  await rm(env.MONTAGE_DATA_DIR!, { recursive: true, force: true });
});

async function montage(args: string[], extra: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [path.join(ROOT, 'src/cli/main.ts'), ...args], {
      env: { ...process.env, ...env, ...extra },
      timeout: 300_000,
    });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('montage ingest <dir> backfills every video, reports the bad one, and status counts the items', async () => {
  env = await testEnv();
  const dir = path.join(env.MONTAGE_DATA_DIR!, 'backfill');
  await mkdir(path.join(dir, 'sub'), { recursive: true });
  await lavfiClip(path.join(dir, 'one.mp4'), { seconds: 2 });
  await lavfiClip(path.join(dir, 'sub', 'two.mp4'), { seconds: 3, audio: false });
  await writeFile(path.join(dir, 'notes.mp4'), 'not a video at all\n'.repeat(50));
  await writeFile(path.join(dir, 'readme.txt'), 'ignored: not a video extension');

  const r = await montage(['ingest', '--tags', 'backfill', dir]);
  assert.equal(r.code, 1, 'one file failed, so the exit code says so');
  assert.match(r.stderr, /notes\.mp4: UNSUPPORTED_MEDIA/);
  assert.match(r.stderr, /3\/3 done, 1 failed/);

  const s = await montage(['status']);
  assert.equal(s.code, 0, s.stderr);
  const status = JSON.parse(s.stdout);
  assert.equal(status.items, 2);
  assert.equal(status.ingestJobs.completed, 2);
  assert.equal(status.store, 'embedded');

  const again = await montage(['ingest', path.join(dir, 'one.mp4')]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(JSON.parse((await montage(['status'])).stdout).items, 2, 'ingesting the same file again adds nothing');
});

test('montage with no command prints usage; an unknown one exits 2', async () => {
  env ??= await testEnv();
  const r = await montage(['frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /usage: montage/);
});

test('montage status prints only its JSON on stdout, with logs on (they go to stderr), so it pipes to jq', async () => {
  env ??= await testEnv();
  const s = await montage(['status'], { LOG_LEVEL: 'info' });
  assert.equal(s.code, 0, s.stderr);
  assert.equal(typeof JSON.parse(s.stdout).generation, 'string');
  assert.match(s.stderr, /runtime ready/);
});
