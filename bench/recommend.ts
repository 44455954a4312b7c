/**
 * bench/recommend: latency of GET /v1/users/:id/recommendations over HTTP on loopback with 100k items and 10k
 * users in the store, while events stream in, against the same request served with exact search (issue 11).
 *
 *   npx node bench/recommend.ts [--items 100000] [--users 10000] [--requests 300] [--out bench/results/recommend.json]
 *
 * Setup: synthetic clustered unit vectors (bench/synth.ts) as the items' `behaviour` (and `fused`) vectors in the
 * embedded store, built once under var/bench-recommend/ and reused; catalog records and 20 events per user (each
 * user's items drawn from two clusters) through the real EventLog and Popularity on Redis; user vectors = the
 * unit centroid of their items plus noise, written with upsertUsers (the user tower's cost is the job's, not the
 * request's). Three apps from buildApp in this process, each on its own loopback port: the real runtime, and the
 * same runtime with the store's searchItems replaced by a brute-force scan of the same vectors (filters and
 * exclusions applied in the scan), and the same runtime without users' profiles (src/recommend/profiles.ts: each
 * request reads the watched items from the store, the path before the profiles). During the timed requests a stream of POST /v1/events (--events-per-s,
 * default 100) goes to the real app. Requests: random users, limit 10, sequential after a warm-up, the same user sequence for each.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../src/config/index.ts';
import { createLogger } from '../src/log.ts';
import { createRuntime } from '../src/runtime.ts';
import { buildApp } from '../src/server/app.ts';
import { EmbeddedStore } from '../src/store/embedded.ts';
import type { ItemHit, ItemPoint, SearchRequest, VectorStore } from '../src/store/types.ts';
import type { BehaviourEvent } from '../src/users/events.ts';
import { PROFILE_ITEMS, type UserProfile } from '../src/recommend/profiles.ts';
import type { WatchedItem } from '../src/recommend/watched-cache.ts';
import { unit } from '../src/vectors.ts';
import { defaultGenerationDir } from '../test/helpers/generation.ts';
import { dropPrefix } from '../test/helpers/service.ts';
import { pct } from './lib/stats.ts';
import { exactTopK } from './lib/exact.ts';
import { DEFAULT_SPEC, Synth, rng, synthPayload } from './synth.ts';

const { values: args } = parseArgs({
  options: {
    items: { type: 'string', default: '100000' },
    users: { type: 'string', default: '10000' },
    requests: { type: 'string', default: '300' },
    warmup: { type: 'string', default: '30' },
    'events-per-s': { type: 'string', default: '100' },
    out: { type: 'string', default: 'bench/results/recommend.json' },
  },
});
const N = Number(args.items);
const U = Number(args.users);
const EVENTS_PER_USER = 20;
const spec = DEFAULT_SPEC;

async function buildStore(): Promise<string> {
  const dir = path.resolve(`var/bench-recommend/n${N}-d${spec.dim}-c${spec.clusters}-s${spec.seed}`);
  if (existsSync(path.join(dir, 'bench-meta.json'))) return dir;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const synth = new Synth(spec);
  const store = new EmbeddedStore({ dataDir: dir, keepVersionsS: 0, readConsistencyS: 0, autoIndex: true });
  await store.open({ name: 'bench', dim: spec.dim });
  for (let from = 0; from < N; from += 25_000) {
    const to = Math.min(N, from + 25_000);
    const m = synth.block(from, to);
    const points: ItemPoint[] = [];
    for (let i = from; i < to; i++) {
      const v = m.slice((i - from) * spec.dim, (i - from + 1) * spec.dim);
      points.push({
        payload: { ...synthPayload(i), modalities: ['video'], generation: 'bench', sha256: `s${i}` },
        vectors: { fused: v, behaviour: v },
      });
    }
    await store.upsertItems(points);
    process.stderr.write(`\r  loaded ${to}`);
  }
  await store.ensureIndexes();
  await store.close();
  await writeFile(path.join(dir, 'bench-meta.json'), '{}');
  process.stderr.write('\n');
  return dir;
}

/** The store with searchItems replaced by an exact scan over the same behaviour vectors. */
function exactStore(base: VectorStore, matrix: Float32Array, payloads: ItemHit['payload'][]): VectorStore {
  const index = new Map(payloads.map((p, i) => [p.videoId, i]));
  return Object.assign(Object.create(Object.getPrototypeOf(base)) as VectorStore, base, {
    getItem: base.getItem.bind(base),
    getUser: base.getUser.bind(base),
    getItems: base.getItems.bind(base),
    searchItems: async (req: SearchRequest): Promise<ItemHit[]> => {
      const f = req.filter ?? {};
      const ex = new Set((f.excludeVideoIds ?? []).map((id) => index.get(id)));
      const hits = exactTopK(matrix, spec.dim, req.vector, req.limit, (r) => {
        const p = payloads[r]!;
        return !ex.has(r) && (f.uploadedAfter === undefined || p.uploadedAt >= f.uploadedAfter);
      });
      return hits.map((h) => {
        const v = matrix.subarray(h.index * spec.dim, (h.index + 1) * spec.dim);
        return {
          videoId: payloads[h.index]!.videoId,
          score: h.score,
          payload: payloads[h.index]!,
          ...(req.withVectors ? { vectors: { behaviour: v } } : {}),
        };
      });
    },
  });
}

async function timeRequests(base: string, users: string[], warmup: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < users.length; i++) {
    const t = performance.now();
    const res = await fetch(`${base}/v1/users/${users[i]}/recommendations?limit=10`);
    const body = (await res.json()) as { hits?: unknown[] };
    if (!res.ok || !body.hits?.length) throw new Error(`recommendations failed: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
    if (i >= warmup) out.push(performance.now() - t);
  }
  return out;
}

async function main() {
  const t0 = performance.now();
  const dir = await buildStore();
  const prefix = `bench-rec-${randomUUID().slice(0, 8)}`;
  const dataDir = await mkdtemp(path.join(tmpdir(), 'montage-bench-rec-'));
  const config = loadConfig({
    ...process.env,
    MONTAGE_DATA_DIR: dataDir,
    MONTAGE_STORE_DIR: dir,
    MONTAGE_QUEUE_PREFIX: prefix,
    MONTAGE_GENERATION_DIR: process.env.MONTAGE_GENERATION_DIR || defaultGenerationDir() || '',
    LOG_LEVEL: 'warn',
    // The setup writes 10k users' state in bursts on a shared machine; 2 s (the default) is for requests, not setup.
    MONTAGE_REDIS_COMMAND_TIMEOUT_MS: '120000',
  });
  const rt = await createRuntime({ config, log: createLogger('warn'), role: 'bench-recommend', buildIndexes: false });
  try {
    const synth = new Synth(spec);
    const matrix = synth.block(0, N);
    const payloads = Array.from({ length: N }, (_, i) => ({
      ...synthPayload(i),
      modalities: ['video' as const],
      generation: 'bench',
      sha256: `s${i}`,
    }));
    // Catalog records (the popular path reads them) and the users' events, through the real Redis code.
    for (let i = 0; i < N; i += 2000) {
      await Promise.all(
        payloads.slice(i, i + 2000).map(async (p) => {
          await rt.catalog.put({ ...p, sizeBytes: 0, uploadPath: '/nowhere', status: 'ready', jobId: `j${p.videoId}` });
          await rt.catalog.markReady(p.videoId, p.uploadedAt);
        }),
      );
    }
    const r = rng(7);
    const byCluster = new Map<number, number[]>();
    for (let i = 0; i < N; i++) {
      const c = Math.floor(r() * 200);
      (byCluster.get(c) ?? byCluster.set(c, []).get(c)!).push(i);
    }
    const now = Date.now();
    let eventId = 0;
    const users: string[] = [];
    for (let u = 0; u < U; u += 500) {
      const events: BehaviourEvent[] = [];
      const points = [];
      const profiles: Array<[string, UserProfile]> = [];
      for (let k = u; k < Math.min(U, u + 500); k++) {
        const userId = `user${k}`;
        users.push(userId);
        const pools = [byCluster.get(Math.floor(r() * 200))!, byCluster.get(Math.floor(r() * 200))!];
        const mean = new Float32Array(spec.dim);
        const watched: WatchedItem[] = [];
        for (let e = 0; e < EVENTS_PER_USER; e++) {
          const pool = pools[e % 2]!;
          const i = pool[Math.floor(r() * pool.length)]!;
          watched.push({ videoId: `v${i}`, title: payloads[i]!.title, behaviour: matrix.slice(i * spec.dim, (i + 1) * spec.dim) });
          for (let j = 0; j < spec.dim; j++) mean[j]! += matrix[i * spec.dim + j]! + 0.02 * (r() - 0.5);
          events.push({
            eventId: `b${eventId++}`,
            userId,
            videoId: `v${i}`,
            type: 'view',
            completion: 0.9,
            timestamp: now - (EVENTS_PER_USER - e) * 60_000,
          });
        }
        points.push({ userId, vector: unit(mean)!, updatedAt: now, events: EVENTS_PER_USER, generation: rt.encoders.generation.name });
        profiles.push([userId, { generation: rt.encoders.generation.name, updatedAt: now, watched: watched.slice(-PROFILE_ITEMS) }]);
      }
      await rt.events.append(events);
      await rt.popularity.record(events);
      await rt.store.upsertUsers(points);
      // What the user-vector job writes beside the vector (jobs/user-vector.ts).
      for (let j = 0; j < profiles.length; j += 50)
        await Promise.all(profiles.slice(j, j + 50).map(([userId, p]) => rt.profiles.put(userId, p)));
      process.stderr.write(`\r  users ${users.length}`);
    }
    process.stderr.write('\n');
    const setupS = (performance.now() - t0) / 1000;

    const real = await buildApp(rt);
    const exact = await buildApp({ ...rt, store: exactStore(rt.store, matrix, payloads) });
    // The same runtime without the profiles: watched items read from the store (the path before them, and the one a
    // user without a profile still takes).
    const { profiles: _unused, ...withoutProfiles } = rt;
    const noProfile = await buildApp(withoutProfiles);
    await real.listen({ host: '127.0.0.1', port: 0 });
    await exact.listen({ host: '127.0.0.1', port: 0 });
    await noProfile.listen({ host: '127.0.0.1', port: 0 });
    const url = (a: typeof real) => `http://127.0.0.1:${(a.server.address() as AddressInfo).port}`;

    // Events stream in during the timed requests: --events-per-s, in batches every 100 ms, to the real app.
    let streamed = 0;
    const perTick = Math.max(1, Math.round(Number(args['events-per-s']) / 10));
    const stream = setInterval(() => {
      const batch = Array.from({ length: perTick }, () => ({
        eventId: `s${streamed++}`,
        userId: users[Math.floor(r() * users.length)]!,
        videoId: `v${Math.floor(r() * N)}`,
        type: 'view',
        completion: 0.8,
        timestamp: new Date().toISOString(),
      }));
      void fetch(`${url(real)}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ events: batch }),
      });
    }, 100);
    const warmup = Number(args.warmup);
    const seq = Array.from({ length: warmup + Number(args.requests) }, () => users[Math.floor(r() * users.length)]!);
    const realMs = await timeRequests(url(real), seq, warmup);
    const exactMs = await timeRequests(url(exact), seq, warmup);
    const noProfileMs = await timeRequests(url(noProfile), seq, warmup);
    clearInterval(stream);
    await real.close();
    await exact.close();
    await noProfile.close();

    const latency = {
      events_per_s: Number(args['events-per-s']),
      items: N,
      users: U,
      p50_ms: pct(realMs, 50),
      p99_ms: pct(realMs, 99),
      exact_p50_ms: pct(exactMs, 50),
      exact_p99_ms: pct(exactMs, 99),
      no_profile_p50_ms: pct(noProfileMs, 50),
      no_profile_p99_ms: pct(noProfileMs, 99),
      requests: realMs.length,
      events_streamed: streamed,
      load_avg: Math.round(loadavg()[0]! * 10) / 10,
      setup_s: Math.round(setupS),
      note:
        `GET /v1/users/:id/recommendations?limit=10 over loopback, client and the three apps in one process; exact = the same runtime ` +
        `with searchItems as a brute-force scan; no_profile = the same runtime without users' profiles (watched items read from ` +
        `the store); 20 events per user, ${args['events-per-s']} events/s posted to the real app during all the timed requests ` +
        `(the apps share the process); the same user sequence for each. See bench/recommend.ts.`,
    };
    const prev = existsSync(args.out) ? JSON.parse(await readFile(args.out, 'utf8')) : {};
    await writeFile(args.out, JSON.stringify({ ...prev, latency }, null, 2) + '\n');
    console.log(JSON.stringify(latency, null, 2));
  } finally {
    await rt.close();
    await dropPrefix(config.redis.url, prefix);
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
