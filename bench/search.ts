/**
 * bench/search: search latency and recall of the embedded store against exact brute force, at
 * 10k / 100k / 1M items, over HTTP on loopback (EVALUATION.md "Search speed").
 *
 *   npx node bench/search.ts [--sizes 10000,100000,1000000] [--queries 300] [--exact-queries 100]
 *
 * Per size: synthetic clustered unit vectors (bench/synth.ts) are upserted through the store's
 * own upsertItems, its indexes built (ensureIndexes), then two child servers answer the same
 * fixed query set: the embedded store, and exact brute force over the same vectors. Latency is
 * per query from this client process after a warm-up (sequential, one in flight), qps is the
 * throughput with `--concurrency` queries in flight, recall@10 is the mean overlap of the
 * store's top 10 with exact top 10 on the same queries. Built stores are kept under
 * var/bench-search/ and reused when the parameters match. Writes bench/results/search.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EmbeddedStore } from '../src/store/embedded.ts';
import { recallAt } from '../src/store/exact.ts';
import type { ItemPoint } from '../src/store/types.ts';
import { DEFAULT_SPEC, Synth, type SynthSpec } from './synth.ts';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000,1000000' },
    queries: { type: 'string', default: '300' },
    'exact-queries': { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '30' },
    knobs: { type: 'string', default: '{}' },
    out: { type: 'string', default: 'bench/results/search.json' },
  },
});

const ROOT = 'var/bench-search';
const BATCH = 25_000;

interface Run {
  store: 'embedded' | 'exact';
  items: number;
  p50_ms: number;
  p99_ms: number;
  qps: number;
  recall_at_10: number;
  /** Server CPU time per query (all threads), sequential phase: robust to other jobs on the machine. */
  cpu_ms_per_query: number;
  queries: number;
  /** 1-minute load average of the machine when the run ended (2 cores: above 2 means queueing). */
  load_avg: number;
  load_s?: number;
  index_s?: number;
}

async function buildStore(n: number, spec: SynthSpec): Promise<{ dir: string; load_s: number; index_s: number }> {
  const dir = join(ROOT, `n${n}-d${spec.dim}-c${spec.clusters}-s${spec.seed}`);
  const metaPath = join(dir, 'bench-meta.json');
  if (existsSync(metaPath)) return { dir, ...(JSON.parse(await readFile(metaPath, 'utf8')) as { load_s: number; index_s: number }) };
  await rm(dir, { recursive: true, force: true });
  const synth = new Synth(spec);
  // autoIndex on, as in service: indexes (btree on id included) are built once the table
  // crosses the threshold and kept fresh, which is also what keeps later upserts fast.
  // keepVersionsS 0: no other reader exists, and every compaction would otherwise keep a copy.
  const store = new EmbeddedStore({ dataDir: dir, keepVersionsS: 0 });
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
  return {
    payload: {
      videoId: `v${i}`, title: `item ${i}`, description: '', tags: [`t${i % 50}`], durationS: 5 + (i % 600),
      uploadedAt: 1_700_000_000_000 + i * 1000, modalities: ['video', 'audio', 'text'], generation: 'bench', sha256: '',
    },
    vectors: { fused },
  };
}

async function startServer(argv: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['bench/search-server.ts', ...argv], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'error' },
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
  return { url: `http://127.0.0.1:${port}/search`, child };
}

async function query(url: string, q: Float32Array): Promise<string[]> {
  const res = await fetch(url, { method: 'POST', body: JSON.stringify({ vector: Array.from(q), limit: 10 }) });
  if (!res.ok) throw new Error(`search failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { ids: string[] }).ids;
}

/** Sequential latencies (ms) and the ids of each query, after `warmup` untimed queries. */
async function latencies(url: string, qs: Float32Array[], warmup: number): Promise<{ ms: number[]; ids: string[][]; cpu: number }> {
  for (let i = 0; i < warmup; i++) await query(url, qs[i % qs.length]!);
  const ms: number[] = [];
  const ids: string[][] = [];
  const cpu0 = await cpuMs(url);
  for (const q of qs) {
    const t = performance.now();
    ids.push(await query(url, q));
    ms.push(performance.now() - t);
  }
  return { ms, ids, cpu: (await cpuMs(url)) - cpu0 };
}

async function cpuMs(url: string): Promise<number> {
  const res = await fetch(url.replace(/\/search$/, '/cpu'));
  return ((await res.json()) as { ms: number }).ms;
}

async function throughput(url: string, qs: Float32Array[], concurrency: number): Promise<number> {
  let next = 0;
  const t = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < qs.length) await query(url, qs[next++]!);
  }));
  return qs.length / ((performance.now() - t) / 1000);
}

function pct(ms: number[], p: number): number {
  const s = [...ms].sort((a, b) => a - b);
  return round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!);
}

const round = (x: number) => Math.round(x * 100) / 100;

async function measure(n: number, spec: SynthSpec, queries: Float32Array[], exactQueries: number): Promise<Run[]> {
  const built = await buildStore(n, spec);
  const conc = Number(args.concurrency);
  const warm = Number(args.warmup);
  const emb = await startServer(['embedded', built.dir, String(spec.dim), args.knobs!]);
  const ex = await startServer(['exact', String(n), JSON.stringify(spec)]);
  try {
    const e = await latencies(emb.url, queries, warm);
    const eQps = await throughput(emb.url, queries, conc);
    const xq = queries.slice(0, exactQueries);
    const x = await latencies(ex.url, xq, Math.min(warm, 5));
    const xQps = await throughput(ex.url, xq.slice(0, Math.max(conc * 5, 20)), conc);
    const recall = xq.reduce((s, _, i) => s + recallAt(e.ids[i]!, x.ids[i]!), 0) / xq.length;
    return [
      { store: 'embedded', items: n, p50_ms: pct(e.ms, 50), p99_ms: pct(e.ms, 99), qps: round(eQps), recall_at_10: round(recall * 1000) / 1000, cpu_ms_per_query: round(e.cpu / queries.length), queries: queries.length, load_avg: round(loadavg()[0]!), load_s: round(built.load_s), index_s: round(built.index_s) },
      { store: 'exact', items: n, p50_ms: pct(x.ms, 50), p99_ms: pct(x.ms, 99), qps: round(xQps), recall_at_10: 1, cpu_ms_per_query: round(x.cpu / xq.length), queries: xq.length, load_avg: round(loadavg()[0]!) },
    ];
  } finally {
    emb.child.kill('SIGTERM');
    ex.child.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  const spec = DEFAULT_SPEC;
  const sizes = args.sizes!.split(',').map(Number);
  const nq = Number(args.queries);
  const queries = Array.from({ length: nq }, (_, i) => new Synth(spec).vector(i, new Float32Array(spec.dim), 1));
  await mkdir(ROOT, { recursive: true });
  const runs: Run[] = [];
  for (const n of sizes) {
    runs.push(...(await measure(n, spec, queries, Math.min(nq, Number(args['exact-queries'])))));
    console.log(JSON.stringify(runs.slice(-2)));
    await writeResults(spec, runs);
  }
}

async function writeResults(spec: SynthSpec, runs: Run[]): Promise<void> {
  const out = {
    protocol: 'EVALUATION.md "Search speed": client process, HTTP on loopback (node:http child server wrapping the store, not yet /v1/search), '
      + `warm-up ${args.warmup} queries, sequential latency, qps with ${args.concurrency} in flight, recall@10 vs exact brute force on the same queries `
      + `(exact measured on the first ${args['exact-queries']} queries).`,
    data: `${spec.clusters} random unit centroids in ${spec.dim} dims; item = normalise(centroid + ${spec.sigma} * N(0, I)), `
      + 'cluster drawn uniformly per item (cosine to own centroid ~0.7); queries drawn the same way from a separate stream, never stored.',
    store: 'embedded = LanceDB (src/store/embedded.ts) with its default index settings; exact = pure-TS Float32Array scan (src/store/exact.ts).',
    knobs: JSON.parse(args.knobs!),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, mem_gb: Math.round(totalmem() / 2 ** 30), shared: 'shared with other jobs during the run; numbers are noisy' },
    date: new Date().toISOString(),
    runs,
  };
  await mkdir('bench/results', { recursive: true });
  await writeFile(args.out!, `${JSON.stringify(out, null, 2)}\n`);
}

await main();
