/**
 * Load bench: the API and a worker as the processes a deployment runs (`montage serve`, `montage worker`) on
 * loopback, on the real Redis (a fresh prefix), ffmpeg, ONNX and embedded store, driven for a fixed time by
 * open-loop clients at fixed rates: uploads of new clips, text searches, event batches and recommendation reads.
 * It counts 5xx answers, waits until every accepted upload is indexed (bounded), and reports search latency while
 * ingest is running (an ingest job active or waiting, sampled every 100 ms) against search latency while it is not,
 * and the API's peak resident memory. `--compare` runs the same load first with the worker at the API's priority
 * (MONTAGE_WORKER_NICE=0) as the baseline. Writes bench/results/load.json (README "Benchmarks: load").
 *
 *   node bench/load.ts [--duration 60] [--compare] [--out bench/results/load.json]
 *
 * `runLoad` is also what test/e2e/load.test.ts runs, shorter.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { testEnv, dropPrefix } from '../test/helpers/service.ts';
import { multipart } from '../test/helpers/multipart.ts';
import { lavfiClip } from '../test/helpers/clips.ts';
import { freePort } from '../test/helpers/redis-server.ts';
import { ROOT } from '../test/helpers/generation.ts';
import { pct } from './lib/stats.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LoadOptions {
  /** Seconds of load. */
  durationS: number;
  /** One upload every this many ms (each a new clip of `clipSeconds`). */
  uploadEveryMs: number;
  clipSeconds: number;
  /** Open-loop rates, per second. */
  searchesPerS: number;
  eventBatchesPerS: number;
  eventsPerBatch: number;
  recommendationsPerS: number;
  /** Requests in flight at most per kind (beyond it an arrival is counted as dropped by the client). */
  maxInFlight: number;
  /** MONTAGE_WORKER_NICE for the worker; undefined = the config default. */
  workerNice?: number;
  /** Seconds to wait after the load for every accepted upload to be indexed. */
  drainS: number;
  log?: (msg: string) => void;
}

export const DEFAULT_LOAD: LoadOptions = {
  durationS: 60,
  uploadEveryMs: 4000,
  clipSeconds: 8,
  searchesPerS: 5,
  eventBatchesPerS: 1,
  eventsPerBatch: 20,
  recommendationsPerS: 1,
  maxInFlight: 64,
  drainS: 300,
};

interface Sample {
  kind: 'upload' | 'search' | 'events' | 'recommend' | 'status';
  /** ms since the load began. */
  at: number;
  ms: number;
  status: number;
}

export interface LoadResult {
  duration_s: number;
  uploads: number;
  uploads_refused: number;
  searches: number;
  events: number;
  recommendations: number;
  errors_5xx: number;
  errors_network: number;
  client_dropped: number;
  indexed: number;
  drain_s: number;
  ingest_busy_share: number;
  searches_during_ingest: number;
  search_p50_ms_during_ingest: number;
  search_p99_ms_during_ingest: number;
  search_p50_ms_idle: number | null;
  search_p99_ms_idle: number | null;
  recommend_p99_ms: number;
  events_p99_ms: number;
  upload_p99_ms: number;
  api_peak_rss_mb: number;
  worker_nice: number | null;
  load_average_before: number;
}

/** Peak resident memory of a process, MB (VmHWM). */
function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

function nice(pid: number): number | null {
  try {
    // field 19 of /proc/<pid>/stat (after the command in parentheses)
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  } catch {
    return null;
  }
}

function startProcess(cmd: 'serve' | 'worker', env: Record<string, string>): ChildProcess {
  const c = spawn(process.execPath, [path.join(ROOT, 'src/cli/main.ts'), cmd], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return c;
}

async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(t);
}

/** Calls `fn` `perS` times a second for `ms`, at most `max` in flight; returns how many arrivals were dropped. */
async function openLoop(perS: number, ms: number, max: number, fn: (i: number) => Promise<void>): Promise<number> {
  if (perS <= 0) return 0;
  const t0 = performance.now();
  const inflight = new Set<Promise<void>>();
  let dropped = 0;
  for (let i = 0; ; i++) {
    const due = t0 + (i * 1000) / perS;
    if (due - t0 >= ms) break;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    if (inflight.size >= max) {
      dropped++;
      continue;
    }
    const p = fn(i).finally(() => inflight.delete(p));
    inflight.add(p);
  }
  await Promise.all(inflight);
  return dropped;
}

const QUERIES = ['a moving test pattern', 'colour bars', 'a clock counting', 'a tone', 'bright colours moving left', 'a gradient'];

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const log = opts.log ?? (() => undefined);
  const port = await freePort();
  const env = await testEnv({
    MONTAGE_PORT: String(port),
    // A deployment's default consistency (1 s), not the tests' 0: this measures the service as it runs.
    MONTAGE_STORE_READ_CONSISTENCY_S: '1',
    MONTAGE_INTRA_OP_THREADS: '0',
    LOG_LEVEL: process.env.LOAD_LOG ?? 'error',
    ...(opts.workerNice !== undefined ? { MONTAGE_WORKER_NICE: String(opts.workerNice) } : {}),
  });
  // The service's own default priority for the worker unless one is asked for (testEnv pins the tests' to 0).
  if (opts.workerNice === undefined) delete env.MONTAGE_WORKER_NICE;
  const base = `http://127.0.0.1:${port}`;
  const redisUrl = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = env.MONTAGE_QUEUE_PREFIX!;
  const dataDir = env.MONTAGE_DATA_DIR!;
  const loadAvg = loadavg()[0]!;
  const uploadsPlanned = Math.ceil((opts.durationS * 1000) / opts.uploadEveryMs) + 1;
  log(`making ${uploadsPlanned} clips of ${opts.clipSeconds} s`);
  const clips: Buffer[] = [];
  for (let i = 0; i < uploadsPlanned; i++) {
    const f = path.join(dataDir, `load-${i}.mp4`);
    // a distinct clip per upload: the tone's pitch differs, so the bytes and the video id do
    await lavfiClip(f, { seconds: opts.clipSeconds, size: '320x240', frequency: 200 + 7 * i });
    clips.push(await readFile(f));
    await rm(f);
  }
  const api = startProcess('serve', env);
  const worker = startProcess('worker', env);
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('ingest', { connection, prefix });
  try {
    for (const end = Date.now() + 300_000; ; await sleep(200)) {
      const ok = await fetch(`${base}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > end || api.exitCode !== null) throw new Error('the API did not become ready');
    }
    const post = async (clip: Buffer, title: string) => {
      const { payload, headers } = multipart({ title, tags: 'load' }, { data: clip });
      return fetch(`${base}/v1/videos`, { method: 'POST', body: payload, headers });
    };
    // Warm-up: one video indexed, so searches, events and recommendations have something to find.
    const warm = await post(clips.pop()!, 'warm-up');
    const warmId = ((await warm.json()) as { videoId: string }).videoId;
    for (const end = Date.now() + 180_000; ; await sleep(300)) {
      const r = (await (await fetch(`${base}/v1/videos/${warmId}`)).json()) as { status: string };
      if (r.status === 'ready') break;
      if (r.status === 'failed' || Date.now() > end) throw new Error(`warm-up video ${r.status}`);
    }
    const workerNice = worker.pid ? nice(worker.pid) : null;
    log(`API and worker up (worker nice ${workerNice}); ${opts.durationS} s of load`);

    const samples: Sample[] = [];
    const accepted: string[] = [];
    let uploadsRefused = 0;
    let networkErrors = 0;
    const t0 = performance.now();
    const timed = async (kind: Sample['kind'], req: () => Promise<Response>): Promise<Response | null> => {
      const at = performance.now() - t0;
      try {
        const res = await req();
        const body = await res.arrayBuffer();
        samples.push({ kind, at, ms: performance.now() - t0 - at, status: res.status });
        return new Response(body, { status: res.status });
      } catch (err) {
        if (networkErrors++ < 3) log(`${kind}: ${(err as Error).message} ${String((err as { cause?: unknown }).cause ?? '')}`);
        return null;
      }
    };
    // Ingest activity, sampled every 100 ms: a bucket is busy when an ingest job is active or waiting.
    const busy: boolean[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const c = await queue.getJobCounts('active', 'waiting', 'prioritized').catch(() => null);
        const bucket = Math.floor((performance.now() - t0) / 100);
        busy[bucket] = busy[bucket] || (c !== null && (c.active ?? 0) + (c.waiting ?? 0) + (c.prioritized ?? 0) > 0);
        await sleep(100);
      }
    })();
    const ms = opts.durationS * 1000;
    const dropped = await Promise.all([
      openLoop(1000 / opts.uploadEveryMs, ms, opts.maxInFlight, async (i) => {
        const clip = clips[i];
        if (!clip) return;
        const r = await timed('upload', () => post(clip, `load ${i}`));
        if (r?.status === 202) accepted.push(((await r.json()) as { videoId: string }).videoId);
        else uploadsRefused++;
      }),
      openLoop(opts.searchesPerS, ms, opts.maxInFlight, async (i) => {
        await timed('search', () =>
          fetch(`${base}/v1/search`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ text: QUERIES[i % QUERIES.length], limit: 10 }),
          }),
        );
      }),
      openLoop(opts.eventBatchesPerS, ms, opts.maxInFlight, async (i) => {
        const events = Array.from({ length: opts.eventsPerBatch }, (_, k) => ({
          eventId: randomUUID(),
          userId: `u${(i * opts.eventsPerBatch + k) % 200}`,
          videoId: [warmId, ...accepted][(i + k) % (accepted.length + 1)],
          type: (['view', 'like', 'skip', 'share'] as const)[k % 4],
          timestamp: new Date().toISOString(),
          completion: 0.8,
        }));
        await timed('events', () =>
          fetch(`${base}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events }) }),
        );
      }),
      openLoop(opts.recommendationsPerS, ms, opts.maxInFlight, async (i) => {
        await timed('recommend', () => fetch(`${base}/v1/users/u${i % 200}/recommendations?limit=10`));
      }),
    ]);
    const loadS = (performance.now() - t0) / 1000;
    // Every accepted upload must end indexed.
    const drainStart = Date.now();
    let indexed = 0;
    for (const end = Date.now() + opts.drainS * 1000; ; await sleep(500)) {
      const states = await Promise.all(
        accepted.map(async (id) => {
          const r = await timed('status', () => fetch(`${base}/v1/videos/${id}`));
          return r?.status === 200 ? ((await r.json()) as { status: string }).status : 'unknown';
        }),
      );
      if (api.exitCode !== null || api.signalCode !== null) throw new Error(`the API exited (${api.exitCode ?? api.signalCode})`);
      indexed = states.filter((s) => s === 'ready').length;
      if (states.every((s) => s === 'ready' || s === 'failed') || Date.now() > end) break;
    }
    sampling = false;
    await sampler;
    const apiPeak = peakRssMb(api.pid!);
    const duringIngest = (s: Sample) => busy[Math.floor(s.at / 100)] === true;
    const searches = samples.filter((s) => s.kind === 'search' && s.status === 200);
    const during = searches.filter(duringIngest).map((s) => s.ms);
    const idle = searches.filter((s) => !duringIngest(s)).map((s) => s.ms);
    const of = (kind: Sample['kind']) => samples.filter((s) => s.kind === kind).map((s) => s.ms);
    const busyBuckets = busy.slice(0, Math.ceil(loadS * 10));
    return {
      duration_s: Math.round(loadS),
      uploads: accepted.length,
      uploads_refused: uploadsRefused,
      searches: samples.filter((s) => s.kind === 'search').length,
      events: samples.filter((s) => s.kind === 'events' && s.status === 202).length * opts.eventsPerBatch,
      recommendations: samples.filter((s) => s.kind === 'recommend').length,
      errors_5xx: samples.filter((s) => s.status >= 500).length,
      errors_network: networkErrors,
      client_dropped: dropped.reduce((a, b) => a + b, 0),
      indexed,
      drain_s: Math.round((Date.now() - drainStart) / 1000),
      ingest_busy_share: Math.round((busyBuckets.filter(Boolean).length / Math.max(1, busyBuckets.length)) * 100) / 100,
      searches_during_ingest: during.length,
      search_p50_ms_during_ingest: during.length ? pct(during, 50) : NaN,
      search_p99_ms_during_ingest: during.length ? pct(during, 99) : NaN,
      search_p50_ms_idle: idle.length ? pct(idle, 50) : null,
      search_p99_ms_idle: idle.length ? pct(idle, 99) : null,
      recommend_p99_ms: pct(of('recommend'), 99),
      events_p99_ms: pct(of('events'), 99),
      upload_p99_ms: pct(of('upload'), 99),
      api_peak_rss_mb: apiPeak,
      worker_nice: workerNice,
      load_average_before: Math.round(loadAvg * 10) / 10,
    };
  } finally {
    await Promise.all([stop(api), stop(worker)]);
    await queue.close().catch(() => undefined);
    connection.disconnect();
    await dropPrefix(redisUrl, prefix);
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: String(DEFAULT_LOAD.durationS) },
      compare: { type: 'boolean', default: false },
      out: { type: 'string', default: path.join(ROOT, 'bench/results/load.json') },
    },
  });
  const opts: LoadOptions = { ...DEFAULT_LOAD, durationS: Number(values.duration), log: (m) => process.stderr.write(`${m}\n`) };
  const baseline = values.compare ? await runLoad({ ...opts, workerNice: 0 }) : undefined;
  if (baseline) process.stderr.write(`baseline (worker nice 0): ${JSON.stringify(baseline)}\n`);
  const result = await runLoad(opts);
  const out = {
    generated_by: 'bench/load.ts',
    ...result,
    load: {
      upload_every_ms: opts.uploadEveryMs,
      clip_seconds: opts.clipSeconds,
      searches_per_s: opts.searchesPerS,
      event_batches_per_s: opts.eventBatchesPerS,
      events_per_batch: opts.eventsPerBatch,
      recommendations_per_s: opts.recommendationsPerS,
    },
    ...(baseline ? { baseline_worker_nice_0: baseline } : {}),
  };
  console.log(JSON.stringify(out, null, 2));
  await writeFile(values.out!, `${JSON.stringify(out, null, 2)}\n`);
}
