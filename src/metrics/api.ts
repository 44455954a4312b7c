/**
 * GET /metrics (Prometheus text format, prom-client): the API process's own metrics (HTTP requests by route and
 * status, error codes, search and recommendation latency, unknown-word text queries, cold-start exposure, queue
 * depths), the workers' metrics aggregated from their Redis snapshots (src/metrics/worker.ts), and the embedding
 * health computed at scrape time (degraded share, drift from the generation's reference).
 *
 * Hooks, not route code, do the measuring, so the routes stay as they are: the route's pattern is the label (not
 * the URL, which would make one series per video id).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { Encoders } from '../models/types.ts';
import type { JobQueue } from '../queue/index.ts';
import type { EventLog } from '../users/events.ts';
import type { Logger } from '../log.ts';
import { aggregateWorkers } from './worker.ts';
import type { HealthSource } from './embedding.ts';
import type { DriftReport } from '../generations/drift.ts';

/** A text query whose known-word share is below this counts as "mostly unknown words". */
export const MOSTLY_UNKNOWN = 0.5;

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface MetricsDeps {
  jobs: JobQueue;
  encoders: Encoders;
  events: EventLog;
  log: Logger;
  /** Without it, the workers' metrics, the embedding health and cold-item exposure are left out. */
  redis?: Redis;
  prefix: string;
  health?: HealthSource;
  /** The served generation's drift report (src/generations/drift.ts): staleness and new items per day. */
  driftReport?: () => Promise<DriftReport>;
}

function apiMetrics(registry: Registry, deps: MetricsDeps) {
  const registers = [registry];
  const stored = new Gauge({
    name: 'montage_items_degraded_ratio',
    help: 'Share of items stored (by the live workers) with a modality the generation has missing',
    registers,
  });
  const stale = new Gauge({
    name: 'montage_generation_stale',
    help: 'Whether the served generation is stale: 1 when a modality drift is over MONTAGE_STALE_DRIFT or the mostly-unknown query share over MONTAGE_STALE_UNKNOWN_SHARE',
    labelNames: ['generation'],
    registers,
  });
  const perDay = new Gauge({
    name: 'montage_generation_new_items_per_day',
    help: 'Ready items uploaded per day since the served generation was trained (its manifest created_at)',
    labelNames: ['generation'],
    registers,
  });
  const unknownRecent = new Gauge({
    name: 'montage_generation_unknown_query_share',
    help: "Share of the recent text queries (MONTAGE_METRICS_DRIFT_WINDOW, all API processes) whose words are mostly unknown to the served generation's tokenizer",
    labelNames: ['generation'],
    registers,
  });
  const drift = new Gauge({
    name: 'montage_embedding_drift',
    help: "1 - cosine between the mean of the recently stored item vectors and the generation's reference mean, per modality",
    labelNames: ['modality'],
    registers,
  });
  const refItems = new Gauge({
    name: 'montage_embedding_reference_items',
    help: 'Items the drift reference averages, per modality (absent until a reference exists)',
    labelNames: ['modality'],
    registers,
  });
  return {
    http: new Counter({
      name: 'montage_http_requests_total',
      help: 'HTTP requests by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    }),
    errors: new Counter({
      name: 'montage_api_errors_total',
      help: 'Error responses by catalogue code',
      labelNames: ['code', 'status'],
      registers,
    }),
    search: new Histogram({
      name: 'montage_search_seconds',
      help: 'Search latency by query kind (text, video, vector, similar), seconds',
      labelNames: ['kind'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    recommend: new Histogram({
      name: 'montage_recommendation_seconds',
      help: 'Recommendation latency, seconds',
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    textQueries: new Counter({
      name: 'montage_text_queries_total',
      help: 'Text search queries, by whether most of their words are unknown to the generation tokenizer',
      labelNames: ['mostly_unknown'],
      registers,
    }),
    unknownRatio: new Gauge({
      name: 'montage_text_queries_mostly_unknown_ratio',
      help: `Share of text queries (since this API process started) with under ${MOSTLY_UNKNOWN * 100}% known words`,
      registers,
    }),
    recommendations: new Counter({
      name: 'montage_recommendations_total',
      help: 'Recommendation responses by source (popular-fresh = a cold-start user)',
      labelNames: ['source'],
      registers,
    }),
    recommended: new Counter({
      name: 'montage_recommended_items_total',
      help: 'Items served in recommendations, by whether the item had no engagement yet (cold)',
      labelNames: ['cold'],
      registers,
    }),
    coldRatio: new Gauge({
      name: 'montage_cold_start_exposure_ratio',
      help: 'Share of recommended items (since this API process started) that had no engagement yet',
      registers,
    }),
    queue: new Gauge({
      name: 'montage_queue_jobs',
      help: 'Jobs per queue and state',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        this.reset();
        const counts = await deps.jobs.counts();
        for (const [queue, byState] of Object.entries(counts))
          for (const [state, n] of Object.entries(byState)) this.set({ queue, state }, n);
      },
    }),
    stored,
    drift,
    stale,
    perDay,
    unknownRecent,
    refItems,
  };
}

type Metrics = ReturnType<typeof apiMetrics>;

function searchKind(req: FastifyRequest): string {
  const b = (req.body ?? {}) as { text?: unknown; videoId?: unknown; vector?: unknown };
  return b.text !== undefined ? 'text' : b.videoId !== undefined ? 'video' : b.vector !== undefined ? 'vector' : 'invalid';
}

function ratio(c: Counter, label: string, yes: string): Promise<number> {
  return c.get().then((m) => {
    const all = m.values.reduce((a, v) => a + v.value, 0);
    const hit = m.values.filter((v) => String(v.labels[label]) === yes).reduce((a, v) => a + v.value, 0);
    return all > 0 ? hit / all : 0;
  });
}

/** Adds the measuring hooks to `app` (the root instance, so every route is seen) and GET /metrics. */
export function installMetrics(app: FastifyInstance, deps: MetricsDeps): void {
  const registry = new Registry();
  const m = apiMetrics(registry, deps);

  app.addHook('preHandler', async (req) => {
    if (req.routeOptions.url !== '/v1/search' || req.method !== 'POST') return;
    const text = (req.body as { text?: unknown } | undefined)?.text;
    if (typeof text !== 'string') return;
    const unknown = await deps.encoders.unknownWordShare(text).catch(() => null);
    if (unknown !== null) m.textQueries.inc({ mostly_unknown: String(1 - unknown < MOSTLY_UNKNOWN) });
    if (unknown !== null)
      await deps.health?.recordQuery(unknown).catch((err: unknown) => deps.log.warn({ err }, 'recording a query failed'));
  });

  app.addHook('onSend', async (req, reply, payload) => {
    if (reply.statusCode >= 400 && typeof payload === 'string') {
      const code = errorCode(payload);
      if (code) m.errors.inc({ code, status: reply.statusCode });
    } else if (req.routeOptions.url === '/v1/users/:id/recommendations' && typeof payload === 'string') {
      void countRecommendation(m, deps, payload).catch((err: unknown) => deps.log.warn({ err }, 'recommendation metrics failed'));
    }
    return payload;
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    m.http.inc({ method: req.method, route, status: reply.statusCode });
    const s = reply.elapsedTime / 1000;
    if (reply.statusCode >= 400) return;
    if (route === '/v1/search') m.search.observe({ kind: searchKind(req) }, s);
    else if (route === '/v1/videos/:id/similar') m.search.observe({ kind: 'similar' }, s);
    else if (route === '/v1/users/:id/recommendations') m.recommend.observe(s);
  });

  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    m.unknownRatio.set(await ratio(m.textQueries, 'mostly_unknown', 'true'));
    m.coldRatio.set(await ratio(m.recommended, 'cold', 'true'));
    let workers = new Registry();
    if (deps.redis) {
      workers = await aggregateWorkers(deps.redis, deps.prefix);
      const stored = (await workers.getSingleMetric('montage_items_stored_total')?.get()) ?? { values: [] };
      const all = stored.values.reduce((a, v) => a + v.value, 0);
      const degraded = stored.values.filter((v) => v.labels.degraded === 'true').reduce((a, v) => a + v.value, 0);
      m.stored.set(all > 0 ? degraded / all : 0);
    }
    m.drift.reset();
    m.refItems.reset();
    for (const d of (await deps.health?.drift()) ?? []) {
      m.drift.set({ modality: d.modality }, d.drift);
      m.refItems.set({ modality: d.modality }, d.referenceItems);
    }
    m.stale.reset();
    m.perDay.reset();
    m.unknownRecent.reset();
    const report = await deps.driftReport?.().catch((err: unknown) => {
      deps.log.warn({ err }, 'drift report failed');
      return null;
    });
    if (report) {
      m.stale.set({ generation: report.generation }, report.stale ? 1 : 0);
      if (report.newItems) m.perDay.set({ generation: report.generation }, report.newItems.perDay);
      if (report.queries) m.unknownRecent.set({ generation: report.generation }, report.queries.mostlyUnknownShare);
    }
    const merged = Registry.merge([registry, workers]);
    return reply.type(merged.contentType).send(await merged.metrics());
  });
}

/** The catalogue code of an error body; undefined for a body that is not one (a 416 has none). */
function errorCode(payload: string): string | undefined {
  try {
    return (JSON.parse(payload) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

async function countRecommendation(m: Metrics, deps: MetricsDeps, payload: string): Promise<void> {
  const body = JSON.parse(payload) as { source?: string; hits?: Array<{ videoId: string }> };
  if (body.source) m.recommendations.inc({ source: body.source });
  const ids = (body.hits ?? []).map((h) => h.videoId);
  if (!deps.redis || ids.length === 0) return;
  const scores = await deps.redis.zmscore(deps.events.popularKey, ...ids);
  const cold = scores.filter((s) => s === null || Number(s) <= 0).length;
  if (cold) m.recommended.inc({ cold: 'true' }, cold);
  if (ids.length - cold) m.recommended.inc({ cold: 'false' }, ids.length - cold);
}
