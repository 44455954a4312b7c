/**
 * montage serve | worker | start | ingest <file|dir>... | status
 * Run through npm so the pinned Node 24 is used: `npm run montage -- ingest ./videos`.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createRuntime, startRuntimeWorkers, type Runtime } from '../runtime.ts';
import { lowerWorkerPriority } from '../../jobs/worker.ts';
import { buildApp } from '../server/app.ts';
import { admitVideo, videoService } from '../videos/service.ts';
import { isAppError } from '../errors/index.ts';
import { loadConfig } from '../config/index.ts';
import { createLogger } from '../log.ts';
import { bar } from './progress.ts';
import { exportTrainingCommand } from './export-training.ts';
import { GENERATION_USAGE, generationCli, generationStatus } from './generation.ts';

const USAGE = `usage: montage <command>
  serve                 the HTTP API (MONTAGE_HOST:MONTAGE_PORT)
  worker                the ingest worker
  start                 API and worker in one process (a single machine)
  ingest <file|dir>...  backfill files or folders through the ingest flow, with a progress bar
                        [--tags a,b] [--no-worker: only enqueue, a running worker does the work]
  status                generation, store, queue counts, drift and staleness
  export-training <dir> frames, audio, captions, vectors and events for the trainers, resumable
                        [--max-videos N] [--max-bytes B] [--max-segments S per video, default 8]
${GENERATION_USAGE}`;

/**
 * SIGTERM/SIGINT: stop taking work, drain, close in order; a second signal exits at once. Installed before the
 * slow boot (models, store), so a signal during boot exits cleanly too; steps are added as parts come up.
 */
function shutdownHandler(log: () => Runtime['log'] | undefined): (step: () => Promise<unknown>) => void {
  const steps: Array<() => Promise<unknown>> = [];
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log()?.info({ signal }, 'shutting down');
    for (const step of steps) {
      try {
        await step();
      } catch (err) {
        log()?.error({ err }, 'shutdown step failed');
      }
    }
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  return (step) => {
    steps.push(step);
  };
}

async function serve(withWorker: boolean): Promise<void> {
  const booted: { rt?: Runtime } = {};
  const onStop = shutdownHandler(() => booted.rt?.log);
  const rt = (booted.rt = await createRuntime({ role: withWorker ? 'all' : 'api', buildIndexes: withWorker }));
  const app = await buildApp(rt);
  onStop(() => app.close());
  if (withWorker) {
    const w = startRuntimeWorkers(rt);
    onStop(() => w.close());
  }
  onStop(() => rt.close());
  await app.listen({ host: rt.config.server.host, port: rt.config.server.port });
  const { keys } = rt.config.access;
  if (keys.length === 0) {
    rt.log.warn({ host: rt.config.server.host }, 'the API is open: no MONTAGE_API_KEYS are configured, so any local process may call it');
  } else rt.log.info({ keys: keys.length }, 'API keys required on every route but /healthz and /readyz');
}

async function worker(): Promise<void> {
  const booted: { rt?: Runtime } = {};
  const onStop = shutdownHandler(() => booted.rt?.log);
  const rt = (booted.rt = await createRuntime({ role: 'worker' }));
  // After the runtime is up, so the ONNX Runtime threads the encoders started are lowered too.
  lowerWorkerPriority(rt.config.worker.nice, rt.log);
  const w = startRuntimeWorkers(rt);
  onStop(() => w.close());
  onStop(() => rt.close());
}

async function listVideos(inputs: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of inputs) {
    const s = await stat(p);
    if (s.isDirectory()) {
      const names = (await readdir(p, { recursive: true, withFileTypes: true })).filter((d) => d.isFile());
      out.push(
        ...names
          .map((d) => path.join(d.parentPath, d.name))
          .filter((f) => /\.(mp4|mov|mkv|webm|avi|m4v|ts|ogv|flv)$/i.test(f))
          .sort(),
      );
    } else out.push(p);
  }
  return out;
}

async function ingest(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { tags: { type: 'string' }, 'no-worker': { type: 'boolean' } },
  });
  if (positionals.length === 0) throw new Error('ingest needs at least one file or folder');
  const files = await listVideos(positionals);
  const rt = await createRuntime({ role: 'ingest' });
  const w = values['no-worker'] ? null : startRuntimeWorkers(rt);
  const svc = videoService(rt);
  const jobs: string[] = [];
  let failed = 0;
  for (const f of files) {
    try {
      const stored = await rt.files.receive(createReadStream(f));
      const tags = values.tags
        ? values.tags
            .split(',')
            .map((t) => t.trim())
            .filter(Boolean)
        : [];
      const a = await admitVideo(svc, stored, { title: path.basename(f).replace(/\.[^.]+$/, ''), description: '', tags });
      jobs.push(a.jobId);
    } catch (err) {
      failed++;
      process.stderr.write(`\n${f}: ${isAppError(err) ? `${err.code}: ${err.message}` : (err as Error).message}\n`);
    }
  }
  for (;;) {
    const states = await Promise.all(jobs.map(async (id) => (await rt.jobs.ingestJob(id))?.state ?? 'unknown'));
    const done = states.filter((s) => s === 'completed').length;
    const jobFailed = states.filter((s) => s === 'failed').length;
    process.stderr.write(`\r${bar(done + jobFailed + failed, files.length, jobFailed + failed)}`);
    if (values['no-worker'] || done + jobFailed === jobs.length) {
      failed += jobFailed;
      break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  process.stderr.write('\n');
  await w?.close();
  await rt.close();
  return failed > 0 ? 1 : 0;
}

async function status(): Promise<void> {
  // Its stdout is the JSON alone (pipe it to jq): the logs go to stderr.
  const config = loadConfig();
  const rt = await createRuntime({ role: 'status', buildIndexes: false, config, log: createLogger(config.logLevel, 'stderr') });
  const counts = await rt.jobs.counts();
  const out = {
    generation: rt.encoders.generation.name,
    dim: rt.encoders.generation.dim,
    store: rt.config.store.qdrant ? 'qdrant' : 'embedded',
    aliases: await rt.store.aliases(),
    items: await rt.store.countItems(),
    ingestJobs: counts.ingest,
    generations: await generationStatus(rt),
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  await rt.close();
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'serve':
      await serve(false);
      return -1;
    case 'start':
      await serve(true);
      return -1;
    case 'worker':
      await worker();
      return -1;
    case 'ingest':
      return ingest(rest);
    case 'status':
      await status();
      return 0;
    case 'export-training':
      return exportTrainingCommand(rest);
    case 'generation':
      return generationCli(rest);
    default:
      process.stderr.write(`${USAGE}\n`);
      return cmd === undefined || cmd === 'help' || cmd === '--help' ? 0 : 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`montage: ${isAppError(err) ? `${err.code}: ${err.message}` : (err as Error).stack}\n`);
    process.exit(1);
  },
);
