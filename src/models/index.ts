/**
 * The encoders seam: a verified generation folder in, one typed function per tower out.
 * Everything about the model (dims, input names, shapes, preprocessing) comes from its
 * manifest; this module only knows the generation contract.
 */
import { join } from 'node:path';
import { AppError } from '../errors/index.ts';
import { createLogger, type Logger } from '../log.ts';
import { inBatches, packUsers } from './batch.ts';
import { loadManifest, type TowerSpec, type VerifiedGeneration } from './manifest.ts';
import { lazyTower, type RuntimeOptions, type Tower } from './onnx.ts';
import { audioToTensor, channelTables, framesToTensor, imageToSegment } from './preprocess.ts';
import { loadTokenizer, type TextTokenizer } from './tokenizer.ts';
import type { Encoders, FrameSegment, TowerName, UserHistory } from './types.ts';

export { loadManifest, imageToSegment };
export type { VerifiedGeneration, RuntimeOptions };
export type { Provider } from './onnx.ts';
export { resolveProvider, supportedBackends } from './onnx.ts';

export interface EncoderOptions extends RuntimeOptions {
  /** Most rows sent to ONNX Runtime in one run; longer inputs are split. @defaultValue 32 */
  maxBatch?: number;
  /** @defaultValue a child of the service logger with module "models" */
  log?: Logger;
}

/** Encoders plus what the service reports about them (readyz, job payloads, the bench). */
export interface LoadedEncoders extends Encoders {
  readonly manifest: VerifiedGeneration;
  /** Execution provider a tower's session runs on, or null while it is not opened yet. */
  provider(tower: TowerName): string | null;
  /** Image files (JPEG, PNG, WebP...) as motionless segments through the video tower: image queries. */
  encodeImages(images: Uint8Array[]): Promise<Float32Array[]>;
}

function towerOrThrow(towers: Partial<Record<TowerName, Tower>>, name: TowerName, gen: string): Tower {
  const tower = towers[name];
  if (!tower) throw new AppError('TOWER_MISSING', `generation ${gen} has no ${name} tower`);
  return tower;
}

function openTowers(gen: VerifiedGeneration, opts: RuntimeOptions, log: Logger): Partial<Record<TowerName, Tower>> {
  const entries = Object.entries(gen.towers) as [TowerName, TowerSpec][];
  return Object.fromEntries(
    entries.map(([name, spec]) => [
      name,
      lazyTower(join(gen.dir, spec.file), Object.keys(spec.inputs), spec.output.name, opts, log.child({ tower: name })),
    ]),
  );
}

function checkDims(vectors: Float32Array[], dim: number, what: string): void {
  vectors.forEach((v, i) => {
    if (v.length !== dim) throw new AppError('VECTOR_DIMENSION', `${what} ${i} has dimension ${v.length}, expected ${dim}`);
  });
}

/**
 * Verifies the generation in `dir` (schema, sha256 of every file, dims) and returns its
 * encoders. ONNX sessions and the tokenizer open on first use.
 */
export async function loadEncoders(dir: string, opts: EncoderOptions = {}): Promise<LoadedEncoders> {
  const log = opts.log ?? createLogger().child({ module: 'models' });
  const maxBatch = opts.maxBatch ?? 32;
  const gen = await loadManifest(dir);
  const { info } = gen;
  const { video, audio, text, user } = info.preprocessing;
  const towers = openTowers(gen, opts, log);
  const tables = channelTables(video);
  const tower = (name: TowerName) => towerOrThrow(towers, name, info.name);
  let tokenizer: Promise<TextTokenizer> | undefined;

  const encodeFrames = async (segments: FrameSegment[]): Promise<Float32Array[]> => {
    const t = tower('video');
    const { frames_per_segment: frames, frame_size: s } = video;
    return inBatches(segments, maxBatch, async (slice) => {
      const data = await framesToTensor(slice, video, tables);
      return t.run({ frames: { data, dims: [slice.length, frames, 3, s, s] } });
    });
  };

  return {
    generation: info,
    manifest: gen,
    has: (name) => name in towers,
    provider: (name) => towers[name]?.provider() ?? null,

    encodeFrames,

    async encodeImages(images: Uint8Array[]) {
      const segments: FrameSegment[] = [];
      for (const image of images) segments.push(await imageToSegment(image, video));
      return encodeFrames(segments);
    },

    async encodeAudio(segments: Float32Array[]) {
      const t = tower('audio');
      return inBatches(segments, maxBatch, (slice) =>
        t.run({ waveform: { data: audioToTensor(slice, audio), dims: [slice.length, audio.samples] } }),
      );
    },

    async encodeText(texts: string[]) {
      const t = tower('text');
      tokenizer ??= loadTokenizer(gen.dir, text.max_length).catch((err: unknown) => {
        tokenizer = undefined;
        throw err;
      });
      return inBatches(texts, maxBatch, async (slice) => {
        const tok = (await tokenizer!).encode(slice);
        return t.run({
          input_ids: { data: tok.inputIds, dims: tok.dims },
          attention_mask: { data: tok.attentionMask, dims: tok.dims },
        });
      });
    },

    async encodeUsers(histories: UserHistory[]) {
      const t = tower('user');
      const n = user!.max_items; // loadManifest guarantees max_items when there is a user tower
      return inBatches(histories, maxBatch, (slice) => {
        const p = packUsers(slice, n, info.dim, user?.time_gap_unit_seconds ?? 1);
        return t.run({
          items: { data: p.items, dims: [slice.length, n, info.dim] },
          mask: { data: p.mask, dims: [slice.length, n] },
          age: { data: p.age, dims: [slice.length, n] },
        });
      });
    },

    async projectBehaviour(content: Float32Array[]) {
      const t = tower('behaviour');
      checkDims(content, info.dim, 'content vector');
      return inBatches(content, maxBatch, (slice) => {
        const data = new Float32Array(slice.length * info.dim);
        slice.forEach((v, i) => data.set(v, i * info.dim));
        return t.run({ content: { data, dims: [slice.length, info.dim] } });
      });
    },

    async close() {
      await Promise.all(Object.values(towers).map((t) => t.close()));
    },
  };
}
