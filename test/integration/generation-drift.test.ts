/**
 * The drift report on the real Redis: a generation whose reference says "video along axis 0" and whose recent items
 * point along axis 1 is stale by its video drift; queries whose words are mostly unknown push the unknown share over
 * its threshold; new items per day count the ready videos uploaded since the manifest's created_at.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EmbeddingHealth } from '../../src/metrics/embedding.ts';
import { Catalog } from '../../src/catalog/index.ts';
import { driftReport } from '../../src/generations/drift.ts';
import type { LoadedEncoders } from '../../src/models/index.ts';
import { redisPrefix } from '../helpers/redis-prefix.ts';

const { redis, prefix, tempDir } = redisPrefix();

const axis = (i: number, dim = 8) => Float32Array.from({ length: dim }, (_, j) => (j === i ? 1 : 0));
const DAY = 86_400_000;

test('drift, unknown query words and new items per day, judged against the thresholds', async () => {
  const generationDir = await tempDir('gen');
  const storeDir = await tempDir('emb');
  await writeFile(
    path.join(generationDir, 'reference.json'),
    JSON.stringify({ generation: 'g1', createdAt: '', modalities: { video: { items: 10, mean: Array.from(axis(0)) } } }),
  );
  const health = new EmbeddingHealth(redis, prefix, { generation: 'g1', generationDir, storeDir, referenceItems: 5, window: 4 });
  const now = Date.UTC(2026, 11, 11);
  const trainedAt = new Date(now - 10 * DAY).toISOString();
  const encoders = { generation: { name: 'g1' }, manifest: { raw: { created_at: trainedAt }, dir: generationDir } } as unknown as Pick<
    LoadedEncoders,
    'generation' | 'manifest'
  >;
  const catalog = new Catalog(redis, prefix);
  for (let i = 0; i < 6; i++) await catalog.markReady(`new${i}`, now - i * DAY); // after training
  await catalog.markReady('old', now - 20 * DAY); // before
  const thresholds = { drift: 0.1, unknownShare: 0.3 };
  const report = () => driftReport({ health, encoders, catalog, thresholds, now });

  for (let i = 0; i < 4; i++) await health.record({ video: axis(0) });
  const fresh = await report();
  assert.equal(fresh.stale, false, fresh.reasons.join('; '));
  assert.equal(fresh.reference?.source, 'export');
  assert.ok(Math.abs(fresh.modalities[0]!.drift) < 1e-6);
  assert.deepEqual(fresh.newItems, { sinceTraining: 6, days: 10, perDay: 0.6 });
  assert.equal(fresh.queries, null);

  // the window fills with items pointing elsewhere: drift 1 (orthogonal), stale
  for (let i = 0; i < 4; i++) await health.record({ video: axis(1) });
  const moved = await report();
  assert.ok(Math.abs(moved.modalities[0]!.drift - 1) < 1e-6);
  assert.equal(moved.stale, true);
  assert.match(moved.reasons[0]!, /^video drift 1 > 0.1$/);

  // queries: 1 of 4 mostly unknown is under 0.3; 2 of 4 is over
  for (const share of [0, 0.2, 0.9, 0.1]) await health.recordQuery(share);
  assert.equal((await report()).queries?.mostlyUnknownShare, 0.25);
  await health.recordQuery(0.8);
  const words = await report();
  assert.equal(words.queries?.mostlyUnknownShare, 0.5);
  assert.ok(words.reasons.some((r) => r.startsWith('mostly-unknown query share 0.5 > 0.3')));
});
