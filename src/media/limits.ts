import type { MediaLimits } from './types.ts';

/**
 * The containers and codecs a video may use. Not settings: the codec lists are deliberately short,
 * because every decoder we allow is attack surface that runs on untrusted bytes, so only the codecs
 * a phone, a browser or an editor actually produces are in. The numeric limits are the config's.
 */
export const MEDIA_ALLOWLISTS: Readonly<Pick<MediaLimits, 'allowedContainers' | 'allowedVideoCodecs' | 'allowedAudioCodecs'>> =
  Object.freeze({
    /**
     * ffprobe demuxer names. Also handed to ffprobe/ffmpeg as `-format_whitelist`, so a playlist
     * (hls, concat) that could pull other local files is refused before it is parsed.
     */
    allowedContainers: ['mov', 'mp4', 'matroska', 'webm', 'avi', 'mpegts', 'ogg'],
    allowedVideoCodecs: ['h264', 'hevc', 'vp8', 'vp9', 'av1', 'mpeg4', 'mjpeg', 'mpeg2video'],
    /** A trailing `*` matches a prefix (`pcm_*`). */
    allowedAudioCodecs: ['aac', 'mp3', 'opus', 'vorbis', 'flac', 'ac3', 'pcm_*'],
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
