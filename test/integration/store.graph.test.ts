/**
 * The embedded store's in-memory graph (src/store/lance/graph.ts) against exact search, on a small store whose
 * graph threshold is lowered so the graph serves: a writer builds and saves it, a reader loads it, and another
 * process (a real child process on the same folder) upserts new items, changes vectors and deletes items. The
 * reader's top 10 must match exact search over what the table now holds, a deleted video must never come back,
 * and filters must give the exact filtered answer whether the graph or LanceDB answers them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { EmbeddedStore } from '../../src/store/embedded.ts';
import { matchesFilter } from '../../src/store/lance/graph.ts';
import { Synth } from '../../bench/synth.ts';
import { recallAt } from '../../bench/lib/exact.ts';
import { cosine } from '../../src/vectors.ts';
import type { ItemFilter, ItemPayload, ItemPoint, StoreGeneration } from '../../src/store/types.ts';

const DIM = 32;
const GEN: StoreGeneration = { name: 'g1', dim: DIM };
const N = 1200;
const synth = new Synth({ dim: DIM, clusters: 30, sigma: 0.15, seed: 5 });

function payload(i: number): ItemPayload {
  return {
    videoId: `v${i}`,
    title: `item ${i}`,
    description: '',
    tags: [`t${i % 10}`],
    durationS: i % 100,
    uploadedAt: 1_700_000_000_000 + i,
    modalities: ['video', 'audio', 'text'],
    generation: GEN.name,
    sha256: '',
  };
}

/** Item i; stream 2 gives item i a different vector (an update). */
function point(i: number, stream = 0): ItemPoint {
  return { payload: payload(i), vectors: { fused: synth.vector(i, new Float32Array(DIM), stream) } };
}

/** Exact top k over what the table should hold, best first. */
function exact(truth: Map<number, ItemPoint>, q: Float32Array, k: number, f?: ItemFilter): string[] {
  return [...truth.values()]
    .filter((p) => !f || matchesFilter(p.payload, f))
    .map((p) => ({ id: p.payload.videoId, s: cosine(q, p.vectors.fused!) }))
    .sort((a, b) => b.s - a.s)
    .slice(0, k)
    .map((h) => h.id);
}

/** Runs `code` (an ES module body with `store` opened on `dir`) in a separate Node process. */
async function inOtherProcess(dir: string, code: string): Promise<void> {
  const file = join(dir, `other-${Date.now()}.ts`);
  const storePath = resolve('src/store/embedded.ts');
  const synthPath = resolve('bench/synth.ts');
  await writeFile(
    file,
    `import { EmbeddedStore } from ${JSON.stringify(storePath)};
import { Synth } from ${JSON.stringify(synthPath)};
const synth = new Synth(${JSON.stringify(synth.spec)});
const store = new EmbeddedStore({ dataDir: ${JSON.stringify(dir)}, readConsistencyS: 0, autoIndex: false, indexThreshold: 300 });
const GEN = ${JSON.stringify(GEN)};
await store.open(GEN);
const payload = ${payload.toString()};
const point = (i, stream = 0) => ({ payload: payload(i), vectors: { fused: synth.vector(i, new Float32Array(${DIM}), stream) } });
${code}
await store.close();
`,
  );
  await promisify(execFile)(process.execPath, [file], { env: { ...process.env, RUST_LOG: 'error' } });
  await rm(file);
}

describe('embedded store: the in-memory graph', () => {
  let dir: string;
  let writer: EmbeddedStore;
  let reader: EmbeddedStore;
  const truth = new Map<number, ItemPoint>();
  const queries = Array.from({ length: 30 }, (_, i) => synth.vector(i, new Float32Array(DIM), 1));
  const make = (autoIndex: boolean) => new EmbeddedStore({ dataDir: dir, readConsistencyS: 0, autoIndex, indexThreshold: 300 });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'montage-graph-'));
    writer = make(true);
    await writer.open(GEN);
    const points = Array.from({ length: N }, (_, i) => point(i));
    for (const p of points) truth.set(Number(p.payload.videoId.slice(1)), p);
    await writer.upsertItems(points);
    await writer.ensureIndexes();
    reader = make(false);
    await reader.open(GEN);
  });

  after(async () => {
    await reader?.close();
    await writer?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Mean recall@10 of `store` against exact over `truth`, and how many searches its graph answered. */
  async function check(store: EmbeddedStore, f?: ItemFilter): Promise<{ recall: number; served: number }> {
    const before = (await store.graphState()).served;
    let recall = 0;
    for (const q of queries) {
      const hits = await store.searchItems({ vector: q, using: 'fused', limit: 10, ...(f ? { filter: f } : {}) });
      if (f) for (const h of hits) assert.ok(matchesFilter(h.payload, f), `${h.videoId} does not pass the filter`);
      for (let i = 1; i < hits.length; i++) assert.ok(hits[i - 1]!.score >= hits[i]!.score - 1e-6);
      recall += recallAt(
        hits.map((h) => h.videoId),
        exact(truth, q, 10, f),
      );
    }
    return { recall: recall / queries.length, served: (await store.graphState()).served - before };
  }

  test('the writer builds and saves the graph; a reader loads it and answers as exact search does', async () => {
    const saved = await readdir(join(dir, 'graph'));
    assert.ok(
      saved.some((f) => f.endsWith('.usearch')),
      `no saved graph in ${saved}`,
    );
    assert.deepEqual(await reader.graphState(), { rows: N, vectors: N, served: 0 });
    const r = await check(reader);
    assert.equal(r.served, queries.length, 'the graph answered every unfiltered search');
    assert.ok(r.recall >= 0.98, `recall@10 ${r.recall}`);
  });

  test('after upserts, vector changes and deletes from another process, the top 10 still matches exact', async () => {
    await inOtherProcess(
      dir,
      `await store.upsertItems(Array.from({ length: 60 }, (_, k) => point(${N} + k)));
await store.upsertItems(Array.from({ length: 40 }, (_, k) => point(k, 2)));
for (let k = 100; k < 140; k++) await store.deleteVideo('v' + k);`,
    );
    for (let k = 0; k < 60; k++) truth.set(N + k, point(N + k));
    for (let k = 0; k < 40; k++) truth.set(k, point(k, 2));
    for (let k = 100; k < 140; k++) truth.delete(k);
    for (const store of [reader, writer]) {
      const first = await check(store);
      // The first search after the deletes finds the replica behind and lets LanceDB answer while it reconciles.
      assert.ok(first.recall >= 0.98, `recall@10 ${first.recall}`);
      const again = await check(store);
      assert.equal(again.served, queries.length, 'caught up: the graph answers again');
      assert.ok(again.recall >= 0.98, `recall@10 ${again.recall}`);
      assert.deepEqual(await store.graphState(), { rows: truth.size, vectors: truth.size, served: (await store.graphState()).served });
    }
  });

  test('a deleted video never comes back, even searched by its own vector', async () => {
    await inOtherProcess(dir, `for (let k = 200; k < 210; k++) await store.deleteVideo('v' + k);`);
    for (let k = 200; k < 210; k++) truth.delete(k);
    for (let k = 100; k < 140; k += 3) truth.set(-k, point(k)); // only to search by the deleted vectors
    for (const k of [100, 120, 139, 200, 205, 209]) {
      const q = point(k).vectors.fused!;
      for (const store of [reader, writer]) {
        const hits = await store.searchItems({ vector: q, using: 'fused', limit: 10 });
        assert.ok(!hits.some((h) => h.videoId === `v${k}`), `deleted v${k} came back`);
        assert.equal(hits.length, 10);
      }
    }
    for (let k = 100; k < 140; k += 3) truth.delete(-k);
    // The writer deleting itself: gone at once from its own graph too.
    await writer.deleteVideo('v300');
    truth.delete(300);
    const hits = await writer.searchItems({ vector: point(300).vectors.fused!, using: 'fused', limit: 10 });
    assert.ok(!hits.some((h) => h.videoId === 'v300'));
  });

  test('filters: broad ones on the graph, selective ones on LanceDB, both exact', async () => {
    // The writer's own delete above leaves the reader one reconcile behind: one search starts it (LanceDB answers
    // that one), graphState() waits for it.
    await reader.searchItems({ vector: queries[0]!, using: 'fused', limit: 10 });
    await reader.graphState();
    const broad = await check(reader, { durationMaxS: 49 }); // half the items
    assert.equal(broad.served, queries.length);
    assert.ok(broad.recall >= 0.98, `recall@10 ${broad.recall}`);
    const narrow = await check(reader, { durationMaxS: 0 }); // 1%: LanceDB's prefilter
    assert.equal(narrow.served, 0);
    assert.ok(narrow.recall >= 0.98, `recall@10 ${narrow.recall}`);
    const tags = await check(reader, { tagsAny: ['t3'], excludeVideoIds: ['v3', 'v13'] });
    assert.ok(tags.recall >= 0.98, `recall@10 ${tags.recall}`);
  });

  test('a process opening the store later loads the saved graph and catches up from the table', async () => {
    await writer.ensureIndexes();
    const late = make(false);
    await late.open(GEN);
    try {
      const r = await check(late);
      assert.equal(r.served, queries.length);
      assert.ok(r.recall >= 0.98, `recall@10 ${r.recall}`);
      assert.equal((await late.graphState()).rows, truth.size);
    } finally {
      await late.close();
    }
  });

  test('switched off, no graph is kept and LanceDB answers', async () => {
    const off = new EmbeddedStore({ dataDir: dir, readConsistencyS: 0, autoIndex: false, indexThreshold: 300, graph: false });
    await off.open(GEN);
    try {
      const r = await check(off);
      assert.equal(r.served, 0);
      assert.ok(r.recall >= 0.98);
      assert.ok(existsSync(join(dir, 'graph')));
    } finally {
      await off.close();
    }
  });
});
