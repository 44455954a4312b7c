import type { MediaLimits } from './types.ts';

/**
 * What a video must satisfy before any decoder touches more than its header. The lead's config
 * overrides these per deployment; this constant is the documented fallback.
 *
 * The codec lists are deliberately short: every decoder we allow is attack surface that runs on
 * untrusted bytes, so only the codecs a phone, a browser or an editor actually produces are in.
 */
export const DEFAULT_MEDIA_LIMITS: Readonly<MediaLimits> = Object.freeze({
  /** @defaultValue 600 (10 minutes) */
  maxDurationS: 600,
  /** @defaultValue 0.5: below half a second there is not one frame per segment worth encoding. */
  minDurationS: 0.5,
  /** @defaultValue 4096 */
  maxWidth: 4096,
  /** @defaultValue 4096 */
  maxHeight: 4096,
  /** @defaultValue 8: video + a few audio tracks + subtitles; hundreds of streams is an attack. */
  maxStreams: 8,
  /**
   * ffprobe demuxer names. Also handed to ffprobe/ffmpeg as `-format_whitelist`, so a playlist
   * (hls, concat) that could pull other local files is refused before it is parsed.
   * @defaultValue mov, mp4, matroska, webm, avi, mpegts, ogg
   */
  allowedContainers: ['mov', 'mp4', 'matroska', 'webm', 'avi', 'mpegts', 'ogg'],
  /** @defaultValue h264, hevc, vp8, vp9, av1, mpeg4, mjpeg, mpeg2video */
  allowedVideoCodecs: ['h264', 'hevc', 'vp8', 'vp9', 'av1', 'mpeg4', 'mjpeg', 'mpeg2video'],
  /** A trailing `*` matches a prefix (`pcm_*`). @defaultValue aac, mp3, opus, vorbis, flac, ac3, pcm_* */
  allowedAudioCodecs: ['aac', 'mp3', 'opus', 'vorbis', 'flac', 'ac3', 'pcm_*'],
  /** @defaultValue 120000 (2 minutes: a 10-minute 4K clip decodes within it on 2 cores) */
  timeoutMs: 120_000,
});

/**
 * How much of the file ffprobe may read to find the streams. Bounded so a crafted file cannot
 * make the probe read gigabytes; 5 MB / 5 s covers every ordinary upload.
 */
export const PROBE_SIZE_BYTES = 5_000_000;
export const ANALYZE_DURATION_US = 5_000_000;

/** Whether `name` is in `allowed`, where an entry ending in `*` matches a prefix. */
export function allowedName(name: string, allowed: readonly string[]): boolean {
  return allowed.some((a) => (a.endsWith('*') ? name.startsWith(a.slice(0, -1)) : name === a));
}

/** The argv prefix every ffmpeg/ffprobe run gets before its input: no network, bounded probing. */
export function hardenedInputArgs(limits: Pick<MediaLimits, 'allowedContainers'>): string[] {
  return [
    '-protocol_whitelist',
    'file',
    '-format_whitelist',
    limits.allowedContainers.join(','),
    '-probesize',
    String(PROBE_SIZE_BYTES),
    '-analyzeduration',
    String(ANALYZE_DURATION_US),
  ];
}

/**
 * The input name handed to ffmpeg. The `file:` prefix pins the protocol, so a path that starts
 * with `-` or contains `concat:`/`subfile,` can never be read as an option or another protocol.
 */
export function fileInput(path: string): string {
  return `file:${path}`;
}
