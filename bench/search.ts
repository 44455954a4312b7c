/**
 * bench/search: search latency and recall of the embedded store against exact brute force, at
 * 10k / 100k / 1M items, over HTTP on loopback against the real API (EVALUATION.md "Search speed").
 *
 *   npx node bench/search.ts [--sizes 10000,100000,1000000] [--queries 300] [--exact-queries 100]
 *
 * Per size: synthetic clustered unit vectors (bench/synth.ts) are upserted through the store's
 * own upsertItems and its indexes built (ensureIndexes); built stores are kept under
 * var/bench-search/ and reused when the parameters match. Then two child servers answer the same
 * fixed query set with POST /v1/search {vector, limit: 10}:
 *   - embedded: the service itself (bench/search-server.ts `real`: createRuntime + buildApp), with
 *     MONTAGE_STORE_DIR at the built store. The store was written as generation `bench`; its
 *     aliases point items at `items__bench`, and the runtime's generation (same dim) reads
 *     through them, as a server does while a new generation is backfilled beside the served one.
 *   - exact: brute force over the same vectors behind a Fastify app with the same schemas and hit
 *     shaping (the real API has no exact mode).
 * Latency is per query from this client process after a warm-up (sequential, one in flight), qps
 * is the throughput with `--concurrency` queries in flight, recall@10 is the mean overlap of the
 * store's top 10 with exact top 10 on the same queries. Server CPU per query is read from
 * /proc/<pid>/stat of the child. Writes bench/results/search.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/index.ts';
import { defaultGenerationDir } from '../test/helpers/generation.ts';
import { dropPrefix } from '../test/helpers/service.ts';
import { pct } from './lib/stats.ts';
import { EmbeddedStore } from '../src/store/embedded.ts';
import { recallAt } from './lib/exact.ts';
import type { ItemPoint } from '../src/store/types.ts';
import { DEFAULT_SPEC, Synth, synthPayload, type SynthSpec } from './synth.ts';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000,1000000' },
    queries: { type: 'string', default: '300' },
    'exact-queries': { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '30' },
    /** Shares of the catalogue the filter lets through (0 = no filter): durationS ≤ a bound, spread over all clusters. */
    selectivities: { type: 'string', default: '0,0.01,0.1,0.5' },
    out: { type: 'string', default: 'bench/results/search.json' },
    /** Only build (or find) the stores of the given sizes, measure nothing. */
    'build-only': { type: 'boolean', default: false },
  },
});

const ROOT = 'var/bench-search';
const BATCH = 25_000;

interface Run {
  store: 'embedded' | 'exact';
  items: number;
  /** Share of the items the query's filter lets through; 0 = no filter. */
  filter_selectivity: number;
  p50_ms: number;
  p99_ms: number;
  qps: number;
  recall_at_10: number;
  /** Server CPU time per query (all threads), sequential phase: robust to other jobs on the machine. */
  cpu_ms_per_query: number;
  queries: number;
  /** 1-minute load average of the machine when the run ended (2 cores: above 2 means queueing). */
  load_avg: number;
  /** Resident memory of the server process after the queries, MB. */
  rss_mb: number;
  load_s?: number;
  index_s?: number;
  /** Seconds to build the in-memory graph (ensureIndexes on the loaded store). */
  graph_s?: number;
  /** The server's graph ef (MONTAGE_STORE_GRAPH_EF or its default). */
  graph_ef?: number;
}

/** The filter that lets `share` of the synthetic items through: durationS = 5 + i % 600 (synthPayload). */
function durationBound(share: number): number {
  return 5 + Math.round(600 * share) - 1;
}

interface Built {
  dir: string;
  load_s: number;
  index_s: number;
  graph_s?: number;
}

async function buildStore(n: number, spec: SynthSpec): Promise<Built> {
  const dir = join(ROOT, `n${n}-d${spec.dim}-c${spec.clusters}-s${spec.seed}`);
  const metaPath = join(dir, 'bench-meta.json');
  if (existsSync(metaPath)) {
    const meta = JSON.parse(await readFile(metaPath, 'utf8')) as Built;
    if (meta.graph_s !== undefined || !existsSync(dir)) return { ...meta, dir };
    // A store built before the graph existed: build the graph on it (the writer's ensureIndexes does).
    const store = new EmbeddedStore({ dataDir: dir, keepVersionsS: 0, readConsistencyS: 0, autoIndex: true });
    await store.open({ name: 'bench', dim: spec.dim });
    const t = performance.now();
    await store.ensureIndexes();
    const graph_s = (performance.now() - t) / 1000;
    await store.close();
    process.stderr.write(`  n=${n}: graph ${graph_s.toFixed(1)} s\n`);
    await writeFile(metaPath, JSON.stringify({ load_s: meta.load_s, index_s: meta.index_s, graph_s }));
    return { ...meta, dir, graph_s };
  }
  await rm(dir, { recursive: true, force: true });
  const synth = new Synth(spec);
  // autoIndex on, as in service: indexes (btree on id included) are built once the table
  // crosses the threshold and kept fresh, which is also what keeps later upserts fast.
  // keepVersionsS 0: no other reader exists, and every compaction would otherwise keep a copy.
  const store = new EmbeddedStore({ dataDir: dir, keepVersionsS: 0, readConsistencyS: 0, autoIndex: true });
  await store.open({ name: 'bench', dim: spec.dim });
  let t = performance.now();
  for (let from = 0; from < n; from += BATCH) {
    const to = Math.min(n, from + BATCH);
    const m = synth.block(from, to);
    const points: ItemPoint[] = [];
    for (let i = from; i < to; i++) points.push(item(i, m.subarray((i - from) * spec.dim, (i - from + 1) * spec.dim)));
    await store.upsertItems(points);
    process.stderr.write(`\r  n=${n}: loaded ${to}`);
  }
  const load_s = (performance.now() - t) / 1000;
  t = performance.now();
  await store.ensureIndexes();
  const index_s = (performance.now() - t) / 1000;
  process.stderr.write(`\r  n=${n}: load ${load_s.toFixed(1)} s, index ${index_s.toFixed(1)} s\n`);
  await store.close();
  await writeFile(metaPath, JSON.stringify({ load_s, index_s }));
  return { dir, load_s, index_s };
}

function item(i: number, fused: Float32Array): ItemPoint {
  return { payload: synthPayload(i), vectors: { fused } };
}

/** The generation the real server loads: MONTAGE_GENERATION_DIR, else the committed default, else var/generations/tiny. */
function generationDir(dim: number): { dir: string; name: string } {
  const dir = defaultGenerationDir();
  if (!dir) throw new Error('no model generation found: train one (encoders/README.md) or set MONTAGE_GENERATION_DIR');
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { generation: string; dim: number };
  if (m.dim !== dim) throw new Error(`generation ${dir} has dim ${m.dim}; the bench vectors have ${dim}`);
  return { dir: resolve(dir), name: m.generation };
}

const QUEUE_PREFIX = `bench-search-${process.pid}-${Date.now()}`;

async function startServer(argv: string[], env: Record<string, string> = {}): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['bench/search-server.ts', ...argv], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'error', LOG_LEVEL: 'warn', ...env },
  });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /READY (\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`search server ${argv[0]} exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}/v1/search`, child };
}

async function query(url: string, q: Float32Array, share = 0): Promise<string[]> {
  const filter = share > 0 ? { filter: { durationS: { max: durationBound(share) } } } : {};
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ vector: Array.from(q), limit: 10, ...filter }),
  });
  if (!res.ok) throw new Error(`search failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { hits: Array<{ videoId: string }> }).hits.map((h) => h.videoId);
}

/** Sequential latencies (ms) and the ids of each query, after `warmup` untimed queries. */
async function latencies(
  url: string,
  pid: number,
  qs: Float32Array[],
  warmup: number,
  share: number,
): Promise<{ ms: number[]; ids: string[][]; cpu: number }> {
  for (let i = 0; i < warmup; i++) await query(url, qs[i % qs.length]!, share);
  const ms: number[] = [];
  const ids: string[][] = [];
  const cpu0 = cpuMs(pid);
  for (const q of qs) {
    const t = performance.now();
    ids.push(await query(url, q, share));
    ms.push(performance.now() - t);
  }
  return { ms, ids, cpu: cpuMs(pid) - cpu0 };
}

/**
 * CPU time of a child process so far, all threads (LanceDB's included), from /proc: a per-query
 * cost that the other jobs sharing the machine cannot inflate, unlike wall-clock latency.
 */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in clock ticks of 1/100 s
}

/** Resident memory of a process now, MB (/proc/<pid>/status VmRSS). */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

async function throughput(url: string, qs: Float32Array[], concurrency: number, share: number): Promise<number> {
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < qs.length) await query(url, qs[next++]!, share);
    }),
  );
  return qs.length / ((performance.now() - t) / 1000);
}

const round = (x: number) => Math.round(x * 100) / 100;

/** Starts a server, runs `fn` against it, then stops it and waits for it to exit. */
async function withServer<T>(argv: string[], env: Record<string, string>, fn: (url: string, pid: number) => Promise<T>): Promise<T> {
  const srv = await startServer(argv, env);
  try {
    return await fn(srv.url, srv.child.pid!);
  } finally {
    const exited = new Promise((r) => srv.child.once('exit', r));
    srv.child.kill('SIGTERM');
    await exited;
  }
}

async function measure(n: number, spec: SynthSpec, gen: { dir: string }, queries: Float32Array[], exactQueries: number): Promise<Run[]> {
  const built = await buildStore(n, spec);
  const conc = Number(args.concurrency);
  const warm = Number(args.warmup);
  const shares = args.selectivities!.split(',').map(Number);
  const env = { MONTAGE_STORE_DIR: resolve(built.dir), MONTAGE_GENERATION_DIR: gen.dir, MONTAGE_QUEUE_PREFIX: QUEUE_PREFIX };
  type Measured = { ms: number[]; ids: string[][]; cpu: number; qps: number; rss: number };
  // One server at a time: the exact one holds the whole matrix (1 GB at 1M) on a shared machine.
  const e = await withServer(['real'], env, async (url, pid) => {
    const out: Measured[] = [];
    for (const share of shares) {
      const lat = await latencies(url, pid, queries, warm, share);
      out.push({ ...lat, qps: await throughput(url, queries, conc, share), rss: rssMb(pid) });
    }
    return out;
  });
  const xq = queries.slice(0, exactQueries);
  const x = await withServer(['exact', String(n), JSON.stringify(spec)], {}, async (url, pid) => {
    const out: Measured[] = [];
    for (const share of shares) {
      const lat = await latencies(url, pid, xq, Math.min(warm, 5), share);
      out.push({ ...lat, qps: await throughput(url, xq.slice(0, Math.max(conc * 5, 20)), conc, share), rss: rssMb(pid) });
    }
    return out;
  });
  const load = round(loadavg()[0]!);
  const graphEf = loadConfig({ ...process.env, MONTAGE_GENERATION_DIR: gen.dir }).store.embedded.graphEf;
  const runs: Run[] = [];
  shares.forEach((share, k) => {
    const ek = e[k]!;
    const xk = x[k]!;
    const recall = xq.reduce((s, _, i) => s + recallAt(ek.ids[i]!, xk.ids[i]!), 0) / xq.length;
    runs.push(
      {
        store: 'embedded',
        items: n,
        filter_selectivity: share,
        p50_ms: pct(ek.ms, 50),
        p99_ms: pct(ek.ms, 99),
        qps: round(ek.qps),
        recall_at_10: round(recall * 1000) / 1000,
        cpu_ms_per_query: round(ek.cpu / queries.length),
        queries: queries.length,
        load_avg: load,
        rss_mb: ek.rss,
        load_s: round(built.load_s),
        index_s: round(built.index_s),
        ...(built.graph_s !== undefined ? { graph_s: round(built.graph_s) } : {}),
        graph_ef: graphEf,
      },
      {
        store: 'exact',
        items: n,
        filter_selectivity: share,
        p50_ms: pct(xk.ms, 50),
        p99_ms: pct(xk.ms, 99),
        qps: round(xk.qps),
        recall_at_10: 1,
        cpu_ms_per_query: round(xk.cpu / xq.length),
        queries: xq.length,
        load_avg: load,
        rss_mb: xk.rss,
      },
    );
  });
  return runs;
}

/** The runtime's queues touch a few keys under the bench's own prefix; remove them. */
async function cleanRedis(): Promise<void> {
  await dropPrefix(loadConfig({ ...process.env, MONTAGE_GENERATION_DIR: generationDir(DEFAULT_SPEC.dim).dir }).redis.url, QUEUE_PREFIX);
}

async function main(): Promise<void> {
  const spec = DEFAULT_SPEC;
  const gen = generationDir(spec.dim);
  const sizes = args.sizes!.split(',').map(Number);
  const nq = Number(args.queries);
  const queries = Array.from({ length: nq }, (_, i) => new Synth(spec).vector(i, new Float32Array(spec.dim), 1));
  await mkdir(ROOT, { recursive: true });
  if (args['build-only']) {
    for (const n of sizes) await buildStore(n, spec);
    return;
  }
  const loadStart = loadavg().map(round);
  const runs: Run[] = [];
  try {
    for (const n of sizes) {
      runs.push(...(await measure(n, spec, gen, queries, Math.min(nq, Number(args['exact-queries'])))));
      console.log(JSON.stringify(runs.filter((r) => r.items === n)));
      await writeResults(spec, gen, runs, loadStart);
    }
  } finally {
    await cleanRedis();
  }
}

async function writeResults(spec: SynthSpec, gen: { dir: string; name: string }, runs: Run[], loadStart: number[]): Promise<void> {
  const out = {
    runs,
    note: [
      'EVALUATION.md "Search speed". Client: this process, HTTP on loopback, POST /v1/search {vector, limit: 10}. ' +
        `Warm-up ${args.warmup} queries, then ${args.queries} fixed queries sequentially (p50/p99), qps with ${args.concurrency} in flight; ` +
        `recall@10 of embedded vs exact on the first ${args['exact-queries']} of the same queries.`,
      'embedded = the real service in a child process (bench/search-server.ts: createRuntime + buildApp from src/, config from env, ' +
        `generation ${gen.name} from ${gen.dir.replace(`${process.cwd()}/`, '')}), the embedded LanceDB store with its default index settings. ` +
        'The bench store was written as generation "bench"; its aliases point items/segments/users at the *__bench collections, ' +
        'and the server reads through those aliases (same dim), as it does while a new generation is backfilled beside the served one.',
      'exact = pure-TS brute-force scan (src/store/exact.ts) over the same vectors; the real API has no exact mode, so it is its own ' +
        'loopback Fastify server with the same SearchRequest/SearchResponse schemas and hit shaping (toHit) as /v1/search.',
      `Data: ${spec.clusters} random unit centroids in ${spec.dim} dims; item = normalise(centroid + ${spec.sigma} * N(0, I)), ` +
        'cluster drawn uniformly per item (cosine to own centroid ~0.7); queries drawn the same way from a separate stream, never stored.',
      'cpu_ms_per_query: server process CPU (all threads, /proc) per query in the sequential phase, robust to other jobs on the machine; ' +
        'load_avg: 1-minute load average when the size finished (2 cores: above 2 means queueing).',
    ].join(' '),
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      mem_gb: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      shared: 'shared with other jobs during the run; latency numbers are noisy',
    },
    load_average: { start: loadStart, end: loadavg().map(round) },
    generated_at: new Date().toISOString(),
  };
  await mkdir('bench/results', { recursive: true });
  await writeFile(args.out!, `${JSON.stringify(out, null, 2)}\n`);
}

await main();
