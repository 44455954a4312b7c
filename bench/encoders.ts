/**
 * Encoder throughput on the real ONNX files: frames/s (video tower, preprocessing included),
 * audio seconds/s and texts/s (tokenisation included), at batch 1 and batch 32, on the CPU, for
 * the float32 towers and, when the generation has them, its int8 variant (`variants.int8`,
 * montage_encoders.quantize) in the same run, beside the variant's held-out retrieval from the
 * manifest. Also asks for the WebGPU provider to show the fallback to CPU on a machine without a GPU.
 *
 *   npx node bench/encoders.ts [--seconds 4] [--threads 0] [--rounds 2]
 *   npx node bench/encoders.ts --provider cuda      # on a GPU machine: adds gpu.* to the file
 *
 * Writes bench/results/encoders.json. Inputs are synthetic (random frames, noise, corpus-like
 * captions): throughput does not depend on content for these fixed-shape graphs. Each figure is
 * the best of `--rounds` rounds, float32 and int8 alternating, so that a burst of load from
 * other processes lands on both precisions rather than on one.
 *
 * `--provider cuda` needs onnxruntime-node's CUDA provider (`ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci`,
 * CUDA 12 and cuDNN 9 on the machine); without it, or when the session falls back to the CPU, it
 * stops with an error and writes nothing, so no CPU figure is ever filed as a GPU one.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadEncoders, resolveProvider, supportedBackends, type LoadedEncoders, type Precision } from '../src/models/index.ts';
import type { FrameSegment } from '../src/models/types.ts';
import { defaultGenerationDir, ROOT } from '../test/helpers/generation.ts';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    threads: { type: 'string', default: '0' },
    rounds: { type: 'string', default: '2' },
    provider: { type: 'string', default: 'cpu' },
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

type Figures = Awaited<ReturnType<typeof measure>>;

/** The larger of each figure: the round least disturbed by other processes. */
function best(a: Figures | undefined, b: Figures): Figures {
  if (!a) return b;
  return {
    frames_per_s: Math.max(a.frames_per_s, b.frames_per_s),
    audio_seconds_per_s: Math.max(a.audio_seconds_per_s, b.audio_seconds_per_s),
    texts_per_s: Math.max(a.texts_per_s, b.texts_per_s),
  };
}

/** Every (precision, batch) figure on one provider, precisions alternating within each round. */
async function measureAll(dir: string, provider: 'cpu' | 'cuda', precisions: Precision[], threads: number) {
  const log = pino({ level: 'warn' });
  const encoders = new Map<Precision, LoadedEncoders>();
  for (const p of precisions) {
    encoders.set(p, await loadEncoders(dir, { provider, precision: p, intraOpThreads: threads, maxBatch: 32, log }));
  }
  const out = new Map<string, Figures>();
  for (let r = 0; r < Number(args.rounds); r++) {
    for (const batch of [1, 32]) {
      for (const p of precisions) {
        const key = `${p}.batch${batch}`;
        const figures = await measure(encoders.get(p)!, batch);
        out.set(key, best(out.get(key), figures));
        console.log(provider, `round ${r + 1}`, key, figures);
      }
    }
  }
  const used = encoders.get(precisions[0]!)!;
  const towers = Object.fromEntries(
    precisions.map((p) => [p, (['video', 'audio', 'text'] as const).map((t) => encoders.get(p)!.precision(t))]),
  );
  for (const enc of encoders.values()) await enc.close();
  return { figures: out, generation: used.generation, manifest: used.manifest, towers };
}

function section(figures: Map<string, Figures>, precision: Precision) {
  return { batch1: figures.get(`${precision}.batch1`), batch32: figures.get(`${precision}.batch32`) };
}

/** int8 / float32 at batch 32 per tower, and the variant's held-out R@10 beside float32's (manifest). */
function int8Summary(figures: Map<string, Figures>, manifest: Record<string, unknown>) {
  const f = figures.get('float32.batch32')!;
  const q = figures.get('int8.batch32')!;
  const variant = (manifest.variants as { int8?: { metrics?: Record<string, any> } } | undefined)?.int8;
  const m = variant?.metrics;
  const r10 = (rows: Record<string, { r10: number }> | undefined) =>
    Object.fromEntries(Object.entries(rows ?? {}).map(([k, v]) => [k, v.r10]));
  return {
    speedup_batch32: {
      video: round2(q.frames_per_s / f.frames_per_s),
      audio: round2(q.audio_seconds_per_s / f.audio_seconds_per_s),
      text: round2(q.texts_per_s / f.texts_per_s),
    },
    heldout_r10: m
      ? {
          float32: r10(m.float32?.heldout),
          int8: r10(m.heldout),
          clips: m.clips,
          source: 'manifest variants.int8.metrics (compare.py, same run)',
        }
      : null,
    cosine_to_float32: m?.cosine_to_float32 ?? null,
  };
}

function machine(threads: number, loadBefore: number) {
  return {
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    memory_gib: Math.round(totalmem() / 2 ** 30),
    intra_op_threads: threads || 'onnxruntime default',
    node: process.version,
    backends: supportedBackends(),
    load_average_1m: { before: round2(loadBefore), after: round2(loadavg()[0]!) },
    note: 'load average above the core count means other processes shared the CPU: figures are then a floor',
  };
}

const RESULTS = join(ROOT, 'bench', 'results', 'encoders.json');

/** `--provider cuda`: GPU figures merged into the existing file, or a clear error and nothing written. */
async function gpu(dir: string, threads: number, loadBefore: number): Promise<void> {
  if (resolveProvider('auto') !== 'cuda') {
    throw new Error(
      '--provider cuda: onnxruntime-node has no CUDA provider installed here. On a machine with an NVIDIA GPU, ' +
        'CUDA 12 and cuDNN 9: `ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci` (README, install), then rerun. Nothing was written.',
    );
  }
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line).msg as string) });
  const probe = await loadEncoders(dir, { provider: 'cuda', log });
  await probe.encodeText(['a red circle']);
  const used = probe.provider('text');
  await probe.close();
  if (used !== 'cuda') {
    throw new Error(
      `--provider cuda: the session opened on ${used} instead (${warnings.join('; ') || 'no warning'}): no usable GPU. Nothing was written.`,
    );
  }
  const { figures } = await measureAll(dir, 'cuda', ['float32'], threads);
  const previous = JSON.parse(await readFile(RESULTS, 'utf8').catch(() => '{}')) as Record<string, unknown>;
  const result = {
    ...previous,
    gpu: { ...section(figures, 'float32'), machine: machine(threads, loadBefore), date: new Date().toISOString() },
  };
  await writeFile(RESULTS, JSON.stringify(result, null, 2) + '\n');
  console.log('wrote gpu.* into bench/results/encoders.json');
}

async function main(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const dir = args.generation ?? defaultGenerationDir();
  if (!dir) throw new Error('no generation found: pass --generation or set MONTAGE_GENERATION_DIR');
  const threads = Number(args.threads);
  if (args.provider === 'cuda') return gpu(dir, threads, loadBefore);
  if (args.provider !== 'cpu') throw new Error(`--provider must be cpu or cuda, got ${JSON.stringify(args.provider)}`);
  const probe = await loadEncoders(dir, { provider: 'cpu', log: pino({ level: 'silent' }) });
  const precisions: Precision[] = probe.manifest.variants.int8 ? ['float32', 'int8'] : ['float32'];
  await probe.close();
  const { figures, generation, manifest, towers } = await measureAll(dir, 'cpu', precisions, threads);
  const webgpu = await tryWebgpu(dir);
  console.log('webgpu', webgpu);
  const previous = JSON.parse(await readFile(RESULTS, 'utf8').catch(() => '{}')) as Record<string, unknown>;
  const result = {
    cpu: section(figures, 'float32'),
    ...(precisions.includes('int8') ? { cpu_int8: section(figures, 'int8'), int8_vs_float32: int8Summary(figures, manifest.raw) } : {}),
    ...(previous.gpu ? { gpu: previous.gpu } : {}),
    generation: { name: generation.name, version: generation.version, dir: dir.replace(ROOT + '/', ''), towers },
    machine: machine(threads, loadBefore),
    webgpu,
    method: `synthetic inputs; each figure is runs/s over at least ${MIN_SECONDS} s after one warm-up run, times items per run, the best of ${args.rounds} rounds with float32 and int8 alternating; preprocessing (frames) and tokenisation (text) included`,
    date: new Date().toISOString(),
  };
  await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(RESULTS, JSON.stringify(result, null, 2) + '\n');
  console.log('wrote bench/results/encoders.json');
}

await main();
