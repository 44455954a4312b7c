/**
 * Fusion: one vector per segment and one per video from the towers' outputs.
 *
 * All towers write into one joint space (unit vectors, compared by dot product), so fusing is a
 * weighted sum of unit vectors, L2-normalised again. The weights are renormalised over the
 * modalities PRESENT: a silent video's fused vector is built from video and text alone and has
 * the same unit norm as any other, instead of being a full vector with a hole where audio was.
 *
 * Why 0.5 / 0.2 / 0.3: the picture is what a viewer of a video platform searches and recommends
 * by, so it leads; the title and description are written by the uploader for exactly that and
 * come second; audio (music, voice) is informative but often generic (stock music) and is
 * missing from many uploads, so it only tilts the result.
 */
import { AppError } from '../errors/index.ts';
import type { Modality } from '../store/types.ts';
import { axpy, unit } from '../vectors.ts';

export type FusionWeights = Record<Modality, number>;

/** @defaultValue video 0.5, audio 0.2, text 0.3 (see the module comment for why). */
export const DEFAULT_FUSION_WEIGHTS: Readonly<FusionWeights> = Object.freeze({ video: 0.5, audio: 0.2, text: 0.3 });

/** Fixed order, so `modalities` lists read the same on every item. */
const ORDER: readonly Modality[] = ['video', 'audio', 'text'];

/** One segment's tower outputs; a missing tower is undefined. */
export interface SegmentVectors {
  video?: Float32Array | undefined;
  audio?: Float32Array | undefined;
}

export interface FusedVideo {
  /** The item vector: weighted, renormalised over `modalities`, unit norm. */
  fused: Float32Array;
  /** Per-modality item vectors, each unit norm: segment means for video and audio, the text tower's output. */
  video?: Float32Array;
  audio?: Float32Array;
  text?: Float32Array;
  /** The modalities that went into `fused`, in the order video, audio, text. */
  modalities: Modality[];
}

/** The segment vector: video and audio weighted over those present, unit norm. */
export function fuseSegment(segment: SegmentVectors, weights: FusionWeights = DEFAULT_FUSION_WEIGHTS): Float32Array {
  return weightedSum({ video: segment.video, audio: segment.audio }, weights).vector;
}

/**
 * The video's vectors: per modality the mean over the segments that have it (renormalised), the
 * text vector as given, and their weighted fusion.
 */
export function fuseVideo(
  segments: readonly SegmentVectors[],
  text?: Float32Array,
  weights: FusionWeights = DEFAULT_FUSION_WEIGHTS,
): FusedVideo {
  const parts: Partial<Record<Modality, Float32Array>> = {
    video: meanUnit(segments.map((s) => s.video)),
    audio: meanUnit(segments.map((s) => s.audio)),
    text: text ? (unit(text) ?? undefined) : undefined,
  };
  const { vector, modalities } = weightedSum(parts, weights);
  const out: FusedVideo = { fused: vector, modalities };
  for (const m of modalities) out[m] = parts[m]!;
  return out;
}

/** The weights of the present modalities, rescaled to sum to 1. */
export function renormalisedWeights(present: readonly Modality[], weights: FusionWeights = DEFAULT_FUSION_WEIGHTS): Partial<FusionWeights> {
  for (const m of present) {
    const w = weights[m];
    if (!Number.isFinite(w) || w < 0) throw new AppError('CONFIG_INVALID', `fusion weight for ${m} must be >= 0, got ${w}`);
  }
  const total = present.reduce((sum, m) => sum + weights[m], 0);
  if (!(total > 0)) throw new AppError('CONFIG_INVALID', `fusion weights of ${present.join(', ')} sum to 0`);
  return Object.fromEntries(present.map((m) => [m, weights[m] / total]));
}

function weightedSum(parts: Partial<Record<Modality, Float32Array | undefined>>, weights: FusionWeights) {
  const modalities = ORDER.filter((m) => parts[m] !== undefined);
  if (modalities.length === 0) throw new AppError('INTERNAL', 'fusion failed: no modality to fuse');
  const w = renormalisedWeights(modalities, weights);
  const dim = checkDims(modalities.map((m) => parts[m]!));
  const sum = new Float32Array(dim);
  for (const m of modalities) axpy(w[m]!, parts[m]!, sum);
  const vector = unit(sum);
  if (!vector) throw new AppError('INTERNAL', `fusion failed: ${modalities.join(' + ')} cancel out`);
  return { vector, modalities };
}

/** Mean of the defined vectors, unit norm; undefined when none is defined (or they cancel). */
function meanUnit(vectors: ReadonlyArray<Float32Array | undefined>): Float32Array | undefined {
  const present = vectors.filter((v): v is Float32Array => v !== undefined);
  if (present.length === 0) return undefined;
  const sum = new Float32Array(checkDims(present));
  for (const v of present) axpy(1, v, sum);
  return unit(sum) ?? undefined;
}

function checkDims(vectors: readonly Float32Array[]): number {
  const dim = vectors[0]!.length;
  const bad = vectors.find((v) => v.length !== dim);
  if (bad) throw new AppError('VECTOR_DIMENSION', `fusion failed: vectors of dimension ${dim} and ${bad.length}`);
  return dim;
}
