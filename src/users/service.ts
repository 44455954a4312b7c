/**
 * Behaviour in: a batch of events is checked, appended to the event log (once per eventId), and every user whose
 * state changed gets a debounced recomputation of their vector. Shared by POST /v1/events and anything else that
 * feeds events.
 */
import { AppError } from '../errors/index.ts';
import type { JobQueue } from '../queue/index.ts';
import type { BehaviourEvent, EventLog } from './events.ts';
import type { Popularity } from '../recommend/popularity.ts';

export interface EventServiceDeps {
  events: EventLog;
  jobs: Pick<JobQueue, 'requestUserVector'>;
  /** Decayed popularity for recommendations (counts each event once by its id, as the log does). */
  popularity?: Pick<Popularity, 'record'>;
}

/** Refused events listed in a response (the count covers them all). */
const MAX_REFUSALS_LISTED = 100;

/**
 * What became of a batch. An event whose video has no record is refused (VIDEO_NOT_FOUND) and not kept: it can be
 * sent again once the video exists. One on a video still being ingested is accepted and counts once it is ready.
 */
export interface EventsOutcome {
  accepted: number;
  duplicates: number;
  refused?: Array<{ index: number; code: 'VIDEO_NOT_FOUND'; field: string }>;
  refusedCount?: number;
}

/** How far ahead of the server's clock an event may be stamped (clock skew), ms. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

/** Appends the events not seen before and asks for the changed users' vectors; `events.<i>` names a bad one. */
export async function recordEvents(deps: EventServiceDeps, events: BehaviourEvent[], now = Date.now()): Promise<EventsOutcome> {
  events.forEach((e, i) => {
    // A clock far in the future would pin an event as "newest" forever.
    if (e.timestamp > now + MAX_CLOCK_SKEW_MS)
      throw new AppError('INVALID_FIELD', `events.${i}.timestamp is in the future`, { field: `events.${i}.timestamp` });
  });
  const res = await deps.events.append(events);
  // Only what the log took counts (a refused event names no video; a duplicate is counted once either way).
  await deps.popularity?.record(events.filter((_, i) => res.outcomes[i] === 'accepted'));
  await Promise.all(res.users.map((userId) => deps.jobs.requestUserVector(userId)));
  const count = (o: string) => res.outcomes.filter((x) => x === o).length;
  const refused = res.outcomes.flatMap((o, index) =>
    o === 'unknown-video' ? [{ index, code: 'VIDEO_NOT_FOUND' as const, field: `events.${index}.videoId` }] : [],
  );
  return {
    accepted: count('accepted'),
    duplicates: count('duplicate'),
    ...(refused.length ? { refused: refused.slice(0, MAX_REFUSALS_LISTED), refusedCount: refused.length } : {}),
  };
}
