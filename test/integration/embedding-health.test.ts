/** Embedding drift on the real Redis: the reference freezes after the first N items and drift follows the window. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { EmbeddingHealth } from '../../src/metrics/embedding.ts';
import { redisPrefix } from '../helpers/redis-prefix.ts';

const { redis, prefix, tempDir } = redisPrefix();

const axis = (i: number, dim = 8) => Float32Array.from({ length: dim }, (_, j) => (j === i ? 1 : 0));

test('the first N items make the reference, persisted beside the store; drift rises as the stored vectors move away', async () => {
  const storeDir = await tempDir('emb');
  const generationDir = await tempDir('gen');
  const opts = { generation: 'g1', generationDir, storeDir, referenceItems: 3, window: 3 };
  const h = new EmbeddingHealth(redis, prefix, opts);
  assert.deepEqual(await h.drift(), [], 'no reference before N items');
  for (let i = 0; i < 3; i++) await h.record({ video: axis(0), text: axis(1) });
  assert.ok(existsSync(h.referencePath));
  const ref = JSON.parse(await readFile(h.referencePath, 'utf8')) as { source: string; modalities: Record<string, { items: number }> };
  assert.equal(ref.source, 'first-items');
  assert.equal(ref.modalities.video!.items, 3);
  const still = await h.drift();
  assert.ok(
    still.every((d) => Math.abs(d.drift) < 1e-6),
    JSON.stringify(still),
  );

  // The window (3 items) fills with vectors orthogonal to the reference for video; text stays put.
  for (let i = 0; i < 3; i++) await h.record({ video: axis(2), text: axis(1) });
  const moved = Object.fromEntries((await h.drift()).map((d) => [d.modality, d.drift]));
  assert.ok(Math.abs(moved.video! - 1) < 1e-6, `video drift ${moved.video}`);
  assert.ok(Math.abs(moved.text!) < 1e-6, `text drift ${moved.text}`);

  // Another process (the API) reads the persisted reference, not a new one from later items.
  const fresh = new EmbeddingHealth(redis, prefix, opts);
  assert.equal((await fresh.reference())!.modalities.video!.items, 3);
  assert.ok(Math.abs((await fresh.drift()).find((d) => d.modality === 'video')!.drift - 1) < 1e-6);
});
