/**
 * Deterministic point ids. Every write is an upsert keyed by these, so a job that runs twice
 * lands on the same points (the design's contracts: "point ids are deterministic"). Qdrant only
 * accepts unsigned integers or UUIDs as ids, hence UUIDv5 rather than the raw video id.
 */
import { v5 as uuidv5 } from 'uuid';

/** Namespaces are fixed forever: changing one orphans every stored point. */
export const ITEM_NAMESPACE = '6f1c2a0e-3b7d-5d4e-9a51-8c2f0b7e4d13';
export const USER_NAMESPACE = 'b0d5e2f4-71a9-5c3b-8e26-4a9f1c7d0e58';
export const SEGMENT_NAMESPACE = '2e8a4c61-9f0b-5a7d-b3c4-d15e7f9a2b60';

/** Point id of a video's item. */
export function itemPointId(videoId: string): string {
  return uuidv5(videoId, ITEM_NAMESPACE);
}

/** Point id of a user's vector; distinct namespace so a user and a video with the same id never collide. */
export function userPointId(userId: string): string {
  return uuidv5(userId, USER_NAMESPACE);
}

/** Point id of segment `index` of a video. */
export function segmentPointId(videoId: string, index: number): string {
  return uuidv5(`${videoId}#${index}`, SEGMENT_NAMESPACE);
}
