import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, unlink, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadManifest } from '../../src/models/manifest.ts';
import { AppError } from '../../src/errors/index.ts';
import { defaultGenerationDir } from '../helpers/generation.ts';

const sha = (b: string | Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A small but complete generation folder: graph files are placeholder bytes (only hashed here). */
async function synthetic(dir: string): Promise<Record<string, any>> {
  const files: Record<string, string> = {
    'video.onnx': 'video graph bytes',
    'audio.onnx': 'audio graph bytes',
    'text.onnx': 'text graph bytes',
    'tokenizer.json': '{"model":{"type":"WordLevel"}}',
  };
  for (const [name, body] of Object.entries(files)) await writeFile(join(dir, name), body);
  const manifest = {
    schema_version: 1,
    generation: 'synthetic-1',
    version: '1.0.0',
    dim: 8,
    towers: {
      video: {
        file: 'video.onnx',
        inputs: { frames: { shape: ['batch', 4, 3, 32, 32], dtype: 'float32' } },
        output: { name: 'embedding', shape: ['batch', 8] },
      },
      audio: {
        file: 'audio.onnx',
        inputs: { waveform: { shape: ['batch', 16000], dtype: 'float32' } },
        output: { name: 'embedding', shape: ['batch', 8] },
      },
      text: {
        file: 'text.onnx',
        inputs: { input_ids: { shape: ['batch', 6], dtype: 'int64' }, attention_mask: { shape: ['batch', 6], dtype: 'int64' } },
        output: { name: 'embedding', shape: ['batch', 8] },
      },
    },
    preprocessing: {
      video: {
        frame_size: 32,
        frames_per_segment: 4,
        segment_seconds: 2,
        mean: [0.5, 0.5, 0.5],
        std: [0.25, 0.25, 0.25],
        layout: 'NTCHW',
        resize: 'fill',
      },
      audio: { sample_rate: 16000, segment_seconds: 1, samples: 16000 },
      text: { max_length: 6, tokenizer: 'tokenizer.json' },
    },
    files: Object.fromEntries(Object.entries(files).map(([n, b]) => [n, sha(b)])),
  };
  await writeManifest(dir, manifest);
  return manifest;
}

const writeManifest = (dir: string, m: unknown) => writeFile(join(dir, 'manifest.json'), JSON.stringify(m, null, 2));

async function rejectsWith(dir: string, field: string | RegExp, message: RegExp): Promise<void> {
  await assert.rejects(loadManifest(dir), (err: unknown) => {
    assert.ok(err instanceof AppError, `expected AppError, got ${String(err)}`);
    assert.equal(err.code, 'MODEL_INVALID');
    assert.match(err.field ?? '', typeof field === 'string' ? new RegExp(`^${field.replace(/\./g, '\\.')}$`) : field);
    assert.match(err.message, message);
    return true;
  });
}

describe('loadManifest on a synthetic generation', () => {
  let dir: string;
  let manifest: Record<string, any>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'montage-manifest-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));
  const fresh = async () => {
    await rm(dir, { recursive: true, force: true });
    dir = await mkdtemp(join(tmpdir(), 'montage-manifest-'));
    manifest = await synthetic(dir);
  };

  test('a valid folder loads into a typed GenerationInfo', async () => {
    await fresh();
    const gen = await loadManifest(dir);
    assert.equal(gen.info.name, 'synthetic-1');
    assert.equal(gen.info.dim, 8);
    assert.deepEqual(gen.info.towers.sort(), ['audio', 'text', 'video']);
    assert.equal(gen.info.preprocessing.video.frames_per_segment, 4);
    assert.equal(gen.towers.text?.inputs.input_ids?.dtype, 'int64');
  });

  test('a missing file is named', async () => {
    await fresh();
    await unlink(join(dir, 'audio.onnx'));
    await rejectsWith(dir, 'files.audio.onnx', /audio\.onnx is missing/);
  });

  test('a wrong sha256 is named with both hashes', async () => {
    await fresh();
    await appendFile(join(dir, 'text.onnx'), 'tampered');
    await rejectsWith(dir, 'files.text.onnx', /text\.onnx has sha256 [0-9a-f]{64}, manifest says [0-9a-f]{64}/);
  });

  test('an output dimension that disagrees with dim is refused', async () => {
    await fresh();
    manifest.towers.audio.output.shape = ['batch', 16];
    await writeManifest(dir, manifest);
    await rejectsWith(dir, 'towers.audio.output.shape', /dimension mismatch.*16.*expected 8/);
  });

  test('an input shape that disagrees with the preprocessing is refused', async () => {
    await fresh();
    manifest.preprocessing.video.frame_size = 64;
    await writeManifest(dir, manifest);
    await rejectsWith(dir, 'towers.video.inputs.frames.shape', /dimension mismatch.*expected 64/);
  });

  test('bad JSON is reported as such', async () => {
    await fresh();
    await writeFile(join(dir, 'manifest.json'), '{"generation": ');
    await rejectsWith(dir, 'manifest.json', /not valid JSON/);
  });

  test('a schema violation names the field', async () => {
    await fresh();
    manifest.preprocessing.video.resize = 'squash';
    await writeManifest(dir, manifest);
    await rejectsWith(dir, '/preprocessing/video/resize', /manifest schema.*resize/);
  });

  test('a tower whose file is not listed in files is refused', async () => {
    await fresh();
    delete manifest.files['video.onnx'];
    await writeManifest(dir, manifest);
    await rejectsWith(dir, 'towers.video.file', /not listed/);
  });

  test('input names must follow the contract', async () => {
    await fresh();
    manifest.towers.audio.inputs = { pcm: manifest.towers.audio.inputs.waveform };
    await writeManifest(dir, manifest);
    await rejectsWith(dir, 'towers.audio.inputs', /\[pcm\].*\[waveform\]/);
  });

  test('user and behaviour towers are checked against dim and max_items', async () => {
    await fresh();
    for (const name of ['user.onnx', 'behaviour.onnx']) {
      await writeFile(join(dir, name), name);
      manifest.files[name] = sha(name);
    }
    const out = { name: 'embedding', shape: ['batch', 8] };
    manifest.towers.user = {
      file: 'user.onnx',
      inputs: {
        items: { shape: ['batch', 5, 8], dtype: 'float32' },
        mask: { shape: ['batch', 5], dtype: 'float32' },
        age: { shape: ['batch', 5], dtype: 'float32' },
      },
      output: out,
    };
    manifest.towers.behaviour = { file: 'behaviour.onnx', inputs: { content: { shape: ['batch', 8], dtype: 'float32' } }, output: out };
    await writeManifest(dir, manifest);
    await rejectsWith(dir, 'preprocessing.user.max_items', /max_items/);
    manifest.preprocessing.user = { max_items: 5, time_gap_unit_seconds: 86400 };
    await writeManifest(dir, manifest);
    const gen = await loadManifest(dir);
    assert.deepEqual(gen.info.towers.sort(), ['audio', 'behaviour', 'text', 'user', 'video']);
    manifest.towers.user.inputs.items.shape = ['batch', 5, 16];
    await writeManifest(dir, manifest);
    await rejectsWith(dir, 'towers.user.inputs.items.shape', /dimension mismatch.*16.*expected 8/);
  });

  test('a path escaping the folder is refused', async () => {
    await fresh();
    manifest.files['../outside'] = sha('x');
    await writeManifest(dir, manifest);
    await rejectsWith(dir, 'files.../outside', /outside/);
  });
});

describe('loadManifest on a copy of the real generation', () => {
  const real = defaultGenerationDir();
  let dir: string;
  before(async () => {
    if (!real) return;
    dir = await mkdtemp(join(tmpdir(), 'montage-gen-'));
  });
  after(() => dir && rm(dir, { recursive: true, force: true }));
  const copy = async () => {
    await rm(dir, { recursive: true, force: true });
    await cp(real!, dir, { recursive: true });
    return JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
  };
  const skip = real ? false : 'no generation found (encoders/generations/* or var/generations/tiny)';

  test('the real generation verifies', { skip }, async () => {
    const gen = await loadManifest(real!);
    assert.ok(gen.info.dim >= 2);
    assert.ok(gen.info.towers.includes('video') && gen.info.towers.includes('text'));
  });

  test('a deleted graph is named', { skip }, async () => {
    await copy();
    await unlink(join(dir, 'video.onnx'));
    await rejectsWith(dir, 'files.video.onnx', /video\.onnx is missing/);
  });

  test('a flipped byte in a graph fails its sha256', { skip }, async () => {
    await copy();
    const path = join(dir, 'text.onnx');
    const bytes = await readFile(path);
    bytes[bytes.length >> 1]! ^= 0xff;
    await writeFile(path, bytes);
    await rejectsWith(dir, 'files.text.onnx', /sha256/);
  });

  test('a dim that disagrees with the towers is refused', { skip }, async () => {
    const m = await copy();
    m.dim = m.dim + 1;
    await writeManifest(dir, m);
    await rejectsWith(dir, /^towers\.\w+\.(output|inputs)/, /dimension mismatch/);
  });
});
