/**
 * `montage generation import`'s checks on the real ONNX files: the committed generation passes (every tower opened,
 * a dummy batch through each, unit-norm rows of the manifest's dim), and a copy with a missing tower, a wrong
 * dimension or an input name that does not match is refused, each with its code. The copy is made in a temp dir.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkGeneration, importGeneration } from '../../src/generations/import.ts';
import { ROOT } from '../helpers/generation.ts';

const GEN = 'mtg-2026.11-cpu';
let tmp: string;

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'montage-import-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A copy of the committed generation with `edit` applied to its folder and manifest. */
async function copy(name: string, edit: (dir: string, m: Record<string, any>) => Promise<void> | void): Promise<string> {
  const dir = path.join(tmp, name);
  await cp(path.join(ROOT, 'encoders', 'generations', GEN), dir, { recursive: true });
  const mpath = path.join(dir, 'manifest.json');
  const m = JSON.parse(await readFile(mpath, 'utf8')) as Record<string, any>;
  await edit(dir, m);
  await writeFile(mpath, JSON.stringify(m));
  return dir;
}

const codes = (r: { problems: { code: string }[] }) => [...new Set(r.problems.map((p) => p.code))].sort();

test('the committed generation passes and is copied under the generations folder', { timeout: 300_000 }, async () => {
  const dest = path.join(tmp, 'generations');
  const r = await importGeneration(path.join(ROOT, 'encoders', 'generations', GEN), dest);
  assert.equal(r.ok, true, JSON.stringify(r.problems));
  assert.equal(r.dim, 256);
  assert.deepEqual(Object.keys(r.towers).sort(), ['audio', 'behaviour', 'text', 'user', 'video']);
  for (const t of Object.values(r.towers)) {
    assert.deepEqual(t.outputDims, [2, 256]);
    for (const n of t.norms) assert.ok(Math.abs(n - 1) < 1e-3);
  }
  assert.equal(r.dest, path.join(dest, GEN));
  // importing the same folder again is a no-op, not a conflict
  assert.equal((await importGeneration(path.join(ROOT, 'encoders', 'generations', GEN), dest)).ok, true);
});

test('a missing tower is TOWER_MISSING', { timeout: 300_000 }, async () => {
  const gone = await copy('no-video', async (dir, m) => {
    await rm(path.join(dir, 'video.onnx'));
    delete m.files['video.onnx'];
  });
  assert.deepEqual(codes(await checkGeneration(gone)), ['TOWER_MISSING']);
  const undeclared = await copy('no-text', (_dir, m) => {
    delete m.towers.text;
  });
  assert.deepEqual(codes(await checkGeneration(undeclared)), ['TOWER_MISSING']);
});

test('a wrong dimension is DIM_MISMATCH', { timeout: 300_000 }, async () => {
  const dir = await copy('dim', (_dir, m) => {
    m.dim = 512;
  });
  const r = await checkGeneration(dir);
  assert.ok(codes(r).includes('DIM_MISMATCH'), JSON.stringify(r.problems));
  assert.ok(r.problems.some((p) => p.code === 'DIM_MISMATCH' && p.field === 'towers.video.output.shape'));
});

test('an input name that does not match is INPUT_NAME', { timeout: 300_000 }, async () => {
  const dir = await copy('names', (_dir, m) => {
    m.towers.video.inputs = { pixel_values: m.towers.video.inputs.frames };
  });
  const r = await checkGeneration(dir);
  assert.deepEqual(codes(r), ['INPUT_NAME']);
  assert.equal(r.problems[0]!.field, 'towers.video.inputs');
});

test('a file that changed is FILE_HASH, a missing manifest MANIFEST_MISSING', { timeout: 300_000 }, async () => {
  const dir = await copy('hash', async (d) => {
    await writeFile(path.join(d, 'README.md'), 'edited\n');
  });
  assert.deepEqual(codes(await checkGeneration(dir)), ['FILE_HASH']);
  assert.deepEqual(codes(await checkGeneration(tmp)), ['MANIFEST_MISSING']);
});
