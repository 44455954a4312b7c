/**
 * The media seam on the real ffmpeg/ffprobe, with clips generated here by ffmpeg's lavfi sources
 * into a temp dir that is removed afterwards.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isAppError, type ErrorCode } from '../../src/errors/index.ts';
import { mediaLimits } from '../../src/config/index.ts';
import { ffmpegFloor } from '../../bench/lib/floor.ts';
import { processesMatching } from '../helpers/procs.ts';
import {
  extractAudio,
  extractFrames,
  iterateSegments,
  posterFrame,
  probe,
  segmentAudio,
  type ExtractFrameOptions,
  type MediaLimits,
} from '../../src/media/index.ts';

/** The limits with no variable set: the config's documented defaults. */
const DEFAULT_MEDIA_LIMITS = mediaLimits();
const bounds = { timeoutMs: DEFAULT_MEDIA_LIMITS.timeoutMs, allowedContainers: DEFAULT_MEDIA_LIMITS.allowedContainers };

let dir = '';
const clip = (name: string) => path.join(dir, name);
const ff = (...args: string[]) => execFileSync('ffmpeg', ['-v', 'error', '-y', ...args]);
const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast'];
const frameOpts = (durationS: number, o: Partial<ExtractFrameOptions> = {}): ExtractFrameOptions => ({
  segmentSeconds: 2,
  framesPerSegment: 4,
  size: 32,
  resize: 'fill',
  durationS,
  ...bounds,
  ...o,
});
const limits = (o: Partial<MediaLimits>): MediaLimits => ({ ...DEFAULT_MEDIA_LIMITS, ...o });

async function refused(p: Promise<unknown>, code: ErrorCode, what?: RegExp): Promise<void> {
  await assert.rejects(p, (err) => {
    assert.ok(isAppError(err), `expected an AppError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (what) assert.match(err.message, what);
    return true;
  });
}

before(() =>
  mkdtemp(path.join(tmpdir(), 'montage-media-')).then((d) => {
    dir = d;
    const src = (size: string, rate: number, d: number) => ['-f', 'lavfi', '-i', `testsrc2=s=${size}:r=${rate}:d=${d}`];
    const sine = (d: number) => ['-f', 'lavfi', '-i', `sine=frequency=1000:sample_rate=44100:d=${d}`];
    ff(...src('320x240', 25, 5), ...sine(5), ...x264, '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', clip('good.mp4'));
    ff(...src('160x120', 25, 3), ...x264, '-pix_fmt', 'yuv420p', clip('silent.mp4'));
    ff(...src('160x120', 25, 0.6), ...sine(0.6), ...x264, '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', clip('short.mp4'));
    ff(...src('90x400', 10, 1.5), ...x264, '-pix_fmt', 'yuv420p', clip('tall.mp4'));
    // Cropped in 4:4:4 because 4:2:0 cannot hold a 1-pixel-wide picture.
    ff(...src('64x64', 10, 1), '-vf', 'format=yuv444p,crop=1:64', ...x264, '-pix_fmt', 'yuv444p', clip('onepx.mp4'));
    // Frame N is a flat grey of level 10*N (lossless), so a sampled frame tells which N it was.
    ff(
      '-f',
      'lavfi',
      '-i',
      "nullsrc=s=16x16:r=10:d=2.5,format=gray,geq=lum='N*10'",
      ...x264,
      '-qp',
      '0',
      '-pix_fmt',
      'yuv420p',
      clip('ramp.mp4'),
    );
    ff(...src('64x48', 10, 1), '-frames:v', '1', clip('image.png'));
    ff(...sine(2), '-c:a', 'aac', clip('audio-only.m4a'));
  }),
);
after(() => rm(dir, { recursive: true, force: true }));

describe('probe', () => {
  test('reads a good clip', async () => {
    const p = await probe(clip('good.mp4'), DEFAULT_MEDIA_LIMITS, 'good');
    assert.ok(Math.abs(p.durationS - 5) < 0.1, `duration ${p.durationS}`);
    assert.deepEqual([p.width, p.height, p.fps, p.videoCodec, p.audioCodec, p.streams], [320, 240, 25, 'h264', 'aac', 2]);
    assert.match(p.container, /mp4/);
    assert.equal(p.sizeBytes, (await stat(clip('good.mp4'))).size);
  });

  test('a clip without audio has audioCodec null, and extractAudio gives null', async () => {
    const p = await probe(clip('silent.mp4'), DEFAULT_MEDIA_LIMITS, 'silent');
    assert.equal(p.audioCodec, null);
    assert.equal(p.streams, 1);
    assert.equal(await extractAudio(clip('silent.mp4'), { sampleRate: 16000, ...bounds }, 'silent'), null);
  });

  test('refuses what is not a supported video, naming the file', async () => {
    const noise = Buffer.alloc(64 * 1024);
    for (let i = 0, x = 12345; i < noise.length; i++) noise[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    await writeFile(clip('noise.mp4'), noise);
    await writeFile(clip('notes.txt'), 'This is a text file, not a video.\n'.repeat(50));
    const good = await readFile(clip('good.mp4'));
    await writeFile(clip('truncated.mp4'), good.subarray(0, good.length >> 1)); // the index (moov) is at the end
    await refused(probe(clip('noise.mp4'), DEFAULT_MEDIA_LIMITS, 'vid-noise'), 'UNSUPPORTED_MEDIA', /^ffprobe on vid-noise failed/);
    await refused(probe(clip('notes.txt'), DEFAULT_MEDIA_LIMITS, 'vid-text'), 'UNSUPPORTED_MEDIA');
    await refused(probe(clip('image.png'), DEFAULT_MEDIA_LIMITS, 'vid-png'), 'UNSUPPORTED_MEDIA');
    await refused(probe(clip('audio-only.m4a'), DEFAULT_MEDIA_LIMITS, 'vid-m4a'), 'UNSUPPORTED_MEDIA', /no video stream/);
    await refused(probe(clip('truncated.mp4'), DEFAULT_MEDIA_LIMITS, 'vid-cut'), 'CORRUPT_MEDIA', /vid-cut/);
  });

  test('applies the limits', async () => {
    const good = clip('good.mp4');
    await refused(probe(good, limits({ maxDurationS: 3 }), 'g'), 'VIDEO_TOO_LONG', /5\.\d+ s is above 3 s/);
    await refused(probe(clip('short.mp4'), limits({ minDurationS: 1 }), 's'), 'VIDEO_TOO_SHORT');
    await refused(probe(good, limits({ maxWidth: 200 }), 'g'), 'RESOLUTION_TOO_LARGE', /320x240/);
    await refused(probe(good, limits({ maxStreams: 1 }), 'g'), 'TOO_MANY_STREAMS');
    await refused(probe(good, limits({ allowedVideoCodecs: ['vp9'] }), 'g'), 'UNSUPPORTED_MEDIA', /h264/);
    await refused(probe(good, limits({ allowedContainers: ['matroska', 'webm'] }), 'g'), 'UNSUPPORTED_MEDIA');
    await refused(probe(good, { ...DEFAULT_MEDIA_LIMITS, maxSizeBytes: 1000 }, 'g'), 'UPLOAD_TOO_LARGE');
  });

  test('a probe past its deadline is killed', async () => {
    await refused(probe(clip('good.mp4'), limits({ timeoutMs: 1 }), 'g'), 'MEDIA_TIMEOUT', /killed after 1 ms/);
  });
});

describe('frames', () => {
  test('segments follow the duration and the frames move', async () => {
    const segs = await extractFrames(clip('good.mp4'), frameOpts(5), 'good');
    // 5 s at 2 samples/s: samples at 0.25..4.75 -> 10 frames -> 2 full segments and one of 2 + 2 repeats.
    assert.deepEqual(
      segs.map((s) => [s.index, s.startS, s.endS, s.frames.length]),
      [
        [0, 0, 2, 4],
        [1, 2, 4, 4],
        [2, 4, 5, 4],
      ],
    );
    for (const s of segs) for (const f of s.frames) assert.equal(f.length, 32 * 32 * 3);
    const last = segs[2]!.frames;
    assert.notDeepEqual(last[0], last[1]);
    assert.deepEqual(last[2], last[1]);
    assert.deepEqual(last[3], last[1]);
    assert.ok(meanAbsDiff(segs[0]!.frames[0]!, segs[1]!.frames[0]!) > 5, 'testsrc2 moves between segments');
    assert.ok(meanAbsDiff(segs[0]!.frames[0]!, segs[0]!.frames[1]!) > 1, 'and between frames of a segment');
  });

  test('frame i of segment s is the one on screen at s*seg + (i+0.5)*seg/T', async () => {
    const segs = await extractFrames(clip('ramp.mp4'), frameOpts(2.5, { size: 4 }), 'ramp');
    const frameIndex = (f: Uint8Array) => Math.round(f[0]! / 10);
    // 10 fps; samples at 0.25, 0.75, ... 2.25 s show frames 2, 7, 12, 17, 22; the rest repeats 22.
    assert.deepEqual(
      segs.map((s) => s.frames.map(frameIndex)),
      [
        [2, 7, 12, 17],
        [22, 22, 22, 22],
      ],
    );
  });

  test('a 0.6 s clip gives one segment', async () => {
    const p = await probe(clip('short.mp4'), DEFAULT_MEDIA_LIMITS, 'short');
    const segs = await extractFrames(clip('short.mp4'), frameOpts(p.durationS), 'short');
    assert.equal(segs.length, 1);
    assert.equal(segs[0]!.frames.length, 4);
    assert.ok(segs[0]!.endS <= p.durationS);
  });

  test('odd aspect ratios and a 1-pixel-wide video work in every resize mode', async () => {
    for (const name of ['tall.mp4', 'onepx.mp4']) {
      const p = await probe(clip(name), DEFAULT_MEDIA_LIMITS, name);
      for (const resize of ['fill', 'cover', 'contain'] as const) {
        const segs = await extractFrames(clip(name), frameOpts(p.durationS, { resize }), name);
        assert.equal(segs.length, 1, `${name} ${resize}`);
        assert.equal(segs[0]!.frames[0]!.length, 32 * 32 * 3);
        // contain pads the sides of a tall picture with black; fill and cover reach the edge.
        const leftMid = segs[0]!.frames[0]!.subarray(16 * 32 * 3, 16 * 32 * 3 + 3);
        if (resize === 'contain') assert.deepEqual([...leftMid], [0, 0, 0], `${name} contain`);
        else
          assert.ok(
            leftMid.some((v) => v > 0),
            `${name} ${resize}`,
          );
      }
    }
  });

  test('breaking out of the iterator stops ffmpeg early', async () => {
    let n = 0;
    // 224 px frames (150 kB) fill the pipe, so an ffmpeg left alive would still be there, blocked.
    for await (const seg of iterateSegments(clip('good.mp4'), frameOpts(5, { size: 224 }), 'good')) {
      n += seg.frames.length;
      break;
    }
    assert.equal(n, 4);
    assert.deepEqual(processesMatching(clip('good.mp4')), [], 'ffmpeg was reaped');
  });

  test('a decode that hangs is killed with SIGKILL, leaving no process behind', async () => {
    const fifo = clip('never-written.mp4');
    execFileSync('mkfifo', [fifo]);
    const t0 = Date.now();
    await assert.rejects(extractFrames(fifo, { ...frameOpts(5), timeoutMs: 400 }, 'fifo'), (err) => {
      assert.ok(isAppError(err) && err.code === 'MEDIA_TIMEOUT', String(err));
      assert.match(String((err.cause as Error).message), /SIGKILL/);
      return true;
    });
    assert.ok(Date.now() - t0 < 5000);
    assert.deepEqual(processesMatching(fifo), [], 'no ffmpeg still reading the fifo');
    await refused(probe(fifo, DEFAULT_MEDIA_LIMITS, 'fifo'), 'UNSUPPORTED_MEDIA', /not a regular file/);
  });
});

describe('audio', () => {
  test('16 kHz mono float PCM whose energy is at 1 kHz, cut into the frame segments', async () => {
    const pcm = await extractAudio(clip('good.mp4'), { sampleRate: 16000, hasAudio: true, ...bounds }, 'good');
    assert.ok(pcm);
    assert.ok(Math.abs(pcm.length - 5 * 16000) < 0.02 * 5 * 16000, `length ${pcm.length}`);
    const window = pcm.subarray(16000, 32000);
    const at = (hz: number) => goertzel(window, 16000, hz);
    assert.ok(at(1000) > 100 * at(500) && at(1000) > 100 * at(2000) && at(1000) > 100 * at(3100), 'a 1 kHz sine');
    const segs = segmentAudio(pcm, 16000, 2, 3);
    assert.deepEqual(
      segs.map((s) => s.length),
      [32000, 32000, 32000],
    );
    assert.deepEqual(segs[0], pcm.subarray(0, 32000));
    const tail = pcm.length - 64000;
    assert.deepEqual(segs[2]!.subarray(0, tail), pcm.subarray(64000));
    assert.ok(
      segs[2]!.subarray(tail).every((v) => v === 0),
      'zero-padded past the end',
    );
  });

  test('extractAudio finds out by itself when not told whether there is audio', async () => {
    const pcm = await extractAudio(clip('short.mp4'), { sampleRate: 16000, ...bounds }, 'short');
    assert.ok(pcm && Math.abs(pcm.length - 0.6 * 16000) < 0.1 * 16000, `length ${pcm?.length}`);
  });
});

describe('poster and floor', () => {
  test('posters are JPEGs, also for odd shapes and past the end', async () => {
    for (const [name, at] of [
      ['good.mp4', 1],
      ['tall.mp4', 0.5],
      ['onepx.mp4', 0.5],
      ['silent.mp4', 99],
    ] as const) {
      const out = clip(`${name}.jpg`);
      await posterFrame(clip(name), out, at, { label: name, ...bounds });
      const head = await readFile(out);
      assert.deepEqual([...head.subarray(0, 3)], [0xff, 0xd8, 0xff], name);
    }
  });

  test('ffmpegFloor decodes and samples the same streams, alone', async () => {
    const { seconds } = await ffmpegFloor(clip('good.mp4'), { ...frameOpts(5), sampleRate: 16000, hasAudio: true });
    assert.ok(seconds > 0 && seconds < 30);
    await refused(ffmpegFloor(clip('good.mp4'), { ...frameOpts(5), sampleRate: 16000, hasAudio: true, timeoutMs: 1 }), 'MEDIA_TIMEOUT');
  });
});

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

/** Power of `x` at `hz` (one DFT bin, Goertzel). */
function goertzel(x: Float32Array, rate: number, hz: number): number {
  const w = (2 * Math.PI * hz) / rate;
  const c = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (const v of x) [s1, s2] = [v + c * s1 - s2, s1];
  return s1 * s1 + s2 * s2 - c * s1 * s2;
}
