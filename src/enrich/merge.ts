/**
 * Per-frame readings → evidence items with time ranges. The same line (or object class) seen on
 * neighbouring sampled frames becomes one item spanning from the first frame's time to the end of
 * the last frame's span; OCR reads a line slightly differently from frame to frame ("BREAKING
 * NEWS:" / "BREAKING NEWS"), so lines match by similarity, and the item keeps the reading with
 * the most confidence summed over its frames. Pure.
 */
import { lineKey, lineSimilarity } from './text.ts';
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
  /** reading -> confidence summed over the frames that read it so */
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

/** Finds the open item this observation continues: the most similar one not yet matched in this frame. */
function match(open: Open[], o: Observation, taken: Set<Open>, minSimilarity: number): Open | undefined {
  let best: Open | undefined;
  let bestSim = minSimilarity;
  for (const item of open) {
    if (taken.has(item)) continue;
    const sim = lineSimilarity(o.text, bestReading(item.readings));
    if (sim >= bestSim) [best, bestSim] = [item, sim];
  }
  return best;
}

/** Frames must be in time order. Returns the evidence sorted by start time, then text. */
export function mergeReadings(frames: FrameReading[], opts: MergeOptions): Evidence[] {
  const minSimilarity = opts.similarity ?? 0.8;
  const maxMissed = opts.maxMissedFrames ?? 1;
  let open: Open[] = [];
  const done: Evidence[] = [];
  frames.forEach((frame, f) => {
    const taken = new Set<Open>();
    for (const o of distinct(frame.observations)) {
      const item = match(open, o, taken, minSimilarity);
      if (item) {
        item.endS = Math.max(item.endS, frame.endS);
        item.lastFrame = f;
        item.frames++;
        if (o.confidence > item.confidence) [item.confidence, item.box] = [o.confidence, o.box];
        item.readings.set(o.text, (item.readings.get(o.text) ?? 0) + o.confidence);
        taken.add(item);
      } else {
        const fresh: Open = {
          startS: frame.timeS,
          endS: frame.endS,
          lastFrame: f,
          frames: 1,
          confidence: o.confidence,
          box: o.box,
          readings: new Map([[o.text, o.confidence]]),
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
