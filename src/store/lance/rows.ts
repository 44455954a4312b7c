/**
 * The embedded (LanceDB) store's tables: Arrow schemas, points → columns, rows → hits. Rows are
 * built column by column: a vector column is one flat Float32Array wrapped as a FixedSizeList,
 * which is what keeps a 1M-item backfill from spending its time in per-row object conversion.
 *
 * Each named vector is its own column `v_<name>` with a flag `has_<name>`: a missing vector is
 * stored as the unit vector e₀ (index training never sees a zero norm) and the flag keeps it out
 * of results.
 */
import {
  Bool,
  Field,
  FixedSizeList,
  Float32,
  Float64,
  List,
  Schema,
  Table,
  Utf8,
  makeData,
  makeVector,
  vectorFromArray,
  type DataType,
  type Vector,
} from 'apache-arrow';
import { AppError } from '../../errors/index.ts';
import { itemPointId, segmentPointId, userPointId } from '../ids.ts';
import { ITEM_VECTORS, SEGMENT_VECTORS, type Kind } from '../shared.ts';
import type {
  ItemHit,
  ItemPayload,
  ItemPoint,
  Modality,
  SegmentPayload,
  SegmentPoint,
  StoredEvidence,
  UserPoint,
  VectorName,
} from '../types.ts';

const utf8 = (name: string, nullable = false) => new Field(name, new Utf8(), nullable);
const f64 = (name: string) => new Field(name, new Float64(), false);
const strList = (name: string) => new Field(name, new List(new Field('item', new Utf8(), true)), false);
const vec = (name: string, dim: number) => new Field(name, new FixedSizeList(dim, new Field('item', new Float32(), true)), false);

/** Missing named vectors are stored as this placeholder with `has_<name> = false`, never searched. */
function vectorFields(names: readonly string[], dim: number): Field[] {
  return names.flatMap((n) => [vec(`v_${n}`, dim), new Field(`has_${n}`, new Bool(), false)]);
}

/**
 * Evidence columns (added by the enrich job, issue 10): `evidence` holds the items as JSON, `terms` their words
 * space-joined with a space at each end, so `terms LIKE '% dog %'` finds a word. Nullable, so tables written
 * before them get them added empty when opened (EmbeddedStore.open).
 */
export const ITEM_EVIDENCE_FIELDS = [utf8('evidence', true), utf8('terms', true)];

export function itemSchema(dim: number): Schema {
  return new Schema([
    utf8('id'),
    utf8('video_id'),
    utf8('title'),
    utf8('description'),
    strList('tags'),
    f64('duration_s'),
    f64('uploaded_at'),
    strList('modalities'),
    utf8('generation'),
    utf8('sha256'),
    utf8('external_id', true),
    ...ITEM_EVIDENCE_FIELDS,
    ...vectorFields(ITEM_VECTORS, dim),
  ]);
}

export function segmentSchema(dim: number): Schema {
  return new Schema([
    utf8('id'),
    utf8('video_id'),
    f64('index'),
    f64('start_s'),
    f64('end_s'),
    strList('modalities'),
    utf8('generation'),
    ...vectorFields(SEGMENT_VECTORS, dim),
  ]);
}

export function userSchema(dim: number): Schema {
  return new Schema([utf8('id'), utf8('user_id'), vec('vector', dim), f64('updated_at'), f64('events'), utf8('generation')]);
}

/** Column values keyed by field name; vector columns take one Float32Array per row or undefined. */
export type Columns = Record<string, unknown[]>;

/** Builds an Arrow table in `schema` from per-column arrays of equal length. */
export function buildTable(schema: Schema, cols: Columns, dim: number): Table {
  const out: Record<string, Vector> = {};
  for (const f of schema.fields) {
    const values = cols[f.name];
    if (!values) throw new AppError('INTERNAL', `column ${f.name} missing while building rows`);
    out[f.name] =
      f.type instanceof FixedSizeList
        ? vectorColumn(values as Float32Array[], dim, f.name)
        : f.type instanceof Float64
          ? makeVector(Float64Array.from(values as number[]))
          : vectorFromArray(values, f.type as DataType);
  }
  return new Table(schema, out);
}

/** Packs row vectors into one FixedSizeList column, checking each length against `dim`. */
function vectorColumn(rows: (Float32Array | undefined)[], dim: number, name: string): Vector {
  const flat = new Float32Array(rows.length * dim);
  rows.forEach((v, i) => {
    // e_0 stands in for a missing vector: unit length, so cosine k-means never divides by zero
    if (!v) return void (flat[i * dim] = 1);
    if (v.length !== dim) {
      throw new AppError('VECTOR_DIMENSION', `${name} has ${v.length} dimensions, the collection has ${dim}`, {
        field: name,
      });
    }
    flat.set(v, i * dim);
  });
  const type = new FixedSizeList(dim, new Field('item', new Float32(), true));
  const child = makeData({ type: new Float32(), length: flat.length, data: flat });
  return makeVector(makeData({ type, length: rows.length, nullCount: 0, child }));
}

/** Reads an Arrow list / fixed-size-list cell (or plain array) as a JS array of its values. */
export function cellArray<T>(cell: unknown): T[] {
  if (cell == null) return [];
  if (Array.isArray(cell)) return cell as T[];
  return Array.from(cell as Iterable<T>);
}

/** Reads a vector cell as a Float32Array copy (Arrow cells may view a shared buffer). */
export function cellVector(cell: unknown): Float32Array {
  const v = cell as { toArray?: () => unknown };
  const arr = typeof v.toArray === 'function' ? v.toArray() : cell;
  return Float32Array.from(arr as ArrayLike<number>);
}

export function schemaFor(kind: Kind, dim: number): Schema {
  return kind === 'items' ? itemSchema(dim) : kind === 'segments' ? segmentSchema(dim) : userSchema(dim);
}

/** The dimension of a table's vectors, from its schema (-1 when the column is not a fixed-size list). */
export function tableDim(schema: Schema, kind: Kind): number {
  const f = schema.fields.find((x) => x.name === (kind === 'users' ? 'vector' : 'v_fused'));
  return (f?.type as { listSize?: number } | undefined)?.listSize ?? -1;
}

/** The payload columns an item read selects (vectors only when asked for). */
export const ITEM_COLUMNS = [
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
  'evidence',
  'terms',
  ...ITEM_VECTORS.map((n) => `has_${n}`),
];
export const ITEM_VECTOR_COLUMNS = ITEM_VECTORS.map((n) => `v_${n}`);
export const SEGMENT_COLUMNS = ['id', 'video_id', 'index', 'start_s', 'end_s', 'modalities', 'generation'];

/** `v_<name>` and `has_<name>` columns of the points' named vectors. */
function vectorColumns(names: readonly VectorName[], points: readonly { vectors: Partial<Record<VectorName, Float32Array>> }[]): Columns {
  const cols: Columns = {};
  for (const n of names) {
    cols[`v_${n}`] = points.map((x) => x.vectors[n]);
    cols[`has_${n}`] = points.map((x) => x.vectors[n] !== undefined);
  }
  return cols;
}

export function itemColumns(points: ItemPoint[]): Columns {
  const p = points.map((x) => x.payload);
  return {
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
    evidence: p.map((x) => (x.evidence ? JSON.stringify(x.evidence) : null)),
    terms: p.map((x) => (x.terms ? ` ${x.terms.join(' ')} ` : null)),
    ...vectorColumns(ITEM_VECTORS, points),
  };
}

export function segmentColumns(points: SegmentPoint[]): Columns {
  const p = points.map((x) => x.payload);
  return {
    id: p.map((x) => segmentPointId(x.videoId, x.index)),
    video_id: p.map((x) => x.videoId),
    index: p.map((x) => x.index),
    start_s: p.map((x) => x.startS),
    end_s: p.map((x) => x.endS),
    modalities: p.map((x) => x.modalities),
    generation: p.map((x) => x.generation),
    ...vectorColumns(SEGMENT_VECTORS, points),
  };
}

export function userColumns(users: UserPoint[]): Columns {
  return {
    id: users.map((u) => userPointId(u.userId)),
    user_id: users.map((u) => u.userId),
    vector: users.map((u) => u.vector),
    updated_at: users.map((u) => u.updatedAt),
    events: users.map((u) => u.events),
    generation: users.map((u) => u.generation),
  };
}

export type Row = Record<string, unknown>;

export function toItemHit(r: Row, score: number, withVectors: boolean): ItemHit {
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
  if (r.evidence != null) payload.evidence = JSON.parse(String(r.evidence)) as StoredEvidence[];
  if (r.terms != null) payload.terms = String(r.terms).trim().split(' ').filter(Boolean);
  const hit: ItemHit = { videoId: payload.videoId, score, payload };
  if (withVectors) {
    const vectors: Partial<Record<VectorName, Float32Array>> = {};
    for (const n of ITEM_VECTORS) if (r[`has_${n}`]) vectors[n] = cellVector(r[`v_${n}`]);
    hit.vectors = vectors;
  }
  return hit;
}

export function toSegmentPayload(r: Row): SegmentPayload {
  return {
    videoId: String(r.video_id),
    index: Number(r.index),
    startS: Number(r.start_s),
    endS: Number(r.end_s),
    modalities: cellArray<Modality>(r.modalities),
    generation: String(r.generation),
  };
}

export function toUserPoint(r: Row): UserPoint {
  return {
    userId: String(r.user_id),
    vector: cellVector(r.vector),
    updatedAt: Number(r.updated_at),
    events: Number(r.events),
    generation: String(r.generation),
  };
}
