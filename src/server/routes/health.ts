/** GET /healthz (the process answers) and GET /readyz (Redis, store and models checked). */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.ts';
import { publicMessage } from '../../errors/index.ts';

export function healthRoutes(deps: AppDeps) {
  let modelsChecked = false;
  const check = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
      return { ok: true };
    } catch (err) {
      // Why, without server paths (a store's folder, say): the log has those.
      return { ok: false, detail: publicMessage((err as Error).message) };
    }
  };
  return async (app: FastifyInstance) => {
    app.get('/healthz', { schema: { summary: 'Liveness', response: { 200: { $ref: 'Health#' } } } }, async () => ({
      status: 'ok' as const,
    }));
    app.get(
      '/readyz',
      { schema: { summary: 'Readiness: Redis, store and models', response: { 200: { $ref: 'Health#' }, 503: { $ref: 'Health#' } } } },
      async (_req, reply) => {
        const checks = {
          redis: await check(() => deps.jobs.ping()),
          store: await check(() => deps.store.ping()),
          // One tiny text through the text tower proves the session opens; done once, then cached.
          models: await check(async () => {
            if (!modelsChecked) await deps.encoders.encodeText(['ready']);
            modelsChecked = true;
          }),
        };
        const ok = Object.values(checks).every((c) => c.ok);
        return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unavailable', checks, generation: deps.encoders.generation.name });
      },
    );
  };
}
