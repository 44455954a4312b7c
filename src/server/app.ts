/**
 * The Fastify app, built by a function so tests drive it with inject(); `listen` lives in the CLI.
 * Every route has request and response schemas from schemas/api/; OpenAPI is served at /docs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance, type FastifyError, type FastifyBaseLogger } from 'fastify';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { AppError, isAppError } from '../errors/index.ts';
import { PROJECT_ROOT } from '../config/index.ts';
import type { Runtime } from '../runtime.ts';
import { userRoutes } from './routes/users.ts';
import { videoRoutes } from './routes/videos.ts';
import { jobRoutes } from './routes/jobs.ts';
import { healthRoutes } from './routes/health.ts';
import { searchRoutes } from './routes/search.ts';

/** What the routes use of the runtime (src/runtime.ts builds it; tests may build their own). */
export type AppDeps = Pick<Runtime, 'config' | 'log' | 'redis' | 'catalog' | 'store' | 'encoders' | 'queues' | 'events'>;

/** The API's JSON Schemas, each with an `$id` that routes reference. */
export function loadApiSchemas(dir = path.join(PROJECT_ROOT, 'schemas', 'api')): Record<string, unknown>[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Record<string, unknown>);
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

  app.setErrorHandler((err: FastifyError | AppError, req, reply) => {
    if (isAppError(err)) {
      if (err.status >= 500) req.log.error({ err }, 'request failed');
      return reply.code(err.status).send({ error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } });
    }
    if (err.validation) {
      const field = validationField(err);
      return reply.code(400).send({ error: { code: 'INVALID_FIELD', message: err.message, ...(field ? { field } : {}) } });
    }
    if (err.code === 'FST_REQ_FILE_TOO_LARGE') {
      return reply
        .code(413)
        .send({ error: { code: 'UPLOAD_TOO_LARGE', message: `the upload is larger than ${deps.config.server.maxUploadBytes} bytes` } });
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    return reply
      .code(status)
      .send({ error: { code: status >= 500 ? 'INTERNAL' : 'BAD_REQUEST', message: status >= 500 ? 'Internal error.' : err.message } });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}` } }),
  );

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
