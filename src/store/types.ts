/**
 * The vector store seam. Two implementations behind this interface: the embedded default
 * (src/store/embedded.ts, no server) and Qdrant (src/store/qdrant.ts). Collections are per
 * generation (`items__<gen>`, `segments__<gen>`, `users__<gen>`) behind the aliases
 * `items`, `segments`, `users`; point ids are UUIDv5 of the video or user id; every write is
 * an upsert that resolves only once the store has confirmed it.
 */
export type VectorName = 'fused' | 'video' | 'audio' | 'text' | 'behaviour';
export type Modality = 'video' | 'audio' | 'text';

export interface ItemPayload {
  videoId: string;
  title: string;
  description: string;
  tags: string[];
  durationS: number;
  /** Unix milliseconds. */
  uploadedAt: number;
  modalities: Modality[];
  generation: string;
  sha256: string;
  externalId?: string | undefined;
  /**
   * What the enrich job found in the video (words read on screen, objects seen), each with its time range; absent
   * until the video is enriched.
   */
  evidence?: StoredEvidence[] | undefined;
  /** Normalised words of the evidence (OCR words, object class words), for `termsAny` filters and exact words. */
  terms?: string[] | undefined;
}

/** One piece of evidence as the store keeps it (src/enrich Evidence without frame counts and boxes). */
export interface StoredEvidence {
  kind: 'ocr' | 'object' | 'speech';
  text: string;
  startS: number;
  endS: number;
  confidence: number;
}

export interface ItemPoint {
  payload: ItemPayload;
  /** Named vectors; only those that exist are present. */
  vectors: Partial<Record<VectorName, Float32Array>>;
}

export interface SegmentPayload {
  videoId: string;
  index: number;
  startS: number;
  endS: number;
  modalities: Modality[];
  generation: string;
}
export interface SegmentPoint {
  payload: SegmentPayload;
  vectors: Partial<Record<'fused' | 'video' | 'audio', Float32Array>>;
}

export interface UserPoint {
  userId: string;
  vector: Float32Array;
  /** Unix milliseconds of the newest event folded in. */
  updatedAt: number;
  events: number;
  generation: string;
}

export interface ItemFilter {
  tagsAny?: string[];
  tagsAll?: string[];
  durationMinS?: number;
  durationMaxS?: number;
  uploadedAfter?: number;
  uploadedBefore?: number;
  /** Items that have all of these modalities. */
  modalities?: Modality[];
  excludeVideoIds?: string[];
  /** Items whose evidence terms include any of these (normalised lowercase words). */
  termsAny?: string[];
}

export interface SearchRequest {
  vector: Float32Array;
  using: VectorName;
  limit: number;
  offset?: number;
  filter?: ItemFilter;
  /** Return the stored vectors of the hits too (for MMR / dedup). */
  withVectors?: boolean;
}

export interface ItemHit {
  videoId: string;
  score: number;
  payload: ItemPayload;
  vectors?: Partial<Record<VectorName, Float32Array>>;
}
export interface SegmentHit {
  videoId: string;
  score: number;
  payload: SegmentPayload;
}

export interface StoreGeneration {
  name: string;
  dim: number;
}

export interface OpenOptions {
  /**
   * Read the generation's own collections instead of the aliases: a process that serves two generations at once
   * (a backfill in progress) holds one pinned store per generation, so a query encoded with one generation's model
   * is searched in that generation's vectors even while the aliases move (src/generations/router.ts).
   * @defaultValue false
   */
  pinned?: boolean;
}

export interface VectorStore {
  /**
   * Creates the generation's collections if missing and points the aliases at them when unset. Throws
   * GENERATION_MISMATCH when an alias points at a generation of another dimension.
   */
  open(gen: StoreGeneration, opts?: OpenOptions): Promise<void>;
  /** Which generation each alias points at, if any. */
  aliases(): Promise<Partial<Record<'items' | 'segments' | 'users', StoreGeneration>>>;
  upsertItems(points: ItemPoint[]): Promise<void>;
  /** Replaces every segment of the videos named in `points`. */
  upsertSegments(videoId: string, points: SegmentPoint[]): Promise<void>;
  getItem(videoId: string, withVectors?: boolean): Promise<ItemHit | null>;
  /** A video's segments with their vectors, in index order (the enrich job rewrites them with its evidence). */
  getSegments(videoId: string): Promise<SegmentPoint[]>;
  /** Several items in one read, in the order asked, null where there is none (a point read per item is slow with vectors). */
  getItems(videoIds: string[], withVectors?: boolean): Promise<Array<ItemHit | null>>;
  deleteVideo(videoId: string): Promise<void>;
  searchItems(req: SearchRequest): Promise<ItemHit[]>;
  searchSegments(req: SearchRequest & { using: 'fused' | 'video' | 'audio' }): Promise<SegmentHit[]>;
  countItems(filter?: ItemFilter): Promise<number>;
  upsertUsers(points: UserPoint[]): Promise<void>;
  getUser(userId: string): Promise<UserPoint | null>;
  /** Readiness probe. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
