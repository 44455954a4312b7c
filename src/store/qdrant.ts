/**
 * The production vector store: Qdrant over its REST API. Collections per generation
 * (`<prefix>items__<gen>`, ...) hold NAMED vectors (fused, video, audio, text, behaviour; cosine)
 * behind the aliases `<prefix>items`, `<prefix>segments`, `<prefix>users`, switched atomically
 * with one `updateCollectionAliases` call. Writes go to the opened generation's collections
 * and wait for Qdrant to apply them (`wait: true`); reads go through the aliases, so a new
 * generation can be backfilled while the old one is served.
 *
 * A point lacking a named vector simply has no entry for it, and Qdrant never returns it for
 * a query `using` that vector. Filters are native (must / must_not / range) over indexed
 * payload fields, so they run inside the HNSW traversal rather than after it.
 */
import { QdrantClient, type Schemas } from '@qdrant/js-client-rest';
import { AppError, isAppError, wrap } from '../errors/index.ts';
import { itemPointId, segmentPointId, userPointId } from './ids.ts';
import {
  ITEM_VECTORS,
  KINDS,
  SEGMENT_VECTORS,
  USER_VECTOR,
  checkAliasDim,
  checkGenerationName,
  checkQuery,
  checkSegmentsOf,
  collectionName,
  generationOf,
  lastById,
  resolveSegmentFilter,
  type Kind,
  type SegmentFilter,
} from './shared.ts';
import type {
  ItemFilter,
  ItemHit,
  ItemPayload,
  ItemPoint,
  OpenOptions,
  SearchRequest,
  SegmentHit,
  SegmentPayload,
  SegmentPoint,
  StoreGeneration,
  UserPoint,
  VectorName,
  VectorStore,
} from './types.ts';

export interface QdrantStoreOptions {
  /** Qdrant REST endpoint, e.g. `http://localhost:6333`. */
  url: string;
  /** API key when the cluster requires one. @defaultValue undefined */
  apiKey?: string | undefined;
  /** Prepended to every collection and alias name (tests, or several deployments on one cluster). @defaultValue '' */
  prefix?: string;
  /** Per-request timeout in milliseconds. @defaultValue 10_000 */
  timeoutMs?: number;
  /** HNSW `ef` at query time; Qdrant's default (= limit-based) when unset. @defaultValue 128 */
  hnswEf?: number;
  /** Points per upsert request, to stay under Qdrant's request size limit. @defaultValue 256 */
  batchSize?: number;
}

type Filter = Schemas['Filter'];
type Condition = Schemas['Condition'];

/** Payload fields filtered on, with the index type Qdrant should build for each. */
const PAYLOAD_INDEXES: Record<Kind, [string, 'keyword' | 'float' | 'integer'][]> = {
  items: [
    ['videoId', 'keyword'],
    ['tags', 'keyword'],
    ['terms', 'keyword'],
    ['durationS', 'float'],
    ['uploadedAt', 'integer'],
    ['modalities', 'keyword'],
  ],
  segments: [
    ['videoId', 'keyword'],
    ['modalities', 'keyword'],
  ],
  users: [['userId', 'keyword']],
};

export class QdrantStore implements VectorStore {
  readonly #client: QdrantClient;
  readonly #prefix: string;
  readonly #ef: number;
  readonly #batch: number;
  #gen: StoreGeneration | null = null;
  #readDim = 0;
  /** Reads go to the opened generation's collections, not the aliases (OpenOptions.pinned). */
  #pinned = false;

  constructor(opts: QdrantStoreOptions) {
    this.#client = new QdrantClient({
      url: opts.url,
      apiKey: opts.apiKey,
      timeout: opts.timeoutMs ?? 10_000,
      checkCompatibility: false,
    });
    this.#prefix = opts.prefix ?? '';
    this.#ef = opts.hnswEf ?? 128;
    this.#batch = opts.batchSize ?? 256;
  }

  async open(gen: StoreGeneration, opts: OpenOptions = {}): Promise<void> {
    checkGenerationName(gen.name);
    this.#pinned = opts.pinned ?? false;
    const aliases = await this.#aliasTargets();
    // A pinned store never reads through an alias: another dimension behind one is no conflict.
    for (const kind of this.#pinned ? [] : KINDS) {
      const target = aliases[kind];
      if (target) checkAliasDim(this.#alias(kind), { collection: target, dim: await this.#collectionDim(target, kind) }, gen);
    }
    for (const kind of KINDS) await this.#ensureCollection(kind, gen);
    const unset = KINDS.filter((k) => !aliases[k]);
    if (unset.length) await this.#setAliases(unset, gen);
    this.#gen = gen;
    this.#readDim = gen.dim;
  }

  async aliases(): Promise<Partial<Record<Kind, StoreGeneration>>> {
    const targets = await this.#aliasTargets();
    const out: Partial<Record<Kind, StoreGeneration>> = {};
    for (const kind of KINDS) {
      const target = targets[kind];
      if (!target) continue;
      out[kind] = { name: generationOf(target, kind, this.#prefix), dim: await this.#collectionDim(target, kind) };
    }
    return out;
  }

  /** Points all three aliases at `gen` in one atomic alias operation (after a backfill). */
  async pointAliases(gen: StoreGeneration): Promise<void> {
    for (const kind of KINDS) await this.#ensureCollection(kind, gen);
    await this.#setAliases(KINDS, gen);
    if (!this.#pinned) this.#readDim = gen.dim;
  }

  async upsertItems(points: ItemPoint[]): Promise<void> {
    const rows = lastById(points, (p) => p.payload.videoId);
    const dim = this.#dim();
    const qpoints = rows.map((p) => ({
      id: itemPointId(p.payload.videoId),
      vector: namedVectors(p.vectors, dim),
      payload: { ...p.payload },
    }));
    await this.#upsert('items', qpoints, `upserting ${rows.length} items`);
  }

  async getSegments(videoId: string): Promise<SegmentPoint[]> {
    const out: SegmentPoint[] = [];
    let offset: string | number | undefined;
    do {
      const page = await this.#call(`reading the segments of ${videoId}`, () =>
        this.#client.scroll(this.#readName('segments'), {
          filter: { must: [match('videoId', videoId)] },
          limit: 1000,
          offset,
          with_payload: true,
          with_vector: true,
        }),
      );
      for (const p of page.points) {
        const vectors: SegmentPoint['vectors'] = {};
        for (const [name, v] of Object.entries((p.vector ?? {}) as Record<string, number[]>)) {
          if (Array.isArray(v)) vectors[name as 'fused' | 'video' | 'audio'] = Float32Array.from(v);
        }
        out.push({ payload: pickSegment(p.payload as unknown as SegmentPayload), vectors });
      }
      offset = (page.next_page_offset ?? undefined) as string | number | undefined;
    } while (offset !== undefined);
    return out.sort((a, b) => a.payload.index - b.payload.index);
  }

  async upsertSegments(videoId: string, points: SegmentPoint[]): Promise<void> {
    checkSegmentsOf(videoId, points);
    const dim = this.#dim();
    const qpoints = points.map((p) => ({
      id: segmentPointId(videoId, p.payload.index),
      vector: namedVectors(p.vectors, dim),
      payload: { ...p.payload },
    }));
    // New segments first, then the stale ones: readers never see the video with no segments.
    await this.#upsert('segments', qpoints, `upserting the segments of ${videoId}`);
    const filter: Filter = { must: [match('videoId', videoId)] };
    if (qpoints.length) filter.must_not = [{ has_id: qpoints.map((p) => p.id) }];
    await this.#call(`deleting stale segments of ${videoId}`, () =>
      this.#client.delete(this.#collection('segments'), { wait: true, filter }),
    );
  }

  async getItem(videoId: string, withVectors = false): Promise<ItemHit | null> {
    const [rec] = await this.#call(`reading item ${videoId}`, () =>
      this.#client.retrieve(this.#readName('items'), { ids: [itemPointId(videoId)], with_payload: true, with_vector: withVectors }),
    );
    return rec ? toItemHit(rec, 1, withVectors) : null;
  }

  async getItems(videoIds: string[], withVectors = false): Promise<Array<ItemHit | null>> {
    if (videoIds.length === 0) return [];
    const recs = await this.#call(`reading ${videoIds.length} items`, () =>
      this.#client.retrieve(this.#readName('items'), {
        ids: [...new Set(videoIds)].map(itemPointId),
        with_payload: true,
        with_vector: withVectors,
      }),
    );
    const byId = new Map(recs.map((r) => toItemHit(r, 1, withVectors)).map((h) => [h.videoId, h]));
    return videoIds.map((id) => byId.get(id) ?? null);
  }

  async deleteVideo(videoId: string): Promise<void> {
    const filter = { must: [match('videoId', videoId)] };
    for (const kind of ['items', 'segments'] as const) {
      for (const name of new Set([this.#collection(kind), this.#readName(kind)])) {
        await this.#call(`deleting ${videoId} from ${name}`, () => this.#client.delete(name, { wait: true, filter }));
      }
    }
  }

  async searchItems(req: SearchRequest): Promise<ItemHit[]> {
    checkQuery(req, ITEM_VECTORS, this.#readDim);
    const res = await this.#call(`searching items by ${req.using}`, () =>
      this.#client.query(this.#readName('items'), {
        query: Array.from(req.vector),
        using: req.using,
        filter: itemFilter(req.filter),
        limit: req.limit,
        offset: req.offset ?? 0,
        with_payload: true,
        with_vector: req.withVectors ? [...ITEM_VECTORS] : false,
        params: { hnsw_ef: Math.max(this.#ef, req.limit + (req.offset ?? 0)) },
      }),
    );
    return res.points.map((p) => toItemHit(p, p.score, req.withVectors ?? false));
  }

  /**
   * Segments carry no tags or durations, so item-level filters are resolved to the matching
   * video ids first (one scroll of the items alias) and pushed as a `videoId` match.
   */
  async searchSegments(req: SearchRequest & { using: 'fused' | 'video' | 'audio' }): Promise<SegmentHit[]> {
    checkQuery(req, SEGMENT_VECTORS, this.#readDim);
    const resolved = await resolveSegmentFilter(req.filter, (itemLevel) => this.#matchingVideoIds(itemFilter(itemLevel)!));
    if (!resolved) return [];
    const filter = segmentFilter(resolved);
    const res = await this.#call(`searching segments by ${req.using}`, () =>
      this.#client.query(this.#readName('segments'), {
        query: Array.from(req.vector),
        using: req.using,
        filter,
        limit: req.limit,
        offset: req.offset ?? 0,
        with_payload: true,
        params: { hnsw_ef: Math.max(this.#ef, req.limit + (req.offset ?? 0)) },
      }),
    );
    return res.points.map((p) => {
      const payload = p.payload as unknown as SegmentPayload;
      return { videoId: payload.videoId, score: p.score, payload: pickSegment(payload) };
    });
  }

  async countItems(filter?: ItemFilter): Promise<number> {
    const res = await this.#call('counting items', () =>
      this.#client.count(this.#readName('items'), { filter: itemFilter(filter), exact: true }),
    );
    return res.count;
  }

  async upsertUsers(points: UserPoint[]): Promise<void> {
    const rows = lastById(points, (p) => p.userId);
    const dim = this.#dim();
    const qpoints = rows.map((u) => ({
      id: userPointId(u.userId),
      vector: { [USER_VECTOR]: checkedVector(u.vector, dim, 'vector') },
      payload: { userId: u.userId, updatedAt: u.updatedAt, events: u.events, generation: u.generation },
    }));
    await this.#upsert('users', qpoints, `upserting ${rows.length} users`);
  }

  async getUser(userId: string): Promise<UserPoint | null> {
    const [rec] = await this.#call(`reading user ${userId}`, () =>
      this.#client.retrieve(this.#readName('users'), { ids: [userPointId(userId)], with_payload: true, with_vector: true }),
    );
    if (!rec) return null;
    const p = rec.payload as { userId: string; updatedAt: number; events: number; generation: string };
    const v = (rec.vector as Record<string, number[]>)[USER_VECTOR] ?? [];
    return { userId: p.userId, vector: Float32Array.from(v), updatedAt: p.updatedAt, events: p.events, generation: p.generation };
  }

  async ping(): Promise<void> {
    await this.#call('pinging Qdrant', () => this.#client.collectionExists(this.#readName('items')));
  }

  async close(): Promise<void> {
    // The REST client holds no connection state worth closing; keep-alive sockets are pooled by undici.
    this.#gen = null;
  }

  /** Deletes every collection and alias under this store's prefix (test cleanup). */
  async dropAll(): Promise<void> {
    if (!this.#prefix) throw new AppError('INTERNAL', 'dropAll needs a prefix: refusing to drop every collection');
    const { aliases } = await this.#call('listing aliases', () => this.#client.getAliases());
    const actions = aliases
      .filter((a) => a.alias_name.startsWith(this.#prefix))
      .map((a) => ({ delete_alias: { alias_name: a.alias_name } }));
    if (actions.length) await this.#call('dropping aliases', () => this.#client.updateCollectionAliases({ actions }));
    const { collections } = await this.#call('listing collections', () => this.#client.getCollections());
    for (const c of collections.filter((x) => x.name.startsWith(this.#prefix))) {
      await this.#call(`dropping ${c.name}`, () => this.#client.deleteCollection(c.name));
    }
  }

  // ── internals ───────────────────────────────────────────────────────────────────────────

  async #upsert(kind: Kind, points: { id: string; vector: Record<string, number[]>; payload: Record<string, unknown> }[], doing: string) {
    const name = this.#collection(kind);
    for (let i = 0; i < points.length; i += this.#batch) {
      const batch = points.slice(i, i + this.#batch);
      await this.#call(`${doing} into ${name}`, () => this.#client.upsert(name, { wait: true, points: batch }));
    }
  }

  async #ensureCollection(kind: Kind, gen: StoreGeneration): Promise<void> {
    const name = collectionName(kind, gen.name, this.#prefix);
    const { exists } = await this.#call(`checking ${name}`, () => this.#client.collectionExists(name));
    if (exists) {
      const dim = await this.#collectionDim(name, kind);
      if (dim !== gen.dim)
        throw new AppError('GENERATION_MISMATCH', `collection ${name} holds ${dim}-dimensional vectors, expected ${gen.dim}`);
      return;
    }
    const names = kind === 'items' ? ITEM_VECTORS : kind === 'segments' ? SEGMENT_VECTORS : [USER_VECTOR];
    const vectors = Object.fromEntries(names.map((n) => [n, { size: gen.dim, distance: 'Cosine' as const }]));
    await this.#call(`creating ${name}`, () => this.#client.createCollection(name, { vectors }));
    for (const [field_name, field_schema] of PAYLOAD_INDEXES[kind]) {
      await this.#call(`indexing ${name}.${field_name}`, () =>
        this.#client.createPayloadIndex(name, { field_name, field_schema, wait: true }),
      );
    }
  }

  async #setAliases(kinds: readonly Kind[], gen: StoreGeneration): Promise<void> {
    // delete + create in one request: Qdrant applies the list atomically, so no reader ever
    // finds the alias missing or pointing at a half-switched set.
    const existing = await this.#aliasTargets();
    const actions = kinds.flatMap((kind) => [
      ...(existing[kind] ? [{ delete_alias: { alias_name: this.#alias(kind) } }] : []),
      { create_alias: { alias_name: this.#alias(kind), collection_name: collectionName(kind, gen.name, this.#prefix) } },
    ]);
    await this.#call('switching aliases', () => this.#client.updateCollectionAliases({ actions }));
  }

  async #aliasTargets(): Promise<Partial<Record<Kind, string>>> {
    const { aliases } = await this.#call('listing aliases', () => this.#client.getAliases());
    const out: Partial<Record<Kind, string>> = {};
    for (const kind of KINDS) {
      const a = aliases.find((x) => x.alias_name === this.#alias(kind));
      if (a) out[kind] = a.collection_name;
    }
    return out;
  }

  async #collectionDim(name: string, kind: Kind): Promise<number> {
    const info = await this.#call(`describing ${name}`, () => this.#client.getCollection(name));
    const vectors = info.config.params.vectors as Record<string, { size: number }> | undefined;
    return vectors?.[kind === 'users' ? USER_VECTOR : 'fused']?.size ?? -1;
  }

  /** The items matching an item-level filter, for a segment search (segments carry no tags): one scroll of the items alias. */
  async #matchingVideoIds(items: Filter): Promise<string[]> {
    const ids: string[] = [];
    let offset: string | number | undefined;
    do {
      const page = await this.#call('resolving the segment filter', () =>
        this.#client.scroll(this.#readName('items'), { filter: items, limit: 1000, offset, with_payload: ['videoId'], with_vector: false }),
      );
      for (const p of page.points) ids.push(String((p.payload as { videoId: string }).videoId));
      offset = (page.next_page_offset ?? undefined) as string | number | undefined;
    } while (offset !== undefined);
    return ids;
  }

  /** Network trouble and 5xx/429 are retryable (STORE_UNAVAILABLE); any other 4xx is our bug. */
  async #call<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isAppError(err)) throw err;
      const status = (err as { status?: number }).status;
      const clientSide = typeof status === 'number' && status >= 400 && status < 500 && status !== 429;
      throw wrap(clientSide ? 'INTERNAL' : 'STORE_UNAVAILABLE', `${doing} on Qdrant`, err);
    }
  }

  #alias(kind: Kind): string {
    return `${this.#prefix}${kind}`;
  }

  /** What reads address: the alias, or the opened generation's own collection when pinned. */
  #readName(kind: Kind): string {
    return this.#pinned ? this.#collection(kind) : this.#alias(kind);
  }

  #collection(kind: Kind): string {
    return collectionName(kind, this.#genOrThrow().name, this.#prefix);
  }

  #dim(): number {
    return this.#genOrThrow().dim;
  }

  #genOrThrow(): StoreGeneration {
    if (!this.#gen) throw new AppError('STORE_UNAVAILABLE', 'the Qdrant store is not open');
    return this.#gen;
  }
}

// ── pure helpers (exported for unit tests) ────────────────────────────────────────────────

function match(key: string, value: string): Condition {
  return { key, match: { value } };
}

/** ItemFilter → Qdrant filter; undefined when it constrains nothing. */
export function itemFilter(f: ItemFilter | undefined): Filter | undefined {
  if (!f) return undefined;
  const must: Condition[] = [];
  const mustNot: Condition[] = [];
  if (f.tagsAny?.length) must.push({ key: 'tags', match: { any: f.tagsAny } });
  for (const t of f.tagsAll ?? []) must.push(match('tags', t));
  if (f.termsAny?.length) must.push({ key: 'terms', match: { any: f.termsAny } });
  if (f.durationMinS !== undefined || f.durationMaxS !== undefined) {
    must.push({ key: 'durationS', range: range(f.durationMinS, f.durationMaxS, 'duration') });
  }
  if (f.uploadedAfter !== undefined || f.uploadedBefore !== undefined) {
    must.push({ key: 'uploadedAt', range: range(f.uploadedAfter, f.uploadedBefore, 'uploaded') });
  }
  for (const m of f.modalities ?? []) must.push(match('modalities', m));
  if (f.excludeVideoIds?.length) mustNot.push({ key: 'videoId', match: { any: f.excludeVideoIds } });
  if (!must.length && !mustNot.length) return undefined;
  return { ...(must.length ? { must } : {}), ...(mustNot.length ? { must_not: mustNot } : {}) };
}

/** A resolved segment filter (shared.ts) → Qdrant filter over segment payloads; undefined when it constrains nothing. */
export function segmentFilter(f: SegmentFilter): Filter | undefined {
  const base = itemFilter(f.excludeVideoIds ? { excludeVideoIds: f.excludeVideoIds } : undefined);
  if (!f.videoIds) return base;
  return { ...base, must: [...((base?.must ?? []) as Condition[]), { key: 'videoId', match: { any: f.videoIds } }] };
}

function range(gte: number | undefined, lte: number | undefined, field: string) {
  for (const v of [gte, lte]) {
    if (v !== undefined && !Number.isFinite(v)) {
      throw new AppError('INVALID_FIELD', `${field} bounds must be finite numbers`, { field: `filter.${field}` });
    }
  }
  return { ...(gte !== undefined ? { gte } : {}), ...(lte !== undefined ? { lte } : {}) };
}

function checkedVector(v: Float32Array, dim: number, name: string): number[] {
  if (v.length !== dim) {
    throw new AppError('VECTOR_DIMENSION', `${name} has ${v.length} dimensions, the collection has ${dim}`, { field: name });
  }
  return Array.from(v);
}

function namedVectors(vs: Partial<Record<string, Float32Array>>, dim: number): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [name, v] of Object.entries(vs)) if (v) out[name] = checkedVector(v, dim, `vectors.${name}`);
  return out;
}

interface QRecord {
  payload?: Record<string, unknown> | null | undefined;
  vector?: unknown;
}

function toItemHit(rec: QRecord, score: number, withVectors: boolean): ItemHit {
  const p = (rec.payload ?? {}) as unknown as ItemPayload;
  const payload: ItemPayload = {
    videoId: p.videoId,
    title: p.title,
    description: p.description,
    tags: p.tags ?? [],
    durationS: p.durationS,
    uploadedAt: p.uploadedAt,
    modalities: p.modalities ?? [],
    generation: p.generation,
    sha256: p.sha256,
  };
  if (p.externalId != null) payload.externalId = p.externalId;
  if (p.evidence != null) payload.evidence = p.evidence;
  if (p.terms != null) payload.terms = p.terms;
  const hit: ItemHit = { videoId: payload.videoId, score, payload };
  if (withVectors) {
    const vectors: Partial<Record<VectorName, Float32Array>> = {};
    for (const [name, v] of Object.entries((rec.vector ?? {}) as Record<string, number[]>)) {
      if (Array.isArray(v)) vectors[name as VectorName] = Float32Array.from(v);
    }
    hit.vectors = vectors;
  }
  return hit;
}

function pickSegment(p: SegmentPayload): SegmentPayload {
  return { videoId: p.videoId, index: p.index, startS: p.startS, endS: p.endS, modalities: p.modalities, generation: p.generation };
}
