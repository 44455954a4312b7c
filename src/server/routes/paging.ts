/** Paging that several routes share: the `limit`/`offset` query parameters and the configured cap on `limit`. */
import { AppError } from '../../errors/index.ts';

/** JSON Schema properties of `?limit=&offset=` (merged into a route's querystring schema). */
export const PAGE_QUERY_PROPERTIES = {
  limit: { type: 'integer', minimum: 1, default: 10 },
  offset: { type: 'integer', minimum: 0, maximum: 10000, default: 0 },
} as const;

/** The `:id` path parameter of the user routes (user ids are the platform's own: letters, digits and `._@-`). */
export const USER_ID_PARAMS = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._@-]+$' } },
} as const;

/** Refuses a `limit` above the configured maximum (MONTAGE_SEARCH_MAX_LIMIT) with LIMIT_TOO_LARGE. */
export function checkLimit(limit: number, cap: number): void {
  if (limit > cap) throw new AppError('LIMIT_TOO_LARGE', `limit ${limit} is above the maximum ${cap}`, { field: 'limit' });
}
