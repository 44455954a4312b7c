/** Video records on the real Redis (a fresh prefix, removed after). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Catalog, type VideoRecord } from '../../src/catalog/index.ts';
import { redisPrefix } from '../helpers/redis-prefix.ts';

const { redis, prefix } = redisPrefix();

const rec = (videoId: string): VideoRecord => ({
  videoId,
  title: 't',
  description: '',
  tags: [],
  sha256: 'x',
  sizeBytes: 1,
  uploadPath: '/nowhere',
  status: 'processing',
  jobId: 'j',
  generation: 'g',
  modalities: [],
  uploadedAt: 1,
});

test('update patches an existing record and does nothing for a missing one', async () => {
  const c = new Catalog(redis, prefix);
  await c.put(rec('a'));
  assert.equal((await c.update('a', { status: 'ready' }))?.status, 'ready');
  assert.equal((await c.get('a'))?.status, 'ready');
  assert.equal(await c.update('missing', { status: 'ready' }), null);
  assert.equal(await c.get('missing'), null);
});

test('a DELETE landing between the read and the write of an update is not undone', async () => {
  // The same real Redis, with a concurrent DELETE injected right after the update's read.
  const racing = new Proxy(redis, {
    get(target, prop, receiver) {
      if (prop === 'get') {
        return async (key: string) => {
          const v = await target.get(key);
          await target.del(key);
          return v;
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const c = new Catalog(racing as Redis, prefix);
  await c.put(rec('b'));
  assert.equal(await c.update('b', { status: 'ready' }), null);
  assert.equal(await new Catalog(redis, prefix).get('b'), null, 'the deleted record stays deleted');
});
