/**
 * Access on the real app and Redis: API keys (configured as sha256 hashes) with nested scopes, 401 without a known
 * key, 403 without the scope, the health routes open, and per-key rate limits counted in Redis, so a second API
 * instance on the same Redis enforces the same budget.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { startTestService, type TestService } from '../helpers/service.ts';
import { buildApp } from '../../src/server/app.ts';
import { loadConfig } from '../../src/config/index.ts';
import { isAppError } from '../../src/errors/index.ts';

const LIMIT = 20;
const keys = {
  read: randomBytes(24).toString('hex'),
  write: randomBytes(24).toString('hex'),
  admin: randomBytes(24).toString('hex'),
  limited: randomBytes(24).toString('hex'),
};
const sha = (k: string) => createHash('sha256').update(k).digest('hex');
let svc: TestService;

before(async () => {
  svc = await startTestService({
    env: {
      MONTAGE_API_KEYS: [
        `${sha(keys.read)}:read`,
        `${sha(keys.write)}:write`,
        `${sha(keys.admin)}:admin`,
        `${sha(keys.limited)}:read`,
      ].join(','),
      MONTAGE_RATE_LIMIT_PER_MIN: String(LIMIT),
    },
  });
});
after(async () => svc?.close());

const as = (key: string | undefined, req: InjectOptions): InjectOptions => ({
  ...req,
  headers: { ...req.headers, ...(key ? { authorization: `Bearer ${key}` } : {}) },
});
const code = (r: LightMyRequestResponse) => (r.json() as { error?: { code: string } }).error?.code;
const video = `/v1/videos/${'c'.repeat(32)}`;

test('401 without a key or with an unknown one; health routes need none; only hashes are configured', async () => {
  const none = await svc.app.inject({ method: 'GET', url: video });
  assert.equal(none.statusCode, 401);
  assert.equal(code(none), 'UNAUTHORIZED');
  assert.match(none.json().error.requestId, /^[0-9a-f-]{36}$/);
  const wrong = await svc.app.inject(as('not-a-key', { method: 'GET', url: video }));
  assert.equal(wrong.statusCode, 401);
  const x = await svc.app.inject({ method: 'GET', url: video, headers: { 'x-api-key': keys.read } });
  assert.equal(x.statusCode, 404, 'x-api-key is taken too (and the video does not exist)');
  assert.equal((await svc.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  assert.notEqual((await svc.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 401);
  assert.ok(!JSON.stringify(svc.config.access).includes(keys.read), 'the plain key is nowhere in the config');
});

test('403 without the scope: read < write < admin', async () => {
  const events = {
    method: 'POST' as const,
    url: '/v1/events',
    payload: { events: [{ eventId: 'a1', userId: 'u', videoId: 'c'.repeat(32), type: 'view', timestamp: new Date().toISOString() }] },
  };
  const readPost = await svc.app.inject(as(keys.read, events));
  assert.equal(readPost.statusCode, 403);
  assert.equal(code(readPost), 'FORBIDDEN');
  assert.equal((await svc.app.inject(as(keys.write, events))).statusCode, 202);
  const search = await svc.app.inject(as(keys.read, { method: 'POST', url: '/v1/search', payload: { text: 'a red circle' } }));
  assert.equal(search.statusCode, 200, 'a search is a read');
  const del = { method: 'DELETE' as const, url: video };
  assert.equal(code(await svc.app.inject(as(keys.write, del))), 'FORBIDDEN');
  assert.equal(code(await svc.app.inject(as(keys.admin, del))), 'VIDEO_NOT_FOUND', 'admin passes (and the video does not exist)');
});

test('operations need admin: /metrics, webhooks and job retries; the web page itself is open (it asks for a key)', async () => {
  for (const req of [
    { method: 'GET' as const, url: '/metrics' },
    { method: 'GET' as const, url: '/v1/webhooks' },
    { method: 'POST' as const, url: '/v1/jobs/ingest/nope/retry' },
  ]) {
    assert.equal(code(await svc.app.inject(as(keys.write, req))), 'FORBIDDEN', `${req.method} ${req.url} with a write key`);
  }
  const metrics = await svc.app.inject(as(keys.admin, { method: 'GET', url: '/metrics' }));
  assert.equal(metrics.statusCode, 200);
  assert.match(metrics.body, /montage_http_requests_total/);
  const page = await svc.app.inject({ method: 'GET', url: '/' });
  assert.equal(page.statusCode, 200);
  assert.match(String(page.headers['content-type']), /text\/html/);
});

test('429 past the per-key limit, counted in Redis: a second API instance on the same Redis enforces the same budget', async () => {
  const get = as(keys.limited, { method: 'GET', url: video });
  for (let i = 0; i < LIMIT - 1; i++) assert.equal((await svc.app.inject(get)).statusCode, 404);
  const other = await buildApp(svc.rt);
  try {
    assert.equal((await other.inject(get)).statusCode, 404, 'the last request of the budget, on the other instance');
    const over = await other.inject(get);
    assert.equal(over.statusCode, 429, over.body);
    assert.equal(code(over), 'RATE_LIMITED');
    assert.ok(Number(over.headers['retry-after']) > 0);
    assert.equal((await svc.app.inject(get)).statusCode, 429, 'and on the first');
    assert.equal((await svc.app.inject(as(keys.read, { method: 'GET', url: video }))).statusCode, 404, 'another key has its own budget');
    assert.equal((await svc.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'health is never limited');
  } finally {
    await other.close();
  }
});

test('an open API is refused on a non-loopback host unless asked for; a malformed key entry is refused', () => {
  const base = { MONTAGE_GENERATION_DIR: svc.env.MONTAGE_GENERATION_DIR! };
  assert.throws(
    () => loadConfig({ ...base, MONTAGE_HOST: '0.0.0.0' }),
    (e) => isAppError(e) && e.code === 'CONFIG_INVALID',
  );
  assert.equal(loadConfig({ ...base, MONTAGE_HOST: '0.0.0.0', MONTAGE_API_OPEN: 'true' }).access.keys.length, 0);
  assert.equal(loadConfig({ ...base, MONTAGE_HOST: '0.0.0.0', MONTAGE_API_KEYS: `${sha('k')}:read` }).access.keys.length, 1);
  assert.throws(
    () => loadConfig({ ...base, MONTAGE_API_KEYS: 'plainkey:read' }),
    (e) => isAppError(e) && e.code === 'CONFIG_INVALID',
  );
});
