/**
 * The benchmark's search server: a child process answering POST /search {vector, limit} with
 * {ids, scores} over plain node:http, wrapping either the embedded store (`embedded <dir> <dim>`)
 * or exact brute force over the regenerated synthetic matrix (`exact <n> <specJson>`). It
 * stands in for /v1/search so the store's latency is measured over HTTP on loopback, as the
 * protocol asks, without the API's own validation and payload shaping in the number.
 * GET /cpu returns the process's CPU time so far. Prints `READY <port>` once listening.
 */
import { createServer } from 'node:http';
import { EmbeddedStore } from '../src/store/embedded.ts';
import { exactTopK } from '../src/store/exact.ts';
import { Synth, type SynthSpec } from './synth.ts';

type Search = (q: Float32Array, limit: number) => Promise<{ ids: string[]; scores: number[] }>;

async function embedded(dir: string, dim: number, knobs: { ef?: number; refineFactor?: number; nprobes?: number }): Promise<Search> {
  const store = new EmbeddedStore({ dataDir: dir, autoIndex: false, ...knobs });
  await store.open({ name: 'bench', dim });
  return async (vector, limit) => {
    const hits = await store.searchItems({ vector, using: 'fused', limit });
    return { ids: hits.map((h) => h.videoId), scores: hits.map((h) => h.score) };
  };
}

function exact(n: number, spec: SynthSpec): Search {
  const matrix = new Synth(spec).block(0, n);
  return async (q, limit) => {
    const hits = exactTopK(matrix, spec.dim, q, limit);
    return { ids: hits.map((h) => `v${h.index}`), scores: hits.map((h) => h.score) };
  };
}

async function main(): Promise<void> {
  const [mode, a, b, c] = process.argv.slice(2);
  const search = mode === 'embedded' ? await embedded(a!, Number(b), JSON.parse(c ?? '{}'))
    : mode === 'exact' ? exact(Number(a), JSON.parse(b!) as SynthSpec)
    : null;
  if (!search) throw new Error(`unknown mode ${mode}`);
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/cpu') {
      // CPU time of this process, all threads (LanceDB's included): per-query cost that the
      // other jobs sharing the machine cannot inflate, unlike wall-clock latency.
      const u = process.cpuUsage();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ms: (u.user + u.system) / 1000 }));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { vector: number[]; limit: number };
      search(Float32Array.from(body.vector), body.limit).then(
        (out) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out)),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    process.stdout.write(`READY ${typeof addr === 'object' && addr ? addr.port : 0}\n`);
  });
}

await main();
