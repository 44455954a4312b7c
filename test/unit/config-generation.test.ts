/** Which generation the service serves when MONTAGE_GENERATION_DIR is not set. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultGenerationDir } from '../../src/config/index.ts';

function repo(generations: string[], pointer?: string): string {
  const root = mkdtempSync(join(tmpdir(), 'montage-gen-'));
  const base = join(root, 'encoders', 'generations');
  for (const g of generations) {
    mkdirSync(join(base, g), { recursive: true });
    writeFileSync(join(base, g, 'manifest.json'), '{}');
  }
  mkdirSync(base, { recursive: true });
  if (pointer !== undefined) writeFileSync(join(base, 'DEFAULT'), pointer);
  return root;
}

test('one generation and no DEFAULT: that one', () => {
  const root = repo(['gen-a']);
  try {
    assert.equal(defaultGenerationDir(root), join(root, 'encoders', 'generations', 'gen-a'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('two generations and no DEFAULT: refuses to guess', () => {
  const root = repo(['gen-a', 'gen-b']);
  try {
    assert.throws(() => defaultGenerationDir(root), { code: 'CONFIG_INVALID', message: /2 generations .*gen-a, gen-b/ });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('two generations and DEFAULT: the one it names (trailing newline allowed)', () => {
  const root = repo(['gen-a', 'gen-b'], 'gen-a\n');
  try {
    assert.equal(defaultGenerationDir(root), join(root, 'encoders', 'generations', 'gen-a'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('DEFAULT naming a missing folder or a path is a config error that says so', () => {
  for (const bad of ['gen-c', '../gen-a', '']) {
    const root = repo(['gen-a', 'gen-b'], bad);
    try {
      assert.throws(() => defaultGenerationDir(root), { code: 'CONFIG_INVALID', message: /DEFAULT names/ });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
});
