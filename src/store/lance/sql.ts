/** Filters as SQL predicates (DataFusion) for LanceDB: pushed into the vector search as a prefilter. */
import { AppError } from '../../errors/index.ts';
import type { ItemFilter } from '../types.ts';
import type { SegmentFilter } from '../shared.ts';

/** Quotes a string literal for a LanceDB (DataFusion SQL) predicate. */
export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** `'a', 'b'`: a list of quoted literals, for `IN (...)` and `make_array(...)`. */
export function sqlList(values: readonly string[]): string {
  return values.map(sqlString).join(', ');
}

/** Escapes LIKE's wildcards (and the escape character) in a literal word. */
function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function finite(value: number, field: string): string {
  if (!Number.isFinite(value)) throw new AppError('INVALID_FIELD', `${field} must be a finite number`, { field: `filter.${field}` });
  return String(value);
}

/** ItemFilter → SQL conjuncts over item columns. */
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
  if (f.termsAny?.length)
    out.push(`(${f.termsAny.map((t) => `terms LIKE ${sqlString(`% ${likeEscape(t)} %`)} ESCAPE '\\'`).join(' OR ')})`);
  if (f.excludeVideoIds?.length) out.push(`video_id NOT IN (${sqlList(f.excludeVideoIds)})`);
  return out;
}

/** A resolved segment filter (shared.ts) → SQL conjuncts over segment columns. */
export function segmentFilterSql(f: SegmentFilter): string[] {
  const out = filterSql({ ...(f.excludeVideoIds ? { excludeVideoIds: f.excludeVideoIds } : {}) });
  if (f.videoIds) out.push(`video_id IN (${sqlList(f.videoIds)})`);
  return out;
}
