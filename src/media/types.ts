/** The service-side view of ffmpeg/ffprobe. Implemented by src/media/, the only module that runs them. */

/**
 * What a video must satisfy before any decoder touches more than its header. Built by the config
 * (src/config, the one place with defaults: README "Configuration"); the allowlists are
 * src/media/limits.ts's. Every media call takes its limits as an argument.
 */
export interface MediaLimits {
  maxDurationS: number;
  minDurationS: number;
  maxWidth: number;
  maxHeight: number;
  maxStreams: number;
  /** Decoded pixels per second (width x height x frame rate) at most. */
  maxPixelRate: number;
  /** ffprobe's format_name values accepted (comma lists are split); also ffmpeg's `-format_whitelist`. */
  allowedContainers: string[];
  allowedVideoCodecs: string[];
  /** A trailing `*` matches a prefix (`pcm_*`). */
  allowedAudioCodecs: string[];
  /** Kill ffprobe/ffmpeg after this long. */
  timeoutMs: number;
}

/** What bounds every ffmpeg/ffprobe run: its deadline and the containers it may open. */
export type MediaBounds = Pick<MediaLimits, 'timeoutMs' | 'allowedContainers'>;

export interface ProbeResult {
  durationS: number;
  width: number;
  height: number;
  fps: number;
  container: string;
  videoCodec: string;
  /** null when the file has no audio stream. */
  audioCodec: string | null;
  streams: number;
  sizeBytes: number;
}

export interface SegmentFrames {
  index: number;
  startS: number;
  endS: number;
  /** `framesPerSegment` RGB24 frames, HWC, each `size` x `size`. */
  frames: Uint8Array[];
  width: number;
  height: number;
}

export interface FrameOptions {
  segmentSeconds: number;
  framesPerSegment: number;
  /** Square side the frames are scaled to. */
  size: number;
  resize: 'fill' | 'cover' | 'contain';
  durationS: number;
}
