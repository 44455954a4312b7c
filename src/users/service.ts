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

/** How far ahead of the server's clock an event may be stamped (clock skew), ms. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

/** Appends the events not seen before and asks for the changed users' vectors; `events.<i>` names a bad one. */
export async function recordEvents(
  deps: EventServiceDeps,
  events: BehaviourEvent[],
  now = Date.now(),
): Promise<{ accepted: number; duplicates: number }> {
  events.forEach((e, i) => {
    // A clock far in the future would pin an event as "newest" forever.
    if (e.timestamp > now + MAX_CLOCK_SKEW_MS)
      throw new AppError('INVALID_FIELD', `events.${i}.timestamp is in the future`, { field: `events.${i}.timestamp` });
  });
  const res = await deps.events.append(events);
  await deps.popularity?.record(events);
  await Promise.all(res.users.map((userId) => deps.jobs.requestUserVector(userId)));
  return { accepted: res.accepted, duplicates: res.duplicates };
}
