/**
 * Encoder throughput on the real ONNX files: frames/s (video tower, preprocessing included),
 * audio seconds/s and texts/s (tokenisation included), at batch 1 and batch 32, on the CPU.
 * Also asks for the WebGPU provider to show the fallback to CPU on a machine without a GPU.
 *
 *   npx node bench/encoders.ts [--seconds 4] [--threads 0]
 *
 * Writes bench/results/encoders.json. Inputs are synthetic (random frames, noise, corpus-like
 * captions): throughput does not depend on content for these fixed-shape graphs.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadEncoders, supportedBackends, type LoadedEncoders } from '../src/models/index.ts';
import type { FrameSegment } from '../src/models/types.ts';
import { defaultGenerationDir, ROOT } from '../test/helpers/generation.ts';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    threads: { type: 'string', default: '0' },
    generation: { type: 'string' },
  },
});
const MIN_SECONDS = Number(args.seconds);

/** Runs `fn` until MIN_SECONDS have passed (at least 3 times) after one warm-up; returns runs/s. */
async function rate(fn: () => Promise<unknown>): Promise<number> {
  await fn();
  let n = 0;
  const start = performance.now();
  while (n < 3 || performance.now() - start < MIN_SECONDS * 1000) {
    await fn();
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

function randomSegments(n: number, t: number, s: number): FrameSegment[] {
  return Array.from({ length: n }, () => ({
    frames: Array.from({ length: t }, () => Uint8Array.from({ length: s * s * 3 }, () => (Math.random() * 256) | 0)),
    width: s,
    height: s,
  }));
}

const WORDS = ['a', 'small', 'red', 'circle', 'moves', 'left', 'over', 'stripes', 'with', 'low', 'beeping', 'tone'];
const caption = () => Array.from({ length: 6 + ((Math.random() * 8) | 0) }, () => WORDS[(Math.random() * WORDS.length) | 0]).join(' ');

async function measure(enc: LoadedEncoders, batch: number) {
  const v = enc.generation.preprocessing.video;
  const a = enc.generation.preprocessing.audio;
  const segments = randomSegments(batch, v.frames_per_segment, v.frame_size);
  const waves = Array.from({ length: batch }, () => Float32Array.from({ length: a.samples }, () => Math.random() * 2 - 1));
  const texts = Array.from({ length: batch }, caption);
  const frames = (await rate(() => enc.encodeFrames(segments))) * batch * v.frames_per_segment;
  const audio = (await rate(() => enc.encodeAudio(waves))) * batch * (a.samples / a.sample_rate);
  const text = (await rate(() => enc.encodeText(texts))) * batch;
  const round = (x: number) => Math.round(x * 10) / 10;
  return { frames_per_s: round(frames), audio_seconds_per_s: round(audio), texts_per_s: round(text) };
}

/** Asks for WebGPU; on a machine without an adapter the session must fall back to CPU and say so. */
async function tryWebgpu(dir: string) {
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line).msg as string) });
  const enc = await loadEncoders(dir, { provider: 'webgpu', log });
  try {
    await enc.encodeText(['a red circle']);
    return { requested: 'webgpu', used: enc.provider('text'), warnings };
  } catch (err) {
    return { requested: 'webgpu', used: null, error: (err as Error).message, warnings };
  } finally {
    await enc.close();
  }
}

const round2 = (x: number) => Math.round(x * 100) / 100;

async function main(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const dir = args.generation ?? defaultGenerationDir();
  if (!dir) throw new Error('no generation found: pass --generation or set MONTAGE_GENERATION_DIR');
  const threads = Number(args.threads);
  const enc = await loadEncoders(dir, { provider: 'cpu', intraOpThreads: threads, maxBatch: 32, log: pino({ level: 'warn' }) });
  const batch1 = await measure(enc, 1);
  console.log('batch 1', batch1);
  const batch32 = await measure(enc, 32);
  console.log('batch 32', batch32);
  await enc.close();
  const webgpu = await tryWebgpu(dir);
  console.log('webgpu', webgpu);
  const result = {
    cpu: { batch1, batch32 },
    generation: { name: enc.generation.name, version: enc.generation.version, dir: dir.replace(ROOT + '/', '') },
    machine: {
      cpu: cpus()[0]?.model,
      cores: cpus().length,
      memory_gib: Math.round(totalmem() / 2 ** 30),
      intra_op_threads: threads || 'onnxruntime default',
      node: process.version,
      backends: supportedBackends(),
      load_average_1m: { before: round2(loadBefore), after: round2(loadavg()[0]!) },
      note: 'load average above the core count means other processes shared the CPU: figures are then a floor',
    },
    webgpu,
    method: `synthetic inputs; each figure is runs/s over at least ${MIN_SECONDS} s after one warm-up run, times items per run; preprocessing (frames) and tokenisation (text) included`,
    date: new Date().toISOString(),
  };
  await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(join(ROOT, 'bench', 'results', 'encoders.json'), JSON.stringify(result, null, 2) + '\n');
  console.log('wrote bench/results/encoders.json');
}

await main();
