/**
 * Faults bench: a batch of uploads ingested by worker processes that are SIGKILLed inside extraction and encoding
 * (20 times by default), with Redis itself SIGKILLed and restarted mid-batch (append-only file, fsync always: the
 * persistence README "Redis" advises). Every upload must end indexed exactly once, or failed with a code and then
 * indexed when uploaded again; none lost, none stuck, no file left behind. Real Redis (a throwaway server), ffmpeg,
 * ONNX and embedded store; lock and stall intervals shortened. Writes bench/results/faults.json.
 *
 *   node bench/faults.ts [--uploads 10] [--kills 20]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startTestService } from '../test/helpers/service.ts';
import { throwawayRedis } from '../test/helpers/redis-server.ts';
import { lavfiClip } from '../test/helpers/clips.ts';
import { multipart } from '../test/helpers/multipart.ts';
import { ROOT } from '../test/helpers/generation.ts';

const { values } = parseArgs({ options: { uploads: { type: 'string', default: '10' }, kills: { type: 'string', default: '20' } } });
const UPLOADS = Number(values.uploads);
const KILLS = Number(values.kills);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const redis = await throwawayRedis();
await redis.start();
const svc = await startTestService({ env: { REDIS_URL: redis.url, MONTAGE_STALLED_INTERVAL_MS: '300' } });
const children: ChildProcess[] = [];
const startWorker = (env: Record<string, string> = {}) => {
  const c = spawn(process.execPath, [path.join(ROOT, 'src/cli/main.ts'), 'worker'], {
    env: { ...process.env, ...svc.env, ...env },
    stdio: 'ignore',
  });
  children.push(c);
  return c;
};
const killed = (c: ChildProcess) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r)));

try {
  const posts: Array<{ videoId: string; jobId: string; post: () => Promise<{ statusCode: number; json(): any }> }> = [];
  for (let i = 0; i < UPLOADS; i++) {
    const f = path.join(svc.config.dataDir, `fault-${i}.mp4`);
    await lavfiClip(f, { seconds: 12 + i, size: '320x240' });
    const { payload, headers } = multipart({ title: `fault ${i}` }, { data: await readFile(f) });
    const post = () => svc.app.inject({ method: 'POST', url: '/v1/videos', payload, headers });
    const r = await post();
    if (r.statusCode !== 202) throw new Error(`upload ${i}: ${r.statusCode} ${r.body}`);
    posts.push({ videoId: r.json().videoId, jobId: r.json().jobId, post });
  }
  const queue = svc.rt.jobs.queue('ingest');
  let sigkills = 0;
  let redisRestarts = 0;
  const t0 = Date.now();
  while (sigkills < KILLS && Date.now() - t0 < 15 * 60_000) {
    const w = startWorker({ MONTAGE_LOCK_MS: '1500' });
    // Kill it once it is inside extraction or encoding of a job it took.
    const stage = sigkills % 2 ? 'encode' : 'extract';
    const end = Date.now() + 60_000;
    let hit = false;
    while (!hit && Date.now() < end) {
      const active = await queue.getActive().catch(() => []);
      hit = active.some((j) => j.processedBy?.endsWith(`:${w.pid}`) && (j.progress as { stage?: string })?.stage === stage);
      if (!hit) await sleep(50);
      if ((await queue.getWaitingCount().catch(() => 1)) + active.length === 0) break;
    }
    w.kill('SIGKILL');
    await killed(w);
    if (!hit) break; // nothing left to interrupt
    sigkills++;
    if (sigkills === Math.floor(KILLS / 2)) {
      await redis.kill();
      await sleep(500);
      await redis.start();
      redisRestarts++;
    }
  }
  // A worker nobody kills finishes the batch; uploads that failed (stall limit) are uploaded again.
  const finisher = startWorker();
  const settle = async () => {
    for (const end = Date.now() + 10 * 60_000; Date.now() < end; await sleep(500)) {
      const recs = await Promise.all(posts.map((p) => svc.app.inject({ method: 'GET', url: `/v1/videos/${p.videoId}` })));
      const states = recs.map((r) => (r.statusCode === 200 ? r.json().status : 'lost'));
      if (states.every((s) => s === 'ready' || s === 'failed' || s === 'lost')) return states;
    }
    throw new Error('the batch did not settle in 10 minutes');
  };
  const first = await settle();
  const failedFirst = posts.filter((_, i) => first[i] === 'failed');
  const codes = await Promise.all(
    failedFirst.map(async (p) => (await svc.app.inject({ method: 'GET', url: `/v1/videos/${p.videoId}` })).json().error?.code),
  );
  for (const p of failedFirst) {
    const r = await p.post();
    if (r.statusCode !== 202 || r.json().duplicate)
      throw new Error(`re-upload of a failed video was not retried: ${r.statusCode} ${JSON.stringify(r.json())}`);
  }
  const final = await settle();
  const items = await svc.rt.store.countItems();
  const uploadsDir = path.join(svc.config.dataDir, 'uploads');
  const postersDir = path.join(svc.config.dataDir, 'posters');
  const list = async (d: string) => (await readdir(d).catch(() => [] as string[])).map((f) => path.join(d, f));
  const recs = await Promise.all(posts.map((p) => svc.rt.catalog.get(p.videoId)));
  const owned = new Set(recs.flatMap((r) => (r ? [r.uploadPath, ...(r.posterPath ? [r.posterPath] : [])] : [])));
  const stray = [...(await list(uploadsDir)), ...(await list(postersDir))].filter((f) => !owned.has(f));
  const out = {
    generated_by: 'bench/faults.ts',
    sigkills,
    uploads: UPLOADS,
    indexed: final.filter((s) => s === 'ready').length,
    failed_recoverable: failedFirst.length,
    failed_codes: codes,
    recovered_by_reupload: failedFirst.filter((p) => final[posts.indexOf(p)] === 'ready').length,
    duplicates: items - new Set(posts.map((p) => p.videoId)).size,
    lost: final.filter((s) => s === 'lost').length,
    stuck: final.filter((s) => s !== 'ready' && s !== 'failed' && s !== 'lost').length,
    temp_files_left: stray.length,
    redis_restarts: redisRestarts,
    redis_persistence: 'appendonly yes, appendfsync always',
    lock_ms: 1500,
    stalled_interval_ms: 300,
    wall_s: Math.round((Date.now() - t0) / 1000),
  };
  console.log(JSON.stringify(out, null, 2));
  await writeFile(path.join(ROOT, 'bench/results/faults.json'), `${JSON.stringify(out, null, 2)}\n`);
  finisher.kill('SIGTERM');
  await killed(finisher);
} finally {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await redis.start();
  await svc.close();
  await redis.destroy();
}
