/**
 * One contract suite for every VectorStore: always against the embedded store (a fresh temp
 * folder per test), and against Qdrant when QDRANT_URL is set (a fresh collection prefix per
 * test, deleted after). Both must give the same answers to the same calls.
 */
import { after, afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import * as lancedb from '@lancedb/lancedb';
import { EmbeddedStore } from '../../src/store/embedded.ts';
import { QdrantStore } from '../../src/store/qdrant.ts';
import { Synth } from '../../bench/synth.ts';
import { exactTopK, recallAt } from '../../bench/lib/exact.ts';
import { cosine, unit as unitOf } from '../../src/vectors.ts';
import type { ItemPayload, ItemPoint, Modality, SegmentPoint, StoreGeneration, VectorName, VectorStore } from '../../src/store/types.ts';

type Store = VectorStore & { pointAliases(gen: StoreGeneration): Promise<void> };
interface Harness {
  /** A store opened on the harness's backing location (same folder / prefix every call). */
  make(): Store;
  cleanup(): Promise<void>;
}
interface Impl {
  name: string;
  harness(): Promise<Harness>;
}

const DIM = 8;
const GEN: StoreGeneration = { name: 'g1', dim: DIM };

const impls: Impl[] = [
  {
    name: 'embedded',
    async harness() {
      const dir = await mkdtemp(join(tmpdir(), 'montage-store-'));
      return {
        make: () => new EmbeddedStore({ dataDir: dir, readConsistencyS: 0, autoIndex: true }),
        cleanup: () => rm(dir, { recursive: true, force: true }),
      };
    },
  },
];
if (process.env.QDRANT_URL) {
  impls.push({
    name: 'qdrant',
    async harness() {
      const prefix = `t${randomUUID().slice(0, 8)}_`;
      const opts = { url: process.env.QDRANT_URL!, apiKey: process.env.QDRANT_API_KEY, prefix };
      return {
        make: () => new QdrantStore(opts),
        cleanup: () => new QdrantStore(opts).dropAll(),
      };
    },
  });
}

/** Deterministic pseudo-random unit vector. */
function unit(seed: number, dim = DIM): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const v = new Float32Array(dim);
  for (let i = 0; i < dim; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    v[i] = s / 2 ** 32 - 0.5;
  }
  return unitOf(v)!;
}

function payload(videoId: string, over: Partial<ItemPayload> = {}): ItemPayload {
  return {
    videoId,
    title: `title ${videoId}`,
    description: `about ${videoId}`,
    tags: [],
    durationS: 10,
    uploadedAt: 1_700_000_000_000,
    modalities: ['video', 'audio', 'text'],
    generation: GEN.name,
    sha256: 'ab'.repeat(32),
    ...over,
  };
}

function item(videoId: string, seed: number, over: Partial<ItemPayload> = {}, names?: VectorName[]): ItemPoint {
  const mods: Modality[] = over.modalities ?? ['video', 'audio', 'text'];
  const use = names ?? (['fused', 'behaviour', ...mods] as VectorName[]);
  const vectors: ItemPoint['vectors'] = {};
  use.forEach((n, i) => (vectors[n] = unit(seed * 10 + i)));
  return { payload: payload(videoId, { ...over, modalities: mods }), vectors };
}

function segment(videoId: string, index: number, seed: number): SegmentPoint {
  return {
    payload: { videoId, index, startS: index * 2, endS: index * 2 + 2, modalities: ['video', 'audio'], generation: GEN.name },
    vectors: { fused: unit(seed), video: unit(seed + 1), audio: unit(seed + 2) },
  };
}

function near(a: Float32Array | undefined, b: Float32Array, eps = 1e-5): void {
  assert.ok(a, 'vector missing');
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < eps, `component ${i}: ${a[i]} vs ${b[i]}`);
}

for (const impl of impls) {
  describe(`VectorStore contract: ${impl.name}`, () => {
    let h: Harness;
    let store: Store;
    const opened: Store[] = [];
    const open = async (gen = GEN, opts: { pinned?: boolean } = {}): Promise<Store> => {
      const s = h.make();
      opened.push(s);
      await s.open(gen, opts);
      return s;
    };

    beforeEach(async () => {
      h = await impl.harness();
      store = await open();
    });
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close().catch(() => undefined);
      await h.cleanup();
    });

    test('open points unset aliases at the generation and refuses another dimension', async () => {
      assert.deepEqual(await store.aliases(), { items: GEN, segments: GEN, users: GEN });
      await assert.rejects(open({ name: 'g2', dim: DIM * 2 }), { code: 'GENERATION_MISMATCH' });
      // same dimension, new generation: backfill beside the served one, aliases untouched
      const g2 = { name: 'g2', dim: DIM };
      const s2 = await open(g2);
      assert.deepEqual(await s2.aliases(), { items: GEN, segments: GEN, users: GEN });
      await s2.upsertItems([item('new-gen', 1)]);
      assert.equal(await store.getItem('new-gen'), null, 'reads go through the alias, not the new generation');
      await s2.pointAliases(g2);
      assert.deepEqual(await s2.aliases(), { items: g2, segments: g2, users: g2 });
      assert.equal((await s2.getItem('new-gen'))?.payload.generation, GEN.name);
    });

    test('a pinned store reads its own generation whatever the aliases say, and may differ in dimension', async () => {
      const g2 = { name: 'g2', dim: DIM };
      const pinned2 = await open(g2, { pinned: true });
      const pinned1 = await open(GEN, { pinned: true });
      await pinned2.upsertItems([item('only-g2', 1)]);
      await pinned1.upsertItems([item('only-g1', 2)]);
      assert.deepEqual(await store.aliases(), { items: GEN, segments: GEN, users: GEN }, 'a pinned open moves no alias');
      assert.equal((await pinned2.getItem('only-g2'))?.payload.videoId, 'only-g2');
      assert.equal(await pinned2.getItem('only-g1'), null);
      await store.pointAliases(g2);
      assert.equal(await pinned1.getItem('only-g2'), null, 'pinned to g1 after the aliases moved to g2');
      assert.equal((await pinned1.getItem('only-g1'))?.payload.videoId, 'only-g1');
      const hits = await pinned1.searchItems({ vector: item('q', 2).vectors.fused!, using: 'fused', limit: 5 });
      assert.deepEqual(
        hits.map((x) => x.videoId),
        ['only-g1'],
      );
      // another dimension beside the aliases: refused unpinned, fine pinned (a backfill into a wider generation)
      const wide = { name: 'g3', dim: DIM * 2 };
      await assert.rejects(open(wide), { code: 'GENERATION_MISMATCH' });
      await open(wide, { pinned: true });
    });

    test('ping answers on an open store', async () => {
      await store.ping();
    });

    test('upserting twice leaves one item with the newer payload', async () => {
      await store.upsertItems([item('a', 1)]);
      await store.upsertItems([item('a', 1, { title: 'renamed' })]);
      assert.equal(await store.countItems(), 1);
      assert.equal((await store.getItem('a'))?.payload.title, 'renamed');
      await store.upsertItems([item('b', 2), item('b', 2, { title: 'last wins' })]);
      assert.equal(await store.countItems(), 2);
      assert.equal((await store.getItem('b'))?.payload.title, 'last wins');
    });

    test('getItem returns payload and, when asked, exactly the named vectors stored', async () => {
      const p = item('v1', 3, { tags: ['cat', 'dog'], externalId: 'ext-1' });
      await store.upsertItems([p]);
      const plain = await store.getItem('v1');
      assert.deepEqual(plain?.payload, p.payload);
      assert.equal(plain?.vectors, undefined);
      const full = await store.getItem('v1', true);
      assert.deepEqual(Object.keys(full?.vectors ?? {}).sort(), Object.keys(p.vectors).sort());
      for (const [name, v] of Object.entries(p.vectors)) near(full?.vectors?.[name as VectorName], v);
      assert.equal(await store.getItem('missing'), null);
    });

    test('getItems reads several items at once, in the order asked, null for a missing one', async () => {
      await store.upsertItems([item('m1', 4), item('m2', 5)]);
      const got = await store.getItems(['m2', 'missing', 'm1', 'm2'], true);
      assert.deepEqual(
        got.map((h) => h?.videoId ?? null),
        ['m2', null, 'm1', 'm2'],
      );
      near(got[2]?.vectors?.fused, (await store.getItem('m1', true))!.vectors!.fused!);
      assert.equal((await store.getItems(['m1']))[0]?.vectors, undefined);
      assert.deepEqual(await store.getItems([]), []);
    });

    test('an item without a named vector is never returned when searching that vector', async () => {
      await store.upsertItems([item('with-audio', 1), item('silent', 2, { modalities: ['video', 'text'] })]);
      const silent = await store.getItem('silent', true);
      assert.equal(silent?.vectors?.audio, undefined);
      const byAudio = await store.searchItems({ vector: unit(22), using: 'audio', limit: 10 });
      assert.deepEqual(
        byAudio.map((h) => h.videoId),
        ['with-audio'],
      );
      const byVideo = await store.searchItems({ vector: unit(22), using: 'video', limit: 10 });
      assert.equal(byVideo.length, 2);
    });

    test('results are ordered by score and scores are cosine similarities', async () => {
      const pts = Array.from({ length: 12 }, (_, i) => item(`s${i}`, i + 1));
      await store.upsertItems(pts);
      const q = new Float32Array(unit(999).map((x) => x * 3)); // not unit length: score must still be cosine
      const hits = await store.searchItems({ vector: q, using: 'fused', limit: 12 });
      assert.equal(hits.length, 12);
      for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1]!.score >= hits[i]!.score - 1e-6);
      for (const h of hits) {
        const want = cosine(q, pts.find((p) => p.payload.videoId === h.videoId)!.vectors.fused!);
        assert.ok(Math.abs(h.score - want) < 1e-4, `${h.videoId}: ${h.score} vs ${want}`);
      }
      const exact = exactTopK(flat(pts.map((p) => p.vectors.fused!)), DIM, unitOf(q)!, 5).map((e) => `s${e.index}`);
      assert.deepEqual(
        hits.slice(0, 5).map((h) => h.videoId),
        exact,
      );
    });

    test('withVectors returns the hit vectors', async () => {
      const p = item('wv', 4);
      await store.upsertItems([p]);
      const [hit] = await store.searchItems({ vector: unit(1), using: 'fused', limit: 1, withVectors: true });
      near(hit?.vectors?.fused, p.vectors.fused!);
      const [bare] = await store.searchItems({ vector: unit(1), using: 'fused', limit: 1 });
      assert.equal(bare?.vectors, undefined);
    });

    test('offset and limit page through the same ranking', async () => {
      await store.upsertItems(Array.from({ length: 9 }, (_, i) => item(`p${i}`, i + 40)));
      const q = { vector: unit(7), using: 'fused' as const };
      const all = (await store.searchItems({ ...q, limit: 6 })).map((h) => h.videoId);
      const first = (await store.searchItems({ ...q, limit: 3 })).map((h) => h.videoId);
      const second = (await store.searchItems({ ...q, limit: 3, offset: 3 })).map((h) => h.videoId);
      assert.equal(all.length, 6);
      assert.deepEqual([...first, ...second], all);
      assert.equal((await store.searchItems({ ...q, limit: 5, offset: 7 })).length, 2);
    });

    test('every filter is honoured', async () => {
      const t0 = 1_700_000_000_000;
      await store.upsertItems([
        item('f1', 1, { tags: ['cat', 'cute'], durationS: 5, uploadedAt: t0 }),
        item('f2', 2, { tags: ['cat'], durationS: 30, uploadedAt: t0 + 1000 }),
        item('f3', 3, { tags: ['dog', "o'neil"], durationS: 60, uploadedAt: t0 + 2000, modalities: ['video', 'text'] }),
        item('f4', 4, { tags: [], durationS: 120, uploadedAt: t0 + 3000, modalities: ['video'] }),
      ]);
      const ids = async (filter: Parameters<Store['countItems']>[0]) => {
        const hits = await store.searchItems({ vector: unit(5), using: 'fused', limit: 10, filter });
        const count = await store.countItems(filter);
        assert.equal(count, hits.length, 'countItems agrees with search');
        return hits.map((h) => h.videoId).sort();
      };
      assert.deepEqual(await ids({ tagsAny: ['cute', 'dog'] }), ['f1', 'f3']);
      assert.deepEqual(await ids({ tagsAny: ["o'neil"] }), ['f3']);
      assert.deepEqual(await ids({ tagsAll: ['cat', 'cute'] }), ['f1']);
      assert.deepEqual(await ids({ durationMinS: 30 }), ['f2', 'f3', 'f4']);
      assert.deepEqual(await ids({ durationMinS: 10, durationMaxS: 60 }), ['f2', 'f3']);
      assert.deepEqual(await ids({ uploadedAfter: t0 + 1000, uploadedBefore: t0 + 2000 }), ['f2', 'f3']);
      assert.deepEqual(await ids({ modalities: ['video', 'text'] }), ['f1', 'f2', 'f3']);
      assert.deepEqual(await ids({ modalities: ['audio'] }), ['f1', 'f2']);
      assert.deepEqual(await ids({ excludeVideoIds: ['f1', 'f4'] }), ['f2', 'f3']);
      assert.deepEqual(await ids({ tagsAny: ['cat'], durationMaxS: 10, excludeVideoIds: ['f2'] }), ['f1']);
      assert.deepEqual(await ids({}), ['f1', 'f2', 'f3', 'f4']);
    });

    test('segments are searched by named vector, replaced on re-upsert and filtered by their video', async () => {
      await store.upsertItems([item('m1', 1, { tags: ['x'] }), item('m2', 2, { tags: ['y'], modalities: ['video', 'audio'] })]);
      await store.upsertSegments('m1', [segment('m1', 0, 100), segment('m1', 1, 200), segment('m1', 2, 300)]);
      await store.upsertSegments('m2', [segment('m2', 0, 400)]);
      const target = unit(200 + 2); // audio of m1 segment 1
      const [best] = await store.searchSegments({ vector: target, using: 'audio', limit: 1 });
      assert.equal(best?.videoId, 'm1');
      assert.deepEqual(best?.payload, segment('m1', 1, 200).payload);
      assert.ok(Math.abs(best!.score - 1) < 1e-4);

      await store.upsertSegments('m1', [segment('m1', 0, 500), segment('m1', 1, 600)]);
      const m1 = await store.searchSegments({ vector: target, using: 'audio', limit: 10, filter: { tagsAny: ['x'] } });
      assert.deepEqual(m1.map((s) => s.payload.index).sort(), [0, 1]);
      assert.ok(m1.every((s) => s.videoId === 'm1'));
      const notM1 = await store.searchSegments({ vector: target, using: 'fused', limit: 10, filter: { excludeVideoIds: ['m1'] } });
      assert.deepEqual(
        notM1.map((s) => s.videoId),
        ['m2'],
      );
      assert.deepEqual(await store.searchSegments({ vector: target, using: 'fused', limit: 10, filter: { tagsAny: ['none'] } }), []);
      // modalities are the item's: segments carry only video/audio, yet a text filter keeps m1 (which has text).
      const withText = await store.searchSegments({ vector: target, using: 'fused', limit: 10, filter: { modalities: ['text'] } });
      assert.deepEqual([...new Set(withText.map((s) => s.videoId))], ['m1']);
    });

    test('deleteVideo removes the item and its segments', async () => {
      await store.upsertItems([item('d1', 1), item('d2', 2)]);
      await store.upsertSegments('d1', [segment('d1', 0, 10), segment('d1', 1, 20)]);
      await store.upsertSegments('d2', [segment('d2', 0, 30)]);
      await store.deleteVideo('d1');
      assert.equal(await store.getItem('d1'), null);
      assert.equal(await store.countItems(), 1);
      const segs = await store.searchSegments({ vector: unit(10), using: 'fused', limit: 10 });
      assert.deepEqual(
        segs.map((s) => s.videoId),
        ['d2'],
      );
      await store.deleteVideo('never-existed');
    });

    test('users upsert by id and read back', async () => {
      const u = { userId: 'u1', vector: unit(77), updatedAt: 1_700_000_000_123, events: 3, generation: GEN.name };
      await store.upsertUsers([u]);
      await store.upsertUsers([{ ...u, events: 4 }]);
      const got = await store.getUser('u1');
      assert.equal(got?.events, 4);
      assert.equal(got?.updatedAt, u.updatedAt);
      near(got?.vector, u.vector);
      assert.equal(await store.getUser('nobody'), null);
    });

    test('wrong query dimension is refused naming the field', async () => {
      await assert.rejects(store.searchItems({ vector: new Float32Array(DIM + 1), using: 'fused', limit: 1 }), {
        code: 'VECTOR_DIMENSION',
      });
    });

    test('data persists across close and reopen', async () => {
      await store.upsertItems([item('keep', 9, { tags: ['t'] })]);
      await store.upsertSegments('keep', [segment('keep', 0, 9)]);
      await store.upsertUsers([{ userId: 'u', vector: unit(3), updatedAt: 1, events: 1, generation: GEN.name }]);
      await store.close();
      const again = await open();
      assert.equal((await again.getItem('keep'))?.payload.tags[0], 't');
      assert.equal((await again.searchSegments({ vector: unit(9), using: 'fused', limit: 1 }))[0]?.videoId, 'keep');
      assert.equal((await again.getUser('u'))?.events, 1);
    });
  });
}

describe('embedded store shared by two connections (API server and worker)', () => {
  test('a write by one is visible to the other at once, and concurrent upserts all land', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'montage-shared-'));
    const api = new EmbeddedStore({ dataDir: dir, readConsistencyS: 0, autoIndex: false });
    const worker = new EmbeddedStore({ dataDir: dir, readConsistencyS: 0, autoIndex: true });
    try {
      await worker.open(GEN);
      await api.open(GEN);
      assert.equal(await api.countItems(), 0);
      await worker.upsertItems([item('w1', 1)]);
      assert.equal((await api.getItem('w1'))?.videoId, 'w1');
      await Promise.all([
        ...Array.from({ length: 6 }, (_, i) => worker.upsertItems([item(`c${i}`, i + 10)])),
        ...Array.from({ length: 6 }, (_, i) => api.upsertItems([item(`d${i}`, i + 20)])),
      ]);
      assert.equal(await worker.countItems(), 13);
      assert.equal(await api.countItems(), 13);
    } finally {
      await api.close();
      await worker.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('embedded store with an ANN index', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  // Clustered unit vectors, as embeddings are (bench/synth.ts); IVF on uniform noise is a
  // different, unrealistic problem.
  test('keeps recall against exact search and honours filters once indexed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'montage-ann-'));
    dirs.push(dir);
    const dim = 64;
    const synth = new Synth({ dim, clusters: 40, sigma: 0.1, seed: 3 });
    const store = new EmbeddedStore({ dataDir: dir, indexThreshold: 1500, readConsistencyS: 0, autoIndex: false });
    await store.open({ name: 'ann', dim });
    const n = 2000;
    const vecs = Array.from({ length: n }, (_, i) => synth.vector(i, new Float32Array(dim)));
    const pts: ItemPoint[] = vecs.map((v, i) => ({
      payload: { ...payload(`a${i}`), tags: [i % 2 ? 'odd' : 'even'] },
      vectors: { fused: v },
    }));
    for (let i = 0; i < n; i += 500) await store.upsertItems(pts.slice(i, i + 500));
    const noFused = Array.from({ length: 5 }, (_, i) => ({
      payload: { ...payload(`nf${i}`), tags: ['odd'], durationS: 99 },
      vectors: { video: vecs[i]! },
    }));
    await store.upsertItems(noFused);
    await store.ensureIndexes();
    const db = await lancedb.connect(dir);
    const indexed = (await (await db.openTable('items__ann')).listIndices()).map((i) => i.columns[0]);
    assert.ok(indexed.includes('v_fused'), `ANN index on v_fused built (have ${indexed.join(', ')})`);
    db.close();
    const matrix = flat(vecs);
    let recall = 0;
    for (let q = 0; q < 20; q++) {
      const query = synth.vector(q, new Float32Array(dim), 1);
      const hits = await store.searchItems({ vector: query, using: 'fused', limit: 10 });
      recall +=
        recallAt(
          hits.map((h) => h.videoId),
          exactTopK(matrix, dim, query, 10).map((e) => `a${e.index}`),
        ) / 20;
      const odd = await store.searchItems({ vector: query, using: 'fused', limit: 10, filter: { tagsAny: ['odd'] } });
      assert.equal(odd.length, 10);
      assert.ok(odd.every((h) => h.payload.tags[0] === 'odd' && !h.videoId.startsWith('nf')));
      const long = await store.searchItems({ vector: query, using: 'fused', limit: 10, filter: { durationMinS: 50 } });
      assert.deepEqual(long, [], 'no item with a fused vector is that long');
    }
    const byVideo = await store.searchItems({ vector: vecs[0]!, using: 'video', limit: 10 });
    assert.deepEqual(byVideo.map((h) => h.videoId).sort(), ['nf0', 'nf1', 'nf2', 'nf3', 'nf4']);
    assert.ok(recall >= 0.95, `recall@10 ${recall}`);
    await store.close();
  });
});

function flat(vs: Float32Array[]): Float32Array {
  const out = new Float32Array(vs.length * (vs[0]?.length ?? 0));
  vs.forEach((v, i) => out.set(v, i * v.length));
  return out;
}

describe('embedded store: evidence columns', () => {
  test('a table written before them gets them when opened; evidence round-trips and termsAny filters by whole word', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'montage-evidence-'));
    try {
      // An items table of the schema before issue 10 (no evidence, no terms), with one row.
      const { Schema } = await import('apache-arrow');
      const { itemSchema, buildTable, itemColumns, ITEM_EVIDENCE_FIELDS } = await import('../../src/store/lance/rows.ts');
      const lancedb = await import('@lancedb/lancedb');
      const names = new Set(ITEM_EVIDENCE_FIELDS.map((f) => f.name));
      const old = new Schema(itemSchema(4).fields.filter((f) => !names.has(f.name)));
      const base = {
        title: 't',
        description: '',
        tags: [],
        durationS: 3,
        uploadedAt: 1,
        modalities: ['video' as const],
        generation: 'g1',
        sha256: 'x',
      };
      const cols = itemColumns([{ payload: { ...base, videoId: 'old' }, vectors: { fused: Float32Array.from([1, 0, 0, 0]) } }]);
      const db = await lancedb.connect(dir);
      await db.createTable('items__g1', buildTable(old, cols, 4));
      db.close();

      const store = new EmbeddedStore({ dataDir: dir, readConsistencyS: 0, autoIndex: false });
      await store.open({ name: 'g1', dim: 4 });
      try {
        assert.equal((await store.getItem('old'))?.payload.evidence, undefined);
        const v = Float32Array.from([0, 1, 0, 0]);
        const evidence = [{ kind: 'object' as const, text: 'dog', startS: 0, endS: 2, confidence: 0.5 }];
        await store.upsertItems([
          { payload: { ...base, videoId: 'new', evidence, terms: ['dog', 'puppy', '100%_sure'] }, vectors: { fused: v } },
        ]);
        assert.deepEqual((await store.getItem('new'))?.payload.evidence, evidence);
        const ids = async (termsAny: string[]) =>
          (await store.searchItems({ vector: v, using: 'fused', limit: 5, filter: { termsAny } })).map((h) => h.videoId);
        assert.deepEqual(await ids(['puppy', 'cat']), ['new']);
        assert.deepEqual(await ids(['pup']), [], 'whole words only');
        assert.deepEqual(await ids(['100%_sure']), ['new'], 'LIKE wildcards in a word are literal');
        assert.deepEqual(await ids(['100x_sure']), []);
        assert.equal(await store.countItems({ termsAny: ['dog'] }), 1);
        // getSegments: every segment of the video, in index order, with its vectors.
        const seg = (index: number) => ({
          payload: { videoId: 'new', index, startS: index * 2, endS: index * 2 + 2, modalities: ['video' as const], generation: 'g1' },
          vectors: { fused: Float32Array.from([index, 1, 0, 0]), video: Float32Array.from([0, 0, 1, index]) },
        });
        await store.upsertSegments('new', [seg(1), seg(0)]);
        const segs = await store.getSegments('new');
        assert.deepEqual(
          segs.map((x) => [x.payload.index, x.payload.startS, Array.from(x.vectors.fused!), Array.from(x.vectors.video!), x.vectors.audio]),
          [
            [0, 0, [0, 1, 0, 0], [0, 0, 1, 0], undefined],
            [1, 2, [1, 1, 0, 0], [0, 0, 1, 1], undefined],
          ],
        );
        assert.deepEqual(await store.getSegments('old'), []);
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
