/**
 * Offline evaluation of the whole recommendation path on MovieLens-100K, through the same code that serves
 * (EVALUATION.md; issue 11): the real runtime (embedded store, Redis, ONNX towers of the served generation),
 * events replayed through the EventLog and Popularity, user vectors from the user tower as jobs/user-vector.ts
 * computes them, and lists from src/recommend/service.ts `recommend()`.
 *
 *   npx node bench/recommend-offline.ts [--movielens /work/shared/data/ml-100k] [--out bench/results/recommend.json]
 *     [--users N (a seeded sample)] [--fit-user-tower [--fit-budget-s 240]]
 *
 * Setup. Items have only metadata, so an item's content vector is the served text tower's embedding of
 * "title genres" and its behaviour vector the behaviour tower's projection of it (the committed towers were
 * trained on a procedural corpus, so the absolute accuracy is low: what this compares is the policy). 10% of
 * items (seeded) are made cold: every event on them is dropped and they are "uploaded" an hour before the
 * evaluation time; the others are uploaded at their first rating. Per user, events by time: the last one with
 * rating >= 4 on a warm item is the target, the ones before it the history (rating >= 4 like, 3 view, <= 2 skip).
 * Two populations: every user with their whole history, and the same users cut to their first 3 events
 * ("short"), where the blend matters.
 *
 * Metrics over each population's top-10 lists: coverage (distinct items recommended / items), intra-list
 * diversity (mean pairwise 1 - cosine of the content vectors within a list, EVALUATION.md), novelty (mean -log2 p(i) with
 * p(i) = (users who rated i + 1) / (users + 1)), cold-start exposure (cold items in at least one top 10 / cold
 * items), NDCG@10 of the target for the blend (the configured policy) and for the pure personal list
 * (personalAt 1, no new-item slots), and the personal list with the user tower alone (history weight 0) and the
 * watched centroid alone (history weight 1); baselines in the same run: the most rated items in training (the user's
 * own removed), the service's popular-and-fresh list, and random (expected). With --fit-user-tower the whole replay
 * runs again on towers trained on the full population's training events (fitTowers, a temp folder deleted after).
 * Nothing derived from MovieLens is written but these numbers.
 */
import { cp, mkdir, readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { createHash, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, type RecommendConfig } from '../src/config/index.ts';
import { createLogger } from '../src/log.ts';
import { createRuntime, type Runtime } from '../src/runtime.ts';
import { recommend, type RecommendDeps } from '../src/recommend/service.ts';
import type { BehaviourEvent, EventType } from '../src/users/events.ts';
import type { ItemPoint } from '../src/store/types.ts';
import { dot } from '../src/vectors.ts';
import { dropPrefix } from '../test/helpers/service.ts';
import { rng } from './synth.ts';
import { defaultGenerationDir, ROOT } from '../test/helpers/generation.ts';
import { loadEncoders } from '../src/models/index.ts';
import { PROFILE_ITEMS } from '../src/recommend/profiles.ts';
import type { WatchedItem } from '../src/recommend/watched-cache.ts';

const { values: args } = parseArgs({
  options: {
    movielens: { type: 'string', default: '/work/shared/data/ml-100k' },
    out: { type: 'string', default: 'bench/results/recommend.json' },
    'cold-share': { type: 'string', default: '0.1' },
    seed: { type: 'string', default: '1' },
    /** Evaluate this many users (a seeded sample; all when 0). */
    users: { type: 'string', default: '0' },
    /**
     * Also replay with user and behaviour towers fitted to this run's training events (montage_encoders.behaviour.build
     * on a copy of the generation in a temp folder, deleted after; never committed).
     */
    'fit-user-tower': { type: 'boolean', default: false },
    'fit-budget-s': { type: 'string', default: '240' },
  },
});

interface Rating {
  user: number;
  item: number;
  rating: number;
  ts: number;
}

const vid = (item: number) => createHash('sha256').update(`ml-100k:${item}`).digest('hex').slice(0, 32);

async function loadMovieLens(dir: string) {
  const genres = (await readFile(path.join(dir, 'u.genre'), 'latin1'))
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('|')[0]!);
  const items = (await readFile(path.join(dir, 'u.item'), 'latin1'))
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const f = l.split('|');
      const flags = f.slice(5).map(Number);
      return { id: Number(f[0]), title: f[1]!, genres: genres.filter((_, i) => flags[i] === 1) };
    });
  const ratings: Rating[] = (await readFile(path.join(dir, 'u.data'), 'latin1'))
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [user, item, rating, ts] = l.split('\t').map(Number) as [number, number, number, number];
      return { user, item, rating, ts: ts * 1000 };
    });
  return { items, ratings };
}

const typeOf = (rating: number): EventType => (rating >= 4 ? 'like' : rating === 3 ? 'view' : 'skip');

interface Population {
  /** user id in the store → its target video id */
  target: Map<string, string>;
}

async function indexItems(rt: Runtime, items: Array<{ id: number; title: string; genres: string[] }>, uploadedAt: Map<number, number>) {
  const B = rt.config.models.maxBatch;
  for (let i = 0; i < items.length; i += B) {
    const batch = items.slice(i, i + B);
    const fused = await rt.encoders.encodeText(batch.map((it) => `${it.title} ${it.genres.join(' ')}`));
    const behaviour = await rt.encoders.projectBehaviour(fused);
    const points: ItemPoint[] = batch.map((it, j) => ({
      payload: {
        videoId: vid(it.id),
        title: it.title,
        description: '',
        tags: it.genres.map((g) => g.toLowerCase()),
        durationS: 60,
        uploadedAt: uploadedAt.get(it.id)!,
        modalities: ['text'],
        generation: rt.encoders.generation.name,
        sha256: vid(it.id),
      },
      vectors: { fused: fused[j]!, text: fused[j]!, behaviour: behaviour[j]! },
    }));
    await rt.store.upsertItems(points);
    for (const p of points) {
      await rt.catalog.put({
        videoId: p.payload.videoId,
        title: p.payload.title,
        description: '',
        tags: p.payload.tags,
        sha256: p.payload.sha256,
        sizeBytes: 0,
        uploadPath: '/nowhere',
        status: 'ready',
        jobId: `ml-${p.payload.videoId}`,
        generation: p.payload.generation,
        modalities: ['text'],
        durationS: 60,
        uploadedAt: p.payload.uploadedAt,
      });
      await rt.catalog.markReady(p.payload.videoId, p.payload.uploadedAt);
    }
  }
}

/** What jobs/user-vector.ts does for one user, with ages taken at the evaluation's clock rather than the wall's. */
async function userVectors(rt: Runtime, users: string[], now: number) {
  const maxItems = rt.encoders.generation.preprocessing.user?.max_items ?? 50;
  for (let i = 0; i < users.length; i += 64) {
    const batch = users.slice(i, i + 64);
    const histories = [];
    const kept: Array<{ userId: string; n: number; newest: number; watched: WatchedItem[] }> = [];
    for (const userId of batch) {
      const recent = await rt.events.recent(userId, maxItems);
      const items = await rt.store.getItems(
        recent.map((r) => r.videoId),
        true,
      );
      const h = { items: [] as Float32Array[], ageSeconds: [] as number[] };
      const watched: WatchedItem[] = [];
      recent.forEach((r, j) => {
        const it = items[j];
        const v = it?.vectors?.fused;
        if (v) {
          h.items.push(v);
          h.ageSeconds.push(Math.max(0, (now - r.timestamp) / 1000));
          watched.push({ videoId: it.videoId, title: it.payload.title, behaviour: it.vectors?.behaviour });
        }
      });
      if (h.items.length === 0) continue;
      histories.push(h);
      kept.push({ userId, n: h.items.length, newest: recent[recent.length - 1]!.timestamp, watched: watched.slice(-PROFILE_ITEMS) });
    }
    if (histories.length === 0) continue;
    const vectors = await rt.encoders.encodeUsers(histories);
    await rt.store.upsertUsers(
      kept.map((k, j) => ({
        userId: k.userId,
        vector: vectors[j]!,
        updatedAt: k.newest,
        events: k.n,
        generation: rt.encoders.generation.name,
      })),
    );
    for (const k of kept)
      await rt.profiles.put(k.userId, { generation: rt.encoders.generation.name, updatedAt: k.newest, watched: k.watched });
  }
}

interface Metrics {
  coverage: number;
  intra_list_diversity: number;
  novelty: number;
  cold_start_exposure: number;
  ndcg_at_10: number;
  users: number;
}

type ListFn = (userId: string) => Promise<string[]>;
interface Ctx {
  /** Content (fused) vectors, for intra-list diversity (EVALUATION.md). */
  content: Map<string, Float32Array>;
  selfInfo: Map<string, number>;
  cold: Set<string>;
  items: number;
}

const viaService =
  (deps: RecommendDeps, now: number, experiment?: string): ListFn =>
  async (userId) =>
    (await recommend(deps, { userId, limit: 10, offset: 0, now, ...(experiment ? { experiment } : {}) })).hits.map((h) => h.videoId);

async function evaluate(list: ListFn, pop: Population, ctx: Ctx): Promise<Metrics> {
  const recommended = new Set<string>();
  const coldShown = new Set<string>();
  let ild = 0;
  let ildLists = 0;
  let novelty = 0;
  let novN = 0;
  let ndcg = 0;
  for (const [userId, target] of pop.target) {
    const ids = await list(userId);
    ids.forEach((id, rank) => {
      recommended.add(id);
      if (ctx.cold.has(id)) coldShown.add(id);
      novelty += ctx.selfInfo.get(id)!;
      novN++;
      if (id === target) ndcg += 1 / Math.log2(rank + 2);
    });
    let pairs = 0;
    let dist = 0;
    for (let i = 0; i < ids.length; i++)
      for (let j = i + 1; j < ids.length; j++) {
        dist += 1 - dot(ctx.content.get(ids[i]!)!, ctx.content.get(ids[j]!)!);
        pairs++;
      }
    if (pairs) {
      ild += dist / pairs;
      ildLists++;
    }
  }
  return {
    coverage: round(recommended.size / ctx.items),
    intra_list_diversity: round(ild / Math.max(1, ildLists)),
    novelty: round(novelty / Math.max(1, novN)),
    cold_start_exposure: round(coldShown.size / Math.max(1, ctx.cold.size)),
    ndcg_at_10: round(ndcg / pop.target.size),
    users: pop.target.size,
  };
}

const round = (x: number) => Math.round(x * 10000) / 10000;

/** Mean pairwise cosine over a seeded sample of vectors: near 1 means the space does not tell the items apart. */
function meanCosine(vectors: Float32Array[], pairs = 20000): number {
  const r = rng(5);
  let sum = 0;
  for (let k = 0; k < pairs; k++) {
    const a = vectors[Math.floor(r() * vectors.length)]!;
    const b = vectors[Math.floor(r() * vectors.length)]!;
    sum += dot(a, b);
  }
  return round(sum / pairs);
}

interface Split {
  items: Array<{ id: number; title: string; genres: string[] }>;
  cold: Set<number>;
  uploadedAt: Map<number, number>;
  now: number;
  full: Population;
  short: Population;
  events: BehaviourEvent[];
  /** Training interactions per video id (the full population's histories): popularity and novelty. */
  raters: Map<string, number>;
  /** What each full-population user has rated before the target (excluded from every list). */
  seen: Map<string, Set<string>>;
}

async function split(): Promise<Split> {
  const { items, ratings } = await loadMovieLens(args.movielens);
  const r = rng(Number(args.seed));
  const cold = new Set(items.filter(() => r() < Number(args['cold-share'])).map((it) => it.id));
  const warm = ratings.filter((x) => !cold.has(x.item));
  const now = Math.max(...ratings.map((x) => x.ts)) + 1000;
  const firstRating = new Map<number, number>();
  for (const x of warm) firstRating.set(x.item, Math.min(firstRating.get(x.item) ?? Infinity, x.ts));
  const uploadedAt = new Map(
    items.map((it) => [it.id, cold.has(it.id) ? now - 3_600_000 : (firstRating.get(it.id) ?? now - 365 * 86_400_000)]),
  );
  // Per user: time order, the target = the last liked warm item, the history = what came before it.
  const byUser = new Map<number, Rating[]>();
  for (const x of warm) (byUser.get(x.user) ?? byUser.set(x.user, []).get(x.user)!).push(x);
  const full: Population = { target: new Map() };
  const short: Population = { target: new Map() };
  const events: BehaviourEvent[] = [];
  const raters = new Map<string, number>();
  const seen = new Map<string, Set<string>>();
  const sample = Number(args.users);
  const keep = (user: number) => sample === 0 || ((user * 2654435761) >>> 0) % byUser.size < sample;
  for (const [user, list] of byUser) {
    if (!keep(user)) continue;
    list.sort((a, b) => a.ts - b.ts || a.item - b.item);
    const t = list.findLastIndex((x) => x.rating >= 4);
    if (t < 4) continue;
    const history = list.slice(0, t);
    const mk = (userId: string, x: Rating): BehaviourEvent => ({
      eventId: `${userId}:${x.item}`,
      userId,
      videoId: vid(x.item),
      type: typeOf(x.rating),
      timestamp: x.ts,
      completion: 1,
    });
    for (const x of history) events.push(mk(`u${user}`, x));
    for (const x of history.slice(0, 3)) events.push(mk(`s${user}`, x));
    full.target.set(`u${user}`, vid(list[t]!.item));
    short.target.set(`s${user}`, vid(list[t]!.item));
    seen.set(`u${user}`, new Set(history.map((x) => vid(x.item))));
    seen.set(`s${user}`, new Set(history.slice(0, 3).map((x) => vid(x.item))));
    for (const x of history) raters.set(vid(x.item), (raters.get(vid(x.item)) ?? 0) + 1);
  }
  return { items, cold, uploadedAt, now, full, short, events, raters, seen };
}

/**
 * Towers fitted to this run's training events: the served generation copied into `tmp`, and
 * montage_encoders.behaviour.build run on it with the full population's engaged history events (never a target,
 * never a cold item) and the items' content vectors as the service computes them. Returns the folder and the
 * build's own report. Nothing of it leaves `tmp`.
 */
async function fitTowers(genDir: string, sp: Split, tmp: string): Promise<{ dir: string; report: Record<string, unknown> }> {
  const enc = await loadEncoders(genDir, { provider: 'cpu', intraOpThreads: 1, maxBatch: 64, log: createLogger('warn') });
  const content: string[] = [];
  try {
    for (let i = 0; i < sp.items.length; i += 64) {
      const batch = sp.items.slice(i, i + 64);
      const fused = await enc.encodeText(batch.map((it) => `${it.title} ${it.genres.join(' ')}`));
      batch.forEach((it, j) => content.push(JSON.stringify({ item: vid(it.id), vector: [...fused[j]!] })));
    }
  } finally {
    await enc.close();
  }
  const data = path.join(tmp, 'ml-100k-replay');
  await mkdir(data, { recursive: true });
  const rows = sp.events
    .filter((e) => e.userId.startsWith('u') && e.type !== 'skip')
    .map((e) => JSON.stringify({ user: e.userId, item: e.videoId, timestamp: Math.round(e.timestamp / 1000) }));
  await writeFile(path.join(data, 'events.jsonl'), rows.join('\n') + '\n');
  await writeFile(path.join(data, 'content.jsonl'), content.join('\n') + '\n');
  const dir = path.join(tmp, 'generation');
  await cp(genDir, dir, { recursive: true });
  const { stdout } = await promisify(execFile)(
    '/usr/bin/python3',
    [
      '-m',
      'montage_encoders.behaviour.build',
      '--generation',
      dir,
      '--events',
      path.join(data, 'events.jsonl'),
      '--content',
      path.join(data, 'content.jsonl'),
      '--budget-s',
      args['fit-budget-s']!,
    ],
    { cwd: path.join(ROOT, 'encoders'), env: { ...process.env, OMP_NUM_THREADS: '1' }, maxBuffer: 64 << 20 },
  );
  const report = JSON.parse(stdout.slice(stdout.lastIndexOf('\n{'))) as Record<string, unknown>;
  return { dir, report };
}

/** The whole replay on one generation: index, events, user vectors and profiles, then every list and baseline. */
async function replay(genDir: string, sp: Split) {
  const t0 = Date.now();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'montage-bench-rec-'));
  const prefix = `montage-bench-rec-${randomUUID().slice(0, 8)}`;
  const config = loadConfig({
    ...process.env,
    MONTAGE_DATA_DIR: dataDir,
    MONTAGE_QUEUE_PREFIX: prefix,
    MONTAGE_GENERATION_DIR: genDir,
    MONTAGE_STORE_READ_CONSISTENCY_S: '0',
    MONTAGE_REDIS_COMMAND_TIMEOUT_MS: '30000',
    MONTAGE_RECOMMEND_EXPERIMENTS: JSON.stringify({ eval: { arms: [{ name: 'popular', mode: 'popular' }] } }),
  });
  const rt = await createRuntime({ config, log: createLogger('warn'), role: 'bench-recommend', buildIndexes: true });
  try {
    if (!rt.encoders.has('user') || !rt.encoders.has('behaviour')) throw new Error('the generation has no user/behaviour tower');
    await indexItems(rt, sp.items, sp.uploadedAt);
    for (let i = 0; i < sp.events.length; i += 1000) {
      const batch = sp.events.slice(i, i + 1000);
      await rt.events.append(batch);
      await rt.popularity.record(batch);
    }
    await userVectors(rt, [...sp.full.target.keys(), ...sp.short.target.keys()], sp.now);
    const setupS = (Date.now() - t0) / 1000;

    const all = await rt.store.getItems(
      sp.items.map((it) => vid(it.id)),
      true,
    );
    const content = new Map(all.map((h) => [h!.videoId, h!.vectors!.fused!]));
    const behaviour = all.map((h) => h!.vectors!.behaviour!);
    const U = sp.full.target.size;
    const selfInfo = new Map(sp.items.map((it) => [vid(it.id), -Math.log2(((sp.raters.get(vid(it.id)) ?? 0) + 1) / (U + 1))]));
    const ctx: Ctx = { content, selfInfo, cold: new Set([...sp.cold].map(vid)), items: sp.items.length };
    const blendPolicy: RecommendConfig = { ...config.recommend };
    const personalPolicy: RecommendConfig = { ...config.recommend, personalAt: 1, newItemShare: 0 };
    const deps = (policy: RecommendConfig): RecommendDeps => ({
      store: rt.store,
      events: rt.events,
      catalog: rt.catalog,
      popularity: rt.popularity,
      encoders: rt.encoders,
      profiles: rt.profiles,
      policy,
    });
    // The baseline of EVALUATION.md: the most rated items in training, the user's own removed.
    const byCount = [...sp.raters.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([id]) => id);
    const popularity: ListFn = async (userId) => {
      const seen = sp.seen.get(userId)!;
      const out: string[] = [];
      for (const id of byCount) if (!seen.has(id) && out.push(id) >= 10) break;
      return out;
    };
    const t1 = Date.now();
    const blend = await evaluate(viaService(deps(blendPolicy), sp.now), sp.full, ctx);
    const personal = await evaluate(viaService(deps(personalPolicy), sp.now), sp.full, ctx);
    const towerOnly = await evaluate(viaService(deps({ ...personalPolicy, historyWeight: 0 }), sp.now), sp.full, ctx);
    const historyOnly = await evaluate(viaService(deps({ ...personalPolicy, historyWeight: 1 }), sp.now), sp.full, ctx);
    const popularFresh = await evaluate(viaService(deps(blendPolicy), sp.now, 'eval'), sp.full, ctx);
    const popular = await evaluate(popularity, sp.full, ctx);
    const shortBlend = await evaluate(viaService(deps(blendPolicy), sp.now), sp.short, ctx);
    const shortPersonal = await evaluate(viaService(deps(personalPolicy), sp.now), sp.short, ctx);
    const shortPopular = await evaluate(popularity, sp.short, ctx);
    // Random: the target uniformly among the items a user has not seen (expected NDCG@10).
    const dcg10 = Array.from({ length: 10 }, (_, k) => 1 / Math.log2(k + 2)).reduce((a, b) => a + b, 0);
    const randomNdcg = [...sp.full.target.keys()].reduce((a, u) => a + dcg10 / (sp.items.length - sp.seen.get(u)!.size), 0) / U;
    const evalS = (Date.now() - t1) / 1000;
    return {
      coverage: blend.coverage,
      intra_list_diversity: blend.intra_list_diversity,
      novelty: blend.novelty,
      cold_start_exposure: blend.cold_start_exposure,
      ndcg_at_10_blend: blend.ndcg_at_10,
      ndcg_at_10_personal: personal.ndcg_at_10,
      ndcg_at_10_popularity: popular.ndcg_at_10,
      ndcg_at_10_random: round(randomNdcg),
      personal,
      personal_user_tower_only: towerOnly,
      personal_watched_centroid_only: historyOnly,
      popular_fresh_served: popularFresh,
      popularity_baseline: popular,
      short_history: { blend: shortBlend, personal: shortPersonal, popularity_baseline: shortPopular },
      mean_pairwise_cosine: { content: meanCosine([...content.values()]), behaviour: meanCosine(behaviour) },
      items: sp.items.length,
      cold_items: sp.cold.size,
      users: U,
      policy: {
        halfLifeH: blendPolicy.halfLifeH,
        personalAt: blendPolicy.personalAt,
        newItemShare: blendPolicy.newItemShare,
        historyWeight: blendPolicy.historyWeight,
      },
      generation: rt.encoders.generation.name,
      setup_s: Math.round(setupS),
      eval_s: Math.round(evalS),
    };
  } finally {
    await rt.close();
    await dropPrefix(config.redis.url, prefix);
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function main() {
  if (!existsSync(path.join(args.movielens, 'u.data'))) throw new Error(`no MovieLens-100K at ${args.movielens}`);
  const genDir = process.env.MONTAGE_GENERATION_DIR || defaultGenerationDir() || '';
  const sp = await split();
  const served = await replay(genDir, sp);
  console.log(JSON.stringify(served, null, 2));
  let fitted: Record<string, unknown> | undefined;
  if (args['fit-user-tower']) {
    const tmp = await mkdtemp(path.join(tmpdir(), 'montage-fit-'));
    try {
      const t0 = Date.now();
      const { dir, report } = await fitTowers(genDir, sp, tmp);
      const fitS = Math.round((Date.now() - t0) / 1000);
      fitted = { ...(await replay(dir, sp)), build: { ...report, fit_s: fitS } };
      console.log(JSON.stringify(fitted, null, 2));
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  const offline = {
    ...served,
    ...(fitted ? { fitted_towers: fitted } : {}),
    note:
      'MovieLens-100K through recommend() on the real runtime; content = the served text tower on "title genres"; 10% of items ' +
      'cold (no events, uploaded 1 h before); target = last liked warm item, history = every rating before it; blend = the ' +
      'configured policy, personal = personalAt 1 and no new-item slots; popularity_baseline = the most rated items in ' +
      "training minus the user's own; popular_fresh_served = the service's popular-and-fresh list (24 h half-life at the " +
      'end of the log); short_history = the same users cut to their first 3 events; intra-list diversity on content ' +
      'vectors; fitted_towers = the same replay with user and behaviour towers trained by montage_encoders.behaviour.build ' +
      "on this run's training events in a temp folder (deleted; never committed). See bench/recommend-offline.ts.",
  };
  const prev = existsSync(args.out) ? JSON.parse(await readFile(args.out, 'utf8')) : {};
  await writeFile(args.out, JSON.stringify({ ...prev, offline }, null, 2) + '\n');
}

await main();
