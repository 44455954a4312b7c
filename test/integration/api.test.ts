/**
 * The HTTP API on the real parts (Redis, embedded store, ffprobe, ONNX generation), driven with inject():
 * request validation names the field, bad uploads are refused with their codes and leave nothing behind.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestService, type TestService } from '../helpers/service.ts';
import { lavfiClip } from '../helpers/clips.ts';
import { multipart } from '../helpers/multipart.ts';
import { fakeRecord } from '../helpers/records.ts';

let svc: TestService;
let clip: Buffer;

before(async () => {
  svc = await startTestService({ env: { MONTAGE_MAX_UPLOAD_BYTES: String(400_000), MONTAGE_MAX_DURATION_S: '5' } });
  const p = path.join(svc.config.dataDir, 'clip.mp4');
  await lavfiClip(p, { seconds: 2 });
  clip = await readFile(p);
});
after(async () => svc?.close());

async function uploadsLeft(): Promise<string[]> {
  return readdir(path.join(svc.config.dataDir, 'uploads')).catch(() => []);
}

async function upload(fields: Record<string, string | string[]>, file?: Parameters<typeof multipart>[1]) {
  const { payload, headers } = multipart(fields, file);
  return svc.app.inject({ method: 'POST', url: '/v1/videos', payload, headers });
}

test('healthz and readyz check Redis, store and models', async () => {
  assert.equal((await svc.app.inject('/healthz')).statusCode, 200);
  const r = await svc.app.inject('/readyz');
  assert.equal(r.statusCode, 200, r.body);
  const body = r.json();
  assert.equal(body.status, 'ok');
  assert.deepEqual(Object.keys(body.checks).sort(), ['models', 'redis', 'store']);
});

test('OpenAPI is served at /docs', async () => {
  const r = await svc.app.inject('/docs/json');
  assert.equal(r.statusCode, 200);
  const paths = Object.keys(r.json().paths);
  for (const p of ['/v1/videos', '/v1/jobs/{id}', '/v1/search', '/v1/events', '/v1/users/{id}/recommendations', '/v1/recommendations'])
    assert.ok(paths.includes(p), p);
});

test('an upload without a file part is 400 UPLOAD_MISSING_FILE naming the field', async () => {
  const r = await upload({ title: 'x' });
  assert.equal(r.statusCode, 400);
  assert.equal(r.json().error.code, 'UPLOAD_MISSING_FILE');
  assert.equal(r.json().error.field, 'file');
});

test('an oversize upload is refused with 413 while streaming and leaves no file', async () => {
  const r = await upload({ title: 'big' }, { data: Buffer.alloc(600_000, 7) });
  assert.equal(r.statusCode, 413);
  assert.equal(r.json().error.code, 'UPLOAD_TOO_LARGE');
  assert.deepEqual(await uploadsLeft(), []);
});

test('a non-video (text) is 415 UNSUPPORTED_MEDIA, random bytes are refused too, nothing left behind', async () => {
  const t = await upload({ title: 'text' }, { data: Buffer.from('hello, this is not a video\n'.repeat(100)), name: 'x.mp4' });
  assert.equal(t.statusCode, 415, t.body);
  assert.equal(t.json().error.code, 'UNSUPPORTED_MEDIA');
  const junk = Buffer.alloc(50_000);
  for (let i = 0; i < junk.length; i++) junk[i] = (i * 2654435761) >>> 24;
  const j = await upload({ title: 'junk' }, { data: junk });
  assert.ok([415, 422].includes(j.statusCode), j.body);
  assert.ok(['UNSUPPORTED_MEDIA', 'CORRUPT_MEDIA'].includes(j.json().error.code));
  assert.deepEqual(await uploadsLeft(), []);
});

test('an over-long video is 422 VIDEO_TOO_LONG and leaves nothing behind', async () => {
  const p = path.join(svc.config.dataDir, 'long.mp4');
  await lavfiClip(p, { seconds: 8, size: '64x48', audio: false });
  const r = await upload({ title: 'long' }, { data: await readFile(p) });
  assert.equal(r.statusCode, 422, r.body);
  assert.equal(r.json().error.code, 'VIDEO_TOO_LONG');
  assert.deepEqual(await uploadsLeft(), []);
  assert.equal(await svc.rt.store.countItems(), 0);
});

test('bad fields are 400 naming the field', async () => {
  const r = await upload({ title: 'a', color: 'red' }, { data: clip });
  assert.equal(r.statusCode, 400);
  assert.equal(r.json().error.field, 'color');
  const twice = await upload({ title: ['a', 'b'] }, { data: clip });
  assert.equal(twice.json().error.field, 'title');
  assert.deepEqual(await uploadsLeft(), []);
});

test('unknown video and job ids are 404 with their codes', async () => {
  const v = await svc.app.inject('/v1/videos/0123456789abcdef0123456789abcdef');
  assert.equal(v.statusCode, 404);
  assert.equal(v.json().error.code, 'VIDEO_NOT_FOUND');
  const j = await svc.app.inject('/v1/jobs/ingest-nope');
  assert.equal(j.statusCode, 404);
  assert.equal(j.json().error.code, 'JOB_NOT_FOUND');
  const d = await svc.app.inject({ method: 'DELETE', url: '/v1/videos/0123456789abcdef0123456789abcdef' });
  assert.equal(d.statusCode, 404);
});

test('an unknown route and a body of the wrong content type answer with catalogue codes', async () => {
  const r = await svc.app.inject('/v1/nowhere');
  assert.equal(r.statusCode, 404);
  assert.equal(r.json().error.code, 'ROUTE_NOT_FOUND');
  const t = await svc.app.inject({ method: 'POST', url: '/v1/search', payload: '<text/>', headers: { 'content-type': 'application/xml' } });
  assert.equal(t.statusCode, 415, t.body);
  assert.equal(t.json().error.code, 'UNSUPPORTED_CONTENT_TYPE');
  const bad = await svc.app.inject({
    method: 'POST',
    url: '/v1/search',
    payload: '{"text":',
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(bad.statusCode, 400, bad.body);
  assert.equal(bad.json().error.code, 'BAD_REQUEST');
});

test('search refuses malformed requests with 400 naming the field', async () => {
  const post = (body: unknown) => svc.app.inject({ method: 'POST', url: '/v1/search', payload: body as object });
  const cases: Array<[unknown, string, string]> = [
    [{ text: 'red circle', limit: 1000 }, 'LIMIT_TOO_LARGE', 'limit'],
    [{ text: 'a', videoId: '0123456789abcdef0123456789abcdef' }, 'INVALID_FIELD', 'text,videoId'],
    [{}, 'INVALID_FIELD', 'text'],
    [{ vector: [1, 2, 3] }, 'VECTOR_DIMENSION', 'vector'],
    [{ text: 'a', filter: { durationS: { min: 'long' } } }, 'INVALID_FIELD', 'filter.durationS.min'],
    [{ text: 'a', filter: { colour: 'red' } }, 'INVALID_FIELD', 'filter'],
    [{ text: 'a', filter: { durationS: { min: 9, max: 3 } } }, 'INVALID_FIELD', 'filter.durationS'],
    [{ text: 'a', modality: 'smell' }, 'INVALID_FIELD', 'modality'],
  ];
  for (const [body, code, field] of cases) {
    const r = await post(body);
    assert.equal(r.statusCode, 400, `${JSON.stringify(body)} → ${r.body}`);
    assert.equal(r.json().error.code, code, JSON.stringify(body));
    assert.ok(String(r.json().error.field).startsWith(field), `${JSON.stringify(body)}: field ${r.json().error.field}, want ${field}`);
  }
  const missing = await post({ videoId: '0123456789abcdef0123456789abcdef' });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.json().error.code, 'VIDEO_NOT_FOUND');
});

test('events: malformed events are refused naming the field; a replayed batch is accepted once; unknown videos are refused', async () => {
  const post = (events: unknown[]) => svc.app.inject({ method: 'POST', url: '/v1/events', payload: { events } });
  const videoId = 'e'.repeat(32);
  await svc.rt.catalog.put({ ...fakeRecord(videoId), status: 'ready' });
  await svc.rt.catalog.markReady(videoId, Date.now());
  const good = { eventId: 'e1', userId: 'u1', videoId, type: 'view', timestamp: new Date().toISOString(), completion: 0.8 };
  const bad = await post([good, { ...good, eventId: 'e2', type: 'teleport' }]);
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().error.field, 'events.1.type');
  const noUser = await post([{ ...good, userId: undefined }]);
  assert.equal(noUser.json().error.field, 'events.0.userId');
  const future = await post([{ ...good, timestamp: new Date(Date.now() + 86_400_000).toISOString() }]);
  assert.equal(future.json().error.field, 'events.0.timestamp');
  const script = await post([{ ...good, videoId: 'not-a-video-<script>' }]);
  assert.equal(script.statusCode, 400);
  assert.equal(script.json().error.field, 'events.0.videoId');
  const first = await post([good, { ...good, eventId: 'e3', type: 'like' }]);
  assert.equal(first.statusCode, 202);
  assert.deepEqual(first.json(), { accepted: 2, duplicates: 0 });
  const again = await post([good, { ...good, eventId: 'e3', type: 'like' }]);
  assert.deepEqual(again.json(), { accepted: 0, duplicates: 2 });
  assert.equal(await svc.rt.redis.xlen(svc.rt.events.streamKey), 2);
  // A video with no record: refused with its code and not kept (no popularity, no log entry), so it can be resent.
  const unknown = await post([
    { ...good, eventId: 'e4', videoId: '0'.repeat(32) },
    { ...good, eventId: 'e5' },
  ]);
  assert.equal(unknown.statusCode, 202);
  assert.deepEqual(unknown.json(), {
    accepted: 1,
    duplicates: 0,
    refused: [{ index: 0, code: 'VIDEO_NOT_FOUND', field: 'events.0.videoId' }],
    refusedCount: 1,
  });
  assert.deepEqual(await svc.rt.events.popular(10), [videoId]);
  assert.equal(await svc.rt.redis.xlen(svc.rt.events.streamKey), 3);
});

test('recommendations for a user with no history fall back to popular-and-fresh', async () => {
  const r = await svc.app.inject('/v1/users/nobody/recommendations?limit=5');
  assert.equal(r.statusCode, 200, r.body);
  assert.equal(r.json().source, 'popular-fresh');
  const capped = await svc.app.inject('/v1/users/nobody/recommendations?limit=100000');
  assert.equal(capped.statusCode, 400);
  assert.equal(capped.json().error.field, 'limit');
});

test("one error shape everywhere, Fastify's own refusals included, with a request id and no server paths", async () => {
  const shape = (r: { statusCode: number; headers: Record<string, unknown>; json(): any }, status: number, code: string) => {
    assert.equal(r.statusCode, status, JSON.stringify(r.json()));
    const { error } = r.json();
    assert.equal(error.code, code);
    assert.equal(typeof error.message, 'string');
    assert.match(error.requestId, /^[0-9a-f-]{36}$/);
    assert.equal(r.headers['x-request-id'], error.requestId);
    assert.doesNotMatch(error.message, /\/tmp\/|\/work\/|file:|@ 0x[0-9a-f]/, 'no server path or ffmpeg internals');
  };
  shape(await svc.app.inject({ method: 'GET', url: `/v1/jobs/${'x'.repeat(300)}` }), 414, 'URI_TOO_LONG');
  shape(await svc.app.inject({ method: 'GET', url: '/v1/nothing/here' }), 404, 'ROUTE_NOT_FOUND');
  shape(
    await svc.app.inject({ method: 'POST', url: '/v1/search', payload: 'hi', headers: { 'content-type': 'text/plain' } }),
    415,
    'UNSUPPORTED_CONTENT_TYPE',
  );
  shape(
    await svc.app.inject({ method: 'POST', url: '/v1/search', payload: '{x', headers: { 'content-type': 'application/json' } }),
    400,
    'BAD_REQUEST',
  );
  const b = '----two';
  const twoFiles = Buffer.from(
    `--${b}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nabc\r\n` +
      `--${b}\r\nContent-Disposition: form-data; name="file"; filename="b.mp4"\r\n\r\ndef\r\n--${b}--\r\n`,
  );
  const second = await svc.app.inject({
    method: 'POST',
    url: '/v1/videos',
    payload: twoFiles,
    headers: { 'content-type': `multipart/form-data; boundary=${b}` },
  });
  shape(second, 413, 'REQUEST_TOO_LARGE');
  // A PNG named .mp4: ffprobe's message names the upload's path and its own internals; the response does not.
  const png = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.alloc(1000)]);
  const { payload, headers } = multipart({ title: 'png' }, { data: png, name: 'photo.mp4' });
  shape(await svc.app.inject({ method: 'POST', url: '/v1/videos', payload, headers }), 415, 'UNSUPPORTED_MEDIA');
  // Query vectors: non-finite, huge and string components are refused with a code (not coerced, not searched).
  const dim = svc.rt.encoders.generation.dim;
  const bodies = [
    JSON.stringify({ vector: Array(dim).fill(1e200) }),
    JSON.stringify({ vector: Array(dim).fill('1') }),
    `{"vector":[${Array(dim - 1)
      .fill(0)
      .join(',')},1e400]}`, // parses to Infinity
  ];
  for (const payload of bodies) {
    shape(
      await svc.app.inject({ method: 'POST', url: '/v1/search', payload, headers: { 'content-type': 'application/json' } }),
      400,
      'VECTOR_INVALID',
    );
  }
});
