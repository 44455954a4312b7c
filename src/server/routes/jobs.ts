/** GET /v1/jobs/:id: state, current stage, progress %, ETA, error code and message. */
import type { FastifyInstance } from 'fastify';
import { AppError, publicMessage } from '../../errors/index.ts';
import { parseJobError } from '../../queue/index.ts';
import type { AppDeps } from '../app.ts';

export function jobRoutes(deps: AppDeps) {
  return async (app: FastifyInstance) => {
    app.get<{ Params: { id: string } }>(
      '/v1/jobs/:id',
      {
        schema: {
          summary: 'An ingest job: state, stage, progress, ETA, error',
          params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 200 } } },
          response: { 200: { $ref: 'Job#' }, '4xx': { $ref: 'Error#' } },
        },
      },
      async (req) => {
        const job = await deps.jobs.ingestJob(req.params.id);
        if (!job) throw new AppError('JOB_NOT_FOUND', `no job ${req.params.id}`, { field: 'id' });
        const { state, progress: p, result } = job;
        const error = state === 'failed' ? parseJobError(job.failedReason) : null;
        return {
          jobId: job.id,
          videoId: job.data.videoId,
          state,
          ...(p?.stage ? { stage: p.stage } : {}),
          progress: state === 'completed' ? 100 : (p?.percent ?? 0),
          etaS: state === 'completed' ? 0 : (p?.etaS ?? null),
          attempts: job.attemptsMade,
          createdAt: new Date(job.createdAt).toISOString(),
          ...(job.finishedAt ? { finishedAt: new Date(job.finishedAt).toISOString() } : {}),
          ...(result?.stages ? { stageSeconds: result.stages } : {}),
          ...(result?.spans ? { stageSpans: result.spans } : {}),
          ...(error ? { error: { code: error.code, message: publicMessage(error.message) } } : {}),
        };
      },
    );
  };
}
