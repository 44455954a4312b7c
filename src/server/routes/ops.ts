/**
 * What the web page needs beyond the search and recommendation API: the video itself with HTTP range requests
 * (play from a moment), a user's recent history, and the queue panel (counts, failed jobs with their codes, retry).
 */
import { USER_ID_PARAMS } from './paging.ts';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../errors/index.ts';
import type { AppDeps } from '../app.ts';

const VIDEO_ID = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f]{32}$' } } } as const;

/** The container's MIME type from its first bytes (uploads are stored without an extension). */
async function sniff(file: string): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(12);
    await fh.read(head, 0, 12, 0);
    if (head.subarray(4, 8).toString('latin1') === 'ftyp') return 'video/mp4';
    if (head.readUInt32BE(0) === 0x1a45dfa3) return 'video/webm';
    return 'application/octet-stream';
  } finally {
    await fh.close();
  }
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` → [start, end] inclusive; null when unsatisfiable or not one range. */
export function parseRange(header: string, size: number): [number, number] | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  return start <= end && start < size ? [start, end] : null;
}

export function opsRoutes(deps: AppDeps) {
  return async (app: FastifyInstance) => {
    app.get<{ Params: { id: string } }>(
      '/v1/videos/:id/media',
      { schema: { summary: 'The uploaded video, with HTTP range requests (206) so a player can seek', params: VIDEO_ID } },
      async (req, reply) => {
        const rec = await deps.catalog.get(req.params.id);
        const size = rec
          ? await stat(rec.uploadPath).then(
              (s) => s.size,
              () => null,
            )
          : null;
        if (!rec || size === null) throw new AppError('VIDEO_NOT_FOUND', `no video file for ${req.params.id}`, { field: 'id' });
        reply.header('accept-ranges', 'bytes').type(await sniff(rec.uploadPath));
        const range = req.headers.range;
        if (!range) return reply.header('content-length', size).send(createReadStream(rec.uploadPath));
        const r = parseRange(range, size);
        if (!r) return reply.code(416).header('content-range', `bytes */${size}`).send();
        return reply
          .code(206)
          .header('content-range', `bytes ${r[0]}-${r[1]}/${size}`)
          .header('content-length', r[1] - r[0] + 1)
          .send(createReadStream(rec.uploadPath, { start: r[0], end: r[1] }));
      },
    );

    app.get<{ Params: { id: string }; Querystring: { limit?: number } }>(
      '/v1/users/:id/history',
      {
        schema: {
          summary: "A user's newest engaged videos, newest first",
          params: USER_ID_PARAMS,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { limit: { type: 'integer', minimum: 1, maximum: 100 } },
          },
        },
      },
      async (req) => {
        const recent = (await deps.events.recent(req.params.id, req.query.limit ?? 20)).reverse();
        const items = await Promise.all(
          recent.map(async (e) => {
            const rec = await deps.catalog.get(e.videoId);
            return { videoId: e.videoId, title: rec?.title ?? null, timestamp: new Date(e.timestamp).toISOString() };
          }),
        );
        return { userId: req.params.id, items };
      },
    );

    app.get<{ Querystring: { limit?: number } }>(
      '/v1/queue',
      {
        schema: {
          summary: 'Jobs per queue and state, and the newest failed jobs with their error codes',
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { limit: { type: 'integer', minimum: 1, maximum: 200 } },
          },
        },
      },
      async (req) => ({ counts: await deps.jobs.counts(), failed: (await deps.jobs.failed?.(req.query.limit ?? 20)) ?? [] }),
    );

    app.post<{ Params: { type: string; id: string } }>(
      '/v1/jobs/:type/:id/retry',
      {
        schema: {
          summary: 'Runs a failed job again',
          params: {
            type: 'object',
            required: ['type', 'id'],
            properties: { type: { type: 'string', maxLength: 64 }, id: { type: 'string', maxLength: 200 } },
          },
          response: {
            202: { type: 'object', required: ['jobId', 'state'], properties: { jobId: { type: 'string' }, state: { type: 'string' } } },
            '4xx': { $ref: 'Error#' },
          },
        },
      },
      async (req, reply) => {
        if (!(await deps.jobs.retry?.(req.params.type, req.params.id))) {
          throw new AppError('JOB_NOT_FOUND', `no failed ${req.params.type} job ${req.params.id}`, { field: 'id' });
        }
        return reply.code(202).send({ jobId: req.params.id, state: 'waiting' });
      },
    );
  };
}
