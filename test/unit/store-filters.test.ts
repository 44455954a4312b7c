import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filterSql } from '../../src/store/lance/sql.ts';
import { itemFilter } from '../../src/store/qdrant.ts';

test('embedded filters become SQL conjuncts with quoted literals', () => {
  assert.deepEqual(filterSql(undefined), []);
  assert.deepEqual(filterSql({ tagsAny: [] }), []);
  assert.deepEqual(filterSql({ tagsAny: ["o'neil", 'b'], durationMinS: 2, excludeVideoIds: ['x'] }), [
    "array_has_any(tags, make_array('o''neil', 'b'))",
    'duration_s >= 2',
    "video_id NOT IN ('x')",
  ]);
  assert.throws(() => filterSql({ durationMaxS: Number.NaN }), { code: 'INVALID_FIELD', field: 'filter.durationMaxS' });
});

test('Qdrant filters use must / must_not / range natively', () => {
  assert.equal(itemFilter(undefined), undefined);
  assert.equal(itemFilter({}), undefined);
  assert.deepEqual(
    itemFilter({
      tagsAny: ['a', 'b'],
      tagsAll: ['c', 'd'],
      durationMinS: 1,
      uploadedBefore: 5,
      modalities: ['audio'],
      excludeVideoIds: ['v'],
    }),
    {
      must: [
        { key: 'tags', match: { any: ['a', 'b'] } },
        { key: 'tags', match: { value: 'c' } },
        { key: 'tags', match: { value: 'd' } },
        { key: 'durationS', range: { gte: 1 } },
        { key: 'uploadedAt', range: { lte: 5 } },
        { key: 'modalities', match: { value: 'audio' } },
      ],
      must_not: [{ key: 'videoId', match: { any: ['v'] } }],
    },
  );
  assert.throws(() => itemFilter({ uploadedAfter: Infinity }), { code: 'INVALID_FIELD' });
});
