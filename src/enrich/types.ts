/** The evidence engines' shared types: what a video shows, reads and says, each with its time range. */

export type EvidenceKind = 'ocr' | 'object' | 'speech';

/** A normalised box on the frame: [x1, y1, x2, y2], each in 0..1 of the width or height. */
export type Box = [number, number, number, number];

/** One piece of evidence: a line of on-screen text, an object class, or a stretch of speech. */
export interface Evidence {
  kind: EvidenceKind;
  /** What was read (a line as read), seen (a COCO class name) or heard (the words). */
  text: string;
  /** Seconds from the start of the video: the first sampled frame that showed it. */
  startS: number;
  /** Seconds: where the last frame that showed it stops representing the video (the next sample, or the end). */
  endS: number;
  /** 0..1: the best confidence among the frames merged into this item. */
  confidence: number;
  /** Frames (observations) merged into this item. */
  frames: number;
  /** Where it was on the frame with the best confidence, when the engine says. */
  box?: Box;
}

/** One engine's reading of one frame: a line of text or one detected object. */
export interface Observation {
  text: string;
  /** 0..1 */
  confidence: number;
  box?: Box;
}

/**
 * A frame chosen by the sampler: RGB24 pixels, row-major, and the span of the video it stands for
 * (from its own time to the next sampled frame's, or the end of the range).
 */
export interface SampledFrame {
  index: number;
  timeS: number;
  endS: number;
  width: number;
  height: number;
  /** width * height * 3 bytes, RGB. */
  rgb: Uint8Array;
  /** Why it was kept: the first frame, a change of picture, or the refresh interval. */
  reason: 'first' | 'change' | 'refresh';
  /** Share of thumbnail cells that changed against the previously kept frame (0..1). */
  change: number;
}

/** A time range of the video to work on, in seconds. */
export interface TimeRange {
  startS: number;
  endS: number;
}
