/**
 * The media seam: the only module that runs ffmpeg or ffprobe.
 *
 * probe → (iterateSegments | extractFrames) + extractAudio → segmentAudio; posterFrame for display;
 * ffmpegFloor for the benchmark. Every call takes its limits and timeout as arguments.
 */
export type { FrameOptions, MediaLimits, ProbeResult, SegmentFrames } from './types.ts';
export { DEFAULT_MEDIA_LIMITS } from './limits.ts';
export { probe, validateProbe, setFfprobePath, type ProbeLimits, type FfprobeOutput } from './probe.ts';
export { extractFrames, iterateSegments, planSegments, frameFilter, type ExtractFrameOptions, type SegmentPlan } from './frames.ts';
export { extractAudio, segmentAudio, type AudioOptions } from './audio.ts';
export { posterFrame, type PosterOptions } from './poster.ts';
export { ffmpegFloor, type FloorOptions } from './floor.ts';
export { setFfmpegPath } from './run.ts';
