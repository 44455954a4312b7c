/**
 * What both stores (embedded.ts, qdrant.ts) do the same way, written once: the collection kinds and the vectors
 * each holds, collection naming, the checks on a generation, a query and a write, and the resolution of item-level
 * filters for a segment search. Each adapter only translates these into its own query language.
 */
import { AppError } from '../errors/index.ts';
import type { ItemFilter, SearchRequest, SegmentPoint, StoreGeneration, VectorName } from './types.ts';

export type Kind = 'items' | 'segments' | 'users';
export const KINDS: readonly Kind[] = ['items', 'segments', 'users'];

/** The named vectors an item point may carry. */
export const ITEM_VECTORS = ['fused', 'video', 'audio', 'text', 'behaviour'] as const;
/** The named vectors a segment point may carry (a segment has no text). */
export const SEGMENT_VECTORS = ['fused', 'video', 'audio'] as const;
/** The one vector of a user point: the user in the behaviour space. */
export const USER_VECTOR = 'behaviour' as const;

/** `[prefix]<kind>__<generation>`: one collection per kind per generation, behind the alias `[prefix]<kind>`. */
export function collectionName(kind: Kind, generation: string, prefix = ''): string {
  return `${prefix}${kind}__${generation}`;
}

/** The generation a collection named by collectionName belongs to. */
export function generationOf(collection: string, kind: Kind, prefix = ''): string {
  return collection.slice(collectionName(kind, '', prefix).length);
}

const GEN_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** A generation name must be usable as a collection-name suffix in every store. */
export function checkGenerationName(name: string): void {
  if (!GEN_NAME.test(name)) {
    throw new AppError('CONFIG_INVALID', `generation name ${JSON.stringify(name)} is not a valid collection suffix`);
  }
}

/** open(gen) refuses a generation whose dimension differs from what an alias already points at. */
export function checkAliasDim(alias: string, target: { collection: string; dim: number }, gen: StoreGeneration): void {
  if (target.dim !== gen.dim) {
    throw new AppError(
      'GENERATION_MISMATCH',
      `alias ${alias} points at ${target.collection} (dim ${target.dim}) but generation ${gen.name} has dim ${gen.dim}`,
    );
  }
}

/** A search request the collection can answer: a vector it holds, the right dimension, a sane page. */
export function checkQuery(req: SearchRequest, allowed: readonly VectorName[], dim: number): void {
  if (!allowed.includes(req.using)) throw new AppError('INVALID_FIELD', `cannot search by ${req.using}`, { field: 'using' });
  if (req.vector.length !== dim) {
    throw new AppError('VECTOR_DIMENSION', `query has ${req.vector.length} dimensions, the collection has ${dim}`, { field: 'vector' });
  }
  if (!Number.isInteger(req.limit) || req.limit < 1)
    throw new AppError('INVALID_FIELD', 'limit must be a positive integer', { field: 'limit' });
  if (req.offset !== undefined && (!Number.isInteger(req.offset) || req.offset < 0)) {
    throw new AppError('INVALID_FIELD', 'offset must be a non-negative integer', { field: 'offset' });
  }
}

/** One point per id, the last one given winning (an upsert batch that names an id twice writes it once). */
export function lastById<T>(points: readonly T[], id: (p: T) => string): T[] {
  return [...new Map(points.map((p) => [id(p), p])).values()];
}

/** upsertSegments(videoId, points) replaces one video's segments: a point of another video is our bug. */
export function checkSegmentsOf(videoId: string, points: readonly SegmentPoint[]): void {
  const stray = points.find((p) => p.payload.videoId !== videoId);
  if (stray) throw new AppError('INTERNAL', `segment of ${stray.payload.videoId} passed while replacing ${videoId}`);
}

/** Whether a filter constrains anything (an empty list constrains nothing). */
export function constrains(f: ItemFilter | undefined): boolean {
  if (!f) return false;
  return Boolean(
    f.tagsAny?.length ||
    f.tagsAll?.length ||
    f.termsAny?.length ||
    f.modalities?.length ||
    f.excludeVideoIds?.length ||
    [f.durationMinS, f.durationMaxS, f.uploadedAfter, f.uploadedBefore].some((v) => v !== undefined),
  );
}

/** An item filter as it applies to segments: videos to leave out, and (when item-level fields were given) the only videos to keep. */
export interface SegmentFilter {
  excludeVideoIds?: string[];
  videoIds?: string[];
}

/**
 * Segments carry no tags, durations or text, so the item-level part of a filter (modalities included: they are
 * the item's) is resolved to the matching video ids first, by `matching` (one query of the items collection).
 * Returns null when no video matches, so the caller answers with no hits without searching.
 */
export async function resolveSegmentFilter(
  f: ItemFilter | undefined,
  matching: (itemLevel: ItemFilter) => Promise<string[]>,
): Promise<SegmentFilter | null> {
  if (!f) return {};
  const { excludeVideoIds, ...itemLevel } = f;
  const out: SegmentFilter = excludeVideoIds?.length ? { excludeVideoIds } : {};
  if (!constrains(itemLevel)) return out;
  const videoIds = await matching(itemLevel);
  return videoIds.length ? { ...out, videoIds } : null;
}
