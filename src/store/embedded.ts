/**
 * The zero-setup vector store: LanceDB on local disk, no server. One table per collection per
 * generation (`items__<gen>`, `segments__<gen>`, `users__<gen>`), named vectors as separate
 * vector columns, payload as plain columns so filters are pushed into the scan (prefilter),
 * aliases in `aliases.json` beside the tables. Writes go to the opened generation; reads go
 * through the aliases, so a new generation can be backfilled beside the one being served.
 *
 * This file is the adapter (open, write, read, search); beside it in lance/: rows.ts (schemas and
 * row conversion), sql.ts (filters), indexes.ts (index upkeep: IVF-RQ above `indexThreshold`
 * vectors, exact scan below), io.ts (error mapping, write queues, atomic files).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import type { Connection, Table as LanceTable } from '@lancedb/lancedb';
import { AppError, wrap } from '../errors/index.ts';
import { itemPointId, userPointId } from './ids.ts';
import {
  ITEM_VECTORS,
  KINDS,
  SEGMENT_VECTORS,
  checkAliasDim,
  checkGenerationName,
  checkQuery,
  checkSegmentsOf,
  collectionName,
  lastById,
  resolveSegmentFilter,
  type Kind,
} from './shared.ts';
import {
  ITEM_COLUMNS,
  ITEM_EVIDENCE_FIELDS,
  ITEM_VECTOR_COLUMNS,
  SEGMENT_COLUMNS,
  buildTable,
  cellVector,
  itemColumns,
  itemSchema,
  schemaFor,
  segmentColumns,
  segmentSchema,
  tableDim,
  toItemHit,
  toSegmentPayload,
  toUserPoint,
  userColumns,
  userSchema,
} from './lance/rows.ts';
import { filterSql, segmentFilterSql, sqlString } from './lance/sql.ts';
import { LanceIndexes } from './lance/indexes.ts';
import { ItemGraph, type GraphState } from './lance/graph.ts';
import { SerialQueues, atomicWrite, guard, readJson, retryConflicts } from './lance/io.ts';
import type {
  ItemFilter,
  ItemHit,
  ItemPoint,
  OpenOptions,
  SearchRequest,
  SegmentHit,
  SegmentPoint,
  StoreGeneration,
  UserPoint,
  VectorStore,
} from './types.ts';

export interface EmbeddedStoreOptions {
  /** Folder that holds the tables and `aliases.json`; created if missing. */
  dataDir: string;
  /**
   * Seconds between checks for commits made by other processes (API server and worker share
   * one folder). 0 checks on every read, so an item the worker wrote is visible at once. Set by
   * the config (MONTAGE_STORE_READ_CONSISTENCY_S, whose default is documented there).
   */
  readConsistencyS: number;
  /**
   * Build and refresh indexes in the background after writes. The writing process (the worker)
   * does; readers do not, so two processes never train the same index. Set by the runtime.
   */
  autoIndex: boolean;
  /**
   * Vectors in a column before an ANN index is built on it; below this every search is an
   * exact scan, which on 2 cores stays around 10 ms up to about this size.
   * @defaultValue 10_000
   */
  indexThreshold?: number;
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
  /**
   * Keep an in-memory HNSW graph of the items' fused vectors beside the table (lance/graph.ts) and answer
   * searches by `fused` from it once the table holds `indexThreshold` items. Set by the config (MONTAGE_STORE_GRAPH).
   * @defaultValue true
   */
  graph?: boolean;
  /** The graph search's ef (candidates explored). Set by the config (MONTAGE_STORE_GRAPH_EF). @defaultValue 256 */
  graphEf?: number;
  /** Where background index failures are reported. @defaultValue console */
  log?: { warn: (obj: object, msg: string) => void };
}

/** What `aliases.json` holds per alias. */
interface AliasEntry {
  collection: string;
  generation: string;
  dim: number;
}
type AliasFile = Partial<Record<Kind, AliasEntry>>;

function aliasEntry(kind: Kind, gen: StoreGeneration): AliasEntry {
  return { collection: collectionName(kind, gen.name), generation: gen.name, dim: gen.dim };
}

const VECTORS_OF: Record<Kind, readonly string[]> = { items: ITEM_VECTORS, segments: SEGMENT_VECTORS, users: [] };

export class EmbeddedStore implements VectorStore {
  readonly #opts: Required<Omit<EmbeddedStoreOptions, 'log'>>;
  readonly #indexes: LanceIndexes;
  readonly #graph: ItemGraph;
  readonly #queues = new SerialQueues();
  #db: Connection | null = null;
  #gen: StoreGeneration | null = null;
  #write: Partial<Record<Kind, LanceTable>> = {};
  #read: Partial<Record<Kind, LanceTable>> = {};
  #readDim = 0;
  /** Per table+vector: whether any row lacks it, as of a table version (see #presenceSql). */
  readonly #missing = new Map<string, { version: number; missing: boolean }>();

  constructor(opts: EmbeddedStoreOptions) {
    const { log, ...rest } = opts;
    this.#opts = {
      indexThreshold: 10_000,
      refineFactor: 3,
      nprobes: 10,
      maxNprobes: 400,
      maxSmallFragments: 64,
      keepVersionsS: 600,
      graph: true,
      graphEf: 256,
      ...rest,
    };
    this.#graph = new ItemGraph({
      dataDir: this.#opts.dataDir,
      enabled: this.#opts.graph,
      efSearch: this.#opts.graphEf,
      minRows: this.#opts.indexThreshold,
      persist: this.#opts.autoIndex,
      log: log ?? console,
    });
    this.#indexes = new LanceIndexes(
      { ...this.#opts, log: log ?? console },
      () =>
        KINDS.map((kind) => {
          const table = this.#table(kind, 'write');
          return { table, vectors: VECTORS_OF[kind], serial: (doing, fn) => this.#serial(table, doing, fn) };
        }),
      [this.#graph],
    );
  }

  async open(gen: StoreGeneration, opts: OpenOptions = {}): Promise<void> {
    checkGenerationName(gen.name);
    await guard(`opening the embedded store in ${this.#opts.dataDir}`, async () => {
      await mkdir(this.#opts.dataDir, { recursive: true });
      this.#db = await lancedb.connect(this.#opts.dataDir, { readConsistencyInterval: this.#opts.readConsistencyS });
    });
    const aliases = await this.#readAliases();
    // A pinned store never reads through an alias, so another dimension behind one is no conflict (a backfill
    // into a generation of a new dimension).
    for (const kind of opts.pinned ? [] : KINDS) {
      const a = aliases[kind];
      if (a) checkAliasDim(kind, a, gen);
    }
    this.#gen = gen;
    for (const kind of KINDS) this.#write[kind] = await this.#openOrCreate(collectionName(kind, gen.name), kind, gen.dim);
    if (KINDS.some((k) => !aliases[k])) {
      for (const kind of KINDS) aliases[kind] ??= aliasEntry(kind, gen);
      await this.#writeAliases(aliases);
    }
    if (opts.pinned) {
      const own: AliasFile = {};
      for (const kind of KINDS) own[kind] = aliasEntry(kind, gen);
      await this.#bindReads(own);
    } else await this.#bindReads(aliases);
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
    this.#conn();
    for (const kind of KINDS) await this.#openOrCreate(collectionName(kind, gen.name), kind, gen.dim);
    const aliases: AliasFile = {};
    for (const kind of KINDS) aliases[kind] = aliasEntry(kind, gen);
    await this.#writeAliases(aliases);
    await this.#bindReads(aliases);
  }

  async upsertItems(points: ItemPoint[]): Promise<void> {
    if (points.length === 0) return;
    const rows = lastById(points, (p) => p.payload.videoId);
    const data = buildTable(itemSchema(this.#dim()), itemColumns(rows), this.#dim());
    await this.#writeOp('items', `upserting ${rows.length} items`, (t) =>
      t.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(data),
    );
    this.#indexes.noteWrite(rows.length);
  }

  async upsertSegments(videoId: string, points: SegmentPoint[]): Promise<void> {
    checkSegmentsOf(videoId, points);
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
    this.#indexes.noteWrite(points.length);
  }

  async getItem(videoId: string, withVectors = false): Promise<ItemHit | null> {
    const cols = withVectors ? [...ITEM_COLUMNS, ...ITEM_VECTOR_COLUMNS] : ITEM_COLUMNS;
    const row = await this.#byId('items', itemPointId(videoId), `reading item ${videoId}`, cols);
    return row ? toItemHit(row, 1, withVectors) : null;
  }

  async getSegments(videoId: string): Promise<SegmentPoint[]> {
    const cols = [...SEGMENT_COLUMNS, ...SEGMENT_VECTORS.flatMap((n) => [`v_${n}`, `has_${n}`])];
    const rows = await guard(`reading the segments of ${videoId}`, () =>
      this.#table('segments', 'read')
        .query()
        .where(`video_id = ${sqlString(videoId)}`)
        .select(cols)
        .toArray(),
    );
    return rows
      .map((r: Record<string, unknown>) => {
        const vectors: SegmentPoint['vectors'] = {};
        for (const n of SEGMENT_VECTORS) if (r[`has_${n}`]) vectors[n] = cellVector(r[`v_${n}`]);
        return { payload: toSegmentPayload(r), vectors };
      })
      .sort((a, b) => a.payload.index - b.payload.index);
  }

  async getItems(videoIds: string[], withVectors = false): Promise<Array<ItemHit | null>> {
    if (videoIds.length === 0) return [];
    const cols = withVectors ? [...ITEM_COLUMNS, ...ITEM_VECTOR_COLUMNS] : ITEM_COLUMNS;
    const ids = [...new Set(videoIds)];
    const rows = await guard(`reading ${ids.length} items`, () =>
      this.#table('items', 'read')
        .query()
        .where(`id IN (${ids.map((id) => sqlString(itemPointId(id))).join(', ')})`)
        .select(cols)
        .limit(ids.length)
        .toArray(),
    );
    const byId = new Map(rows.map((r) => toItemHit(r, 1, withVectors)).map((h) => [h.videoId, h]));
    return videoIds.map((id) => byId.get(id) ?? null);
  }

  async deleteVideo(videoId: string): Promise<void> {
    const where = `video_id = ${sqlString(videoId)}`;
    for (const kind of ['items', 'segments'] as const) {
      for (const t of new Set([this.#table(kind, 'write'), this.#table(kind, 'read')])) {
        await this.#serial(t, `deleting ${videoId} from ${t.name}`, () => retryConflicts(() => t.delete(where)));
      }
    }
    this.#graph.forget(videoId, itemPointId(videoId));
  }

  async searchItems(req: SearchRequest): Promise<ItemHit[]> {
    checkQuery(req, ITEM_VECTORS, this.#readDim);
    const fromGraph = await guard('searching the items graph', () => this.#graph.search(req));
    if (fromGraph) return fromGraph;
    const where = [...(await this.#presenceSql('items', req.using)), ...filterSql(req.filter)];
    const cols = req.withVectors ? [...ITEM_COLUMNS, ...ITEM_VECTOR_COLUMNS] : ITEM_COLUMNS;
    const rows = await this.#search('items', req, where, cols);
    return rows.map((r) => toItemHit(r, 1 - Number(r._distance), req.withVectors ?? false));
  }

  async searchSegments(req: SearchRequest & { using: 'fused' | 'video' | 'audio' }): Promise<SegmentHit[]> {
    checkQuery(req, SEGMENT_VECTORS, this.#readDim);
    const filter = await resolveSegmentFilter(req.filter, (itemLevel) => this.#matchingVideoIds(itemLevel));
    if (!filter) return [];
    const where = [...(await this.#presenceSql('segments', req.using)), ...segmentFilterSql(filter)];
    const rows = await this.#search('segments', req, where, SEGMENT_COLUMNS);
    return rows.map((r) => ({ videoId: String(r.video_id), score: 1 - Number(r._distance), payload: toSegmentPayload(r) }));
  }

  async countItems(filter?: ItemFilter): Promise<number> {
    const sql = filterSql(filter).join(' AND ');
    return guard('counting items', () => this.#table('items', 'read').countRows(sql || undefined));
  }

  async upsertUsers(points: UserPoint[]): Promise<void> {
    if (points.length === 0) return;
    const rows = lastById(points, (p) => p.userId);
    const data = buildTable(userSchema(this.#dim()), userColumns(rows), this.#dim());
    await this.#writeOp('users', `upserting ${rows.length} users`, (t) =>
      t.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(data),
    );
  }

  async getUser(userId: string): Promise<UserPoint | null> {
    const row = await this.#byId('users', userPointId(userId), `reading user ${userId}`);
    return row ? toUserPoint(row) : null;
  }

  async ping(): Promise<void> {
    await guard('pinging the embedded store', () => this.#table('items', 'read').countRows());
  }

  /**
   * Builds and refreshes the ANN and scalar indexes now (lance/indexes.ts). Runs in the background
   * after writes when `autoIndex` is on; benchmarks and the backfill CLI await it directly.
   */
  async ensureIndexes(): Promise<void> {
    await this.#indexes.ensure();
  }

  /** The items graph's rows, vectors and the searches it answered (not in VectorStore: tests and benchmarks). */
  async graphState(): Promise<GraphState> {
    await this.#graph.idle();
    return this.#graph.state();
  }

  async close(): Promise<void> {
    await this.#indexes.idle();
    await this.#graph.idle();
    await this.#queues.drain();
    for (const t of new Set([...Object.values(this.#write), ...Object.values(this.#read)])) t.close();
    this.#write = {};
    this.#read = {};
    this.#db?.close();
    this.#db = null;
  }

  // ── reads ───────────────────────────────────────────────────────────────────────────────

  async #byId(kind: Kind, id: string, doing: string, cols?: string[]): Promise<Record<string, unknown> | undefined> {
    const rows = await guard(doing, () => {
      const q = this.#table(kind, 'read')
        .query()
        .where(`id = ${sqlString(id)}`);
      return (cols ? q.select(cols) : q).limit(1).toArray();
    });
    return rows[0];
  }

  async #search(kind: Kind, req: SearchRequest, where: string[], cols: string[]): Promise<Record<string, unknown>[]> {
    return guard(`searching ${kind} by ${req.using}`, () => {
      let q = this.#table(kind, 'read').query().nearestTo(req.vector).column(`v_${req.using}`).distanceType('cosine');
      if (where.length) q = q.where(where.join(' AND '));
      return (
        q
          .select([...cols, '_distance'])
          .limit(req.limit)
          .offset(req.offset ?? 0)
          .refineFactor(this.#opts.refineFactor)
          // maximum first: LanceDB rejects a minimum above the current maximum
          .maximumNprobes(Math.max(this.#opts.nprobes, this.#opts.maxNprobes))
          .minimumNprobes(this.#opts.nprobes)
          .toArray()
      );
    });
  }

  /** The items matching an item-level filter, for a segment search (segments carry no tags). */
  async #matchingVideoIds(itemLevel: ItemFilter): Promise<string[]> {
    const rows = await guard('resolving the segment filter', () =>
      this.#table('items', 'read').query().where(filterSql(itemLevel).join(' AND ')).select(['video_id']).toArray(),
    );
    return rows.map((r) => String(r.video_id));
  }

  /**
   * `has_<name> = true` when some row lacks that vector, else nothing: a prefilter costs a
   * pass over the table, and most tables have every row's fused vector. Cached per table
   * version, so another process's write is seen on the next read.
   */
  async #presenceSql(kind: Kind, name: string): Promise<string[]> {
    const t = this.#table(kind, 'read');
    const version = await guard(`reading the version of ${t.name}`, () => t.version());
    const key = `${t.name}:${name}`;
    let c = this.#missing.get(key);
    if (!c || c.version !== version) {
      const missing = (await guard(`counting rows of ${t.name}`, () => t.countRows(`has_${name} = false`))) > 0;
      c = { version, missing };
      this.#missing.set(key, c);
    }
    return c.missing ? [`has_${name} = true`] : [];
  }

  // ── writes and tables ───────────────────────────────────────────────────────────────────

  async #writeOp(kind: Kind, doing: string, op: (t: LanceTable) => Promise<unknown>): Promise<void> {
    const t = this.#table(kind, 'write');
    await this.#serial(t, `${doing} into ${t.name}`, () => retryConflicts(() => op(t)));
  }

  /** One step on a table, after the ones queued before it, with its failures mapped to STORE_UNAVAILABLE. */
  #serial<T>(t: LanceTable, doing: string, fn: () => Promise<T>): Promise<T> {
    return this.#queues.run(t.name, () => guard(doing, fn));
  }

  async #openOrCreate(name: string, kind: Kind, dim: number): Promise<LanceTable> {
    const db = this.#conn();
    const t = await guard(`opening table ${name}`, async () =>
      (await db.tableNames()).includes(name) ? db.openTable(name) : db.createEmptyTable(name, schemaFor(kind, dim), { existOk: true }),
    );
    const schema = await t.schema();
    const have = tableDim(schema, kind);
    if (have !== dim) throw new AppError('GENERATION_MISMATCH', `table ${name} holds ${have}-dimensional vectors, expected ${dim}`);
    if (kind === 'items') {
      // Tables written before the evidence columns existed get them, empty (no rewrite of the rows).
      const missing = ITEM_EVIDENCE_FIELDS.filter((f) => !schema.fields.some((x) => x.name === f.name));
      if (missing.length > 0) {
        await guard(`adding ${missing.map((f) => f.name).join(', ')} to ${name}`, () =>
          t.addColumns(missing.map((f) => ({ name: f.name, valueSql: 'CAST(NULL AS STRING)' }))),
        );
      }
    }
    return t;
  }

  async #bindReads(aliases: AliasFile): Promise<void> {
    for (const kind of KINDS) {
      const a = aliases[kind]!;
      const own = this.#write[kind];
      this.#read[kind] = own && own.name === a.collection ? own : await this.#openOrCreate(a.collection, kind, a.dim);
    }
    this.#readDim = aliases.items!.dim;
    this.#graph.bind(this.#read.items!, this.#readDim);
    for (const kind of ['items', 'segments'] as const) {
      const t = this.#read[kind]!;
      await guard(`prewarming the indexes of ${t.name}`, () => this.#indexes.prewarm(t));
    }
  }

  async #readAliases(): Promise<AliasFile> {
    return readJson<AliasFile>(this.#aliasPath(), {}).catch((err: unknown) => {
      throw wrap('STORE_UNAVAILABLE', `reading ${this.#aliasPath()}`, err);
    });
  }

  /** Write-then-rename: a crash or a concurrent reader never sees a half-written alias file. */
  async #writeAliases(aliases: AliasFile): Promise<void> {
    await guard(`writing ${this.#aliasPath()}`, () => atomicWrite(this.#aliasPath(), JSON.stringify(aliases, null, 2)));
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
