/** The ONNX Runtime seam on tiny fixture graphs: lazy open, provider fallback, row copies, user packing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadEncoders } from '../../src/models/index.ts';
import { lazyTower, resolveProvider } from '../../src/models/onnx.ts';
import { ROOT } from '../helpers/generation.ts';

const GRAPH = join(ROOT, 'test', 'fixtures', 'l2norm.onnx'); // content [batch, 4] -> content / ||content||

function capture() {
  const lines: { level: number; msg: string; provider?: string }[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
  return { log, lines };
}

test('a tower opens lazily, runs a batch and returns copied rows', async () => {
  const { log, lines } = capture();
  const tower = lazyTower(GRAPH, ['content'], 'embedding', { provider: 'cpu', intraOpThreads: 1 }, log);
  assert.equal(tower.provider(), null);
  assert.equal(lines.length, 0, 'nothing opened before the first run');
  const rows = await tower.run({ content: { data: Float32Array.from([3, 4, 0, 0, 0, 0, 0, 2]), dims: [2, 4] } });
  assert.equal(tower.provider(), 'cpu');
  assert.deepEqual(
    rows.map((r) => [...r]),
    [[0.6, 0.8, 0, 0].map(Math.fround), [0, 0, 0, 1]],
  );
  assert.notEqual(rows[0]!.buffer, rows[1]!.buffer, 'each row owns its memory');
  assert.ok(lines.some((l) => l.msg === 'opened tower'));
  await tower.close();
});

for (const wanted of ['cuda', 'webgpu'] as const) {
  test(`provider ${wanted}: runs there, or falls back to cpu with a warning`, async () => {
    const { log, lines } = capture();
    const tower = lazyTower(GRAPH, ['content'], 'embedding', { provider: wanted }, log);
    const [row] = await tower.run({ content: { data: Float32Array.from([0, 0, 5, 0]), dims: [1, 4] } });
    assert.deepEqual([...row!], [0, 0, 1, 0]);
    const warn = lines.find((l) => l.level === 40);
    if (tower.provider() === 'cpu') {
      assert.ok(warn, 'the fallback is logged as a warning');
      assert.match(warn.msg, new RegExp(`${wanted} failed, falling back to cpu`));
    } else {
      assert.equal(tower.provider(), wanted);
      assert.equal(warn, undefined);
    }
    await tower.close();
  });
}

test('auto resolves to cuda only when the CUDA provider library is installed', () => {
  const bin = join(ROOT, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', process.platform, process.arch);
  const installed = existsSync(join(bin, 'libonnxruntime_providers_cuda.so'));
  assert.equal(resolveProvider('auto'), installed ? 'cuda' : 'cpu');
  assert.equal(resolveProvider('cpu'), 'cpu');
  assert.equal(resolveProvider('webgpu'), 'webgpu');
});

test('a graph whose inputs disagree with the manifest is refused', async () => {
  const tower = lazyTower(GRAPH, ['waveform'], 'embedding', { provider: 'cpu' }, pino({ level: 'silent' }));
  await assert.rejects(tower.run({ waveform: { data: new Float32Array(4), dims: [1, 4] } }), {
    code: 'MODEL_INVALID',
    message: /inputs \[content\].*manifest says \[waveform\]/,
  });
});

test('a missing graph file is MODEL_INVALID', async () => {
  const tower = lazyTower(join(ROOT, 'nope.onnx'), ['content'], 'embedding', { provider: 'cpu' }, pino({ level: 'silent' }));
  await assert.rejects(tower.run({ content: { data: new Float32Array(4), dims: [1, 4] } }), { code: 'MODEL_INVALID' });
});

/** A generation of only stand-in user and behaviour towers (dim 4, max_items 3), from the fixtures. */
async function userGeneration(dir: string): Promise<void> {
  const files: Record<string, string> = {};
  for (const [from, to] of [
    ['masked_mean.onnx', 'user.onnx'],
    ['l2norm.onnx', 'behaviour.onnx'],
  ] as const) {
    await copyFile(join(ROOT, 'test', 'fixtures', from), join(dir, to));
    files[to] = createHash('sha256')
      .update(await readFile(join(dir, to)))
      .digest('hex');
  }
  const out = { name: 'embedding', shape: ['batch', 4] };
  const f32 = (shape: (string | number)[]) => ({ shape, dtype: 'float32' });
  const manifest = {
    schema_version: 1,
    generation: 'fixture-users',
    version: '0',
    dim: 4,
    towers: {
      user: { file: 'user.onnx', inputs: { items: f32(['batch', 3, 4]), mask: f32(['batch', 3]), age: f32(['batch', 3]) }, output: out },
      behaviour: { file: 'behaviour.onnx', inputs: { content: f32(['batch', 4]) }, output: out },
    },
    preprocessing: {
      video: {
        frame_size: 16,
        frames_per_segment: 1,
        segment_seconds: 1,
        mean: [0, 0, 0],
        std: [1, 1, 1],
        layout: 'NTCHW',
        resize: 'fill',
      },
      audio: { sample_rate: 16000, segment_seconds: 1, samples: 16000 },
      text: { max_length: 4, tokenizer: 'tokenizer.json' },
      user: { max_items: 3, time_gap_unit_seconds: 10 },
    },
    files,
  };
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
}

const unit = (v: number[]) => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
const close = (got: Float32Array, want: number[]) =>
  assert.ok(
    want.every((w, i) => Math.abs(got[i]! - w) < 1e-6),
    `${[...got]} != ${want}`,
  );

test('encodeUsers packs histories (newest max_items, left-padded, age in units) and batches', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'montage-users-'));
  try {
    await userGeneration(dir);
    const enc = await loadEncoders(dir, { provider: 'cpu', maxBatch: 2, log: pino({ level: 'silent' }) });
    const e = (i: number) => Float32Array.from([0, 0, 0, 0].map((_, k) => (k === i ? 1 : 0)));
    const users = await enc.encodeUsers([
      { items: [e(0)], ageSeconds: [0] }, // one item: its own direction
      { items: [e(0), e(1), e(2), e(3)], ageSeconds: [90, 30, 10, 0] }, // oldest dropped; weights 1+age/10 = 4, 2, 1
      { items: [e(1), e(2)], ageSeconds: [10, 10] },
    ]);
    close(users[0]!, [1, 0, 0, 0]);
    close(users[1]!, unit([0, 4, 2, 1]));
    close(users[2]!, unit([0, 2, 2, 0]));
    const behaviour = await enc.projectBehaviour([
      Float32Array.from([3, 0, 4, 0]),
      Float32Array.from([0, 2, 0, 0]),
      Float32Array.from([1, 1, 1, 1]),
    ]);
    close(behaviour[0]!, [0.6, 0, 0.8, 0]);
    close(behaviour[2]!, [0.5, 0.5, 0.5, 0.5]);
    await assert.rejects(enc.projectBehaviour([Float32Array.from([1, 2])]), { code: 'VECTOR_DIMENSION' });
    assert.equal(enc.has('video'), false);
    await assert.rejects(enc.encodeFrames([]), { code: 'TOWER_MISSING' });
    await assert.rejects(enc.encodeText(['a']), { code: 'TOWER_MISSING' });
    assert.equal(enc.provider('user'), 'cpu');
    await enc.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
