/** Where the tests find a model generation to run on the real ONNX files, and generations derived from it. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/**
 * MONTAGE_GENERATION_DIR when set; else the generation named in encoders/generations/DEFAULT, or
 * the single one committed there; else the trainer's quick export in var/generations/tiny.
 * Returns null when none exists (tests then skip with a message, never pass vacuously).
 */
export function defaultGenerationDir(): string | null {
  const fromEnv = process.env.MONTAGE_GENERATION_DIR;
  if (fromEnv) return resolve(fromEnv);
  const committed = join(ROOT, 'encoders', 'generations');
  const pointer = join(committed, 'DEFAULT');
  if (existsSync(pointer)) return join(committed, readFileSync(pointer, 'utf8').trim());
  if (existsSync(committed)) {
    const names = readdirSync(committed).filter((n) => existsSync(join(committed, n, 'manifest.json')));
    if (names.length === 1) return join(committed, names[0]!);
    if (names.length > 1) throw new Error(`several generations under ${committed} (${names}): set MONTAGE_GENERATION_DIR`);
  }
  const tiny = join(ROOT, 'var', 'generations', 'tiny');
  return existsSync(join(tiny, 'manifest.json')) && statSync(tiny).isDirectory() ? tiny : null;
}

/**
 * A copy of the generation in `dir` without one tower (or without its object detector, `objects`): its graph is left out of a fresh temp folder (the other
 * files are linked, not copied) and the manifest drops it from `towers` and `files`. The caller removes the folder.
 */
export async function generationWithout(dir: string, tower: string): Promise<string> {
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as {
    towers: Record<string, { file: string }>;
    enrichment?: Record<string, { file: string }>;
    files: Record<string, string>;
  };
  // `objects` names the enrichment detector (manifest `enrichment.objects`), the rest are towers.
  const section = tower === 'objects' ? (manifest.enrichment ?? {}) : manifest.towers;
  const graph = section[tower]?.file;
  if (!graph) throw new Error(`generation ${dir} has no ${tower} tower to leave out`);
  delete section[tower];
  delete manifest.files[graph];
  const out = await mkdtemp(join(tmpdir(), `montage-gen-no-${tower}-`));
  for (const rel of Object.keys(manifest.files)) {
    const target = join(out, rel);
    await mkdir(dirname(target), { recursive: true });
    await symlink(join(dir, rel), target);
  }
  await writeFile(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return out;
}
