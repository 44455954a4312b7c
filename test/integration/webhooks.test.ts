/**
 * Webhooks end to end on the real worker (in process), Redis and HTTP: a receiver on loopback checks each delivery's
 * signature and timestamp, refuses a delivery id it has already accepted (a replay), and answers 500 the first time,
 * so the retry through BullMQ is seen. A second receiver never answers: the ingest does not wait for it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestService, waitForJob, type TestService } from '../helpers/service.ts';
import { lavfiClip } from '../helpers/clips.ts';
import { multipart } from '../helpers/multipart.ts';
import { HEADERS, REPLAY_WINDOW_S, sign, verify } from '../../src/webhooks/sign.ts';
import { Webhooks } from '../../src/webhooks/index.ts';
import { checkWebhookUrl, guardedLookup } from '../../src/webhooks/http.ts';

const SECRET = 'a-test-secret-of-some-length';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  answered: number;
}

let svc: TestService;
let server: http.Server;
let base: string;
const received: Received[] = [];
const accepted = new Set<string>();
const hanging: http.ServerResponse[] = [];
let failFirst = true;

/** The receiver a subscriber would write: signature, replay window, delivery ids already accepted. */
function receive(req: http.IncomingMessage, res: http.ServerResponse): void {
  let body = '';
  req.on('data', (d: Buffer) => (body += d.toString()));
  req.on('end', () => {
    if (req.url === '/hang') {
      hanging.push(res);
      return;
    }
    const verdict = verify(
      SECRET,
      { signature: req.headers[HEADERS.signature] as string, timestamp: req.headers[HEADERS.timestamp] as string },
      body,
    );
    const id = req.headers[HEADERS.delivery] as string;
    let status = verdict === 'ok' ? 200 : 401;
    if (status === 200 && accepted.has(id)) status = 409;
    if (status === 200 && failFirst && req.url === '/hook') {
      failFirst = false;
      status = 500;
    }
    if (status === 200) accepted.add(id);
    received.push({ headers: req.headers, body, answered: status });
    res.writeHead(status).end();
  });
}

before(async () => {
  server = http.createServer(receive);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  svc = await startTestService({ workers: true, env: { MONTAGE_WEBHOOK_ALLOW_PRIVATE: 'true', MONTAGE_WEBHOOK_TIMEOUT_MS: '1000' } });
});

after(async () => {
  for (const res of hanging) res.destroy();
  await svc?.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    const v = await f();
    if (v !== undefined) return v;
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('a ready video is delivered signed, retried after a 500, visible through the API, and a replay is refused', async () => {
  const reg = await svc.app.inject({
    method: 'POST',
    url: '/v1/webhooks',
    payload: { url: `${base}/hook`, secret: SECRET, events: ['video.ready', 'generation.switched'] },
  });
  assert.equal(reg.statusCode, 201, reg.body);
  const sub = reg.json() as { id: string; url: string };
  assert.equal((reg.json() as Record<string, unknown>).secret, undefined, 'the secret is never returned');
  const hang = await svc.app.inject({
    method: 'POST',
    url: '/v1/webhooks',
    payload: { url: `${base}/hang`, secret: SECRET, events: ['video.ready'] },
  });
  assert.equal(hang.statusCode, 201);
  const enriched = await svc.app.inject({
    method: 'POST',
    url: '/v1/webhooks',
    payload: { url: `${base}/enriched`, secret: SECRET, events: ['enrichment.done'] },
  });
  assert.equal(enriched.statusCode, 201);

  const file = path.join(svc.config.dataDir, 'hooked.mp4');
  await lavfiClip(file, { seconds: 2 });
  const up = await svc.app.inject({ method: 'POST', url: '/v1/videos', ...multipart({ title: 'hooked' }, { data: await readFile(file) }) });
  const { jobId, videoId } = up.json() as { jobId: string; videoId: string };
  const t0 = Date.now();
  assert.equal((await waitForJob(svc, jobId)).state, 'completed');
  const ingestMs = Date.now() - t0;

  // First try answered 500, the retry (BullMQ backoff) accepted: same delivery id and body, each signed afresh.
  const ok = await until('an accepted delivery', () =>
    received.find((r) => r.answered === 200 && r.headers[HEADERS.event] === 'video.ready'),
  );
  const tries = received.filter((r) => r.headers[HEADERS.delivery] === ok.headers[HEADERS.delivery]);
  assert.deepEqual(
    tries.map((r) => r.answered),
    [500, 200],
  );
  assert.equal(tries[0]!.body, tries[1]!.body);
  const body = JSON.parse(ok.body) as { id: string; event: string; data: { videoId: string; modalities: string[] } };
  assert.equal(body.event, 'video.ready');
  assert.equal(body.data.videoId, videoId);
  assert.equal(ok.headers[HEADERS.event], 'video.ready');
  assert.equal(ok.headers[HEADERS.signature], sign(SECRET, Number(ok.headers[HEADERS.timestamp]), ok.body));
  // The enrich job that follows the ingest tells its own subscribers, once it has upgraded the item.
  const done = await until('enrichment.done', () => received.find((r) => r.headers[HEADERS.event] === 'enrichment.done'));
  const doneBody = JSON.parse(done.body) as { data: { videoId: string; enrichments: Record<string, { state: string }> } };
  assert.equal(doneBody.data.videoId, videoId);
  assert.ok(doneBody.data.enrichments.ocr, 'the status of each engine travels with it');

  const deliveries = await until('the delivery state', async () => {
    const res = await svc.app.inject({ method: 'GET', url: `/v1/webhooks/${sub.id}/deliveries` });
    const list = (res.json() as { deliveries: Array<Record<string, unknown>> }).deliveries;
    return list[0]?.state === 'delivered' ? list : undefined;
  });
  assert.equal(deliveries.length, 1);
  assert.equal(deliveries[0]!.id, body.id);
  assert.equal(deliveries[0]!.attempts, 2);
  assert.equal(deliveries[0]!.lastStatus, 200);

  // A captured delivery sent again is refused: by its id inside the window, by its timestamp after it.
  const replay = await fetch(`${base}/hook`, {
    method: 'POST',
    headers: Object.fromEntries(Object.values(HEADERS).map((h) => [h, String(ok.headers[h])])),
    body: ok.body,
  });
  assert.equal(replay.status, 409);
  const ts = Number(ok.headers[HEADERS.timestamp]);
  const captured = { signature: ok.headers[HEADERS.signature] as string, timestamp: String(ts) };
  assert.equal(verify(SECRET, captured, ok.body, ts + REPLAY_WINDOW_S + 1), 'stale');
  assert.equal(verify(SECRET, captured, ok.body.replace('video.ready', 'video.failed'), ts), 'bad-signature');
  assert.equal(verify('another-secret-entirely', captured, ok.body, ts), 'bad-signature');

  // The receiver that never answers held nothing up: its delivery is retrying while the ingest finished long ago.
  const hangId = (hang.json() as { id: string }).id;
  const stuck = await until('the hanging delivery to be tried', async () => {
    const list = (
      (await svc.app.inject({ method: 'GET', url: `/v1/webhooks/${hangId}/deliveries` })).json() as {
        deliveries: Array<Record<string, any>>;
      }
    ).deliveries;
    return list[0] && list[0].attempts >= 1 ? list[0] : undefined;
  });
  assert.ok(['retrying', 'pending'].includes(stuck.state), JSON.stringify(stuck));
  assert.match(String(stuck.lastError ?? ''), /no answer in 1000 ms/);
  assert.ok(ingestMs < 30_000, `ingest took ${ingestMs} ms`);

  // Switching generations (recorded one differs from the served one) notifies once.
  await svc.rt.redis.set(`${svc.config.redis.prefix}:webhooks:generation`, 'an-older-generation');
  assert.equal(await svc.rt.webhooks.noteGeneration(svc.rt.encoders.generation.name), true);
  assert.equal(await svc.rt.webhooks.noteGeneration(svc.rt.encoders.generation.name), false);
  const switched = await until('generation.switched', () =>
    received.find((r) => r.answered === 200 && r.headers[HEADERS.event] === 'generation.switched'),
  );
  assert.deepEqual(JSON.parse(switched.body).data, { from: 'an-older-generation', to: svc.rt.encoders.generation.name });
});

test('only http(s); loopback and private addresses are refused unless allowed', async () => {
  const bad = await svc.app.inject({
    method: 'POST',
    url: '/v1/webhooks',
    payload: { url: 'ftp://example.com/x', secret: SECRET, events: ['video.ready'] },
  });
  assert.equal(bad.statusCode, 400);
  assert.equal((bad.json() as { error: { code: string; field: string } }).error.code, 'WEBHOOK_URL_REFUSED');
  for (const url of [
    'http://127.0.0.1:9/',
    'http://localhost/',
    'http://10.1.2.3/',
    'http://192.168.0.1/',
    'http://[::1]/',
    'http://169.254.169.254/',
  ]) {
    assert.throws(() => checkWebhookUrl(url, false), /WEBHOOK_URL_REFUSED|private or loopback/, url);
    assert.doesNotThrow(() => checkWebhookUrl(url, true), url);
  }
  for (const url of ['http://[::ffff:127.0.0.1]/', 'http://[fd00::1]/', 'http://0.0.0.0/']) {
    assert.throws(() => checkWebhookUrl(url, false), /private or loopback/, url);
  }
  assert.doesNotThrow(() => checkWebhookUrl('https://93.184.215.14/hook', false));
  // A name is checked on what it resolves to: at registration, and on the address each delivery connects to.
  const look = (allow: boolean, all: boolean) =>
    new Promise<unknown>((resolve, reject) =>
      guardedLookup(allow)('localhost', { all }, (err: Error | null, address: unknown) => (err ? reject(err) : resolve(address))),
    );
  await assert.rejects(look(false, false), /resolves only to private addresses/);
  await assert.rejects(look(false, true), /resolves only to private addresses/);
  assert.match(String(await look(true, false)), /^(127\.0\.0\.1|::1)$/);
  assert.ok(Array.isArray(await look(true, true)));
  const strict = new Webhooks(svc.rt.redis, `${svc.config.redis.prefix}:strict`, {
    allowPrivate: false,
    timeoutMs: 1000,
    enqueue: async () => {},
  });
  await assert.rejects(
    strict.register({ url: 'http://localhost.localdomain./', events: ['video.ready'] }),
    /WEBHOOK_URL_REFUSED|private|resolve/,
  );
});
