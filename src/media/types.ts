/** The service-side view of ffmpeg/ffprobe. Implemented by src/media/, the only module that runs them. */

export interface MediaLimits {
  /** @defaultValue 600 */
  maxDurationS: number;
  /** @defaultValue 0.5 */
  minDurationS: number;
  /** @defaultValue 4096 */
  maxWidth: number;
  /** @defaultValue 4096 */
  maxHeight: number;
  /** @defaultValue 8 */
  maxStreams: number;
  /** ffprobe's format_name values accepted (comma lists are split). */
  allowedContainers: string[];
  allowedVideoCodecs: string[];
  allowedAudioCodecs: string[];
  /** Kill ffprobe/ffmpeg after this long. @defaultValue 120000 */
  timeoutMs: number;
}

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
