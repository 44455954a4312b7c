/** POST/GET/DELETE /v1/videos: uploads in, records out, vectors and files removed on delete. */
import { createReadStream } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError, publicMessage } from '../../errors/index.ts';
import type { VideoRecord } from '../../catalog/index.ts';
import {
  admitVideo,
  deleteVideo,
  discardUpload,
  getVideo,
  videoService,
  type VideoFields,
  type VideoServiceDeps,
} from '../../videos/service.ts';
import type { StoredUpload } from '../../videos/files.ts';
import type { AppDeps } from '../app.ts';

const ID_PARAMS = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9a-f]{32}$', description: 'video id (hex)' } },
} as const;

function parseFields(raw: Record<string, string[]>): VideoFields {
  const one = (name: string, max: number): string | undefined => {
    const v = raw[name];
    if (!v) return undefined;
    if (v.length > 1) throw new AppError('INVALID_FIELD', `${name} was given ${v.length} times`, { field: name });
    if (v[0]!.length > max) throw new AppError('INVALID_FIELD', `${name} is longer than ${max} characters`, { field: name });
    return v[0]!.trim();
  };
  const tags = (raw.tags ?? [])
    .flatMap((t) => t.split(','))
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
  if (tags.length > 64) throw new AppError('INVALID_FIELD', 'at most 64 tags', { field: 'tags' });
  if (tags.some((t) => t.length > 64)) throw new AppError('INVALID_FIELD', 'a tag is longer than 64 characters', { field: 'tags' });
  const externalId = one('externalId', 256);
  for (const k of Object.keys(raw)) {
    if (!['title', 'description', 'tags', 'externalId'].includes(k))
      throw new AppError('INVALID_FIELD', `unknown field ${k}`, { field: k });
  }
  return {
    title: one('title', 512) ?? '',
    description: one('description', 8192) ?? '',
    tags: [...new Set(tags)],
    ...(externalId ? { externalId } : {}),
  };
}

export function toVideoResponse(rec: VideoRecord, publicUrl: string) {
  return {
    videoId: rec.videoId,
    title: rec.title,
    description: rec.description,
    tags: rec.tags,
    ...(rec.externalId ? { externalId: rec.externalId } : {}),
    status: rec.status,
    jobId: rec.jobId,
    generation: rec.generation,
    modalities: rec.modalities,
    ...(rec.durationS !== undefined ? { durationS: rec.durationS } : {}),
    sizeBytes: rec.sizeBytes,
    sha256: rec.sha256,
    uploadedAt: new Date(rec.uploadedAt).toISOString(),
    ...(rec.posterPath ? { posterUrl: `${publicUrl}/v1/videos/${rec.videoId}/poster.jpg` } : {}),
    ...(rec.error ? { error: { code: rec.error.code, message: publicMessage(rec.error.message) } } : {}),
    ...(rec.enrichments ? { enrichments: rec.enrichments } : {}),
  };
}

/** Reads the multipart body: one `file` part streamed to disk, plus text fields. */
async function readUpload(req: FastifyRequest, svc: VideoServiceDeps) {
  if (!req.isMultipart()) throw new AppError('BAD_REQUEST', 'expected multipart/form-data with a file part', { field: 'file' });
  const fields: Record<string, string[]> = {};
  let stored: StoredUpload | undefined;
  try {
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'file')
          throw new AppError('INVALID_FIELD', `unexpected file field ${part.fieldname}`, { field: part.fieldname });
        stored = await svc.files.receive(part.file);
      } else {
        (fields[part.fieldname] ??= []).push(String(part.value));
      }
    }
    if (!stored) throw new AppError('UPLOAD_MISSING_FILE', 'the request has no file part', { field: 'file' });
    return { stored, fields: parseFields(fields) };
  } catch (err) {
    if (stored) await discardUpload(svc, stored);
    throw err;
  }
}

export function videoRoutes(deps: AppDeps) {
  const { config, catalog } = deps;
  const svc = videoService(deps);
  return async (app: FastifyInstance) => {
    app.post(
      '/v1/videos',
      {
        schema: {
          summary: 'Upload a video (multipart: file, title, description, tags, externalId)',
          consumes: ['multipart/form-data'],
          response: { 202: { $ref: 'UploadAccepted#' }, '4xx': { $ref: 'Error#' } },
        },
      },
      async (req, reply) => {
        // Refused before the body is read: with Redis down no upload could be admitted, so none is streamed to disk.
        await deps.jobs.ping();
        const { stored, fields } = await readUpload(req, svc);
        return reply.code(202).send(await admitVideo(svc, stored, fields));
      },
    );

    app.get<{ Params: { id: string } }>(
      '/v1/videos/:id',
      {
        schema: {
          summary: 'A video: metadata, status, modalities, generation',
          params: ID_PARAMS,
          response: { 200: { $ref: 'Video#' }, '4xx': { $ref: 'Error#' } },
        },
      },
      async (req) => toVideoResponse(await getVideo(svc, req.params.id), config.server.publicUrl),
    );

    app.get<{ Params: { id: string } }>(
      '/v1/videos/:id/poster.jpg',
      {
        schema: { summary: 'The poster frame (JPEG)', params: ID_PARAMS, response: { '4xx': { $ref: 'Error#' } } },
      },
      async (req, reply) => {
        const rec = await catalog.get(req.params.id);
        if (!rec?.posterPath) throw new AppError('VIDEO_NOT_FOUND', `no poster for video ${req.params.id}`, { field: 'id' });
        return reply.type('image/jpeg').send(createReadStream(rec.posterPath));
      },
    );

    app.delete<{ Params: { id: string } }>(
      '/v1/videos/:id',
      {
        schema: {
          summary: 'Remove a video: its vectors, its files, its record',
          params: ID_PARAMS,
          response: { 204: { type: 'null' }, '4xx': { $ref: 'Error#' } },
        },
      },
      async (req, reply) => {
        await deleteVideo(svc, req.params.id);
        return reply.code(204).send();
      },
    );
  };
}
