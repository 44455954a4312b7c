/** The ONNX Runtime seam on a tiny fixture graph: lazy open, provider fallback, row copies. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { lazyTower, resolveProvider, supportedBackends } from '../../src/models/onnx.ts';
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
  assert.deepEqual(rows.map((r) => [...r]), [[0.6, 0.8, 0, 0].map(Math.fround), [0, 0, 0, 1]]);
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
