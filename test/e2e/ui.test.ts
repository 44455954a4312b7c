/**
 * The web page in a real browser: Debian's chromium (never a downloaded one) driven by playwright-core, against
 * the real API and an in-process worker. Upload through the form with live progress, search with poster frames and
 * moments (played from the moment over HTTP range requests), similar videos, a user's history and recommendations,
 * and the queue panel with a failed job's code. Saves docs/ui.png (README "Operations: the web page").
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { listenLoopback, startTestService, waitForJob, type TestService } from '../helpers/service.ts';
import { corpusClip } from '../helpers/clips.ts';
import { multipart } from '../helpers/multipart.ts';
import { ROOT } from '../helpers/generation.ts';

const CHROMIUM = '/usr/bin/chromium';
let svc: TestService;
let base: string;
let browser: Browser;

before(async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: scripts/setup.sh installs it (scripts/deps.tsv), or apt-get install -y chromium`,
  );
  svc = await startTestService({ workers: true, env: { MONTAGE_WEBHOOK_ALLOW_PRIVATE: 'true' } });
  base = await listenLoopback(svc);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
});

after(async () => {
  await browser?.close();
  await svc?.close();
});

async function ingest(file: string, title: string): Promise<string> {
  const res = await svc.app.inject({ method: 'POST', url: '/v1/videos', ...multipart({ title }, { data: await readFile(file) }) });
  const { jobId, videoId } = res.json() as { jobId: string; videoId: string };
  await waitForJob(svc, jobId);
  return videoId;
}

test('the page: upload with live progress, search with posters and moments, similar, a user, the queue', async (t) => {
  const dir = svc.config.dataDir;
  const files = await Promise.all(
    [31, 32, 33].map(async (seed) => {
      const f = path.join(dir, `c${seed}.mp4`);
      const info = await corpusClip(f, ['--seed', String(seed), '--seconds', '6', '--size', '192x144']);
      return { f, caption: info.caption };
    }),
  );
  const first = await ingest(files[0]!.f, files[0]!.caption);
  await ingest(files[1]!.f, files[1]!.caption);
  // A file that probes but does not decode: a failed job with its code, for the queue panel.
  const bytes = await readFile(files[0]!.f);
  const mdat = bytes.indexOf(Buffer.from('mdat'));
  const moov = bytes.indexOf(Buffer.from('moov'));
  for (let i = mdat + 64; i < (moov > mdat ? moov : bytes.length) - 8; i++) bytes[i] = (i * 2654435761) >>> 24;
  await writeFile(path.join(dir, 'broken.mp4'), bytes);
  const broken = await svc.app.inject({ method: 'POST', url: '/v1/videos', ...multipart({ title: 'broken' }, { data: bytes }) });
  if (broken.statusCode === 202) await waitForJob(svc, (broken.json() as { jobId: string }).jobId);
  const ev = await svc.app.inject({
    method: 'POST',
    url: '/v1/events',
    payload: {
      events: [{ eventId: 'e1', userId: 'alice', videoId: first, type: 'view', timestamp: new Date().toISOString(), completion: 0.9 }],
    },
  });
  assert.equal(ev.statusCode, 202, ev.body);

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(base);
  await page.waitForSelector('#queue tr td');

  // Upload through the form; the job's stage and progress are shown live until it completes.
  await page.setInputFiles('#file', files[2]!.f);
  await page.fill('input[name=title]', files[2]!.caption);
  await page.click('#upload-form button');
  const seen = new Set<string>();
  for (const end = Date.now() + 120_000; Date.now() < end; await page.waitForTimeout(50)) {
    const s = (await page.textContent('#job')) ?? '';
    seen.add(s);
    if (/^(completed|failed)/.test(s)) break;
  }
  t.diagnostic(`upload states shown: ${[...seen].join(' | ')}`);
  assert.match((await page.textContent('#job')) ?? '', /^completed/);
  assert.ok(seen.size >= 2, 'the job panel changed while the job ran');

  // Search: posters load, scores shown, moments play from their start over range requests.
  await page.fill('#q', files[0]!.caption);
  await page.press('#q', 'Enter');
  await page.waitForSelector('#results .card');
  const cards = await page.$$eval('#results .card', (cs) => cs.map((c) => ({ id: c.getAttribute('data-video'), text: c.textContent })));
  assert.ok(cards.length >= 3, JSON.stringify(cards));
  assert.match(cards[0]!.text ?? '', /score \d\.\d{3}/);
  await page.waitForFunction(() => [...document.querySelectorAll('#results img')].every((i) => (i as HTMLImageElement).naturalWidth > 0));
  const moment = await page.$('#results .moments button');
  assert.ok(moment, 'moment ranges shown');
  const ranged: string[] = [];
  page.on('request', (r) => {
    if (r.url().includes('/media')) ranged.push(r.headers().range ?? '');
  });
  await moment.click();
  await page.waitForFunction(() => (document.querySelector('#player') as HTMLVideoElement).readyState >= 1, undefined, { timeout: 30_000 });
  assert.ok(
    ranged.some((r) => r.startsWith('bytes=')),
    `the player asked for ranges: ${JSON.stringify(ranged)}`,
  );

  const part = await fetch(`${base}/v1/videos/${first}/media`, { headers: { range: 'bytes=0-99' } });
  assert.equal(part.status, 206);
  assert.equal((await part.arrayBuffer()).byteLength, 100);
  assert.match(part.headers.get('content-range') ?? '', /^bytes 0-99\/\d+$/);
  assert.equal((await fetch(`${base}/v1/videos/${first}/media`, { headers: { range: 'bytes=999999999-' } })).status, 416);

  // Similar videos of the first result.
  await page.click('#results .card');
  await page.waitForSelector('#similar .card');

  // A user's history and recommendations, each with its reason.
  await page.fill('#user', 'alice');
  await page.click('#user-form button');
  await page.waitForSelector('#recs .card');
  assert.match(
    (await page.textContent('#history')) ?? '',
    new RegExp(files[0]!.caption.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')),
  );
  assert.ok(((await page.textContent('#recs .why')) ?? '').length > 0, 'a reason per recommendation');

  // The queue panel: counts per state and the failed job's code with a retry button.
  await page.click('#queue-refresh');
  if (broken.statusCode === 202) {
    await page.waitForSelector('#failed code');
    assert.equal(await page.textContent('#failed code'), 'CORRUPT_MEDIA');
    assert.ok(await page.$('#failed button'), 'retry button');
  }
  assert.match((await page.textContent('#queue')) ?? '', /ingest/);

  // Webhooks: subscribe through the form (a loopback URL, allowed in this service); its delivery state is listed.
  await page.fill('#webhook-form input[name=url]', `${base}/no-such-receiver`);
  await page.fill('#webhook-form input[name=secret]', 'a-secret-of-sixteen-plus');
  await page.click('#webhook-form button');
  await page.waitForSelector('#webhooks code');
  assert.match((await page.textContent('#webhooks')) ?? '', /video\.ready, video\.failed/);
  if (broken.statusCode === 202) {
    // The queue panel's retry runs the failed job again; it fails again, and the subscription gets video.failed
    // (to a URL that answers 404, so the delivery is listed as retrying with its status).
    await page.click('#failed button');
    for (const end = Date.now() + 60_000; Date.now() < end && !(await page.$('#webhooks .delivery')); await page.waitForTimeout(500)) {
      await page.click('#queue-refresh');
    }
    const row = (await page.textContent('#webhooks .delivery')) ?? '';
    t.diagnostic(`delivery row: ${row}`);
    assert.match(row, /^video\.failed · (pending|retrying|failed)/);
  }

  await page.screenshot({ path: path.join(ROOT, 'docs', 'ui.png'), fullPage: true });
  assert.deepEqual(errors, [], 'no script errors on the page');
});

test('with API keys configured the page works through the key: search, posters and playback fetched with it', async () => {
  const read = randomBytes(24).toString('hex');
  const write = randomBytes(24).toString('hex');
  const sha = (k: string) => createHash('sha256').update(k).digest('hex');
  const keyed = await startTestService({ workers: true, env: { MONTAGE_API_KEYS: `${sha(read)}:read,${sha(write)}:write` } });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    const url = await listenLoopback(keyed);
    const f = path.join(keyed.config.dataDir, 'k.mp4');
    const info = await corpusClip(f, ['--seed', '41', '--seconds', '6', '--size', '192x144']);
    const body = multipart({ title: info.caption }, { data: await readFile(f) });
    const up = await keyed.app.inject({
      method: 'POST',
      url: '/v1/videos',
      payload: body.payload,
      headers: { ...body.headers, authorization: `Bearer ${write}` },
    });
    assert.equal(up.statusCode, 202, up.body);
    assert.equal((await waitForJob(keyed, (up.json() as { jobId: string }).jobId, 120_000, read)).state, 'completed');

    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.fill('#apikey', read);
    await page.fill('#q', info.caption);
    await page.press('#q', 'Enter');
    await page.waitForSelector('#results .card');
    await page.waitForFunction(() => [...document.querySelectorAll('#results img')].every((i) => (i as HTMLImageElement).naturalWidth > 0));
    await page.click('#results .moments button');
    await page.waitForFunction(
      () => {
        const v = document.querySelector('#player') as HTMLVideoElement;
        return v.src.startsWith('blob:') && v.readyState >= 1;
      },
      undefined,
      { timeout: 30_000 },
    );
    assert.deepEqual(errors, [], 'no script errors on the page');
  } finally {
    await page.close();
    await keyed.close();
  }
});
