/**
 * The overlap of extraction and encoding inside one ingest: ffmpeg's segments go into a bounded queue as they are
 * decoded, and the towers take whatever has queued (up to a batch) as soon as they are free, so the towers run on
 * the core ffmpeg leaves idle instead of after it, and the job's tail after ffmpeg exits is the last batch only.
 * The queue is bounded, so a slow tower makes ffmpeg wait on its pipe: memory holds a few batches of frames,
 * whatever the video's length. Audio windows are pulled from their own ffmpeg in step with the frames (segment s
 * of both towers covers one span), zero windows once the track has ended, as segmentAudio pads.
 */
import type { Encoders } from '../src/models/types.ts';
import type { SegmentFrames } from '../src/media/types.ts';

/**
 * A bounded first-in first-out queue between one producer and one consumer. `fail` stops both sides with one
 * error (the first one wins), so whichever side fails, the other stops at its next call.
 */
export class BoundedQueue<T> {
  readonly #items: T[] = [];
  readonly #capacity: number;
  #closed = false;
  #error: unknown = undefined;
  #failed = false;
  /** Whoever waits (the producer for room, the consumer for items) is woken by the next change. */
  #wake: (() => void) | null = null;

  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity);
  }

  get size(): number {
    return this.#items.length;
  }

  /** Adds an item, waiting while the queue is full; throws the queue's error once it has failed. */
  async put(item: T): Promise<void> {
    while (!this.#failed && this.#items.length >= this.#capacity) await this.#wait();
    if (this.#failed) throw this.#error;
    if (this.#closed) throw new Error('put on a closed queue');
    this.#items.push(item);
    this.#notify();
  }

  /** Up to `max` items, waiting for at least one; [] once the queue is closed and empty. Throws once it has failed. */
  async take(max: number): Promise<T[]> {
    while (!this.#failed && this.#items.length === 0 && !this.#closed) await this.#wait();
    if (this.#failed) throw this.#error;
    const out = this.#items.splice(0, max);
    this.#notify();
    return out;
  }

  /** No more items: the consumer drains what is queued, then gets []. */
  close(): void {
    this.#closed = true;
    this.#notify();
  }

  /** Stops both sides with `err` (kept if the queue had already failed). */
  fail(err: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#error = err;
    this.#items.length = 0;
    this.#notify();
  }

  #wait(): Promise<void> {
    return new Promise((resolve) => {
      const before = this.#wake;
      this.#wake = () => {
        before?.();
        resolve();
      };
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

/** The towers' outputs per segment, in segment order. */
export interface SegmentVectors {
  video: Float32Array[];
  /** null when there is no audio to encode (no audio stream, or no audio tower). */
  audio: Float32Array[] | null;
}

export interface TowerFeed {
  encoders: Pick<Encoders, 'encodeFrames' | 'encodeAudio'>;
  /** Segments per tower call at most (the configured ONNX batch). */
  maxBatch: number;
  /** Audio windows in segment order, or null to encode no audio. Returned (its ffmpeg killed) when the frames end. */
  audio: AsyncIterator<Float32Array> | null;
  /** Samples per audio window: a zero window stands in for each segment past the end of the track. */
  audioSamples: number;
  /** Called with the segments encoded so far, after each batch. */
  onBatch?: (encoded: number) => void;
  /** Called as the first tower call starts and as each one ends (the encode span). */
  onRun?: (edge: 'start' | 'end') => void;
}

/** The next `count` audio windows, zero ones past the end of the track. */
async function nextWindows(audio: AsyncIterator<Float32Array>, count: number, samples: number): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let i = 0; i < count; i++) {
    const next = await audio.next();
    out.push(next.done ? new Float32Array(samples) : next.value);
  }
  return out;
}

/**
 * Encodes segments as they are queued until the queue is closed and drained. Frames are dropped once encoded; only
 * the vectors (one per segment and tower, a kilobyte each) are kept.
 */
export async function encodeAsTheyArrive(queue: BoundedQueue<SegmentFrames>, feed: TowerFeed): Promise<SegmentVectors> {
  const video: Float32Array[] = [];
  const audio: Float32Array[] | null = feed.audio ? [] : null;
  try {
    for (;;) {
      const batch = await queue.take(feed.maxBatch);
      if (batch.length === 0) break;
      feed.onRun?.('start');
      // The audio pipe is read while the video tower runs (ONNX Runtime runs off the event loop).
      const [vectors, windows] = await Promise.all([
        feed.encoders.encodeFrames(batch),
        feed.audio ? nextWindows(feed.audio, batch.length, feed.audioSamples) : null,
      ]);
      video.push(...vectors);
      if (windows) audio!.push(...(await feed.encoders.encodeAudio(windows)));
      feed.onRun?.('end');
      feed.onBatch?.(video.length);
    }
  } catch (err) {
    queue.fail(err); // the producer stops at its next put, with this error
    throw err;
  } finally {
    // The frames have ended (or the run failed): an audio track longer than the video is not read further.
    await feed.audio?.return?.(undefined);
  }
  return { video, audio };
}
