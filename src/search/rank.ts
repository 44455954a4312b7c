/** Pure ranking helpers for search: maximal marginal relevance, near-duplicate collapse, moment grouping. */
import { dot } from '../vectors.ts';

export interface Candidate {
  id: string;
  score: number;
  vector: Float32Array;
}

/**
 * Maximal marginal relevance (Carbonell & Goldstein 1998): repeatedly take the candidate maximising
 * (1 - diversity) * relevance - diversity * (max similarity to what is already taken). diversity = 0 keeps the
 * relevance order; diversity = 1 spreads as far as it can. Candidates at or above `dupThreshold` similarity to
 * a taken one are skipped while others remain, so near-copies never crowd the list when distinct items exist.
 */
export function mmr<T extends Candidate>(cands: T[], k: number, diversity: number, dupThreshold = 0.95): T[] {
  const taken: T[] = [];
  const left = [...cands].sort((a, b) => b.score - a.score);
  const maxSim = new Map<T, number>(left.map((c) => [c, -Infinity]));
  while (taken.length < k && left.length > 0) {
    const fresh = left.filter((c) => maxSim.get(c)! < dupThreshold);
    const pool = diversity > 0 && fresh.length > 0 ? fresh : left;
    let best = pool[0]!;
    let bestVal = -Infinity;
    for (const c of pool) {
      const penalty = taken.length ? maxSim.get(c)! : 0;
      const val = (1 - diversity) * c.score - diversity * penalty;
      if (val > bestVal) {
        bestVal = val;
        best = c;
      }
    }
    taken.push(best);
    left.splice(left.indexOf(best), 1);
    for (const c of left) maxSim.set(c, Math.max(maxSim.get(c)!, dot(c.vector, best.vector)));
  }
  return taken;
}

export interface SegmentScore {
  videoId: string;
  startS: number;
  endS: number;
  score: number;
}

export interface Moment {
  startS: number;
  endS: number;
  score: number;
}

/**
 * Groups segment hits by video: a video's segments scoring within `margin` of its best one are its matching
 * moments, and adjacent ones merge into one time range (score = the best segment in it); videos are ranked by
 * their best moment, and each keeps its top `perVideo` ranges.
 */
export function groupMoments(
  hits: SegmentScore[],
  perVideo = 3,
  margin = 0.05,
): Array<{ videoId: string; score: number; moments: Moment[] }> {
  const byVideo = new Map<string, SegmentScore[]>();
  for (const h of hits) {
    const list = byVideo.get(h.videoId) ?? [];
    list.push(h);
    byVideo.set(h.videoId, list);
  }
  const out = [...byVideo].map(([videoId, all]) => {
    const best = Math.max(...all.map((s) => s.score));
    const segs = all.filter((s) => s.score >= best - margin).sort((a, b) => a.startS - b.startS);
    const ranges: Moment[] = [];
    for (const s of segs) {
      const last = ranges[ranges.length - 1];
      if (last && s.startS <= last.endS + 1e-6) {
        last.endS = Math.max(last.endS, s.endS);
        last.score = Math.max(last.score, s.score);
      } else ranges.push({ startS: s.startS, endS: s.endS, score: s.score });
    }
    ranges.sort((a, b) => b.score - a.score);
    return { videoId, score: ranges[0]!.score, moments: ranges.slice(0, perVideo) };
  });
  return out.sort((a, b) => b.score - a.score);
}
