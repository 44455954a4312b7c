/**
 * The Fastify app, built by a function so tests drive it with inject(); `listen` lives in the CLI.
 * Every route has request and response schemas from schemas/api/; OpenAPI is served at /docs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance, type FastifyError, type FastifyBaseLogger, type FastifyReply } from 'fastify';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { AppError, isAppError } from '../errors/index.ts';
import { PROJECT_ROOT, type Config } from '../config/index.ts';
import type { Logger } from '../log.ts';
import type { Catalog } from '../catalog/index.ts';
import type { VectorStore } from '../store/types.ts';
import type { Encoders } from '../models/types.ts';
import type { JobQueue } from '../queue/index.ts';
import type { EventLog } from '../users/events.ts';
import type { Popularity } from '../recommend/popularity.ts';
import type { VideoFiles } from '../videos/files.ts';
import { userRoutes } from './routes/users.ts';
import { videoRoutes } from './routes/videos.ts';
import { jobRoutes } from './routes/jobs.ts';
import { healthRoutes } from './routes/health.ts';
import { searchRoutes } from './routes/search.ts';

/** What the routes use (src/runtime.ts builds it; tests may build their own). */
export interface AppDeps {
  config: Config;
  log: Logger;
  catalog: Catalog;
  store: VectorStore;
  encoders: Encoders;
  jobs: JobQueue;
  events: EventLog;
  popularity: Popularity;
  files: VideoFiles;
}

/** The API's JSON Schemas, each with an `$id` that routes reference. */
export function loadApiSchemas(dir = path.join(PROJECT_ROOT, 'schemas', 'api')): Record<string, unknown>[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Record<string, unknown>);
}

/** Every error a route can meet, as a catalogue error: the response's code and status come from the catalogue only. */
function toAppError(err: FastifyError | AppError, maxUploadBytes: number): AppError {
  if (isAppError(err)) return err;
  if (err.validation) {
    const field = validationField(err);
    return new AppError('INVALID_FIELD', err.message, { ...(field ? { field } : {}), cause: err });
  }
  if (err.code === 'FST_REQ_FILE_TOO_LARGE') {
    return new AppError('UPLOAD_TOO_LARGE', `the upload is larger than ${maxUploadBytes} bytes`, { cause: err });
  }
  const status = err.statusCode ?? 500;
  if (status === 413) return new AppError('REQUEST_TOO_LARGE', err.message, { cause: err });
  if (status === 415) return new AppError('UNSUPPORTED_CONTENT_TYPE', err.message, { cause: err });
  if (status >= 400 && status < 500) return new AppError('BAD_REQUEST', err.message, { cause: err });
  return new AppError('INTERNAL', undefined, { cause: err });
}

/** Fastify validation errors name the field: `body/limit` → `limit`, `querystring/x` → `x`. */
function validationField(err: FastifyError): string | undefined {
  const v = err.validation?.[0];
  if (!v) return undefined;
  const missing = (v.params as { missingProperty?: string } | undefined)?.missingProperty;
  const base = v.instancePath.replace(/^\//, '').replaceAll('/', '.');
  return [base, missing].filter(Boolean).join('.') || err.validationContext || undefined;
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array' } },
  });
  for (const s of loadApiSchemas()) app.addSchema(s);

  const send = (reply: FastifyReply, e: AppError) =>
    reply.code(e.status).send({ error: { code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}) } });
  app.setErrorHandler((err: FastifyError | AppError, req, reply) => {
    const e = toAppError(err, deps.config.server.maxUploadBytes);
    if (e.status >= 500) req.log.error({ err }, 'request failed');
    return send(reply, e);
  });
  app.setNotFoundHandler((req, reply) => send(reply, new AppError('ROUTE_NOT_FOUND', `no route ${req.method} ${req.url}`)));

  await app.register(swagger, {
    openapi: { info: { title: 'Montage', version: '0.1.0', description: 'Multimodal content embedding service' } },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(multipart, {
    limits: { fileSize: deps.config.server.maxUploadBytes, files: 1, fields: 32, fieldSize: 64 * 1024, parts: 40 },
  });

  await app.register(healthRoutes(deps));
  await app.register(videoRoutes(deps));
  await app.register(jobRoutes(deps));
  await app.register(searchRoutes(deps));
  await app.register(userRoutes(deps));
  return app;
}

export { AppError };
