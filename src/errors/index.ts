import { tmpdir } from 'node:os';

/**
 * One error catalogue for the whole service: every failure the API or a job can report has a
 * stable code, an HTTP status and whether a job that meets it should retry. Codes are part of
 * the public contract (clients switch on them): add, never rename.
 */
export const ERRORS = {
  // request validation
  BAD_REQUEST: { status: 400, retry: false, message: 'The request is malformed.' },
  INVALID_FIELD: { status: 400, retry: false, message: 'A field of the request is invalid.' },
  LIMIT_TOO_LARGE: { status: 400, retry: false, message: 'limit is above the maximum.' },
  VECTOR_DIMENSION: { status: 400, retry: false, message: 'The vector has the wrong dimension.' },
  VECTOR_INVALID: { status: 400, retry: false, message: 'The vector must hold finite numbers of magnitude at most 1e6.' },
  URI_TOO_LONG: { status: 414, retry: false, message: 'The URL or one of its path parameters is too long.' },
  UNAUTHORIZED: { status: 401, retry: false, message: 'An API key is required, and this one is not known.' },
  FORBIDDEN: { status: 403, retry: false, message: 'The API key lacks the scope this route needs.' },
  REQUEST_TIMEOUT: { status: 408, retry: true, message: 'The request was not received in time.' },
  RATE_LIMITED: { status: 429, retry: true, message: 'Too many requests for this key; retry after the time given.' },
  ROUTE_NOT_FOUND: { status: 404, retry: false, message: 'No route for that method and path.' },
  REQUEST_TOO_LARGE: { status: 413, retry: false, message: 'The request body or its parts exceed the server limits.' },
  UNSUPPORTED_CONTENT_TYPE: { status: 415, retry: false, message: 'The request body has a content type the route does not take.' },
  // uploads and media
  UPLOAD_MISSING_FILE: { status: 400, retry: false, message: 'The upload has no file part.' },
  UPLOAD_TOO_LARGE: { status: 413, retry: false, message: 'The upload is larger than the size cap.' },
  UNSUPPORTED_MEDIA: { status: 415, retry: false, message: 'The file is not a supported video.' },
  CORRUPT_MEDIA: { status: 422, retry: false, message: 'The file could not be decoded.' },
  VIDEO_TOO_LONG: { status: 422, retry: false, message: 'The video is longer than the limit.' },
  VIDEO_TOO_SHORT: { status: 422, retry: false, message: 'The video is too short to encode.' },
  RESOLUTION_TOO_LARGE: { status: 422, retry: false, message: 'The video resolution is above the limit.' },
  PIXEL_RATE_TOO_HIGH: { status: 422, retry: false, message: 'The video decodes to more pixels per second than the limit.' },
  TOO_MANY_STREAMS: { status: 422, retry: false, message: 'The file has more streams than allowed.' },
  MEDIA_TIMEOUT: { status: 422, retry: false, message: 'Decoding the file took longer than the limit.' },
  // resources
  VIDEO_NOT_FOUND: { status: 404, retry: false, message: 'No video with that id.' },
  JOB_NOT_FOUND: { status: 404, retry: false, message: 'No job with that id.' },
  USER_NOT_FOUND: { status: 404, retry: false, message: 'No user with that id.' },
  // webhooks
  WEBHOOK_NOT_FOUND: { status: 404, retry: false, message: 'No webhook subscription with that id.' },
  WEBHOOK_URL_REFUSED: { status: 400, retry: false, message: 'The webhook URL is not one deliveries may go to.' },
  WEBHOOK_DELIVERY_FAILED: { status: 502, retry: true, message: 'The webhook receiver did not accept the delivery.' },
  // models and store
  MODEL_INVALID: { status: 500, retry: false, message: 'The model generation is invalid.' },
  GENERATION_MISMATCH: { status: 500, retry: false, message: 'The store and the configured generation disagree.' },
  TOWER_MISSING: { status: 501, retry: false, message: 'The generation has no tower for this modality.' },
  STORE_UNAVAILABLE: { status: 503, retry: true, message: 'The vector store is unavailable.' },
  QUEUE_UNAVAILABLE: { status: 503, retry: true, message: 'The job queue is unavailable.' },
  // jobs that ended without their processor saying why
  JOB_STALLED: { status: 500, retry: true, message: 'The job was abandoned by its worker (crashed or killed) more times than allowed.' },
  JOB_LOST: { status: 500, retry: true, message: 'The job of a queued video no longer exists (the queue lost it).' },
  CONFIG_INVALID: { status: 500, retry: false, message: 'The configuration is invalid.' },
  INTERNAL: { status: 500, retry: true, message: 'Internal error.' },
} as const satisfies Record<string, { status: number; retry: boolean; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** An error with a catalogue code. `field` names the offending request field when there is one. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retry: boolean;
  readonly field: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, opts: { field?: string; cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message ?? ERRORS[code].message, { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.retry = ERRORS[code].retry;
    this.field = opts.field;
    this.details = opts.details;
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

/** Wraps a cause with what was being attempted and on what: `ffprobe on <id> failed: <cause>`. */
export function wrap(code: ErrorCode, doing: string, cause: unknown): AppError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new AppError(code, `${doing} failed: ${why}`, { cause });
}

/**
 * Whether an error is a lost or unanswered Redis connection (ioredis' errors while the fail-fast connection is
 * down or a command timed out): the API answers those as QUEUE_UNAVAILABLE, not as an internal error.
 */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  return /enableOfflineQueue|Connection is closed|Command timed out|ECONNREFUSED|ECONNRESET|EPIPE|Stream isn't writeable/.test(err.message);
}

/** Where server paths start: they are never shown to a client (the log has them, keyed by the request id). */
const PATH_ROOTS = ['tmp', 'work', 'home', 'var', 'usr', 'opt', 'root', 'srv', 'mnt', 'data', 'run', 'etc', 'proc', 'dev'];
const PATH_RE = new RegExp(`(?:file:)?(?:${escapeRe(tmpdir())}|/(?:${PATH_ROOTS.join('|')}))(?![\\w.-])(?:/[^\\s'"|,;)]*)?`, 'g');
/** ffmpeg's context tags, `[hls @ 0x55d…]`: library internals. */
const FFMPEG_TAG_RE = /\[[\w.:-]+ @ 0x[0-9a-f]+\]\s*/gi;

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A message as a client may see it: server paths and ffmpeg's internals taken out, and at most 500 characters. */
export function publicMessage(message: string): string {
  const out = message.replace(FFMPEG_TAG_RE, '').replace(PATH_RE, '<path>');
  return out.length > 500 ? `${out.slice(0, 497)}...` : out;
}
