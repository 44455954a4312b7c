/**
 * Arrow schemas and row conversion for the embedded (LanceDB) store. Rows are built column by
 * column: a vector column is one flat Float32Array wrapped as a FixedSizeList, which is what
 * keeps a 1M-item backfill from spending its time in per-row object conversion.
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
import { AppError } from '../errors/index.ts';

export const ITEM_VECTORS = ['fused', 'video', 'audio', 'text', 'behaviour'] as const;
export const SEGMENT_VECTORS = ['fused', 'video', 'audio'] as const;

const utf8 = (name: string, nullable = false) => new Field(name, new Utf8(), nullable);
const f64 = (name: string) => new Field(name, new Float64(), false);
const strList = (name: string) => new Field(name, new List(new Field('item', new Utf8(), true)), false);
const vec = (name: string, dim: number) => new Field(name, new FixedSizeList(dim, new Field('item', new Float32(), true)), false);

/** Missing named vectors are stored as this placeholder with `has_<name> = false`, never searched. */
function vectorFields(names: readonly string[], dim: number): Field[] {
  return names.flatMap((n) => [vec(`v_${n}`, dim), new Field(`has_${n}`, new Bool(), false)]);
}

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

/** Quotes a string literal for a LanceDB (DataFusion SQL) predicate. */
export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** `('a', 'b')` / `['a', 'b']` style list of quoted literals. */
export function sqlList(values: readonly string[]): string {
  return values.map(sqlString).join(', ');
}
