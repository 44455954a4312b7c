/** Webhook subscriptions and their deliveries: POST/GET /v1/webhooks, GET/DELETE /v1/webhooks/:id, GET /v1/webhooks/:id/deliveries. */
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../errors/index.ts';
import type { Subscription, Webhooks, WebhookEvent } from '../../webhooks/index.ts';
import type { AppDeps } from '../app.ts';

const ID = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9a-f]{32}$' } } } as const;

/** A subscription as the API shows it: never its secret. */
function view(s: Subscription) {
  return { id: s.id, url: s.url, events: s.events, createdAt: s.createdAt };
}

export function webhookRoutes(deps: AppDeps & { webhooks?: Webhooks }) {
  const hooks = (): Webhooks => {
    if (!deps.webhooks) throw new AppError('INTERNAL', 'webhooks are not wired in this process');
    return deps.webhooks;
  };
  return async (app: FastifyInstance) => {
    app.post<{ Body: { url: string; secret: string; events: WebhookEvent[] } }>(
      '/v1/webhooks',
      {
        schema: {
          summary: 'Subscribe a URL to events (video.ready, video.failed, enrichment.done, generation.switched)',
          body: { $ref: 'WebhookRequest#' },
          response: { 201: { $ref: 'Webhook#' }, '4xx': { $ref: 'Error#' } },
        },
      },
      async (req, reply) => reply.code(201).send(view(await hooks().register(req.body))),
    );
    app.get(
      '/v1/webhooks',
      {
        schema: {
          summary: 'Every webhook subscription',
          response: {
            200: { type: 'object', required: ['webhooks'], properties: { webhooks: { type: 'array', items: { $ref: 'Webhook#' } } } },
          },
        },
      },
      async () => ({ webhooks: (await hooks().list()).map(view) }),
    );
    app.get<{ Params: { id: string } }>(
      '/v1/webhooks/:id',
      { schema: { summary: 'One webhook subscription', params: ID, response: { 200: { $ref: 'Webhook#' }, '4xx': { $ref: 'Error#' } } } },
      async (req) => view(await hooks().get(req.params.id)),
    );
    app.delete<{ Params: { id: string } }>(
      '/v1/webhooks/:id',
      {
        schema: {
          summary: 'Unsubscribe; pending deliveries are skipped',
          params: ID,
          response: { 204: { type: 'null' }, '4xx': { $ref: 'Error#' } },
        },
      },
      async (req, reply) => {
        await hooks().remove(req.params.id);
        return reply.code(204).send();
      },
    );
    app.get<{ Params: { id: string } }>(
      '/v1/webhooks/:id/deliveries',
      {
        schema: {
          summary: "A subscription's newest deliveries (up to 100), newest first, with their state and last answer",
          params: ID,
          response: {
            200: {
              type: 'object',
              required: ['deliveries'],
              properties: { deliveries: { type: 'array', items: { $ref: 'WebhookDelivery#' } } },
            },
            '4xx': { $ref: 'Error#' },
          },
        },
      },
      async (req) => ({ deliveries: (await hooks().deliveries(req.params.id)).map(({ body: _body, subscriptionId: _s, ...d }) => d) }),
    );
  };
}
