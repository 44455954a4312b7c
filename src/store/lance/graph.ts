/**
 * An in-memory HNSW graph (usearch, f16 vectors) over the items table's `fused` vectors, kept beside the LanceDB
 * table and answering the common search (by `fused`, no vectors returned, no filter or a broad one) without a
 * LanceDB query: a LanceDB query costs milliseconds of CPU even when tiny (each selected column is a separate read),
 * the graph a fraction of one. The table stays the truth; the graph is a replica of it that follows its commits.
 *
 * Following the commits. LanceDB never changes a fragment's rows in place: an insert or an update writes a new
 * fragment (and marks the old row deleted), compaction rewrites fragments into new ones, and fragment ids only grow.
 * A row's `_rowid` is (fragment id << 32 | offset), so the rows written since the replica last looked are exactly
 * those with `_rowid >= (last fragment seen + 1) << 32`: one small read per new table version (the delta). Each row
 * carries a hash of its vector, so a row that compaction merely moved is not re-added to the graph. Deletes leave no
 * new rows; they show as a table count below the replica's, and the replica then reads every id once (reconcile) to
 * drop the missing ones. While a delta is too large to read inline, or a reconcile is running, searches go to
 * LanceDB, so a search never answers from a replica that is behind the version it read: a deleted video never
 * comes back, another process's upsert is found as soon as LanceDB itself would find it.
 *
 * Filters. The replica keeps each item's payload, so a filter is checked in memory on the graph's candidates
 * (post-filtering). Its share of the catalogue is estimated first on a fixed sample of the replica (Qdrant's query
 * planner does the same from its payload indexes): a selective filter (below `minFilterShare`) goes to LanceDB's
 * prefiltered search, a broad one asks the graph for enough candidates that `limit` of them pass
 * (candidateFactor × (limit + offset) / share); if fewer pass, the search goes to LanceDB after all.
 *
 * Persistence. The writing process (autoIndex) builds the graph in `ensure()` once the table holds `minRows` rows
 * and saves it under `<dataDir>/graph/` (usearch's file + a sidecar naming each key's id, vector hash and the last
 * fragment seen); a process that opens the store loads the file in the background and catches up from the table.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Index as UsearchIndex, MetricKind, ScalarKind } from 'usearch';
import type { Table as LanceTable } from '@lancedb/lancedb';
import type { ItemFilter, ItemHit, ItemPayload, SearchRequest } from '../types.ts';
import { ITEM_COLUMNS, cellVector, toItemHit } from './rows.ts';
import { atomicWrite } from './io.ts';
import { constrains } from '../shared.ts';

export interface GraphOptions {
  /** The store's folder: the persisted graph lives in `graph/` under it. */
  dataDir: string;
  /** Keep the graph at all (MONTAGE_STORE_GRAPH). */
  enabled: boolean;
  /** Candidates the graph search explores (usearch `expansion_search`, HNSW's ef; MONTAGE_STORE_GRAPH_EF). */
  efSearch: number;
  /** Rows in the table before a graph is built; below it LanceDB's exact scan is as fast. */
  minRows: number;
  /** Build and save the graph (the writing process); others load what it saved. */
  persist: boolean;
  log: { warn: (obj: object, msg: string) => void };
}

/** Links per node (HNSW's M): 16 is the usual default; at 1M × 256 the graph adds ~130 MB beside the vectors. */
const CONNECTIVITY = 16;
/** Candidates explored while inserting (efConstruction); 64 gave recall@10 1.000 at 100k with ef 64 (README). */
const EXPANSION_ADD = 64;
/** Graph candidates per result wanted, divided by the filter's share (with a 10% filter at 100k: 2 gave recall@10 0.947, 4 gave 0.966). */
const CANDIDATE_FACTOR = 8;
/**
 * Filters matching less than this share of the items go to LanceDB's prefiltered search: below it the graph must be
 * asked for thousands of candidates and still missed some at 1% (recall@10 0.93 at 100k, bench/results/search.json).
 */
const MIN_FILTER_SHARE = 0.05;
/** Most candidates asked of the graph for one search. */
const MAX_CANDIDATES = 4000;
/** Rows of a delta read inline before a search; a larger delta is read in the background, LanceDB answering meanwhile. */
const INLINE_DELTA_ROWS = 5000;
/** Payloads sampled to estimate a filter's share. */
const SAMPLE = 512;
/** Rows added to the graph between yields to the event loop while building. */
const ADD_CHUNK = 1000;

const FRAGMENT_SHIFT = 32n;

/** One row the replica knows: its graph key (-1 while it has no fused vector), address, vector hash and payload. */
interface Entry {
  key: number;
  addr: bigint;
  hash: number;
  payload: ItemPayload;
}

export interface GraphState {
  rows: number;
  vectors: number;
  served: number;
}

/** What the sidecar of a saved graph holds, in key order. */
interface Sidecar {
  table: string;
  dim: number;
  lastFragment: number;
  ids: string[];
  hashes: number[];
}

export class ItemGraph {
  readonly #opts: GraphOptions;
  #table: LanceTable | null = null;
  #dim = 0;
  #index: UsearchIndex | null = null;
  /** Key → point id ('' once removed). */
  #ids: string[] = [];
  #byId = new Map<string, Entry>();
  #lastFragment = -1;
  /** The table version the replica matches; null while it matches none (building, loading, behind). */
  #synced: number | null = null;
  /** The graph work running now (build, load, large catch-up), one at a time. */
  #busy: Promise<void> | null = null;
  /** Loading a saved graph: searches wait for it. */
  #loading: Promise<void> | null = null;
  /** A small catch-up read inline by a search, shared by the searches that arrive meanwhile. */
  #inline: Promise<boolean> | null = null;
  #sample: ItemPayload[] = [];
  /** Rows changed since the sample was drawn. */
  #changed = 0;
  /** Searches the graph answered. */
  #served = 0;
  /** Rows changed since the graph was last saved. */
  #unsaved = 0;
  /** When a reader without a graph last looked for a saved one (ms). */
  #lookedAt = 0;

  constructor(opts: GraphOptions) {
    this.#opts = opts;
  }

  /** Follows `table` (the items table reads go to), loading its saved graph in the background when there is one. */
  bind(table: LanceTable, dim: number): void {
    if (!this.#opts.enabled) return;
    if (this.#table?.name === table.name && this.#dim === dim) return;
    this.#reset();
    this.#table = table;
    this.#dim = dim;
    this.#lookedAt = 0;
    this.#lookForSaved();
  }

  /** Starts loading the saved graph when there is one (a reader checks again at most once a second). */
  #lookForSaved(): void {
    if (Date.now() - this.#lookedAt < 1000) return;
    this.#lookedAt = Date.now();
    if (!existsSync(this.#paths().index)) return;
    this.#loading = this.#guarded(() => this.#load()).finally(() => {
      this.#loading = null;
    });
  }

  /**
   * Builds the graph when the table has crossed `minRows` and none exists, else brings it up to date; then saves it
   * (the writing process). Called from the store's index upkeep.
   */
  async ensure(): Promise<void> {
    if (!this.#opts.enabled || !this.#table) return;
    await this.#loading;
    if (!this.#index && !existsSync(this.#paths().index)) {
      if ((await this.#table.countRows()) < this.#opts.minRows) return;
      await this.#run(() => this.#build(availableParallelism()));
    } else if (!this.#index) {
      await this.#run(() => this.#load());
    }
    await this.#run(() => this.#catchUp(Infinity));
    // Saving writes the whole graph: only once a twentieth of it has changed since the last save.
    if (this.#opts.persist && this.#unsaved > 0 && (this.#unsaved >= 0.05 * this.#byId.size || !existsSync(this.#paths().index))) {
      await this.#run(() => this.#save());
    }
  }

  /** The writing process deleted this video: forget it now, so the replica's count still matches the table's. */
  forget(videoId: string, pointId: string): void {
    const e = this.#byId.get(pointId);
    if (!e || e.payload.videoId !== videoId) return;
    this.#drop(pointId, e);
  }

  /**
   * Answers `req` from the graph, or returns null when LanceDB must: another vector, vectors asked for, a selective
   * filter, no graph yet, or the replica behind the table's version and not quickly brought up to date.
   */
  async search(req: SearchRequest): Promise<ItemHit[] | null> {
    if (!this.#table || req.using !== 'fused' || req.withVectors) return null;
    // A saved graph loads in seconds: wait for it. A build or a large catch-up takes longer: LanceDB answers.
    if (!this.#index && !this.#busy && !this.#loading) this.#lookForSaved();
    if (this.#loading) await this.#loading;
    if (this.#busy || !this.#index || !(await this.#current())) return null;
    if (this.#index.size() === 0) {
      this.#served++;
      return [];
    }
    const filter = constrains(req.filter) ? req.filter : undefined;
    const share = filter ? this.#share(filter) : 1;
    if (share < MIN_FILTER_SHARE) return null;
    const need = req.limit + (req.offset ?? 0);
    const want = Math.min(MAX_CANDIDATES, Math.ceil((need * CANDIDATE_FACTOR) / share), this.#index.size());
    const res = this.#index.search(req.vector, want, 1);
    const hits: ItemHit[] = [];
    for (let i = 0; i < res.keys.length && hits.length < need; i++) {
      const id = this.#ids[Number(res.keys[i])];
      const e = id ? this.#byId.get(id) : undefined;
      if (!e || (filter && !matchesFilter(e.payload, filter))) continue;
      hits.push({ videoId: e.payload.videoId, score: 1 - res.distances[i]!, payload: e.payload });
    }
    // A filtered page the candidates did not fill may still have matches further out: LanceDB finds them.
    if (hits.length < need && filter) return null;
    this.#served++;
    return hits.slice(req.offset ?? 0);
  }

  /** Settles once background work has. */
  async idle(): Promise<void> {
    await this.#busy?.catch(() => undefined);
  }

  /** Rows in the replica, vectors in the graph, and the searches it answered (tests, the bench). */
  state(): GraphState {
    return { rows: this.#byId.size, vectors: this.#index?.size() ?? 0, served: this.#served };
  }

  // ── following the table ─────────────────────────────────────────────────────────────────

  /**
   * Whether the replica matches the version a LanceDB read would see now; reads a small delta inline, starts a
   * large one (or a reconcile after deletes) in the background and says no meanwhile.
   */
  async #current(): Promise<boolean> {
    const t = this.#table!;
    const version = await t.version();
    if (version === this.#synced) return true;
    this.#inline ??= this.#catchUp(INLINE_DELTA_ROWS).finally(() => {
      this.#inline = null;
    });
    if (await this.#inline) return true;
    void this.#guarded(() => this.#catchUp(Infinity));
    return false;
  }

  /**
   * Applies the rows written since the last fragment seen (at most `maxRows`, else false and nothing applied), then
   * checks the count: fewer rows in the table than in the replica means deletes, found by reading every id (only
   * when `maxRows` is unbounded, i.e. in the background; inline it returns false).
   */
  async #catchUp(maxRows: number): Promise<boolean> {
    const t = this.#table!;
    const version = await t.version();
    const delta = t
      .query()
      .where(`_rowid >= ${BigInt(this.#lastFragment + 1) << FRAGMENT_SHIFT}`)
      .select([...ITEM_COLUMNS, 'v_fused'])
      .withRowId();
    const rows = await (Number.isFinite(maxRows) ? delta.limit(maxRows + 1) : delta).toArray();
    if (rows.length > maxRows) return false;
    await this.#apply(rows, 1);
    if ((await t.countRows()) !== this.#byId.size) {
      // Deletes: reading every id takes seconds at 1M, so not inline before a search.
      if (Number.isFinite(maxRows)) return false;
      await this.#reconcile();
    }
    this.#synced = version;
    return true;
  }

  /** Upserts rows (each with its `_rowid` and `v_fused`) into the replica and the graph. */
  async #apply(rows: Record<string, unknown>[], threads: number): Promise<void> {
    const addKeys: bigint[] = [];
    const addVecs: Float32Array[] = [];
    for (const r of rows) {
      const id = String(r.id);
      const addr = BigInt(r._rowid as bigint);
      this.#lastFragment = Math.max(this.#lastFragment, Number(addr >> FRAGMENT_SHIFT));
      const payload = toItemHit(r, 1, false).payload;
      const vec = r.has_fused ? cellVector(r.v_fused) : null;
      const hash = vec ? hashVector(vec) : 0;
      const old = this.#byId.get(id);
      if (old && old.hash === hash && old.key >= 0 === (vec !== null)) {
        old.addr = addr;
        old.payload = payload;
        continue;
      }
      if (old) this.#drop(id, old);
      const key = vec ? this.#ids.push(id) - 1 : -1;
      this.#byId.set(id, { key, addr, hash, payload });
      if (vec) {
        addKeys.push(BigInt(key));
        addVecs.push(vec);
      }
    }
    await this.#add(addKeys, addVecs, threads);
    this.#changed += rows.length;
    this.#unsaved += addKeys.length;
  }

  /** Reads every id of the table and drops the replica's rows that are gone (another process deleted them). */
  async #reconcile(): Promise<void> {
    const live = new Set<string>();
    for await (const batch of this.#table!.query().select(['id'])) {
      const col = batch.getChild('id')!;
      for (let i = 0; i < batch.numRows; i++) live.add(String(col.get(i)));
    }
    for (const [id, e] of this.#byId) if (!live.has(id)) this.#drop(id, e);
  }

  #drop(id: string, e: Entry): void {
    if (e.key >= 0) {
      this.#index?.remove(BigInt(e.key));
      this.#ids[e.key] = '';
    }
    this.#byId.delete(id);
    this.#changed++;
    this.#unsaved++;
  }

  // ── building, loading, saving ───────────────────────────────────────────────────────────

  async #build(threads: number): Promise<void> {
    this.#reset();
    this.#index = this.#newIndex();
    // The whole table is one delta from fragment -1; batches keep the memory of a read bounded.
    for await (const batch of this.#table!.query()
      .select([...ITEM_COLUMNS, 'v_fused'])
      .withRowId()) {
      await this.#apply(batch.toArray() as Record<string, unknown>[], threads);
    }
    this.#synced = null;
  }

  async #load(): Promise<void> {
    const p = this.#paths();
    const side = JSON.parse(await readFile(p.sidecar, 'utf8')) as Sidecar;
    if (side.table !== this.#table!.name || side.dim !== this.#dim) {
      this.#opts.log.warn({ path: p.sidecar }, 'saved graph is for another table; searches use LanceDB until ensure() rebuilds it');
      return;
    }
    const index = this.#newIndex();
    index.load(p.index);
    this.#reset();
    this.#index = index;
    this.#ids = side.ids;
    this.#lastFragment = side.lastFragment;
    // Payloads and addresses come from the table (not saved): one read of the payload columns, no vectors.
    const known = new Map(side.ids.map((id, key) => [id, key] as const));
    for await (const batch of this.#table!.query().select(ITEM_COLUMNS).withRowId()) {
      for (const r of batch.toArray() as Record<string, unknown>[]) {
        const id = String(r.id);
        const key = known.get(id);
        const addr = BigInt(r._rowid as bigint);
        // Rows in fragments after the saved one are the delta, read with their vectors by the catch-up below.
        if (Number(addr >> FRAGMENT_SHIFT) > side.lastFragment) continue;
        const hasKey = key !== undefined && id !== '';
        this.#byId.set(id, { key: hasKey ? key : -1, addr, hash: hasKey ? side.hashes[key]! : 0, payload: toItemHit(r, 1, false).payload });
      }
    }
    for (let key = 0; key < this.#ids.length; key++) {
      const id = this.#ids[key]!;
      if (id && this.#byId.get(id)?.key !== key) {
        index.remove(BigInt(key));
        this.#ids[key] = '';
      }
    }
    await this.#catchUp(Infinity);
  }

  /** Saves the graph and its sidecar by write-then-rename, so a reader never loads half of one. */
  async #save(): Promise<void> {
    if (!this.#index) return;
    const p = this.#paths();
    await mkdir(join(this.#opts.dataDir, 'graph'), { recursive: true });
    const hashes = this.#ids.map((id) => (id ? (this.#byId.get(id)?.hash ?? 0) : 0));
    const tmp = `${p.index}.${process.pid}.tmp`;
    this.#index.save(tmp);
    const side: Sidecar = { table: this.#table!.name, dim: this.#dim, lastFragment: this.#lastFragment, ids: this.#ids, hashes };
    // Sidecar first, then the graph: a reader that finds the graph file finds its sidecar too.
    await atomicWrite(p.sidecar, JSON.stringify(side));
    await rename(tmp, p.index);
    this.#unsaved = 0;
  }

  async #add(keys: bigint[], vecs: Float32Array[], threads: number): Promise<void> {
    if (keys.length === 0) return;
    this.#index ??= this.#newIndex();
    for (let from = 0; from < keys.length; from += ADD_CHUNK * threads) {
      const to = Math.min(keys.length, from + ADD_CHUNK * threads);
      const flat = new Float32Array((to - from) * this.#dim);
      for (let i = from; i < to; i++) flat.set(vecs[i]!, (i - from) * this.#dim);
      this.#index.add(BigUint64Array.from(keys.slice(from, to)), flat, threads);
      // usearch's add is synchronous: give searches and I/O a turn between chunks.
      if (to < keys.length) await yieldToLoop();
    }
  }

  #newIndex(): UsearchIndex {
    return new UsearchIndex({
      dimensions: this.#dim,
      metric: MetricKind.Cos,
      quantization: ScalarKind.F16,
      connectivity: CONNECTIVITY,
      expansion_add: EXPANSION_ADD,
      expansion_search: this.#opts.efSearch,
      multi: false,
    });
  }

  // ── filters ─────────────────────────────────────────────────────────────────────────────

  /** The share of the catalogue a filter matches, estimated on a fixed sample of the replica's payloads. */
  #share(f: ItemFilter): number {
    const stale = this.#sample.length < SAMPLE ? this.#changed > 0 : this.#changed > 0.01 * this.#byId.size;
    if (stale || this.#sample.length === 0) this.#resample();
    if (this.#sample.length === 0) return 0;
    let n = 0;
    for (const p of this.#sample) if (matchesFilter(p, f)) n++;
    return n / this.#sample.length;
  }

  /** A spread sample of the replica's payloads (every k-th row), refreshed as the replica changes. */
  #resample(): void {
    const all = [...this.#byId.values()];
    const step = Math.max(1, Math.floor(all.length / SAMPLE));
    this.#sample = [];
    for (let i = 0; i < all.length && this.#sample.length < SAMPLE; i += step) this.#sample.push(all[i]!.payload);
    this.#changed = 0;
  }

  // ── plumbing ────────────────────────────────────────────────────────────────────────────

  /** Runs one piece of graph work after the one before it (searches meanwhile go to LanceDB). */
  #run(fn: () => Promise<unknown>): Promise<void> {
    const p = (this.#busy ?? Promise.resolve()).then(async () => {
      await this.#inline;
      await fn();
    });
    const tail: Promise<void> = p
      .catch(() => undefined)
      .finally(() => {
        if (this.#busy === tail) this.#busy = null;
      });
    this.#busy = tail;
    return p;
  }

  /** #run, with a failure logged and the replica dropped (searches use LanceDB until the next ensure()). */
  #guarded(fn: () => Promise<unknown>): Promise<void> {
    return this.#run(fn).catch((err: unknown) => {
      this.#opts.log.warn({ err }, 'graph index upkeep failed; searches use LanceDB');
      this.#reset();
    });
  }

  #reset(): void {
    this.#index = null;
    this.#ids = [];
    this.#byId = new Map();
    this.#lastFragment = -1;
    this.#synced = null;
    this.#sample = [];
    this.#changed = 0;
  }

  #paths(): { index: string; sidecar: string } {
    const base = join(this.#opts.dataDir, 'graph', `${this.#table!.name}.fused`);
    return { index: `${base}.usearch`, sidecar: `${base}.json` };
  }

  /** Removes the saved graph of the bound table (tests). */
  async removeSaved(): Promise<void> {
    const p = this.#paths();
    await Promise.all([rm(p.index, { force: true }), rm(p.sidecar, { force: true })]);
  }
}

/** Whether a payload passes an ItemFilter: the same predicate as lance/sql.ts filterSql, in memory. */
export function matchesFilter(p: ItemPayload, f: ItemFilter): boolean {
  if (f.tagsAny?.length && !f.tagsAny.some((t) => p.tags.includes(t))) return false;
  if (f.tagsAll?.length && !f.tagsAll.every((t) => p.tags.includes(t))) return false;
  if (f.durationMinS !== undefined && !(p.durationS >= f.durationMinS)) return false;
  if (f.durationMaxS !== undefined && !(p.durationS <= f.durationMaxS)) return false;
  if (f.uploadedAfter !== undefined && !(p.uploadedAt >= f.uploadedAfter)) return false;
  if (f.uploadedBefore !== undefined && !(p.uploadedAt <= f.uploadedBefore)) return false;
  if (f.modalities?.length && !f.modalities.every((m) => p.modalities.includes(m))) return false;
  if (f.termsAny?.length && !f.termsAny.some((t) => p.terms?.includes(t))) return false;
  if (f.excludeVideoIds?.length && f.excludeVideoIds.includes(p.videoId)) return false;
  return true;
}

/** FNV-1a over a vector's float bits: tells a row that compaction moved from one whose vector changed. */
export function hashVector(v: Float32Array): number {
  const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
  let h = 0x811c9dc5;
  for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i]!, 0x01000193);
  return h >>> 0;
}
