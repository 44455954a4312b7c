/**
 * A hostile-input corpus, generated here: each input goes through POST /v1/videos (or /v1/search for JSON) on the
 * real app, ffprobe and Redis, and must be refused with its stable code, open no network connection (playlists
 * point at a listener this test runs on loopback), read no file outside its own (a canary file whose access time
 * is watched), leave no upload or temp file, and leave the server serving. With HOSTILE_RESULTS=<path> the outcomes
 * are written there (bench/results/hostile.json; README "Hostile inputs").
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { InjectOptions } from 'fastify';
import { fileInput, hardenedInputArgs } from '../../src/media/limits.ts';
import { startTestService, type TestService } from '../helpers/service.ts';
import { lavfiClip } from '../helpers/clips.ts';
import { multipart } from '../helpers/multipart.ts';

const run = promisify(execFile);
let svc: TestService;
let listener: Server;
let port = 0;
let connections = 0;
let work: string;
let canary: string;

before(async () => {
  svc = await startTestService();
  listener = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  port = (listener.address() as { port: number }).port;
  work = await mkdtemp(path.join(tmpdir(), 'montage-hostile-'));
  canary = path.join(work, 'canary.mp4');
  await lavfiClip(canary, { seconds: 1, size: '64x64' });
});
after(async () => {
  listener?.close();
  await svc?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

const ffmpeg = (args: string[]) => run('ffmpeg', ['-v', 'error', '-y', ...args]);

interface Input {
  name: string;
  /** The code the service must answer with (what the README lists). */
  want: string;
  request: () => Promise<InjectOptions>;
  /** A file whose probe's peak memory is measured (the service's ffprobe argv, run apart), with its bound in MB. */
  probeMemory?: { file: () => string; maxMb: number };
}

const upload = async (data: Buffer, fields: Record<string, string> = { title: 'hostile' }, name = 'clip.mp4'): Promise<InjectOptions> => ({
  method: 'POST',
  url: '/v1/videos',
  ...multipart(fields, { data, name }),
});
const clip = async (name: string, args: string[]) => {
  const f = path.join(work, name);
  await ffmpeg([...args, f]);
  return readFile(f);
};

/**
 * A decoder bomb in Matroska: one VP8 key frame of 4096x4096 (within the side limit) followed by `frames` copies
 * of one all-skip inter frame, 1 ms apart: under a megabyte that declares 17 G pixels a second. Every
 * frame is decoded before the sampler drops it: accepted, it costs ~0.3 s of decoding per second of video here (10x a
 * 720p clip), 3 minutes for a 10-minute one. Built from a 2-frame libvpx encode, repeated in an IVF file, remuxed to MKV.
 */
async function vp8Bomb(name: string, frames: number): Promise<string> {
  const seed = path.join(work, 'bomb-seed.ivf');
  await ffmpeg([
    '-f',
    'lavfi',
    '-i',
    'color=black:size=4096x4096:rate=25',
    '-frames:v',
    '2',
    '-c:v',
    'libvpx',
    '-deadline',
    'realtime',
    '-cpu-used',
    '8',
    '-auto-alt-ref',
    '0',
    '-lag-in-frames',
    '0',
    seed,
  ]);
  const ivf = await readFile(seed);
  const packets: Buffer[] = [];
  for (let at = ivf.readUInt16LE(6); at < ivf.length;) {
    const size = ivf.readUInt32LE(at);
    packets.push(ivf.subarray(at + 12, at + 12 + size));
    at += 12 + size;
  }
  const [key, inter] = packets as [Buffer, Buffer];
  const header = Buffer.alloc(32);
  header.write('DKIF', 0, 'latin1');
  header.writeUInt16LE(32, 6);
  header.write('VP80', 8, 'latin1');
  header.writeUInt16LE(4096, 12);
  header.writeUInt16LE(4096, 14);
  header.writeUInt32LE(1000, 16); // time base 1/1000: one frame a millisecond
  header.writeUInt32LE(1, 20);
  header.writeUInt32LE(frames + 1, 24);
  const parts: Buffer[] = [header];
  for (let i = 0; i <= frames; i++) {
    const pkt = i === 0 ? key : inter;
    const h = Buffer.alloc(12);
    h.writeUInt32LE(pkt.length, 0);
    h.writeBigUInt64LE(BigInt(i), 4);
    parts.push(h, pkt);
  }
  const bombIvf = path.join(work, 'bomb.ivf');
  await writeFile(bombIvf, Buffer.concat(parts));
  const out = path.join(work, name);
  await ffmpeg(['-i', bombIvf, '-c', 'copy', out]);
  return out;
}

/** Peak resident memory, MB, of ffprobe run with the service's hardened argv on `file` (rusage of the child). */
async function probePeakMb(file: string): Promise<number> {
  const argv = ['ffprobe', '-v', 'error', ...hardenedInputArgs(svc.config.media.limits), '-show_format', '-show_streams', fileInput(file)];
  const code =
    'import resource, subprocess, sys\nsubprocess.run(sys.argv[1:], capture_output=True)\nprint(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)';
  const { stdout } = await run('/usr/bin/python3', ['-c', code, ...argv]);
  return Math.round(Number(stdout.trim()) / 1024);
}

const INPUTS: Input[] = [
  {
    name: 'HLS playlist (remote segment) named .mp4',
    want: 'UNSUPPORTED_MEDIA',
    request: () => upload(Buffer.from(`#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://127.0.0.1:${port}/seg.ts\n#EXT-X-ENDLIST\n`)),
  },
  {
    name: 'HLS playlist (local file outside) named .mp4',
    want: 'UNSUPPORTED_MEDIA',
    request: () => upload(Buffer.from(`#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:${canary}\n#EXT-X-ENDLIST\n`)),
  },
  {
    name: 'ffconcat playlist naming a file outside',
    want: 'UNSUPPORTED_MEDIA',
    request: () => upload(Buffer.from(`ffconcat version 1.0\nfile ${canary}\n`)),
  },
  {
    name: 'ffconcat playlist naming a URL',
    want: 'UNSUPPORTED_MEDIA',
    request: () => upload(Buffer.from(`ffconcat version 1.0\nfile http://127.0.0.1:${port}/x.mp4\n`)),
  },
  {
    name: 'declared 100000x100000 frames (YUV4MPEG2 header)',
    want: 'UNSUPPORTED_MEDIA',
    request: () => upload(Buffer.concat([Buffer.from('YUV4MPEG2 W100000 H100000 F25:1 Ip A1:1 C420jpeg\nFRAME\n'), Buffer.alloc(4096)])),
  },
  {
    name: 'frames over the side limit (4098x16 H.264)',
    want: 'RESOLUTION_TOO_LARGE',
    request: async () =>
      upload(
        await clip('wide.mp4', ['-f', 'lavfi', '-i', 'color=size=4098x16:rate=5:duration=1', '-c:v', 'libx264', '-pix_fmt', 'yuv420p']),
      ),
  },
  {
    name: 'clip over the duration limit (11 minutes at 1 fps)',
    want: 'VIDEO_TOO_LONG',
    request: async () =>
      upload(
        await clip('long.mp4', [
          '-f',
          'lavfi',
          '-i',
          'color=size=16x16:rate=1:duration=660',
          '-c:v',
          'libx264',
          '-preset',
          'ultrafast',
          '-pix_fmt',
          'yuv420p',
        ]),
      ),
  },
  {
    name: '20 video streams (limit 8)',
    want: 'TOO_MANY_STREAMS',
    request: async () =>
      upload(
        await clip('streams.mkv', [
          '-f',
          'lavfi',
          '-i',
          'color=size=16x16:rate=5:duration=1',
          ...Array.from({ length: 20 }, () => ['-map', '0:v']).flat(),
          '-c:v',
          'libx264',
          '-pix_fmt',
          'yuv420p',
        ]),
      ),
  },
  {
    name: 'PNG named .mp4',
    want: 'UNSUPPORTED_MEDIA',
    request: async () => upload(await clip('img.png', ['-f', 'lavfi', '-i', 'color=size=64x64', '-frames:v', '1'])),
  },
  {
    name: 'truncated MP4 (first half of the bytes)',
    want: 'CORRUPT_MEDIA',
    request: async () => {
      const whole = await clip('whole.mp4', [
        '-f',
        'lavfi',
        '-i',
        'testsrc2=size=160x120:rate=10:duration=2',
        '-c:v',
        'libx264',
        '-pix_fmt',
        'yuv420p',
      ]);
      return upload(whole.subarray(0, whole.length >> 1));
    },
  },
  {
    name: 'MKV decoder bomb: 4096x4096 VP8 at 1000 fps (3001 frames of 16.8 M pixels in 0.9 MB)',
    want: 'PIXEL_RATE_TOO_HIGH',
    request: async () => upload(await readFile(await vp8Bomb('bomb.mkv', 3000)), { title: 'bomb' }, 'bomb.mkv'),
    probeMemory: { file: () => path.join(work, 'bomb.mkv'), maxMb: 256 },
  },
  { name: 'empty file', want: 'UPLOAD_MISSING_FILE', request: () => upload(Buffer.alloc(0)) },
  {
    name: 'path-traversal filename (../../etc/cron.d/x.mp4) on a PNG',
    want: 'UNSUPPORTED_MEDIA',
    request: async () => upload(await readFile(path.join(work, 'img.png')), { title: 't' }, '../../etc/cron.d/x.mp4'),
  },
  {
    name: 'a 2 MB title field',
    want: 'INVALID_FIELD',
    request: async () => upload(await readFile(canary), { title: 'x'.repeat(2 << 20) }),
  },
  {
    name: 'a multipart field named __proto__',
    want: 'BAD_REQUEST',
    request: async () => upload(await readFile(canary), { ['__proto__']: '{"polluted":1}' }),
  },
  {
    name: 'a JSON body with __proto__',
    want: 'BAD_REQUEST',
    request: async () => ({
      method: 'POST',
      url: '/v1/search',
      payload: '{"text":"x","__proto__":{"polluted":true}}',
      headers: { 'content-type': 'application/json' },
    }),
  },
];

async function filesUnder(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((d) => d.isFile())
      .map((d) => path.join(d.parentPath, d.name));
  } catch {
    return [];
  }
}

/** Whether reading the canary moves its access time (relatime updates an atime older than the mtime). */
async function canaryRead(): Promise<boolean> {
  const s = await stat(canary);
  return s.atimeMs > s.mtimeMs;
}
async function resetCanary(): Promise<void> {
  const s = await stat(canary);
  await utimes(canary, new Date(s.mtimeMs - 86_400_000 * 365), s.mtime);
}

test('every hostile input is refused with its code: no connection, nothing read outside, nothing left, server serving', async (t) => {
  // The canary works: a read of it shows.
  await resetCanary();
  await readFile(canary);
  const atimeWorks = await canaryRead();
  t.diagnostic(`canary access time ${atimeWorks ? 'records reads' : 'does not record reads on this mount'}`);
  const stores = [path.join(svc.config.dataDir, 'uploads'), path.join(svc.config.dataDir, 'posters')];
  const results: Array<Record<string, unknown>> = [];
  for (const input of INPUTS) {
    const req = await input.request();
    await resetCanary();
    const before = connections;
    const res = await svc.app.inject(req);
    const body = res.json() as { error?: { code: string; message: string } };
    const left = (await Promise.all(stores.map(filesUnder))).flat();
    const read = atimeWorks ? ((await canaryRead()) ? 1 : 0) : null;
    results.push({
      name: input.name,
      status: res.statusCode,
      code: body.error?.code ?? null,
      network_connections: connections - before,
      files_read_outside: read,
      temp_left: left.length,
      ...(input.probeMemory ? { probe_peak_rss_mb: await probePeakMb(input.probeMemory.file()) } : {}),
    });
  }
  for (const r of results) t.diagnostic(JSON.stringify(r));
  for (const [i, input] of INPUTS.entries()) {
    const r = results[i]!;
    assert.equal(r.code, input.want, `${input.name}: ${r.status} ${r.code}`);
    assert.equal(r.network_connections, 0, `${input.name} opened a connection`);
    if (r.files_read_outside !== null) assert.equal(r.files_read_outside, 0, `${input.name} read the canary outside its own file`);
    assert.equal(r.temp_left, 0, `${input.name} left files`);
    if (input.probeMemory)
      assert.ok((r.probe_peak_rss_mb as number) <= input.probeMemory.maxMb, `${input.name}: probe peaked at ${r.probe_peak_rss_mb} MB`);
  }
  assert.equal(Object.prototype.hasOwnProperty.call({}, 'polluted'), false, 'no prototype pollution');
  const health = await svc.app.inject({ method: 'GET', url: '/healthz' });
  assert.equal(health.statusCode, 200, 'still serving');
  if (process.env.HOSTILE_RESULTS) {
    await writeFile(
      process.env.HOSTILE_RESULTS,
      `${JSON.stringify({ generated_by: 'test/e2e/hostile.test.ts', inputs: results }, null, 2)}\n`,
    );
  }
});
