/**
 * The Fastify app, built by a function so tests drive it with inject(); `listen` lives in the CLI.
 * Every route has request and response schemas from schemas/api/; OpenAPI is served at /docs.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance, type FastifyError, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { AppError, isAppError, isConnectionError, publicMessage } from '../errors/index.ts';
import { PROJECT_ROOT, type Config } from '../config/index.ts';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.ts';
import { registerAccess } from './access.ts';
import type { Catalog } from '../catalog/index.ts';
import type { VectorStore } from '../store/types.ts';
import type { Encoders } from '../models/types.ts';
import type { JobQueue } from '../queue/index.ts';
import type { EventLog } from '../users/events.ts';
import type { Popularity } from '../recommend/popularity.ts';
import type { UserProfiles } from '../recommend/profiles.ts';
import type { VideoFiles } from '../videos/files.ts';
import { userRoutes } from './routes/users.ts';
import { videoRoutes } from './routes/videos.ts';
import { jobRoutes } from './routes/jobs.ts';
import { healthRoutes } from './routes/health.ts';
import { searchRoutes } from './routes/search.ts';
import { installMetrics } from '../metrics/api.ts';
import type { HealthSource } from '../metrics/embedding.ts';
import type { Webhooks } from '../webhooks/index.ts';
import type { GenerationRouter } from '../generations/router.ts';
import { driftReport as driftReport_ } from '../generations/drift.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { opsRoutes } from './routes/ops.ts';
import { uiRoutes } from './routes/ui.ts';

/** What the routes use (src/runtime.ts builds it; tests may build their own). */
export interface AppDeps {
  config: Config;
  log: Logger;
  /** The fail-fast connection: rate-limit counters, /metrics' worker snapshots and cold-item lookups live here. */
  redis: Redis;
  catalog: Catalog;
  store: VectorStore;
  encoders: Encoders;
  jobs: JobQueue;
  events: EventLog;
  popularity: Popularity;
  /** Users' newest watched items beside their vectors; without it a list reads them from the store. */
  profiles?: UserProfiles;
  files: VideoFiles;
  health?: HealthSource;
  /**
   * The generations this process serves (src/generations/router.ts): each request runs in the served one's
   * context, named in the `x-montage-generation` header. Without it, `encoders` and `store` are used as given.
   */
  generations?: GenerationRouter;
  /** Webhook subscriptions (src/webhooks); the /v1/webhooks routes answer INTERNAL without it. */
  webhooks?: Webhooks;
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
  if (isConnectionError(err))
    return new AppError('QUEUE_UNAVAILABLE', 'Redis (the queue, video records and events) is unavailable; retry later', { cause: err });
  if (err.validation) {
    const field = validationField(err);
    return new AppError('INVALID_FIELD', err.message, { ...(field ? { field } : {}), cause: err });
  }
  if (err.code === 'FST_REQ_FILE_TOO_LARGE') {
    return new AppError('UPLOAD_TOO_LARGE', `the upload is larger than ${maxUploadBytes} bytes`, { cause: err });
  }
  if (err.code === 'FST_FILES_LIMIT') return new AppError('REQUEST_TOO_LARGE', 'an upload takes one file part only', { cause: err });
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return new AppError('URI_TOO_LONG', 'a path parameter is too long', { cause: err });
  const status = err.statusCode ?? 500;
  if (status === 414) return new AppError('URI_TOO_LONG', undefined, { cause: err });
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
  const maxUpload = deps.config.server.maxUploadBytes;
  /**
   * One error shape for every failure, Fastify's own included: `{error: {code, message, field?, requestId}}`, the
   * id also in `x-request-id`. The message is the client's (no server paths, no library internals); the whole
   * error goes to the log under the same request id.
   */
  const send = (req: FastifyRequest, reply: FastifyReply, err: unknown) => {
    const e = toAppError(err as FastifyError, maxUpload);
    if (e.status >= 500) req.log.error({ err, code: e.code }, 'request failed');
    else req.log.info({ err: { message: e.message, code: e.code }, status: e.status }, 'request refused');
    const message = publicMessage(e.message);
    return reply
      .code(e.status)
      .header('x-request-id', req.id)
      .send({ error: { code: e.code, message, ...(e.field ? { field: e.field } : {}), requestId: req.id } });
  };
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array' } },
    genReqId: () => randomUUID(),
    // A client has this long to send a whole request, upload included (slow senders hold a connection each).
    requestTimeout: deps.config.access.uploadTimeoutMs,
    // Node checks for timed-out requests every 30 s by default, so a short timeout would be late by up to that; the
    // check interval is a constructor option, which Fastify passes only through its own server factory.
    serverFactory: (handler) =>
      createServer(
        {
          requestTimeout: deps.config.access.uploadTimeoutMs,
          connectionsCheckingInterval: Math.min(30_000, Math.max(250, deps.config.access.uploadTimeoutMs / 4)),
        },
        handler,
      ),
    // Errors before a request exists (a timeout, a malformed request line) answer in the same shape, raw.
    clientErrorHandler: (err, socket) => {
      const timeout = (err as NodeJS.ErrnoException).code === 'ERR_HTTP_REQUEST_TIMEOUT';
      const e = new AppError(timeout ? 'REQUEST_TIMEOUT' : 'BAD_REQUEST', timeout ? undefined : 'the request could not be parsed');
      const requestId = randomUUID();
      deps.log.info({ err: err.message, code: e.code, requestId }, 'connection refused');
      const body = JSON.stringify({ error: { code: e.code, message: e.message, requestId } });
      if (socket.writable) {
        socket.end(
          `HTTP/1.1 ${e.status} ${timeout ? 'Request Timeout' : 'Bad Request'}\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
        );
      } else socket.destroy(err);
    },
    // The router's own refusals (a path parameter over maxParamLength, a malformed URL) in the same shape.
    frameworkErrors: (err, req, reply) => send(req, reply, err),
  });
  for (const s of loadApiSchemas()) app.addSchema(s);
  // No route takes text/plain: a text body is refused as a content type (415), not parsed and then misvalidated.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((err: FastifyError | AppError, req, reply) => send(req, reply, err));
  app.setNotFoundHandler((req, reply) =>
    send(req, reply, new AppError('ROUTE_NOT_FOUND', `no route ${req.method} ${req.url.slice(0, 200)}`)),
  );

  await app.register(swagger, {
    openapi: { info: { title: 'Montage', version: '0.1.0', description: 'Multimodal content embedding service' } },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(multipart, {
    limits: { fileSize: deps.config.server.maxUploadBytes, files: 1, fields: 32, fieldSize: 64 * 1024, parts: 40 },
  });

  if (deps.generations) pinGeneration(app, deps.generations);
  const { health, generations } = deps;
  const driftReport =
    health && generations
      ? () =>
          driftReport_({
            health,
            encoders: generations.pair().encoders,
            catalog: deps.catalog,
            thresholds: { drift: deps.config.metrics.staleDrift, unknownShare: deps.config.metrics.staleUnknownShare },
          })
      : undefined;
  installMetrics(app, { ...deps, prefix: deps.config.redis.prefix, ...(driftReport ? { driftReport } : {}) });
  await registerAccess(app, deps.config.access, deps.redis, deps.config.redis.prefix);
  await app.register(healthRoutes(deps));
  await app.register(videoRoutes(deps));
  await app.register(jobRoutes(deps));
  await app.register(searchRoutes(deps));
  await app.register(userRoutes(deps));
  await app.register(webhookRoutes(deps));
  await app.register(opsRoutes(deps));
  await app.register(uiRoutes());
  return app;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The generation this request is answered from (set when the app serves through a GenerationRouter). */
    generation?: string;
  }
}

/**
 * Each request is answered from one generation: the one the aliases pointed at when it arrived (re-read at most
 * every MONTAGE_GENERATION_REFRESH_MS). The query is encoded with that generation's towers and searched in its
 * collections even if a switch lands meanwhile. The context is entered in preHandler (after the body is parsed:
 * the parser's stream callbacks would lose it) and covers the handler and everything it awaits.
 */
function pinGeneration(app: FastifyInstance, generations: GenerationRouter): void {
  app.addHook('onRequest', async (req) => {
    await generations.refresh();
    req.generation = generations.served;
  });
  app.addHook('preHandler', (req, _reply, done) => {
    if (req.generation) generations.enter(req.generation, done);
    else done();
  });
  app.addHook('onSend', async (req, reply) => {
    if (req.generation) reply.header('x-montage-generation', req.generation);
  });
}

export { AppError };
