/**
 * `montage export-training <dir> [--max-videos N] [--max-bytes B] [--max-segments S]`: the deployment's own
 * catalogue and events, written for the trainers (src/training/export.ts says what and how), with a progress bar.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.ts';
import { createLogger } from '../log.ts';
import { createRuntime } from '../runtime.ts';
import { exportTraining } from '../training/export.ts';
import { bar } from './progress.ts';

function positiveInt(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

export async function exportTrainingCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { 'max-videos': { type: 'string' }, 'max-bytes': { type: 'string' }, 'max-segments': { type: 'string' } },
  });
  if (positionals.length !== 1) throw new Error('export-training needs one output folder');
  const maxVideos = positiveInt('max-videos', values['max-videos']);
  const maxBytes = positiveInt('max-bytes', values['max-bytes']);
  const maxSegments = positiveInt('max-segments', values['max-segments']);
  const config = loadConfig();
  const rt = await createRuntime({ role: 'export-training', buildIndexes: false, config, log: createLogger(config.logLevel, 'stderr') });
  try {
    const summary = await exportTraining(rt, {
      dir: positionals[0]!,
      ...(maxVideos ? { maxVideos } : {}),
      ...(maxBytes ? { maxBytes } : {}),
      ...(maxSegments ? { maxSegments } : {}),
      onProgress: (done, total, failed) => process.stderr.write(`\r${bar(done, total, failed)}`),
    });
    process.stderr.write('\n');
    for (const f of summary.failed) process.stderr.write(`${f}\n`);
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return summary.failed.length > 0 ? 1 : 0;
  } finally {
    await rt.close();
  }
}
