/**
 * The job queue as the service sees it: what `src/` may ask of the jobs layer, and the types both sides share.
 * `jobs/` (the layer above `src/`) implements `JobQueue` on BullMQ (`jobs/queues.ts`); `src/` never imports
 * `jobs/`, except the composition root (`src/runtime.ts`, `src/cli/`) that wires the two. Job types themselves,
 * with their attempts, backoff, timeout and debounce, are declared once, in the policy table (`jobs/policy.ts`).
 */
import type { ProbeResult } from '../media/types.ts';
import type { Modality } from '../store/types.ts';

/** The ingest stages, in the order one job runs them (GET /v1/jobs/:id reports the current one). */
export const INGEST_STAGES = ['probe', 'extract', 'encode', 'fuse', 'upsert', 'cleanup'] as const;
export type IngestStage = (typeof INGEST_STAGES)[number];

/** The payload of an ingest job: an admitted upload. */
export interface IngestData {
  videoId: string;
  uploadPath: string;
  sha256: string;
  generation: string;
  /** The probe made when the upload was admitted (same bytes: the file is named by its hash); probed again when absent. */
  probe?: ProbeResult;
}

/** What a finished ingest job returns. */
export interface IngestResult {
  videoId: string;
  segments: number;
  modalities: Modality[];
  durationS: number;
  /** Wall seconds per stage. */
  stages: Record<IngestStage, number>;
  /**
   * When each stage's work ran, seconds from the job's start. Extract is ffmpeg decoding the frames and encode the
   * towers at work, which starts on the first segments while ffmpeg still decodes the rest; absent on older jobs.
   */
  spans?: Partial<Record<IngestStage, StageSpan>>;
  /** Set when the video was deleted while the job ran: the job stopped and wrote nothing that stays. */
  skipped?: 'deleted';
}

/** Seconds from the start of an ingest job. */
export interface StageSpan {
  startS: number;
  endS: number;
}

/** Progress an ingest job reports as it enters each stage. */
export interface JobProgress {
  stage: IngestStage;
  percent: number;
  etaS: number | null;
}

export type JobState = 'waiting' | 'active' | 'completed' | 'failed' | 'delayed' | 'prioritized' | 'waiting-children' | 'unknown';

/** An ingest job as the API shows it. */
export interface IngestJobView {
  id: string;
  data: IngestData;
  state: JobState;
  progress: JobProgress | null;
  result: IngestResult | null;
  /** Tries that have ended (failed or stalled); 0 while the first runs. */
  attemptsMade: number;
  /** Unix milliseconds. */
  createdAt: number;
  finishedAt: number | undefined;
  /** Why the job failed, in the `CODE: message` form (see parseJobError). */
  failedReason: string | undefined;
}

/** Counts of jobs per state. */
export type JobCounts = Record<string, number>;

/** What the service asks of the job queue. One method per thing it needs; jobs/queues.ts implements it. */
export interface JobQueue {
  /**
   * Enqueues the ingest of an admitted upload under its deterministic id (one job per content and generation).
   * A finished job under the same id is replaced, so re-admitting a failed upload, or one deleted while its job
   * ran, ingests it again; a waiting or active one is left to run (it reads the record when it writes).
   */
  enqueueIngest(jobId: string, data: IngestData): Promise<void>;
  /** An ingest job, or null when there is none with that id (never enqueued, or removed after its retention). */
  ingestJob(jobId: string): Promise<IngestJobView | null>;
  /**
   * Removes an ingest job. An active one holds a lock and is left to run: it re-checks the video record before and
   * after writing, so a deleted video does not come back.
   */
  removeIngest(jobId: string): Promise<void>;
  /** Asks for a user's vector to be recomputed; requests within the debounce window fold into one run. */
  requestUserVector(userId: string): Promise<void>;
  /** Jobs per state, per job type. */
  counts(): Promise<Record<string, JobCounts>>;
  /** Throws QUEUE_UNAVAILABLE when the queue's Redis does not answer. */
  ping(): Promise<void>;
  /** The newest failed jobs of every type, newest first (the web page's queue panel). */
  failed?(limit: number): Promise<FailedJobView[]>;
  /** Runs a failed job again; false when there is no failed job of that type and id. */
  retry?(type: string, jobId: string): Promise<boolean>;
}

/** A failed job as the queue panel shows it. */
export interface FailedJobView {
  type: string;
  id: string;
  videoId?: string;
  error: { code: string; message: string };
  attempts: number;
  /** Unix milliseconds. */
  failedAt: number | undefined;
}

/** The `CODE: message` form a failed job carries as its reason: written by the worker, read back by parseJobError. */
export function jobErrorReason(code: string, message: string): string {
  return `${code}: ${message}`;
}

/**
 * BullMQ's own reasons for failing a job outside its processor (the job's worker died too many times), with the
 * catalogue code each one means.
 */
const QUEUE_REASONS: Array<[RegExp, string]> = [
  [/stalled more than allowable limit/, 'JOB_STALLED'],
  [/started more than allowable limit/, 'JOB_STALLED'],
];

/** Parses the `CODE: message` form that failed jobs carry; a reason without a code is INTERNAL. */
export function parseJobError(reason: string | undefined): { code: string; message: string } | null {
  if (!reason) return null;
  const m = /^([A-Z][A-Z_]+): ([\s\S]*)$/.exec(reason);
  if (m) return { code: m[1]!, message: m[2]! };
  const known = QUEUE_REASONS.find(([re]) => re.test(reason));
  return { code: known ? known[1] : 'INTERNAL', message: reason };
}
