/**
 * Index upkeep for the embedded store, apart from the adapter: which ANN and scalar indexes a table gets and when,
 * refreshing them as rows arrive, compaction, and loading them into memory. The store (embedded.ts) calls it at
 * three points only: after each write (`noteWrite`), at open (`prewarm`) and when asked (`ensure`); searches never
 * go through here. Another kind of index kept beside the tables (an in-memory graph, say) hangs on the same three
 * points.
 *
 * Search is exact (a flat scan) until a vector column holds `indexThreshold` vectors; then an IVF-RQ index is
 * built. Rows written after the build are still searched (LanceDB scans unindexed rows exactly and merges them)
 * and are folded into the index by `optimize()`; the partitions are retrained when the table has doubled since its
 * k-means ran (`index-meta.json` remembers the size it was trained on).
 */
import { join } from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import type { Table as LanceTable } from '@lancedb/lancedb';
import { atomicWrite, readJson } from './io.ts';

export interface IndexOptions {
  /** The store's folder: `index-meta.json` lives there. */
  dataDir: string;
  /** Vectors in a column before an ANN index is built on it. */
  indexThreshold: number;
  /** Build and refresh indexes in the background after writes. */
  autoIndex: boolean;
  /** Small-write fragments tolerated before the table is compacted. */
  maxSmallFragments: number;
  /** Old table versions younger than this are kept when compacting (a reader in another process may be on one), s. */
  keepVersionsS: number;
  /** Where background failures are reported. */
  log: { warn: (obj: object, msg: string) => void };
}

/** A table to keep indexed, with the vector columns it holds. */
export interface IndexedTable {
  table: LanceTable;
  vectors: readonly string[];
  /** Runs one step of upkeep on the table in the store's write queue, with its error mapping. */
  serial: (doing: string, fn: () => Promise<void>) => Promise<void>;
}

/** Rows written between two background checks: a check costs a count per table. */
const CHECK_EVERY_ROWS = 1000;

export class LanceIndexes {
  readonly #opts: IndexOptions;
  readonly #tables: () => IndexedTable[];
  #background: Promise<void> | null = null;
  #rowsSinceCheck = 0;

  readonly #beside: ReadonlyArray<{ ensure(): Promise<void> }>;

  /**
   * @param tables the tables written to, looked up when upkeep runs (they change when the store reopens).
   * @param beside indexes kept beside the tables (the in-memory graph, graph.ts), brought up to date after them.
   */
  constructor(opts: IndexOptions, tables: () => IndexedTable[], beside: ReadonlyArray<{ ensure(): Promise<void> }> = []) {
    this.#opts = opts;
    this.#tables = tables;
    this.#beside = beside;
  }

  /** After a write of `rows` rows: every CHECK_EVERY_ROWS rows, starts `ensure()` in the background (autoIndex). */
  noteWrite(rows: number): void {
    this.#rowsSinceCheck += rows;
    if (!this.#opts.autoIndex || this.#background || this.#rowsSinceCheck < CHECK_EVERY_ROWS) return;
    this.#rowsSinceCheck = 0;
    this.#background = this.ensure()
      .catch((err: unknown) => this.#opts.log.warn({ err }, 'background index build failed'))
      .finally(() => {
        this.#background = null;
      });
  }

  /**
   * Builds missing ANN indexes on vector columns that crossed `indexThreshold`, folds rows written since the last
   * build into existing ones, and compacts tables that one-video upserts have split into many small fragments.
   */
  async ensure(): Promise<void> {
    for (const { table: t, vectors, serial } of this.#tables()) {
      await serial(`indexing ${t.name}`, async () => {
        const compacted = await this.#indexTable(t, vectors);
        const { fragmentStats } = await t.stats();
        if (!compacted && fragmentStats.numSmallFragments > this.#opts.maxSmallFragments) await this.#optimize(t);
      });
    }
    for (const b of this.#beside) await b.ensure();
  }

  /** Loads a table's vector indexes into memory now, so the first queries after boot do not pay for it. */
  async prewarm(t: LanceTable): Promise<void> {
    for (const idx of await t.listIndices()) {
      if (!/^Ivf|Hnsw/i.test(idx.indexType)) continue;
      await t
        .prewarmIndex(idx.name)
        .catch((err: unknown) => this.#opts.log.warn({ err, index: idx.name }, 'index prewarm failed; queries will load it lazily'));
    }
  }

  /** Settles once background upkeep has. */
  async idle(): Promise<void> {
    await this.#background?.catch(() => undefined);
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
      if (indexName && present < 2 * (await this.#trainedRows(t, col, indexName))) {
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

  /** Compacts fragments, folds new rows into the indexes and prunes versions older than keepVersionsS. */
  async #optimize(t: LanceTable): Promise<void> {
    await t.optimize({ cleanupOlderThan: new Date(Date.now() - this.#opts.keepVersionsS * 1000) });
  }

  /** Rows the column's k-means was trained on (index-meta.json; the index itself does not say). */
  async #trainedRows(t: LanceTable, col: string, indexName: string): Promise<number> {
    const known = (await this.#readMeta())[t.name]?.[col];
    if (known !== undefined) return known;
    const rows = (await t.indexStats(indexName))?.numIndexedRows ?? 0;
    await this.#recordTrained(t.name, col, rows);
    return rows;
  }

  async #recordTrained(table: string, col: string, rows: number): Promise<void> {
    const meta = await this.#readMeta();
    (meta[table] ??= {})[col] = rows;
    await atomicWrite(this.#metaPath(), JSON.stringify(meta, null, 2));
  }

  async #readMeta(): Promise<Record<string, Record<string, number>>> {
    // Missing or torn: the heuristic restarts from the index's own row count.
    return readJson<Record<string, Record<string, number>>>(this.#metaPath(), {}).catch(() => ({}));
  }

  #metaPath(): string {
    return join(this.#opts.dataDir, 'index-meta.json');
  }
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
