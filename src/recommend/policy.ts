/**
 * The recommendation policy as pure functions (README "Recommendations"): how personal a list is for a history of
 * n events, how the personal and popular-and-fresh lists are interleaved, how many slots new items get and
 * where, and which experiment arm a user falls in.
 */
import { createHash } from 'node:crypto';
import type { Experiment, ExperimentArm } from '../config/index.ts';
import { axpy, unit } from '../vectors.ts';

/** Share of the list that is personal after n engaged events: min(1, n / personalAt); 0 with no events. */
export function personalShare(n: number, personalAt: number): number {
  return Math.min(1, Math.max(0, n) / personalAt);
}

/** Slots of a list of `want` reserved for items with no interactions: round(want * share), at least 1 when share > 0. */
export function newItemSlots(want: number, share: number): number {
  if (share <= 0 || want <= 0) return 0;
  return Math.min(want, Math.max(1, Math.round(want * share)));
}

/**
 * Interleaves two ranked lists so that every prefix holds `share` of the first (rounded in its favour at ties):
 * position i takes from `a` when a's count so far is below share * (i + 1). Repeats (by key) are skipped; when a
 * list runs out the other fills the rest.
 */
export function interleave<T>(a: T[], b: T[], share: number, n: number, key: (t: T) => string): T[] {
  const out: T[] = [];
  const taken = new Set<string>();
  let ia = 0;
  let ib = 0;
  let fromA = 0;
  const next = (list: T[], i: number): [T | undefined, number] => {
    while (i < list.length && taken.has(key(list[i]!))) i++;
    return [list[i], i];
  };
  while (out.length < n) {
    let ca: T | undefined;
    let cb: T | undefined;
    [ca, ia] = next(a, ia);
    [cb, ib] = next(b, ib);
    if (ca === undefined && cb === undefined) break;
    const wantA = fromA < share * (out.length + 1) - 1e-9;
    const pick = ca !== undefined && (wantA || cb === undefined) ? 'a' : 'b';
    const item = pick === 'a' ? ca! : cb!;
    if (pick === 'a') {
      fromA++;
      ia++;
    } else ib++;
    taken.add(key(item));
    out.push(item);
  }
  return out;
}

/**
 * Puts the new items into the list at evenly spread positions (slot j of k at floor((j + 0.5) * want / k)), so
 * they are seen on the first page but never crowd its top; the list keeps its length `want`.
 */
export function placeNewItems<T>(list: T[], fresh: T[], want: number): T[] {
  const k = fresh.length;
  const out = list.slice(0, want - k);
  for (let j = 0; j < k; j++) {
    const pos = Math.min(out.length, Math.floor(((j + 0.5) * want) / k));
    out.splice(pos, 0, fresh[j]!);
  }
  return out.slice(0, want);
}

/**
 * The arm of `experiment` a subject (user id, or session id) falls in: the first 32 bits of
 * sha256("<experiment>:<subject>") as a fraction of 2^32, cut by the arms' cumulative weights (in declared order).
 * Deterministic, and independent between experiments; changing the arms or weights reshuffles subjects.
 */
export function assignArm(experimentName: string, experiment: Experiment, subject: string): ExperimentArm {
  const h = createHash('sha256').update(`${experimentName}:${subject}`).digest().readUInt32BE(0) / 2 ** 32;
  const total = experiment.arms.reduce((s, a) => s + a.weight, 0);
  let acc = 0;
  for (const arm of experiment.arms) {
    acc += arm.weight / total;
    if (h < acc) return arm;
  }
  return experiment.arms[experiment.arms.length - 1]!;
}

/**
 * The personal query: unit((1 - w) * user + w * unit(mean of the watched items' behaviour vectors)). Linear in the
 * item, so one nearest-neighbour query ranks by (1 - w) * cos(user, item) + w * mean cos(watched, item), a hybrid
 * of the user tower and item-to-item similarity that stays right when the tower is weak (README
 * "Recommendations"). Without a user vector the centroid alone; undefined when there is neither.
 */
export function personalQuery(user: Float32Array | undefined, watched: Float32Array[], w: number): Float32Array | undefined {
  const mean = watched.length && w > 0 ? new Float32Array(watched[0]!.length) : undefined;
  if (mean) for (const v of watched) axpy(1 / watched.length, v, mean);
  const centroid = mean ? unit(mean) : null;
  if (!centroid) return user;
  if (!user) return centroid;
  const q = new Float32Array(user.length);
  axpy(1 - w, user, q);
  axpy(w, centroid, q);
  return unit(q) ?? user;
}
