/**
 * Per-frame readings → evidence items with time ranges. The same line (or object class) seen on
 * neighbouring sampled frames becomes one item spanning from the first frame's time to the end of
 * the last frame's span; OCR reads a line slightly differently from frame to frame ("BREAKING
 * NEWS:" / "BREAKING NEWS"), so lines match by similarity; a partial reading at the same place
 * ("Chapter 3 The" under "Chapter 3 The long road home", read on a frame where the background made
 * part of the line illegible) continues the line too when its words are among the line's words. The
 * item keeps the reading with the most confident characters summed over its frames, so a full
 * reading beats a partial one. Pure.
 */
import { lineKey, lineSimilarity, normaliseWords } from './text.ts';
import type { Box, Evidence, EvidenceKind, Observation } from './types.ts';

/** What one sampled frame showed, and the span of the video it stands for. */
export interface FrameReading {
  timeS: number;
  endS: number;
  observations: Observation[];
}

export interface MergeOptions {
  kind: EvidenceKind;
  /**
   * Two readings are one line when lineSimilarity() is at least this (1 = same normalised words).
   * @defaultValue 0.8
   */
  similarity?: number;
  /**
   * A reading whose words are at least this share of an open line's words, on a box that overlaps
   * the line's by at least half of the smaller one, continues that line; false turns this off
   * (object classes: "dog" must not continue "hot dog").
   * @defaultValue 0.8
   */
  containment?: number | false;
  /**
   * A line absent from this many consecutive sampled frames still continues when it comes back
   * (OCR misses a frame now and then; a detector drops a score under its threshold).
   * @defaultValue 1
   */
  maxMissedFrames?: number;
}

interface Open {
  startS: number;
  endS: number;
  lastFrame: number;
  frames: number;
  confidence: number;
  box: Box | undefined;
  /** Union of the boxes of all its readings: where the line is, for matching partial readings. */
  place: Box | undefined;
  /** reading -> confidence x letters, summed over the frames that read it so */
  readings: Map<string, number>;
}

/** The observations of one frame with duplicates (same normalised text) folded into the best one. */
function distinct(observations: Observation[]): Observation[] {
  const byKey = new Map<string, Observation>();
  for (const o of observations) {
    const key = lineKey(o.text);
    if (!key) continue;
    const seen = byKey.get(key);
    if (!seen || o.confidence > seen.confidence) byKey.set(key, o);
  }
  return [...byKey.values()];
}

function bestReading(readings: Map<string, number>): string {
  let best = '';
  let score = -1;
  for (const [text, s] of readings) {
    if (s > score) [best, score] = [text, s];
  }
  return best;
}

function close(item: Open, kind: EvidenceKind): Evidence {
  return {
    kind,
    text: bestReading(item.readings),
    startS: item.startS,
    endS: item.endS,
    confidence: item.confidence,
    frames: item.frames,
    ...(item.box ? { box: item.box } : {}),
  };
}

/** Share of the smaller box covered by the other; 0 when either is unknown. */
function boxOverlap(a: Box | undefined, b: Box | undefined): number {
  if (!a || !b) return 0;
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const smaller = Math.min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]));
  return smaller > 0 ? (w * h) / smaller : 0;
}

/** The smallest box holding both (either may be unknown). */
function union(a: Box | undefined, b: Box | undefined): Box | undefined {
  if (!a || !b) return a ?? b;
  return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[2], b[2]), Math.max(a[3], b[3])];
}

/** Share of the words of `part` that occur in `whole`. */
function wordsWithin(part: string, whole: string): number {
  const words = normaliseWords(part);
  const pool = new Set(normaliseWords(whole));
  return words.length ? words.filter((w) => pool.has(w)).length / words.length : 0;
}

/** Weight of one frame's reading: its confidence times its letters and digits. */
function weight(o: Observation): number {
  return o.confidence * lineKey(o.text).replace(/ /g, '').length;
}

/**
 * Finds the open item this observation continues, not yet matched in this frame: the most similar
 * reading, else one whose words (either way round) contain it at the same place.
 */
function match(open: Open[], o: Observation, taken: Set<Open>, minSimilarity: number, containment: number | false): Open | undefined {
  let best: Open | undefined;
  let bestSim = minSimilarity;
  for (const item of open) {
    if (taken.has(item)) continue;
    const sim = lineSimilarity(o.text, bestReading(item.readings));
    if (sim >= bestSim) [best, bestSim] = [item, sim];
  }
  if (best || containment === false) return best;
  return open.find((item) => {
    if (taken.has(item) || boxOverlap(o.box, item.place) < 0.5) return false;
    const line = bestReading(item.readings);
    return wordsWithin(o.text, line) >= containment || wordsWithin(line, o.text) >= containment;
  });
}

/** Frames must be in time order. Returns the evidence sorted by start time, then text. */
export function mergeReadings(frames: FrameReading[], opts: MergeOptions): Evidence[] {
  const minSimilarity = opts.similarity ?? 0.8;
  const containment = opts.containment ?? 0.8;
  const maxMissed = opts.maxMissedFrames ?? 1;
  let open: Open[] = [];
  const done: Evidence[] = [];
  frames.forEach((frame, f) => {
    const taken = new Set<Open>();
    for (const o of distinct(frame.observations)) {
      const item = match(open, o, taken, minSimilarity, containment);
      if (item) {
        item.endS = Math.max(item.endS, frame.endS);
        item.lastFrame = f;
        item.place = union(item.place, o.box);
        item.frames++;
        if (o.confidence > item.confidence) [item.confidence, item.box] = [o.confidence, o.box];
        item.readings.set(o.text, (item.readings.get(o.text) ?? 0) + weight(o));
        taken.add(item);
      } else {
        const fresh: Open = {
          startS: frame.timeS,
          endS: frame.endS,
          lastFrame: f,
          frames: 1,
          confidence: o.confidence,
          box: o.box,
          place: o.box,
          readings: new Map([[o.text, weight(o)]]),
        };
        open.push(fresh);
        taken.add(fresh);
      }
    }
    const still: Open[] = [];
    for (const item of open) {
      if (f - item.lastFrame > maxMissed) done.push(close(item, opts.kind));
      else still.push(item);
    }
    open = still;
  });
  done.push(...open.map((item) => close(item, opts.kind)));
  return done.sort((a, b) => a.startS - b.startS || a.text.localeCompare(b.text));
}
