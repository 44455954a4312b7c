/** Batching and user-history packing: pure helpers, kept apart so they are tested without ONNX. */
import { AppError } from '../errors/index.ts';
import type { UserHistory } from './types.ts';

/**
 * Runs `fn` over consecutive slices of at most `max` items, one slice at a time (ONNX Runtime
 * already uses every core inside one run), and concatenates the results in order.
 */
export async function inBatches<T, R>(items: T[], max: number, fn: (slice: T[]) => Promise<R[]>): Promise<R[]> {
  if (!Number.isInteger(max) || max < 1) throw new AppError('CONFIG_INVALID', `maxBatch must be a positive integer, got ${max}`);
  const out: R[] = [];
  for (let i = 0; i < items.length; i += max) out.push(...(await fn(items.slice(i, i + max))));
  return out;
}

export interface PackedUsers {
  items: Float32Array;
  mask: Float32Array;
  age: Float32Array;
  n: number;
}

/**
 * Histories -> the user tower's inputs: the most recent `n` items, left-padded so the newest
 * item is always in the last slot (the trainer's convention), with mask 1 where an item is
 * present and age = seconds / `unitSeconds`.
 */
export function packUsers(histories: UserHistory[], n: number, dim: number, unitSeconds: number): PackedUsers {
  const items = new Float32Array(histories.length * n * dim);
  const mask = new Float32Array(histories.length * n);
  const age = new Float32Array(histories.length * n);
  histories.forEach((h, b) => {
    if (h.items.length !== h.ageSeconds.length) {
      throw new AppError('INVALID_FIELD', `history ${b} has ${h.items.length} items but ${h.ageSeconds.length} ages`);
    }
    const keep = Math.min(n, h.items.length);
    const first = h.items.length - keep;
    for (let k = 0; k < keep; k++) {
      const vec = h.items[first + k]!;
      if (vec.length !== dim)
        throw new AppError('VECTOR_DIMENSION', `history ${b} item ${first + k} has dimension ${vec.length}, expected ${dim}`);
      const slot = b * n + (n - keep) + k;
      items.set(vec, slot * dim);
      mask[slot] = 1;
      age[slot] = Math.max(0, h.ageSeconds[first + k]!) / unitSeconds;
    }
  });
  return { items, mask, age, n };
}
