/**
 * Access: API keys with scopes, and per-key rate limits kept in Redis (so they hold across API instances).
 *
 * Keys are configured as sha256 hashes only (MONTAGE_API_KEYS); a request's key (`Authorization: Bearer <key>` or
 * `x-api-key`) is hashed and compared with every configured hash in constant time, so neither a match's position
 * nor a near miss shows in the timing. Scopes nest: admin ⊃ write ⊃ read. What a route needs:
 *   read  GET and HEAD routes, POST /v1/search (a search reads)
 *   write POST /v1/videos, POST /v1/events
 *   admin DELETE routes, GET /metrics, the webhook routes, POST /v1/jobs/:type/:id/retry
 * The health routes and the web page's static files (`/`, `/ui/*`: no data; the page asks for a key) need nothing. With no keys configured the API is open (the single-machine default, which the
 * config allows on a loopback host only, and which `montage serve` says at start-up).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
import { AppError } from '../errors/index.ts';
import type { AccessConfig, Scope } from '../config/index.ts';

const RANK: Record<Scope, number> = { read: 0, write: 1, admin: 2 };
const OPEN_PATHS = new Set(['/healthz', '/readyz', '/', '/ui/app.js', '/ui/style.css']);

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller: a key's short id (the first 12 hex of its hash), or null on an open API. */
    caller: { keyId: string; scope: Scope } | null;
  }
}

/** The scope a request needs (see the module comment). */
export function scopeFor(method: string, routeUrl: string): Scope {
  if (routeUrl === '/metrics' || routeUrl.startsWith('/v1/webhooks') || routeUrl === '/v1/jobs/:type/:id/retry') return 'admin';
  if (method === 'GET' || method === 'HEAD') return 'read';
  if (method === 'POST' && routeUrl === '/v1/search') return 'read';
  if (method === 'DELETE') return 'admin';
  return 'write';
}

/** The configured key whose hash matches, compared against every key in constant time. */
function match(keys: AccessConfig['keys'], presented: string): AccessConfig['keys'][number] | null {
  const digest = createHash('sha256').update(presented).digest();
  let found: AccessConfig['keys'][number] | null = null;
  for (const k of keys) if (timingSafeEqual(digest, k.digest) && !found) found = k;
  return found;
}

function presentedKey(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^Bearer /i.test(auth)) return auth.slice(7).trim();
  const x = req.headers['x-api-key'];
  return typeof x === 'string' ? x : undefined;
}

/** Registers the key check and the rate limit; call before the routes (the limit attaches to routes added after). */
export async function registerAccess(app: FastifyInstance, access: AccessConfig, redis: Redis, prefix: string): Promise<void> {
  app.decorateRequest('caller', null);
  if (access.keys.length > 0) {
    app.addHook('onRequest', async (req) => {
      const path = req.routeOptions.url ?? req.url.split('?')[0]!;
      if (OPEN_PATHS.has(path)) return;
      const presented = presentedKey(req);
      if (!presented) throw new AppError('UNAUTHORIZED', 'an API key is required (Authorization: Bearer <key>, or x-api-key)');
      const key = match(access.keys, presented);
      if (!key) throw new AppError('UNAUTHORIZED', 'the API key is not known');
      const need = scopeFor(req.method, path);
      if (RANK[key.scope] < RANK[need])
        throw new AppError('FORBIDDEN', `this key has scope ${key.scope}; ${req.method} ${path} needs ${need}`);
      req.caller = { keyId: key.digest.toString('hex').slice(0, 12), scope: key.scope };
    });
  }
  if (access.rateLimitPerMinute === 0) return;
  await app.register(rateLimit, {
    max: access.rateLimitPerMinute,
    timeWindow: 60_000,
    redis,
    nameSpace: `${prefix}:ratelimit:`,
    // Redis down: the routes that need it answer 503 themselves; the limit does not turn that into a 500.
    skipOnError: true,
    allowList: (req) => OPEN_PATHS.has(req.url.split('?')[0]!),
    keyGenerator: (req) => (req.caller ? `key:${req.caller.keyId}` : `ip:${req.ip}`),
    errorResponseBuilder: (_req, ctx) =>
      new AppError('RATE_LIMITED', `more than ${ctx.max} requests in ${ctx.after}; retry after ${ctx.after}`, {
        details: { ttl: ctx.ttl },
      }),
  });
}
