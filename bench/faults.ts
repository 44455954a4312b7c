/**
 * Faults bench: a batch of uploads ingested by worker processes that are SIGKILLed inside extraction and encoding
 * (20 times by default), with Redis itself SIGKILLed and restarted mid-batch (append-only file, fsync always: the
 * persistence README "Redis" advises). Every upload must end indexed exactly once, or failed with a code and then
 * indexed when uploaded again; none lost, none stuck, no file left behind. Real Redis (a throwaway server), ffmpeg,
 * ONNX and embedded store; lock and stall intervals shortened. Then the store goes away (`storeOutage`): the
 * embedded store's folder is moved aside with a plain file at its path (a volume gone) for `--outage-s` seconds
 * while a worker ingests a second batch; uploads meanwhile must be answered at once, every job must finish once
 * the store is back. Writes bench/results/faults.json.
 *
 *   node bench/faults.ts [--uploads 10] [--kills 20] [--outage-s 20] [--store-only: only the outage, merged into
 *   the file's other figures]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startTestService } from '../test/helpers/service.ts';
import { throwawayRedis } from '../test/helpers/redis-server.ts';
import { lavfiClip } from '../test/helpers/clips.ts';
import { multipart } from '../test/helpers/multipart.ts';
import { ROOT } from '../test/helpers/generation.ts';

const { values } = parseArgs({
  options: {
    uploads: { type: 'string', default: '10' },
    kills: { type: 'string', default: '20' },
    'outage-s': { type: 'string', default: '20' },
    'store-only': { type: 'boolean', default: false },
  },
});
const UPLOADS = Number(values.uploads);
const KILLS = Number(values.kills);
const OUTAGE_S = Number(values['outage-s']);
const RESULTS = path.join(ROOT, 'bench/results/faults.json');
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

/**
 * The store away for OUTAGE_S seconds while a worker ingests `n` uploads, two of them sent during the outage.
 * Uploads never touch the store: they must be answered at once; jobs retry their write with backoff
 * (MONTAGE_STORE_RETRY_MS) and must all end indexed after the store is back.
 */
async function storeOutage(n: number) {
  const storeDir = svc.config.store.embedded.dataDir;
  const worker = startWorker();
  const upload = async (i: number) => {
    const f = path.join(svc.config.dataDir, `outage-${i}.mp4`);
    await lavfiClip(f, { seconds: 6 + i, size: '320x240', fps: 12 });
    const { payload, headers } = multipart({ title: `outage ${i}` }, { data: await readFile(f) });
    const t0 = performance.now();
    const r = await svc.app.inject({ method: 'POST', url: '/v1/videos', payload, headers });
    if (r.statusCode !== 202) throw new Error(`outage upload ${i}: ${r.statusCode} ${r.body}`);
    return { videoId: r.json().videoId as string, jobId: r.json().jobId as string, ms: performance.now() - t0 };
  };
  const before = [];
  for (let i = 0; i < n - 2; i++) before.push(await upload(i));
  // Away as soon as the worker is busy with the first of them.
  const queue = svc.rt.jobs.queue('ingest');
  for (const end = Date.now() + 120_000; (await queue.getActiveCount()) === 0 && Date.now() < end;) await sleep(50);
  await rename(storeDir, `${storeDir}.away`);
  await writeFile(storeDir, 'the volume is not mounted\n');
  const away = Date.now();
  const during = [await upload(n - 2), await upload(n - 1)];
  const readyz = await svc.app.inject({ method: 'GET', url: '/readyz' });
  await sleep(Math.max(0, OUTAGE_S * 1000 - (Date.now() - away)));
  await rm(storeDir);
  await rename(`${storeDir}.away`, storeDir);
  const back = Date.now();
  const all = [...before, ...during];
  let states: string[] = [];
  for (const end = Date.now() + 10 * 60_000; Date.now() < end; await sleep(500)) {
    states = await Promise.all(all.map(async (u) => (await svc.rt.catalog.get(u.videoId))?.status ?? 'lost'));
    if (states.every((s) => s === 'ready' || s === 'failed' || s === 'lost')) break;
  }
  const jobs = await Promise.all(all.map((u) => queue.getJob(u.jobId)));
  worker.kill('SIGTERM');
  await killed(worker);
  return {
    outage_s: Math.round((back - away) / 100) / 10,
    uploads: all.length,
    uploads_during_outage: during.length,
    upload_ms_during_outage: during.map((u) => Math.round(u.ms)),
    readyz_during_outage: readyz.statusCode,
    indexed: states.filter((s) => s === 'ready').length,
    failed: states.filter((s) => s === 'failed').length,
    job_attempts: jobs.map((j) => (j ? j.attemptsMade : null)),
    all_indexed_s_after_return: Math.round((Date.now() - back) / 100) / 10,
    retry_budget_ms: svc.config.store.retryMs,
  };
}

if (values['store-only']) {
  try {
    const outage = await storeOutage(4);
    const prev = JSON.parse(await readFile(RESULTS, 'utf8').catch(() => '{}')) as Record<string, unknown>;
    const out = { ...prev, store_outage: outage };
    console.log(JSON.stringify(out, null, 2));
    await writeFile(RESULTS, `${JSON.stringify(out, null, 2)}\n`);
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await svc.close();
    await redis.destroy();
  }
  process.exit(0);
}

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
  finisher.kill('SIGTERM');
  await killed(finisher);
  const result = { ...out, store_outage: await storeOutage(4) };
  console.log(JSON.stringify(result, null, 2));
  await writeFile(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
} finally {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await redis.start();
  await svc.close();
  await redis.destroy();
}
