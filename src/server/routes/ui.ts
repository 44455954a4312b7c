/** The web page at `/`: plain HTML, CSS and one script from web/, read once at boot, no build step. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { PROJECT_ROOT } from '../../config/index.ts';

const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

export function uiRoutes(dir = path.join(PROJECT_ROOT, 'web')) {
  return async (app: FastifyInstance) => {
    for (const [url, a] of Object.entries(ASSETS)) {
      const body = readFileSync(path.join(dir, a.file));
      app.get(url, { schema: { hide: true } }, async (_req, reply) => reply.type(a.type).header('cache-control', 'no-cache').send(body));
    }
  };
}
