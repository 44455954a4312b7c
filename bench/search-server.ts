/**
 * The benchmark's search servers, each a child process that prints `READY <port>` once listening
 * on 127.0.0.1 (port 0) and exits cleanly on SIGTERM.
 *
 *   real:  the service itself: createRuntime (config from the environment: MONTAGE_STORE_DIR,
 *          MONTAGE_GENERATION_DIR, MONTAGE_QUEUE_PREFIX, ...) + buildApp, answering POST /v1/search.
 *   exact <n> <specJson>: brute force over the regenerated synthetic matrix behind a Fastify app
 *          with the same request/response schemas and hit shaping as /v1/search, so the two differ
 *          in the search itself and not in the HTTP/JSON path around it. The real API cannot be
 *          asked for exact search, hence this second server.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { createRuntime } from '../src/runtime.ts';
import { buildApp, loadApiSchemas } from '../src/server/app.ts';
import { toHit } from '../src/server/routes/search.ts';
import { exactTopK } from './lib/exact.ts';
import { unit } from '../src/vectors.ts';
import { Synth, synthPayload, type SynthSpec } from './synth.ts';

async function real(): Promise<{ app: FastifyInstance; close: () => Promise<unknown> }> {
  const rt = await createRuntime({ role: 'bench-search', buildIndexes: false });
  const app = await buildApp(rt);
  return {
    app,
    close: async () => {
      await app.close();
      await rt.close();
    },
  };
}

async function exact(n: number, spec: SynthSpec): Promise<{ app: FastifyInstance; close: () => Promise<unknown> }> {
  const matrix = new Synth(spec).block(0, n);
  const app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array' } } });
  for (const s of loadApiSchemas()) app.addSchema(s);
  app.post<{ Body: { vector: number[]; limit?: number; filter?: { durationS?: { max?: number } } } }>(
    '/v1/search',
    {
      schema: { body: { $ref: 'SearchRequest#' }, response: { 200: { $ref: 'SearchResponse#' } } },
    },
    async (req) => {
      // Same normalisation as the service's vector query (src/search/service.ts).
      const v = Float32Array.from(req.body.vector);
      const q = unit(v) ?? v;
      // The bench's filters bound durationS only (bench/search.ts durationBound).
      const max = req.body.filter?.durationS?.max;
      const accept = max === undefined ? undefined : (row: number) => synthPayload(row).durationS <= max;
      const hits = exactTopK(matrix, spec.dim, q, req.body.limit ?? 10, accept);
      return { hits: hits.map((h) => toHit({ videoId: `v${h.index}`, score: h.score, payload: synthPayload(h.index) }, '')) };
    },
  );
  return { app, close: () => app.close() };
}

async function main(): Promise<void> {
  const [mode, a, b] = process.argv.slice(2);
  const server = mode === 'real' ? await real() : mode === 'exact' ? await exact(Number(a), JSON.parse(b!) as SynthSpec) : null;
  if (!server) throw new Error(`unknown mode ${mode}`);
  process.once('SIGTERM', () => void server.close().finally(() => process.exit(0)));
  const address = await server.app.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(`READY ${new URL(address).port}\n`);
}

await main();
