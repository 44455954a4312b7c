/**
 * The media seam: the only module that runs ffmpeg or ffprobe.
 *
 * probe → (iterateSegments | extractFrames) + (iterateAudioSegments | extractAudio → segmentAudio); posterFrame for display.
 * Every call takes its limits and timeout as arguments (the config builds them).
 */
export type { FrameOptions, MediaBounds, MediaLimits, ProbeResult, SegmentFrames } from './types.ts';
export { MEDIA_ALLOWLISTS } from './limits.ts';
export { probe, validateProbe, setFfprobePath, type ProbeLimits, type FfprobeOutput } from './probe.ts';
export { extractFrames, iterateSegments, planSegments, frameFilter, type ExtractFrameOptions, type SegmentPlan } from './frames.ts';
export { extractAudio, iterateAudioSegments, segmentAudio, type AudioOptions, type AudioSegmentOptions } from './audio.ts';
export { posterFrame, type PosterOptions } from './poster.ts';
export { setFfmpegPath } from './run.ts';
