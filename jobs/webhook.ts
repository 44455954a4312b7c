/**
 * The webhook job: one try of one delivery (src/webhooks). The job type's policy row gives the retries and their
 * backoff; a URL that is now refused (its name resolves to a private address) fails at once, without retries.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import { isAppError } from '../src/errors/index.ts';
import { jobErrorReason } from '../src/queue/index.ts';
import type { Webhooks } from '../src/webhooks/index.ts';

export interface WebhookData {
  deliveryId: string;
}

export interface WebhookDeps {
  webhooks: Webhooks;
}

export function makeWebhookProcessor(deps: WebhookDeps) {
  return async (job: Job<WebhookData>) => {
    const finalTry = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    try {
      const d = await deps.webhooks.deliver(job.data.deliveryId, finalTry);
      return { deliveryId: job.data.deliveryId, state: d?.state ?? 'expired' };
    } catch (err) {
      if (isAppError(err)) {
        const reason = jobErrorReason(err.code, err.message);
        throw err.retry ? new Error(reason, { cause: err }) : new UnrecoverableError(reason);
      }
      throw err;
    }
  };
}
