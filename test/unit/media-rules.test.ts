import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAppError } from '../../src/errors/index.ts';
import { frameFilter, planSegments, segmentAudio, validateProbe, type FfprobeOutput } from '../../src/media/index.ts';
import { mediaLimits } from '../../src/config/index.ts';
import type { FfprobeStream } from '../../src/media/probe.ts';

/** The limits with no variable set: the config's documented defaults. */
const DEFAULT_MEDIA_LIMITS = mediaLimits();

test('planSegments: samples at (k+0.5)*step inside the video, at least one segment', () => {
  assert.deepEqual(planSegments(4, 2, 4), { stepS: 0.5, samples: 8, segments: 2 });
  assert.deepEqual(planSegments(5, 2, 4), { stepS: 0.5, samples: 10, segments: 3 });
  assert.deepEqual(planSegments(2.25, 2, 4), { stepS: 0.5, samples: 4, segments: 1 }); // 2.25 itself is not inside
  assert.deepEqual(planSegments(2.26, 2, 4), { stepS: 0.5, samples: 5, segments: 2 });
  assert.deepEqual(planSegments(0.1, 2, 4), { stepS: 0.5, samples: 1, segments: 1 });
  assert.equal(planSegments(300, 2, 8).segments, 150);
});

test('frameFilter samples before resizing and writes an exact rate', () => {
  assert.equal(
    frameFilter({ framesPerSegment: 4, segmentSeconds: 2, size: 64, resize: 'fill' }),
    'setpts=PTS-STARTPTS,fps=fps=4/2,format=rgb24,scale=w=64:h=64:flags=bilinear',
  );
  assert.match(frameFilter({ framesPerSegment: 4, segmentSeconds: 1.5, size: 64, resize: 'cover' }), /fps=fps=4000\/1500,.*crop=/);
  assert.match(frameFilter({ framesPerSegment: 4, segmentSeconds: 2, size: 64, resize: 'contain' }), /pad=w=64:h=64/);
});

test('segmentAudio zero-pads and keeps windows aligned', () => {
  const pcm = Float32Array.from({ length: 25 }, (_, i) => i + 1);
  const segs = segmentAudio(pcm, 10, 1, 3);
  assert.deepEqual(
    segs.map((s) => [...s]),
    [
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      [11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
      [21, 22, 23, 24, 25, 0, 0, 0, 0, 0],
    ],
  );
  assert.deepEqual([...segmentAudio(new Float32Array(0), 10, 1, 1)[0]!], new Array(10).fill(0));
});

const probeOf = (o: { format?: FfprobeOutput['format']; streams?: FfprobeStream[] } = {}): FfprobeOutput => ({
  format: { format_name: 'matroska,webm', duration: '10.0', nb_streams: 2, ...o.format },
  streams: o.streams ?? [
    { index: 0, codec_type: 'video', codec_name: 'vp9', width: 640, height: 360, avg_frame_rate: '30000/1001' },
    { index: 1, codec_type: 'audio', codec_name: 'opus' },
  ],
});
const codeOf = (raw: FfprobeOutput) => {
  try {
    validateProbe(raw, DEFAULT_MEDIA_LIMITS, 1, 'v1');
    return 'ok';
  } catch (err) {
    assert.ok(isAppError(err));
    assert.match(err.message, /^ffprobe on v1 failed: /);
    return err.code;
  }
};

test('validateProbe accepts an allowed file and reads its numbers', () => {
  const p = validateProbe(probeOf(), DEFAULT_MEDIA_LIMITS, 123, 'v1');
  assert.deepEqual(
    [p.durationS, p.width, p.height, p.videoCodec, p.audioCodec, p.streams, p.sizeBytes],
    [10, 640, 360, 'vp9', 'opus', 2, 123],
  );
  assert.ok(Math.abs(p.fps - 29.97) < 0.01);
  const pcm = probeOf({
    streams: [
      { index: 0, codec_type: 'video', codec_name: 'h264', width: 8, height: 8 },
      { index: 1, codec_type: 'audio', codec_name: 'pcm_s16le' },
    ],
  });
  assert.equal(codeOf(pcm), 'ok');
});

test('validateProbe refuses with the right code', () => {
  const video = { index: 0, codec_type: 'video', codec_name: 'vp9', width: 640, height: 360 };
  assert.equal(codeOf(probeOf({ format: { format_name: 'png_pipe' } })), 'UNSUPPORTED_MEDIA');
  assert.equal(codeOf(probeOf({ streams: [{ index: 0, codec_type: 'audio', codec_name: 'opus' }] })), 'UNSUPPORTED_MEDIA');
  // Cover art (attached_pic) is not a video.
  assert.equal(codeOf(probeOf({ streams: [{ ...video, codec_name: 'mjpeg', disposition: { attached_pic: 1 } }] })), 'UNSUPPORTED_MEDIA');
  assert.equal(codeOf(probeOf({ streams: [{ ...video, codec_name: 'prores' }] })), 'UNSUPPORTED_MEDIA');
  assert.equal(codeOf(probeOf({ streams: [video, { index: 1, codec_type: 'audio', codec_name: 'wmav2' }] })), 'UNSUPPORTED_MEDIA');
  assert.equal(codeOf(probeOf({ format: { nb_streams: 9 } })), 'TOO_MANY_STREAMS');
  assert.equal(codeOf(probeOf({ streams: [{ ...video, width: 8192 }] })), 'RESOLUTION_TOO_LARGE');
  assert.equal(codeOf(probeOf({ streams: [{ ...video, width: 0 }] })), 'CORRUPT_MEDIA');
  assert.equal(codeOf(probeOf({ format: { duration: undefined } })), 'CORRUPT_MEDIA');
  assert.equal(codeOf(probeOf({ format: { duration: '601' } })), 'VIDEO_TOO_LONG');
  assert.equal(codeOf(probeOf({ format: { duration: '0.2' } })), 'VIDEO_TOO_SHORT');
  // Pixel rate: 4096x4096 at 1000 fps is a decoder bomb; 4K at 60 and 1080p at 240 are ordinary.
  assert.equal(codeOf(probeOf({ streams: [{ ...video, width: 4096, height: 4096, r_frame_rate: '1000/1' }] })), 'PIXEL_RATE_TOO_HIGH');
  assert.equal(codeOf(probeOf({ streams: [{ ...video, width: 3840, height: 2160, avg_frame_rate: '60/1' }] })), 'ok');
  assert.equal(codeOf(probeOf({ streams: [{ ...video, width: 1920, height: 1080, avg_frame_rate: '240/1' }] })), 'ok');
});
