/**
 * The int8 variant of the served generation (manifest `variants.int8`, montage_encoders.quantize)
 * on the real ONNX files: selected by MONTAGE_MODEL_PRECISION, each quantised tower's vectors
 * close to float32's on the golden clips, captions and waveforms, and the variant's files
 * verified like every other file of the generation.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.ts';
import { loadEncoders, loadManifest, type LoadedEncoders } from '../../src/models/index.ts';
import type { FrameSegment } from '../../src/models/types.ts';
import { cosine } from '../../src/vectors.ts';
import { defaultGenerationDir } from '../helpers/generation.ts';
import { readArray, readGolden, row } from '../helpers/golden.ts';

const dir = defaultGenerationDir();
const manifest = dir ? (JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Record<string, any>) : null;
const skip = !dir ? 'no generation found' : !manifest?.variants?.int8 ? `${dir} has no int8 variant (montage_encoders.quantize)` : false;
const quiet = pino({ level: 'silent' });

/**
 * Smallest cosine of an int8 vector to the float32 vector of the same input (README, configuration).
 * The video tower quantises its 34 convolutions statically and drifts most: on the 600 held-out
 * clips its mean is 0.99 and its worst 0.90; text (dynamic MatMul only) is above 0.999 there; audio
 * is float32 in the committed variant (an int8 audio graph measured above 0.999 too).
 */
const MIN_COSINE = { video: 0.9, audio: 0.99, text: 0.99 };

/** A copy of the generation (files linked) whose manifest.json `edit` changes. */
async function editedGeneration(edit: (m: Record<string, any>) => void): Promise<string> {
  const m = structuredClone(manifest!);
  const out = await mkdtemp(join(tmpdir(), 'montage-gen-int8-'));
  for (const rel of Object.keys(m.files)) {
    await mkdir(dirname(join(out, rel)), { recursive: true });
    await symlink(join(dir!, rel), join(out, rel));
  }
  edit(m);
  await writeFile(join(out, 'manifest.json'), JSON.stringify(m, null, 2));
  return out;
}

describe('int8 variant of the served generation', { skip }, () => {
  let f32: LoadedEncoders;
  let q8: LoadedEncoders;
  before(async () => {
    const config = loadConfig({ ...process.env, MONTAGE_MODEL_PRECISION: 'int8', MONTAGE_GENERATION_DIR: dir! });
    assert.equal(config.models.precision, 'int8');
    q8 = await loadEncoders(config.models.generationDir, {
      provider: 'cpu',
      precision: config.models.precision,
      intraOpThreads: 1,
      log: quiet,
    });
    f32 = await loadEncoders(dir!, { provider: 'cpu', intraOpThreads: 1, log: quiet });
  });
  after(async () => {
    await q8?.close();
    await f32?.close();
  });

  test('configuration: float32 by default, int8 on request, anything else refused', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, MONTAGE_GENERATION_DIR: dir! };
    delete env.MONTAGE_MODEL_PRECISION;
    assert.equal(loadConfig(env).models.precision, 'float32');
    assert.throws(() => loadConfig({ ...env, MONTAGE_MODEL_PRECISION: 'int4' }), {
      code: 'CONFIG_INVALID',
      message: /MONTAGE_MODEL_PRECISION/,
    });
  });

  test('the towers of the variant run int8 (video and text at least), every other tower float32', () => {
    const int8 = Object.keys(manifest!.variants.int8.towers);
    assert.ok(int8.includes('video') && int8.includes('text'), `variant towers: ${int8}`);
    for (const t of ['video', 'audio', 'text', 'user', 'behaviour'] as const) {
      if (!q8.has(t)) continue;
      assert.equal(q8.precision(t), int8.includes(t) ? 'int8' : 'float32', t);
      assert.equal(f32.precision(t), 'float32', t);
    }
  });

  test('int8 vectors are unit-norm and close to float32 on the golden clips, waveforms and captions', async () => {
    const golden = await readGolden(dir!);
    const { frame_size: s } = f32.generation.preprocessing.video;
    const rgbSpec = golden.video!.rgb!;
    const rgb = (await readArray(dir!, rgbSpec)) as Uint8Array;
    const [clips, frames] = rgbSpec.shape as [number, number];
    const segments: FrameSegment[] = Array.from({ length: clips }, (_, i) => {
      const clip = row(rgb, rgbSpec.shape, i);
      return { frames: Array.from({ length: frames }, (_, t) => clip.slice(t * s * s * 3, (t + 1) * s * s * 3)), width: s, height: s };
    });
    const wave = golden.audio!.inputs.waveform!;
    const waves = (await readArray(dir!, wave)) as Float32Array;
    const audio = Array.from({ length: wave.shape[0]! }, (_, i) => row(waves, wave.shape, i));
    const texts = [...golden.text!.texts!, 'a large green square slides up over a striped backdrop with a beeping tone'];
    const pairs: Record<keyof typeof MIN_COSINE, [Float32Array[], Float32Array[]]> = {
      video: [await f32.encodeFrames(segments), await q8.encodeFrames(segments)],
      audio: [await f32.encodeAudio(audio), await q8.encodeAudio(audio)],
      text: [await f32.encodeText(texts), await q8.encodeText(texts)],
    };
    for (const [tower, [a, b]] of Object.entries(pairs) as [keyof typeof MIN_COSINE, [Float32Array[], Float32Array[]]][]) {
      assert.equal(b.length, a.length);
      b.forEach((v, i) => {
        assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-4, `${tower} ${i} is not unit-norm`);
        const c = cosine(v, a[i]!);
        assert.ok(c >= MIN_COSINE[tower], `${tower} ${i}: cosine to float32 ${c.toFixed(4)} < ${MIN_COSINE[tower]}`);
      });
    }
    const [a, b] = pairs.video;
    assert.ok(
      b.some((v, i) => cosine(v, a[i]!) < 0.99999),
      'int8 video vectors equal float32 ones: the int8 graph did not run',
    );
  });

  test('the manifest records the variant held-out retrieval beside float32', () => {
    const m = manifest!.variants.int8.metrics;
    for (const k of ['text_to_video', 'video_to_text']) {
      assert.equal(typeof m.heldout[k].r10, 'number', k);
      assert.equal(typeof m.float32.heldout[k].r10, 'number', k);
    }
  });

  test('a variant file that is not listed, or does not hash to its sha256, is refused', async () => {
    const unlisted = await editedGeneration((m) => {
      delete m.files[m.variants.int8.towers.video.file];
    });
    const tampered = await editedGeneration((m) => {
      m.files[m.variants.int8.towers.text.file] = '0'.repeat(64);
    });
    try {
      await assert.rejects(loadManifest(unlisted), { code: 'MODEL_INVALID', message: /variants\.int8\.towers\.video\.file .* not listed/ });
      await assert.rejects(loadManifest(tampered), { code: 'MODEL_INVALID', message: /text\.int8\.onnx has sha256/ });
    } finally {
      await rm(unlisted, { recursive: true, force: true });
      await rm(tampered, { recursive: true, force: true });
    }
  });

  test('int8 asked of a generation without the variant: float32, with a warning', async () => {
    const plain = await editedGeneration((m) => {
      for (const t of Object.values(m.variants.int8.towers) as { file: string }[]) delete m.files[t.file];
      delete m.variants;
    });
    const warnings: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line).msg as string) });
    try {
      const enc = await loadEncoders(plain, { provider: 'cpu', precision: 'int8', log });
      assert.equal(enc.precision('video'), 'float32');
      assert.match(warnings.join('\n'), /no int8 variant, running float32/);
      await enc.close();
    } finally {
      await rm(plain, { recursive: true, force: true });
    }
  });
});
