/**
 * montage generation import|check|backfill|switch|rollback|retire|status|drift|reference: the lifecycle of a model
 * generation on a live deployment (README "Generations"). Each command prints JSON on stdout (logs go to stderr).
 */
import { parseArgs } from 'node:util';
import { loadConfig, type Config } from '../config/index.ts';
import { AppError } from '../errors/index.ts';
import { createLogger } from '../log.ts';
import { sha256File } from '../models/manifest.ts';
import { createRuntime, startRuntimeWorkers, type Runtime } from '../runtime.ts';
import type { BackfillData } from '../../jobs/backfill.ts';
import { driftReport, referenceFromStore, writeReference, type DriftReport } from '../generations/drift.ts';
import { checkGeneration, importGeneration } from '../generations/import.ts';

export const GENERATION_USAGE = `  generation import <folder>   check a generation made elsewhere against the contract, copy it under
                               MONTAGE_GENERATIONS_DIR [--check: only check]
  generation backfill <gen>    re-embed every stored video into <gen>'s collections (one job per video), then
                               its users; new uploads go to both [--detach] [--worker: run a worker here]
  generation switch <gen>      point every alias at <gen> at once [--force: before its backfill finished]
  generation rollback          point the aliases back at the generation switched from
  generation retire            stop writing the non-served generation (no rollback after this)
  generation status            served and secondary generation, backfill progress, drift report
  generation drift [<gen>]     the drift report (mean-vector drift, unknown query words, new items per day)
  generation reference <gen>   write <gen>'s drift reference.json from its stored items [--items N]`;

function print(x: unknown): void {
  process.stdout.write(`${JSON.stringify(x, null, 2)}\n`);
}

async function withRuntime<T>(role: string, fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const rt = await createRuntime({ role, buildIndexes: false, config, log: createLogger(config.logLevel, 'stderr') });
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}

/** The drift report of `gen` (default: the served one), in its context. */
export async function reportOf(rt: Runtime, gen = rt.generations.served): Promise<DriftReport> {
  return rt.generations.run(gen, () =>
    driftReport({
      health: rt.health,
      encoders: rt.generations.pair(gen).encoders,
      catalog: rt.catalog,
      thresholds: { drift: rt.config.metrics.staleDrift, unknownShare: rt.config.metrics.staleUnknownShare },
    }),
  );
}

/** What `montage status` adds about generations. */
export async function generationStatus(rt: Runtime): Promise<Record<string, unknown>> {
  return {
    served: rt.generations.served,
    secondary: rt.generations.secondary,
    backfill: await rt.generationState.backfill(),
    drift: await reportOf(rt),
  };
}

/** A generation with its own towers (its folder in MONTAGE_GENERATIONS_DIR, or the configured one), loaded. */
async function loaded(rt: Runtime, gen: string) {
  const pair = await rt.generations.ensure(gen);
  if (pair.encoders.generation.name !== gen) {
    throw new AppError('CONFIG_INVALID', `no folder for generation ${gen} in ${rt.config.models.generationsDir}: import it first`);
  }
  return pair;
}

async function backfill(rt: Runtime, gen: string, opts: { detach: boolean; worker: boolean }): Promise<number> {
  await rt.generations.refresh(true);
  if (gen === rt.generations.served) throw new AppError('INVALID_FIELD', `${gen} is the served generation already`);
  await loaded(rt, gen); // loads and verifies it, creates its collections
  await rt.generationState.setSecondary(gen);
  const videos = await rt.catalog.allReady();
  await rt.generationState.startBackfill(gen, videos.length);
  const started = (await rt.generationState.backfill())!.startedAt;
  for (const videoId of videos) {
    const data: BackfillData = { videoId, generation: gen, counted: true };
    await rt.jobs.enqueue('backfill', data, { jobId: `backfill-${gen}-${started}-${videoId}` });
  }
  if (videos.length === 0) {
    for (const userId of await rt.events.userIds()) await rt.jobs.enqueue('user-vector', { userId, generation: gen });
    await rt.generationState.finishBackfill((await rt.events.userIds()).length);
  }
  if (opts.detach) {
    print(await rt.generationState.backfill());
    return 0;
  }
  const w = opts.worker ? startRuntimeWorkers(rt) : null;
  try {
    for (;;) {
      const s = (await rt.generationState.backfill())!;
      const done = s.total - s.remaining;
      const width = 30;
      const n = s.total ? Math.round((done / s.total) * width) : width;
      process.stderr.write(`\r[${'#'.repeat(n)}${'.'.repeat(width - n)}] ${done}/${s.total} videos, ${s.failed} failed`);
      if (s.finishedAt) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    process.stderr.write('\n');
    // the users' recomputation was queued by the last video; wait for it when this process runs the worker
    const userJobs = async () => {
      const c = (await rt.jobs.counts())['user-vector'];
      return (c?.waiting ?? 0) + (c?.active ?? 0) + (c?.delayed ?? 0);
    };
    if (w) while ((await userJobs()) > 0) await new Promise((r) => setTimeout(r, 300));
  } finally {
    await w?.close();
  }
  const s = (await rt.generationState.backfill())!;
  print(s);
  return s.failed > 0 ? 1 : 0;
}

/** Points every alias at `gen`; the generation switched from stays secondary (written to) for a rollback. */
async function switchTo(rt: Runtime, gen: string, force: boolean): Promise<Record<string, unknown>> {
  await rt.generations.refresh(true);
  const from = rt.generations.served;
  if (gen === from) return { served: gen, changed: false };
  const s = await rt.generationState.backfill();
  const complete = s?.generation === gen && s.finishedAt !== undefined;
  if (!complete && !force) {
    throw new AppError(
      'INVALID_FIELD',
      `generation ${gen} has no finished backfill (${s?.generation === gen ? `${s.remaining} of ${s.total} videos left` : 'none run'}); --force to switch anyway`,
    );
  }
  const { encoders } = await loaded(rt, gen);
  await rt.generations.store.pointAliases({ name: gen, dim: encoders.generation.dim });
  await rt.generationState.setSecondary(from);
  await rt.webhooks.noteGeneration(gen).catch(() => false);
  return { served: gen, previous: from, changed: true, aliases: await rt.store.aliases() };
}

export async function generationCli(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      check: { type: 'boolean' },
      detach: { type: 'boolean' },
      worker: { type: 'boolean' },
      force: { type: 'boolean' },
      items: { type: 'string' },
    },
  });
  const need = (what: string) => {
    if (!positionals[0]) throw new AppError('INVALID_FIELD', `generation ${sub} needs ${what}`);
    return positionals[0];
  };
  switch (sub) {
    case 'import': {
      const dir = need('a folder');
      const config: Config = loadConfig();
      const report = values.check ? await checkGeneration(dir) : await importGeneration(dir, config.models.generationsDir);
      print(report);
      for (const p of report.problems) process.stderr.write(`${p.code} ${p.field}: ${p.message}\n`);
      return report.ok ? 0 : 1;
    }
    case 'backfill': {
      const gen = need('a generation name');
      return withRuntime('generation', (rt) => backfill(rt, gen, { detach: values.detach ?? false, worker: values.worker ?? false }));
    }
    case 'switch': {
      const gen = need('a generation name');
      print(await withRuntime('generation', (rt) => switchTo(rt, gen, values.force ?? false)));
      return 0;
    }
    case 'rollback':
      print(
        await withRuntime('generation', async (rt) => {
          await rt.generations.refresh(true);
          const back = rt.generations.secondary;
          if (!back) throw new AppError('INVALID_FIELD', 'no generation to roll back to (none switched from, or it was retired)');
          return switchTo(rt, back, true);
        }),
      );
      return 0;
    case 'retire':
      print(
        await withRuntime('generation', async (rt) => {
          const was = await rt.generationState.secondary();
          await rt.generationState.setSecondary(null);
          return { served: rt.generations.served, retired: was };
        }),
      );
      return 0;
    case 'status':
      print(await withRuntime('generation', (rt) => generationStatus(rt)));
      return 0;
    case 'drift':
      print(await withRuntime('generation', (rt) => reportOf(rt, positionals[0] ?? rt.generations.served)));
      return 0;
    case 'reference': {
      const gen = need('a generation name');
      const n = Number(values.items ?? 1000);
      print(
        await withRuntime('generation', async (rt) => {
          const { store, encoders } = await rt.generations.ensure(gen);
          const ids = (await rt.catalog.allReady()).slice(0, n); // the first N items indexed
          const ref = await referenceFromStore(gen, store, ids);
          await writeReference(encoders.manifest.dir, ref, sha256File);
          return {
            generation: gen,
            dir: encoders.manifest.dir,
            items: Object.fromEntries(Object.entries(ref.modalities).map(([m, r]) => [m, r?.items])),
          };
        }),
      );
      return 0;
    }
    default:
      process.stderr.write(`usage: montage generation <command>\n${GENERATION_USAGE}\n`);
      return sub === undefined || sub === 'help' ? 0 : 2;
  }
}
