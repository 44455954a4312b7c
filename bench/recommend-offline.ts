/**
 * Offline evaluation of the whole recommendation path on MovieLens-100K, through the same code that serves
 * (EVALUATION.md; issue 11): the real runtime (embedded store, Redis, ONNX towers of the served generation),
 * events replayed through the EventLog and Popularity, user vectors from the user tower as jobs/user-vector.ts
 * computes them, and lists from src/recommend/service.ts `recommend()`.
 *
 *   npx node bench/recommend-offline.ts [--movielens /work/shared/data/ml-100k] [--out bench/results/recommend.json]
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
 * diversity (mean pairwise 1 - cosine of the behaviour vectors within a list), novelty (mean -log2 p(i) with
 * p(i) = (users who rated i + 1) / (users + 1)), cold-start exposure (cold items in at least one top 10 / cold
 * items), NDCG@10 of the target for the blend (the configured policy) and for the pure personal list
 * (personalAt 1, no new-item slots), and the personal list with the user tower alone (history weight 0) and the
 * watched centroid alone (history weight 1). Nothing derived from MovieLens is written but these numbers.
 */
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
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
import { defaultGenerationDir } from '../test/helpers/generation.ts';

const { values: args } = parseArgs({
  options: {
    movielens: { type: 'string', default: '/work/shared/data/ml-100k' },
    out: { type: 'string', default: 'bench/results/recommend.json' },
    'cold-share': { type: 'string', default: '0.1' },
    seed: { type: 'string', default: '1' },
    /** Evaluate this many users (a seeded sample; all when 0). */
    users: { type: 'string', default: '0' },
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
    const kept: Array<{ userId: string; n: number; newest: number }> = [];
    for (const userId of batch) {
      const recent = await rt.events.recent(userId, maxItems);
      const items = await rt.store.getItems(
        recent.map((r) => r.videoId),
        true,
      );
      const h = { items: [] as Float32Array[], ageSeconds: [] as number[] };
      recent.forEach((r, j) => {
        const v = items[j]?.vectors?.fused;
        if (v) {
          h.items.push(v);
          h.ageSeconds.push(Math.max(0, (now - r.timestamp) / 1000));
        }
      });
      if (h.items.length === 0) continue;
      histories.push(h);
      kept.push({ userId, n: h.items.length, newest: recent[recent.length - 1]!.timestamp });
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

async function evaluate(
  deps: RecommendDeps,
  pop: Population,
  now: number,
  ctx: { vectors: Map<string, Float32Array>; selfInfo: Map<string, number>; cold: Set<string>; items: number },
): Promise<Metrics> {
  const recommended = new Set<string>();
  const coldShown = new Set<string>();
  let ild = 0;
  let ildLists = 0;
  let novelty = 0;
  let novN = 0;
  let ndcg = 0;
  for (const [userId, target] of pop.target) {
    const r = await recommend(deps, { userId, limit: 10, offset: 0, now });
    const ids = r.hits.map((h) => h.videoId);
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
        dist += 1 - dot(ctx.vectors.get(ids[i]!)!, ctx.vectors.get(ids[j]!)!);
        pairs++;
      }
    if (pairs) {
      ild += dist / pairs;
      ildLists++;
    }
  }
  const round = (x: number) => Math.round(x * 10000) / 10000;
  return {
    coverage: round(recommended.size / ctx.items),
    intra_list_diversity: round(ild / Math.max(1, ildLists)),
    novelty: round(novelty / Math.max(1, novN)),
    cold_start_exposure: round(coldShown.size / Math.max(1, ctx.cold.size)),
    ndcg_at_10: round(ndcg / pop.target.size),
    users: pop.target.size,
  };
}

async function main() {
  if (!existsSync(path.join(args.movielens, 'u.data'))) throw new Error(`no MovieLens-100K at ${args.movielens}`);
  const t0 = Date.now();
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
    for (const x of history) raters.set(vid(x.item), (raters.get(vid(x.item)) ?? 0) + 1);
  }

  const dataDir = await mkdtemp(path.join(tmpdir(), 'montage-bench-rec-'));
  const prefix = `montage-bench-rec-${randomUUID().slice(0, 8)}`;
  const config = loadConfig({
    ...process.env,
    MONTAGE_DATA_DIR: dataDir,
    MONTAGE_QUEUE_PREFIX: prefix,
    MONTAGE_GENERATION_DIR: process.env.MONTAGE_GENERATION_DIR || defaultGenerationDir() || '',
    MONTAGE_STORE_READ_CONSISTENCY_S: '0',
  });
  const rt = await createRuntime({ config, log: createLogger('warn'), role: 'bench-recommend', buildIndexes: true });
  try {
    if (!rt.encoders.has('user') || !rt.encoders.has('behaviour')) throw new Error('the generation has no user/behaviour tower');
    await indexItems(rt, items, uploadedAt);
    for (let i = 0; i < events.length; i += 1000) {
      const batch = events.slice(i, i + 1000);
      await rt.events.append(batch);
      await rt.popularity.record(batch);
    }
    await userVectors(rt, [...full.target.keys(), ...short.target.keys()], now);
    const setupS = (Date.now() - t0) / 1000;

    const vectors = new Map<string, Float32Array>();
    const all = await rt.store.getItems(
      items.map((it) => vid(it.id)),
      true,
    );
    for (const h of all) vectors.set(h!.videoId, h!.vectors!.behaviour!);
    const U = full.target.size;
    const selfInfo = new Map(items.map((it) => [vid(it.id), -Math.log2(((raters.get(vid(it.id)) ?? 0) + 1) / (U + 1))]));
    const ctx = { vectors, selfInfo, cold: new Set([...cold].map(vid)), items: items.length };
    const blendPolicy: RecommendConfig = { ...config.recommend };
    const personalPolicy: RecommendConfig = { ...config.recommend, personalAt: 1, newItemShare: 0 };
    const deps = (policy: RecommendConfig): RecommendDeps => ({
      store: rt.store,
      events: rt.events,
      catalog: rt.catalog,
      popularity: rt.popularity,
      encoders: rt.encoders,
      policy,
    });
    const t1 = Date.now();
    const blend = await evaluate(deps(blendPolicy), full, now, ctx);
    const personal = await evaluate(deps(personalPolicy), full, now, ctx);
    const towerOnly = await evaluate(deps({ ...personalPolicy, historyWeight: 0 }), full, now, ctx);
    const historyOnly = await evaluate(deps({ ...personalPolicy, historyWeight: 1 }), full, now, ctx);
    const shortBlend = await evaluate(deps(blendPolicy), short, now, ctx);
    const shortPersonal = await evaluate(deps(personalPolicy), short, now, ctx);
    const evalS = (Date.now() - t1) / 1000;

    const offline = {
      coverage: blend.coverage,
      intra_list_diversity: blend.intra_list_diversity,
      novelty: blend.novelty,
      cold_start_exposure: blend.cold_start_exposure,
      ndcg_at_10_blend: blend.ndcg_at_10,
      ndcg_at_10_personal: personal.ndcg_at_10,
      personal,
      personal_user_tower_only: towerOnly,
      personal_watched_centroid_only: historyOnly,
      short_history: { blend: shortBlend, personal: shortPersonal },
      items: items.length,
      cold_items: cold.size,
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
      note:
        'MovieLens-100K through recommend() on the real runtime; content = the served text tower on "title genres" (towers trained ' +
        'on a procedural corpus, so accuracy is low in absolute terms); 10% of items cold (no events, uploaded 1 h before); ' +
        'target = last liked warm item; blend = the configured policy, personal = personalAt 1 and no new-item slots; ' +
        'short_history = the same users cut to their first 3 events. See bench/recommend-offline.ts.',
    };
    const prev = existsSync(args.out) ? JSON.parse(await readFile(args.out, 'utf8')) : {};
    await writeFile(args.out, JSON.stringify({ ...prev, offline }, null, 2) + '\n');
    console.log(JSON.stringify(offline, null, 2));
  } finally {
    await rt.close();
    await dropPrefix(config.redis.url, prefix);
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
