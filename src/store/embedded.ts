/**
 * The zero-setup vector store: LanceDB on local disk, no server. One table per collection per
 * generation (`items__<gen>`, `segments__<gen>`, `users__<gen>`), named vectors as separate
 * vector columns, payload as plain columns so filters are pushed into the scan (prefilter),
 * aliases in `aliases.json` beside the tables. Writes go to the opened generation; reads go
 * through the aliases, so a new generation can be backfilled beside the one being served.
 *
 * Search is exact (a flat scan) until a vector column holds `indexThreshold` vectors; then an
 * IVF-HNSW-SQ index is built. Rows written after the build are still searched (LanceDB scans
 * unindexed rows exactly and merges them) and are folded into the index by `optimize()`.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import type { Connection, Table as LanceTable } from '@lancedb/lancedb';
import { AppError, isAppError, wrap } from '../errors/index.ts';
import { itemPointId, segmentPointId, userPointId } from './ids.ts';
import {
  ITEM_VECTORS,
  SEGMENT_VECTORS,
  buildTable,
  cellArray,
  cellVector,
  itemSchema,
  segmentSchema,
  sqlList,
  sqlString,
  userSchema,
  type Columns,
} from './lance-rows.ts';
import type {
  ItemFilter,
  ItemHit,
  ItemPayload,
  ItemPoint,
  Modality,
  SearchRequest,
  SegmentHit,
  SegmentPayload,
  SegmentPoint,
  StoreGeneration,
  UserPoint,
  VectorName,
  VectorStore,
} from './types.ts';
import type { Schema } from 'apache-arrow';

export interface EmbeddedStoreOptions {
  /** Folder that holds the tables and `aliases.json`; created if missing. */
  dataDir: string;
  /**
   * Vectors in a column before an ANN index is built on it; below this every search is an
   * exact scan, which on 2 cores stays around 10 ms up to about this size.
   * @defaultValue 10_000
   */
  indexThreshold?: number;
  /** Build and refresh indexes in the background after writes. @defaultValue true */
  autoIndex?: boolean;
  /**
   * Seconds between checks for commits made by other processes (API server and worker share
   * one folder). 0 checks on every read, so an item the worker wrote is visible at once.
   * @defaultValue 0
   */
  readConsistencyS?: number;
  /**
   * Candidates re-scored on the full vectors, as a multiple of limit+offset. With 8-bit codes
   * the estimate is close already: at 1M clustered items 1 gave recall@10 0.965, 3 gave 1.0
   * (src/store/README.md). Each extra candidate costs a random read of a full vector.
   * @defaultValue 3
   */
  refineFactor?: number;
  /** IVF partitions visited per query at least. @defaultValue 10 */
  nprobes?: number;
  /**
   * IVF partitions visited at most: more than `nprobes` are searched only while a narrow
   * filter has not yet yielded `limit` hits, so filtered queries still fill their page.
   * @defaultValue 400
   */
  maxNprobes?: number;
  /** Small-write fragments tolerated before the table is compacted. @defaultValue 64 */
  maxSmallFragments?: number;
  /**
   * Old table versions younger than this are kept when compacting (a reader in another
   * process may still be on one); older ones are deleted. Without pruning every compaction
   * keeps a full copy of the table on disk.
   * @defaultValue 600
   */
  keepVersionsS?: number;
  /** Where background index failures are reported. @defaultValue console */
  log?: { warn: (obj: object, msg: string) => void };
}

type Kind = 'items' | 'segments' | 'users';
const KINDS: readonly Kind[] = ['items', 'segments', 'users'];
interface AliasEntry {
  collection: string;
  generation: string;
  dim: number;
}
type AliasFile = Partial<Record<Kind, AliasEntry>>;

const PAYLOAD_COLUMNS = [
  'id',
  'video_id',
  'title',
  'description',
  'tags',
  'duration_s',
  'uploaded_at',
  'modalities',
  'generation',
  'sha256',
  'external_id',
  ...ITEM_VECTORS.map((n) => `has_${n}`),
];
const SEGMENT_COLUMNS = ['id', 'video_id', 'index', 'start_s', 'end_s', 'modalities', 'generation'];
const GEN_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

export class EmbeddedStore implements VectorStore {
  readonly #opts: Required<Omit<EmbeddedStoreOptions, 'log'>> & Pick<EmbeddedStoreOptions, 'log'>;
  #db: Connection | null = null;
  #gen: StoreGeneration | null = null;
  #write: Partial<Record<Kind, LanceTable>> = {};
  #read: Partial<Record<Kind, LanceTable>> = {};
  #readDim = 0;
  readonly #locks = new Map<string, Promise<unknown>>();
  #indexing: Promise<void> | null = null;
  #rowsSinceIndexCheck = 0;
  /** Per table+vector: whether any row lacks it, as of a table version (see #presenceSql). */
  readonly #missing = new Map<string, { version: number; missing: boolean }>();

  constructor(opts: EmbeddedStoreOptions) {
    this.#opts = {
      indexThreshold: 10_000,
      autoIndex: true,
      readConsistencyS: 0,
      refineFactor: 3,
      nprobes: 10,
      maxNprobes: 400,
      maxSmallFragments: 64,
      keepVersionsS: 600,
      ...opts,
    };
  }

  async open(gen: StoreGeneration): Promise<void> {
    if (!GEN_NAME.test(gen.name)) {
      throw new AppError('CONFIG_INVALID', `generation name ${JSON.stringify(gen.name)} is not a valid collection suffix`);
    }
    await this.#guard(`opening the embedded store in ${this.#opts.dataDir}`, async () => {
      await mkdir(this.#opts.dataDir, { recursive: true });
      this.#db = await lancedb.connect(this.#opts.dataDir, { readConsistencyInterval: this.#opts.readConsistencyS });
    });
    const aliases = await this.#readAliases();
    for (const kind of KINDS) {
      const a = aliases[kind];
      if (a && a.dim !== gen.dim) {
        throw new AppError(
          'GENERATION_MISMATCH',
          `alias ${kind} points at ${a.collection} (dim ${a.dim}) but generation ${gen.name} has dim ${gen.dim}`,
        );
      }
    }
    this.#gen = gen;
    for (const kind of KINDS) this.#write[kind] = await this.#openOrCreate(collectionName(kind, gen.name), kind, gen.dim);
    if (KINDS.some((k) => !aliases[k])) {
      for (const kind of KINDS) aliases[kind] ??= aliasEntry(kind, gen);
      await this.#writeAliases(aliases);
    }
    await this.#bindReads(aliases);
  }

  async aliases(): Promise<Partial<Record<Kind, StoreGeneration>>> {
    const file = await this.#readAliases();
    const out: Partial<Record<Kind, StoreGeneration>> = {};
    for (const kind of KINDS) {
      const a = file[kind];
      if (a) out[kind] = { name: a.generation, dim: a.dim };
    }
    return out;
  }

  /**
   * Points all three aliases at `gen` in one atomic file rename (the switch after a backfill).
   * Not part of VectorStore: only the backfill CLI needs it. Other processes see the switch
   * when they next open the store.
   */
  async pointAliases(gen: StoreGeneration): Promise<void> {
    const db = this.#conn();
    for (const kind of KINDS) await this.#openOrCreate(collectionName(kind, gen.name), kind, gen.dim);
    const aliases: AliasFile = {};
    for (const kind of KINDS) aliases[kind] = aliasEntry(kind, gen);
    await this.#writeAliases(aliases);
    void db;
    await this.#bindReads(aliases);
  }

  async upsertItems(points: ItemPoint[]): Promise<void> {
    if (points.length === 0) return;
    const rows = [...new Map(points.map((p) => [p.payload.videoId, p])).values()];
    const data = buildTable(itemSchema(this.#dim()), itemColumns(rows), this.#dim());
    await this.#writeOp('items', `upserting ${rows.length} items`, (t) =>
      t.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(data),
    );
    this.#noteWrite(rows.length);
  }

  async upsertSegments(videoId: string, points: SegmentPoint[]): Promise<void> {
    const stray = points.find((p) => p.payload.videoId !== videoId);
    if (stray) throw new AppError('INTERNAL', `segment of ${stray.payload.videoId} passed while replacing ${videoId}`);
    const mine = `video_id = ${sqlString(videoId)}`;
    if (points.length === 0) {
      await this.#writeOp('segments', `deleting the segments of ${videoId}`, (t) => t.delete(mine));
      return;
    }
    const data = buildTable(segmentSchema(this.#dim()), segmentColumns(points), this.#dim());
    // One merge commit inserts, updates and deletes the video's stale segments together, so a
    // reader never sees the video with no segments or with old and new ones mixed.
    await this.#writeOp('segments', `replacing the segments of ${videoId}`, (t) =>
      t.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().whenNotMatchedBySourceDelete({ where: mine }).execute(data),
    );
    this.#noteWrite(points.length);
  }

  async getItem(videoId: string, withVectors = false): Promise<ItemHit | null> {
    const cols = withVectors ? [...PAYLOAD_COLUMNS, ...ITEM_VECTORS.map((n) => `v_${n}`)] : PAYLOAD_COLUMNS;
    const rows = await this.#guard(`reading item ${videoId}`, () =>
      this.#table('items', 'read')
        .query()
        .where(`id = ${sqlString(itemPointId(videoId))}`)
        .select(cols)
        .limit(1)
        .toArray(),
    );
    const row = rows[0];
    return row ? toItemHit(row, 1, withVectors) : null;
  }

  async deleteVideo(videoId: string): Promise<void> {
    const where = `video_id = ${sqlString(videoId)}`;
    for (const kind of ['items', 'segments'] as const) {
      for (const t of new Set([this.#table(kind, 'write'), this.#table(kind, 'read')])) {
        await this.#serial(t.name, () => this.#guard(`deleting ${videoId} from ${t.name}`, () => retry(() => t.delete(where))));
      }
    }
  }

  async searchItems(req: SearchRequest): Promise<ItemHit[]> {
    this.#checkQuery(req, ITEM_VECTORS);
    const where = [...(await this.#presenceSql('items', req.using)), ...filterSql(req.filter)].join(' AND ');
    const cols = req.withVectors ? [...PAYLOAD_COLUMNS, ...ITEM_VECTORS.map((n) => `v_${n}`)] : PAYLOAD_COLUMNS;
    const rows = await this.#guard(`searching items by ${req.using}`, () =>
      this.#vectorQuery('items', req, where || undefined, cols).toArray(),
    );
    return rows.map((r) => toItemHit(r, 1 - Number(r._distance), req.withVectors ?? false));
  }

  async searchSegments(req: SearchRequest & { using: 'fused' | 'video' | 'audio' }): Promise<SegmentHit[]> {
    this.#checkQuery(req, SEGMENT_VECTORS);
    const where = [...(await this.#presenceSql('segments', req.using)), ...(await this.#segmentFilterSql(req.filter))];
    if (where.includes('false')) return [];
    const rows = await this.#guard(`searching segments by ${req.using}`, () =>
      this.#vectorQuery('segments', req, where.join(' AND ') || undefined, SEGMENT_COLUMNS).toArray(),
    );
    return rows.map((r) => ({ videoId: String(r.video_id), score: 1 - Number(r._distance), payload: toSegmentPayload(r) }));
  }

  async countItems(filter?: ItemFilter): Promise<number> {
    const sql = filterSql(filter).join(' AND ');
    return this.#guard('counting items', () => this.#table('items', 'read').countRows(sql || undefined));
  }

  async upsertUsers(points: UserPoint[]): Promise<void> {
    if (points.length === 0) return;
    const rows = [...new Map(points.map((p) => [p.userId, p])).values()];
    const cols: Columns = {
      id: rows.map((u) => userPointId(u.userId)),
      user_id: rows.map((u) => u.userId),
      vector: rows.map((u) => u.vector),
      updated_at: rows.map((u) => u.updatedAt),
      events: rows.map((u) => u.events),
      generation: rows.map((u) => u.generation),
    };
    const data = buildTable(userSchema(this.#dim()), cols, this.#dim());
    await this.#writeOp('users', `upserting ${rows.length} users`, (t) =>
      t.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(data),
    );
  }

  async getUser(userId: string): Promise<UserPoint | null> {
    const rows = await this.#guard(`reading user ${userId}`, () =>
      this.#table('users', 'read')
        .query()
        .where(`id = ${sqlString(userPointId(userId))}`)
        .limit(1)
        .toArray(),
    );
    const r = rows[0];
    if (!r) return null;
    return {
      userId: String(r.user_id),
      vector: cellVector(r.vector),
      updatedAt: Number(r.updated_at),
      events: Number(r.events),
      generation: String(r.generation),
    };
  }

  async ping(): Promise<void> {
    await this.#guard('pinging the embedded store', () => this.#table('items', 'read').countRows());
  }

  /**
   * Builds missing ANN indexes on vector columns that crossed `indexThreshold`, folds rows
   * written since the last build into existing ones, and compacts tables that one-video
   * upserts have split into many small fragments. Runs in the background after writes when
   * `autoIndex` is on; benchmarks and the backfill CLI await it directly.
   */
  async ensureIndexes(): Promise<void> {
    for (const [kind, names] of [
      ['items', ITEM_VECTORS],
      ['segments', SEGMENT_VECTORS],
      ['users', []],
    ] as const) {
      const t = this.#table(kind, 'write');
      await this.#serial(t.name, () =>
        this.#guard(`indexing ${t.name}`, async () => {
          const compacted = await this.#indexTable(t, names);
          const { fragmentStats } = await t.stats();
          if (!compacted && fragmentStats.numSmallFragments > this.#opts.maxSmallFragments) await this.#optimize(t);
        }),
      );
    }
  }

  async close(): Promise<void> {
    await this.#indexing?.catch(() => undefined);
    await Promise.allSettled(this.#locks.values());
    for (const t of new Set([...Object.values(this.#write), ...Object.values(this.#read)])) t.close();
    this.#write = {};
    this.#read = {};
    this.#db?.close();
    this.#db = null;
  }

  // ── internals ───────────────────────────────────────────────────────────────────────────

  #vectorQuery(kind: Kind, req: SearchRequest, where: string | undefined, cols: string[]) {
    let q = this.#table(kind, 'read').query().nearestTo(req.vector).column(`v_${req.using}`).distanceType('cosine');
    if (where) q = q.where(where);
    return (
      q
        .select([...cols, '_distance'])
        .limit(req.limit)
        .offset(req.offset ?? 0)
        .refineFactor(this.#opts.refineFactor)
        // maximum first: LanceDB rejects a minimum above the current maximum
        .maximumNprobes(Math.max(this.#opts.nprobes, this.#opts.maxNprobes))
        .minimumNprobes(this.#opts.nprobes)
    );
  }

  /**
   * `has_<name> = true` when some row lacks that vector, else nothing: a prefilter costs a
   * pass over the table, and most tables have every row's fused vector. Cached per table
   * version, so another process's write is seen on the next read.
   */
  async #presenceSql(kind: Kind, name: string): Promise<string[]> {
    const t = this.#table(kind, 'read');
    const version = await this.#guard(`reading the version of ${t.name}`, () => t.version());
    const key = `${t.name}:${name}`;
    let c = this.#missing.get(key);
    if (!c || c.version !== version) {
      const missing = (await this.#guard(`counting rows of ${t.name}`, () => t.countRows(`has_${name} = false`))) > 0;
      c = { version, missing };
      this.#missing.set(key, c);
    }
    return c.missing ? [`has_${name} = true`] : [];
  }

  /** Returns whether it ran optimize() (which also compacts). */
  async #indexTable(t: LanceTable, names: readonly string[]): Promise<boolean> {
    if (names.length === 0 || (await t.countRows()) < this.#opts.indexThreshold) return false;
    const have = new Map((await t.listIndices()).map((i) => [i.columns[0] ?? '', i.name]));
    await this.#scalarIndexes(t, names, have);
    let stale = false;
    for (const n of names) {
      const col = `v_${n}`;
      const indexName = have.get(col);
      const present = await t.countRows(`has_${n} = true`);
      if (indexName && present < 2 * (await this.#trainedRows(t.name, col, indexName, t))) {
        const stats = await t.indexStats(indexName);
        stale ||= (stats?.numUnindexedRows ?? 0) > Math.max(1000, 0.05 * (stats?.numIndexedRows ?? 0));
      } else if (present >= this.#opts.indexThreshold) {
        // New, or the table doubled since k-means ran: optimize() only appends rows to the old
        // partitions, which would grow until every probe scans too much. Retrain instead.
        await t.createIndex(col, { config: ivfRqConfig(present), replace: true });
        await this.#recordTrained(t.name, col, present);
      }
    }
    if (stale) await this.#optimize(t);
    return stale;
  }

  /** Rows the column's k-means was trained on (index-meta.json; the index itself does not say). */
  async #trainedRows(table: string, col: string, indexName: string, t: LanceTable): Promise<number> {
    const meta = await this.#readIndexMeta();
    const known = meta[table]?.[col];
    if (known !== undefined) return known;
    const rows = (await t.indexStats(indexName))?.numIndexedRows ?? 0;
    await this.#recordTrained(table, col, rows);
    return rows;
  }

  async #recordTrained(table: string, col: string, rows: number): Promise<void> {
    const meta = await this.#readIndexMeta();
    (meta[table] ??= {})[col] = rows;
    await atomicWrite(join(this.#opts.dataDir, 'index-meta.json'), JSON.stringify(meta, null, 2));
  }

  async #readIndexMeta(): Promise<Record<string, Record<string, number>>> {
    try {
      return JSON.parse(await readFile(join(this.#opts.dataDir, 'index-meta.json'), 'utf8')) as Record<string, Record<string, number>>;
    } catch {
      return {}; // missing or torn: the heuristic restarts from the index's own row count
    }
  }

  /** Compacts fragments, folds new rows into the indexes and prunes versions older than keepVersionsS. */
  async #optimize(t: LanceTable): Promise<void> {
    await t.optimize({ cleanupOlderThan: new Date(Date.now() - this.#opts.keepVersionsS * 1000) });
  }

  /** Indexes for lookups by id and for the filter columns, so prefilters stop scanning at scale. */
  async #scalarIndexes(t: LanceTable, names: readonly string[], have: Map<string, string>): Promise<void> {
    const schema = await t.schema();
    const wanted: [string, () => lancedb.Index][] = [
      ['id', lancedb.Index.btree],
      ['video_id', lancedb.Index.btree],
      ['duration_s', lancedb.Index.btree],
      ['uploaded_at', lancedb.Index.btree],
      ['tags', lancedb.Index.labelList],
      ['modalities', lancedb.Index.labelList],
      ...names.map((n) => [`has_${n}`, lancedb.Index.bitmap] as [string, () => lancedb.Index]),
    ];
    for (const [col, make] of wanted) {
      if (!have.has(col) && schema.fields.some((f) => f.name === col)) await t.createIndex(col, { config: make() });
    }
  }

  #noteWrite(rows: number): void {
    this.#rowsSinceIndexCheck += rows;
    if (!this.#opts.autoIndex || this.#indexing || this.#rowsSinceIndexCheck < 1000) return;
    this.#rowsSinceIndexCheck = 0;
    this.#indexing = this.ensureIndexes()
      .catch((err: unknown) => (this.#opts.log ?? console).warn({ err }, 'background index build failed'))
      .finally(() => {
        this.#indexing = null;
      });
  }

  /** Item-level filters on segments: resolved to the matching video ids first (segments carry no tags). */
  async #segmentFilterSql(f: ItemFilter | undefined): Promise<string[]> {
    if (!f) return [];
    // modalities are the item's (a segment never has text): resolved at the item level with the rest.
    const { excludeVideoIds, ...itemLevel } = f;
    const out = filterSql({ excludeVideoIds });
    const itemSql = filterSql(itemLevel);
    if (itemSql.length === 0) return out;
    const rows = await this.#guard('resolving the segment filter', () =>
      this.#table('items', 'read').query().where(itemSql.join(' AND ')).select(['video_id']).toArray(),
    );
    const ids = rows.map((r) => String(r.video_id));
    return [...out, ids.length ? `video_id IN (${sqlList(ids)})` : 'false'];
  }

  #checkQuery(req: SearchRequest, allowed: readonly string[]): void {
    if (!allowed.includes(req.using)) throw new AppError('INVALID_FIELD', `cannot search by ${req.using}`, { field: 'using' });
    if (req.vector.length !== this.#readDim) {
      throw new AppError('VECTOR_DIMENSION', `query has ${req.vector.length} dimensions, the collection has ${this.#readDim}`, {
        field: 'vector',
      });
    }
    if (!Number.isInteger(req.limit) || req.limit < 1)
      throw new AppError('INVALID_FIELD', 'limit must be a positive integer', { field: 'limit' });
    if (req.offset !== undefined && (!Number.isInteger(req.offset) || req.offset < 0)) {
      throw new AppError('INVALID_FIELD', 'offset must be a non-negative integer', { field: 'offset' });
    }
  }

  async #writeOp(kind: Kind, doing: string, op: (t: LanceTable) => Promise<unknown>): Promise<void> {
    const t = this.#table(kind, 'write');
    await this.#serial(t.name, () => this.#guard(`${doing} into ${t.name}`, () => retry(() => op(t))));
  }

  /** Chains writes per table: LanceDB commits are optimistic, and in-process queuing avoids needless conflicts. */
  #serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    this.#locks.set(
      key,
      run.catch(() => undefined),
    );
    return run;
  }

  async #guard<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw isAppError(err) ? err : wrap('STORE_UNAVAILABLE', doing, err);
    }
  }

  async #openOrCreate(name: string, kind: Kind, dim: number): Promise<LanceTable> {
    const db = this.#conn();
    const schema = schemaFor(kind, dim);
    const t = await this.#guard(`opening table ${name}`, async () =>
      (await db.tableNames()).includes(name) ? db.openTable(name) : db.createEmptyTable(name, schema, { existOk: true }),
    );
    const have = vectorDim(await t.schema(), kind === 'users' ? 'vector' : 'v_fused');
    if (have !== dim) throw new AppError('GENERATION_MISMATCH', `table ${name} holds ${have}-dimensional vectors, expected ${dim}`);
    return t;
  }

  async #bindReads(aliases: AliasFile): Promise<void> {
    for (const kind of KINDS) {
      const a = aliases[kind]!;
      const own = this.#write[kind];
      this.#read[kind] = own && own.name === a.collection ? own : await this.#openOrCreate(a.collection, kind, a.dim);
    }
    this.#readDim = aliases.items!.dim;
    for (const kind of ['items', 'segments'] as const) await this.#prewarm(this.#read[kind]!);
  }

  /** Loads vector indexes into memory now, so the first queries after boot do not pay for it. */
  async #prewarm(t: LanceTable): Promise<void> {
    for (const idx of await this.#guard(`listing indexes of ${t.name}`, () => t.listIndices())) {
      if (!/^Ivf|Hnsw/i.test(idx.indexType)) continue;
      await t
        .prewarmIndex(idx.name)
        .catch((err: unknown) =>
          (this.#opts.log ?? console).warn({ err, index: idx.name }, 'index prewarm failed; queries will load it lazily'),
        );
    }
  }

  async #readAliases(): Promise<AliasFile> {
    try {
      return JSON.parse(await readFile(this.#aliasPath(), 'utf8')) as AliasFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw wrap('STORE_UNAVAILABLE', `reading ${this.#aliasPath()}`, err);
    }
  }

  /** Write-then-rename: a crash or a concurrent reader never sees a half-written alias file. */
  async #writeAliases(aliases: AliasFile): Promise<void> {
    await this.#guard(`writing ${this.#aliasPath()}`, () => atomicWrite(this.#aliasPath(), JSON.stringify(aliases, null, 2)));
  }

  #aliasPath(): string {
    return join(this.#opts.dataDir, 'aliases.json');
  }

  #conn(): Connection {
    if (!this.#db) throw new AppError('STORE_UNAVAILABLE', 'the embedded store is not open');
    return this.#db;
  }

  #dim(): number {
    if (!this.#gen) throw new AppError('STORE_UNAVAILABLE', 'the embedded store is not open');
    return this.#gen.dim;
  }

  #table(kind: Kind, side: 'read' | 'write'): LanceTable {
    const t = (side === 'read' ? this.#read : this.#write)[kind];
    if (!t) throw new AppError('STORE_UNAVAILABLE', 'the embedded store is not open');
    return t;
  }
}

// ── pure helpers ──────────────────────────────────────────────────────────────────────────

export function collectionName(kind: Kind, generation: string): string {
  return `${kind}__${generation}`;
}

function aliasEntry(kind: Kind, gen: StoreGeneration): AliasEntry {
  return { collection: collectionName(kind, gen.name), generation: gen.name, dim: gen.dim };
}

function schemaFor(kind: Kind, dim: number): Schema {
  return kind === 'items' ? itemSchema(dim) : kind === 'segments' ? segmentSchema(dim) : userSchema(dim);
}

function vectorDim(schema: Schema, column: string): number {
  const f = schema.fields.find((x) => x.name === column);
  return (f?.type as { listSize?: number } | undefined)?.listSize ?? -1;
}

/**
 * IVF-RQ: k-means partitions (about sqrt(rows)) whose residuals are RaBitQ-quantised, here at
 * 8 bits per dimension; a query scans the codes of its nearest partitions and re-scores the
 * best `refineFactor * limit` on the full vectors. Picked over IVF-PQ, IVF-HNSW-SQ, IVF-flat
 * and 1- or 4-bit RQ after measuring them here (src/store/README.md): the recall goal at the
 * lowest CPU per query, and it builds in minutes where PQ / HNSW training took far longer.
 * k-means is trained on a sample (64 per partition, 20 iterations): 64k vectors at 1M rows.
 */
function ivfRqConfig(rows: number) {
  return lancedb.Index.ivfRq({
    distanceType: 'cosine',
    numPartitions: Math.max(1, Math.round(Math.sqrt(rows))),
    numBits: 8,
    maxIterations: 20,
    sampleRate: 64,
  });
}

/** Write-then-rename, so a reader (or a crash) never sees half a file. */
async function atomicWrite(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

/** Retries LanceDB's optimistic-commit conflicts (another process committed first). */
async function retry<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !/conflict|retryable/i.test(String((err as Error)?.message))) throw err;
      await new Promise((r) => setTimeout(r, 20 * 2 ** i));
    }
  }
}

function finite(value: number, field: string): string {
  if (!Number.isFinite(value)) throw new AppError('INVALID_FIELD', `${field} must be a finite number`, { field: `filter.${field}` });
  return String(value);
}

/** ItemFilter → SQL conjuncts over item (or segment) columns; pushed into the scan as a prefilter. */
export function filterSql(f: ItemFilter | undefined): string[] {
  if (!f) return [];
  const out: string[] = [];
  if (f.tagsAny?.length) out.push(`array_has_any(tags, make_array(${sqlList(f.tagsAny)}))`);
  if (f.tagsAll?.length) out.push(`array_has_all(tags, make_array(${sqlList(f.tagsAll)}))`);
  if (f.durationMinS !== undefined) out.push(`duration_s >= ${finite(f.durationMinS, 'durationMinS')}`);
  if (f.durationMaxS !== undefined) out.push(`duration_s <= ${finite(f.durationMaxS, 'durationMaxS')}`);
  if (f.uploadedAfter !== undefined) out.push(`uploaded_at >= ${finite(f.uploadedAfter, 'uploadedAfter')}`);
  if (f.uploadedBefore !== undefined) out.push(`uploaded_at <= ${finite(f.uploadedBefore, 'uploadedBefore')}`);
  if (f.modalities?.length) out.push(`array_has_all(modalities, make_array(${sqlList(f.modalities)}))`);
  if (f.excludeVideoIds?.length) out.push(`video_id NOT IN (${sqlList(f.excludeVideoIds)})`);
  return out;
}

function itemColumns(points: ItemPoint[]): Columns {
  const p = points.map((x) => x.payload);
  const cols: Columns = {
    id: p.map((x) => itemPointId(x.videoId)),
    video_id: p.map((x) => x.videoId),
    title: p.map((x) => x.title),
    description: p.map((x) => x.description),
    tags: p.map((x) => x.tags),
    duration_s: p.map((x) => x.durationS),
    uploaded_at: p.map((x) => x.uploadedAt),
    modalities: p.map((x) => x.modalities),
    generation: p.map((x) => x.generation),
    sha256: p.map((x) => x.sha256),
    external_id: p.map((x) => x.externalId ?? null),
  };
  for (const n of ITEM_VECTORS) {
    cols[`v_${n}`] = points.map((x) => x.vectors[n]);
    cols[`has_${n}`] = points.map((x) => x.vectors[n] !== undefined);
  }
  return cols;
}

function segmentColumns(points: SegmentPoint[]): Columns {
  const p = points.map((x) => x.payload);
  const cols: Columns = {
    id: p.map((x) => segmentPointId(x.videoId, x.index)),
    video_id: p.map((x) => x.videoId),
    index: p.map((x) => x.index),
    start_s: p.map((x) => x.startS),
    end_s: p.map((x) => x.endS),
    modalities: p.map((x) => x.modalities),
    generation: p.map((x) => x.generation),
  };
  for (const n of SEGMENT_VECTORS) {
    cols[`v_${n}`] = points.map((x) => x.vectors[n]);
    cols[`has_${n}`] = points.map((x) => x.vectors[n] !== undefined);
  }
  return cols;
}

type Row = Record<string, unknown>;

function toItemHit(r: Row, score: number, withVectors: boolean): ItemHit {
  const payload: ItemPayload = {
    videoId: String(r.video_id),
    title: String(r.title),
    description: String(r.description),
    tags: cellArray<string>(r.tags),
    durationS: Number(r.duration_s),
    uploadedAt: Number(r.uploaded_at),
    modalities: cellArray<Modality>(r.modalities),
    generation: String(r.generation),
    sha256: String(r.sha256),
  };
  if (r.external_id != null) payload.externalId = String(r.external_id);
  const hit: ItemHit = { videoId: payload.videoId, score, payload };
  if (withVectors) {
    const vectors: Partial<Record<VectorName, Float32Array>> = {};
    for (const n of ITEM_VECTORS) if (r[`has_${n}`]) vectors[n] = cellVector(r[`v_${n}`]);
    hit.vectors = vectors;
  }
  return hit;
}

function toSegmentPayload(r: Row): SegmentPayload {
  return {
    videoId: String(r.video_id),
    index: Number(r.index),
    startS: Number(r.start_s),
    endS: Number(r.end_s),
    modalities: cellArray<Modality>(r.modalities),
    generation: String(r.generation),
  };
}
