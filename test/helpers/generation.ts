/** Where the tests find a model generation to run on the real ONNX files. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
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
