/**
 * The encoders seam: a verified generation folder in, one typed function per tower out.
 * Everything about the model (dims, input names, shapes, preprocessing) comes from its
 * manifest; this module only knows the generation contract.
 */
import { join } from 'node:path';
import { AppError } from '../errors/index.ts';
import type { Logger } from '../log.ts';
import { inBatches, packUsers } from './batch.ts';
import { loadManifest, type Precision, type TowerSpec, type VerifiedGeneration } from './manifest.ts';
import { lazyTower, type RuntimeOptions, type Tower } from './onnx.ts';
import { audioToTensor, channelTables, framesToTensor, imageToSegment } from './preprocess.ts';
import { loadTokenizer, type TextTokenizer } from './tokenizer.ts';
import type { Encoders, FrameSegment, GenerationInfo, TowerName, UserHistory } from './types.ts';

export { loadManifest, imageToSegment };
export type { VerifiedGeneration, RuntimeOptions, Precision };
export type { Provider } from './onnx.ts';
export { resolveProvider, supportedBackends } from './onnx.ts';

export interface EncoderOptions extends RuntimeOptions {
  /** Most rows sent to ONNX Runtime in one run; longer inputs are split. @defaultValue 32 */
  maxBatch?: number;
  /**
   * Which encoding of the towers to run: `int8` takes each tower's file from the manifest's
   * `variants.int8` (montage_encoders.quantize) and keeps float32 for a tower the variant lacks
   * (the user and behaviour towers are never quantised); the vectors stay in the same space.
   * @defaultValue 'float32'
   */
  precision?: Precision;
  /** Where a provider fallback is reported (the service logger; tests pass a silent one). */
  log: Logger;
}

/** Encoders plus what the service reports about them (readyz, job payloads, the bench). */
export interface LoadedEncoders extends Encoders {
  readonly manifest: VerifiedGeneration;
  /** Execution provider a tower's session runs on, or null while it is not opened yet. */
  provider(tower: TowerName): string | null;
  /** The encoding each tower runs in (float32 unless the configured variant has the tower). */
  precision(tower: TowerName): Precision;
  /** Image files (JPEG, PNG, WebP...) as motionless segments through the video tower: image queries. */
  encodeImages(images: Uint8Array[]): Promise<Float32Array[]>;
}

/** The precision each tower runs in: the requested one where the generation has that variant of it. */
function towerPrecisions(gen: VerifiedGeneration, wanted: Precision, log: Logger): Partial<Record<TowerName, Precision>> {
  const variant = wanted === 'float32' ? undefined : gen.variants[wanted];
  if (wanted !== 'float32' && !variant) {
    log.warn({ generation: gen.info.name, precision: wanted }, `generation has no ${wanted} variant, running float32`);
  }
  return Object.fromEntries(gen.info.towers.map((name) => [name, variant?.[name] ? wanted : 'float32']));
}

function openTowers(
  gen: VerifiedGeneration,
  precisions: Partial<Record<TowerName, Precision>>,
  opts: RuntimeOptions,
  log: Logger,
): Partial<Record<TowerName, Tower>> {
  const entries = Object.entries(gen.towers) as [TowerName, TowerSpec][];
  return Object.fromEntries(
    entries.map(([name, spec]) => {
      const p = precisions[name]!;
      const file = p === 'float32' ? spec.file : gen.variants[p]![name]!;
      return [name, lazyTower(join(gen.dir, file), Object.keys(spec.inputs), spec.output.name, opts, log.child({ tower: name }))];
    }),
  );
}

/** Rows of a [batch, D] matrix, concatenated for a feed, after checking each has dimension D. */
function stack(vectors: Float32Array[], dim: number, what: string): Float32Array {
  const out = new Float32Array(vectors.length * dim);
  vectors.forEach((v, i) => {
    if (v.length !== dim) throw new AppError('VECTOR_DIMENSION', `${what} ${i} has dimension ${v.length}, expected ${dim}`);
    out.set(v, i * dim);
  });
  return out;
}

/** One generation's towers. Sessions and the tokenizer open on first use; see loadEncoders. */
class OnnxEncoders implements LoadedEncoders {
  readonly generation: GenerationInfo;
  readonly manifest: VerifiedGeneration;
  readonly #towers: Partial<Record<TowerName, Tower>>;
  readonly #precisions: Partial<Record<TowerName, Precision>>;
  readonly #maxBatch: number;
  readonly #tables: Float32Array[];
  #tokenizer: Promise<TextTokenizer> | undefined;

  constructor(
    gen: VerifiedGeneration,
    towers: Partial<Record<TowerName, Tower>>,
    precisions: Partial<Record<TowerName, Precision>>,
    maxBatch: number,
  ) {
    this.manifest = gen;
    this.generation = gen.info;
    this.#towers = towers;
    this.#precisions = precisions;
    this.#maxBatch = maxBatch;
    this.#tables = channelTables(gen.info.preprocessing.video);
  }

  has(name: TowerName): boolean {
    return name in this.#towers;
  }

  provider(name: TowerName): string | null {
    return this.#towers[name]?.provider() ?? null;
  }

  precision(name: TowerName): Precision {
    return this.#precisions[name] ?? 'float32';
  }

  #tower(name: TowerName): Tower {
    const tower = this.#towers[name];
    if (!tower) throw new AppError('TOWER_MISSING', `generation ${this.generation.name} has no ${name} tower`);
    return tower;
  }

  async encodeFrames(segments: FrameSegment[]): Promise<Float32Array[]> {
    const tower = this.#tower('video');
    const video = this.generation.preprocessing.video;
    const { frames_per_segment: t, frame_size: s } = video;
    return inBatches(segments, this.#maxBatch, async (slice) => {
      const data = await framesToTensor(slice, video, this.#tables);
      return tower.run({ frames: { data, dims: [slice.length, t, 3, s, s] } });
    });
  }

  async encodeImages(images: Uint8Array[]): Promise<Float32Array[]> {
    const segments: FrameSegment[] = [];
    for (const image of images) segments.push(await imageToSegment(image, this.generation.preprocessing.video));
    return this.encodeFrames(segments);
  }

  async encodeAudio(segments: Float32Array[]): Promise<Float32Array[]> {
    const tower = this.#tower('audio');
    const audio = this.generation.preprocessing.audio;
    return inBatches(segments, this.#maxBatch, (slice) =>
      tower.run({ waveform: { data: audioToTensor(slice, audio), dims: [slice.length, audio.samples] } }),
    );
  }

  async encodeText(texts: string[]): Promise<Float32Array[]> {
    const tower = this.#tower('text');
    const tokenizer = await this.#loadTokenizer();
    return inBatches(texts, this.#maxBatch, (slice) => {
      const tok = tokenizer.encode(slice);
      return tower.run({
        input_ids: { data: tok.inputIds, dims: tok.dims },
        attention_mask: { data: tok.attentionMask, dims: tok.dims },
      });
    });
  }

  async unknownWordShare(text: string): Promise<number> {
    return (await this.#loadTokenizer()).unknownShare(text);
  }

  #loadTokenizer(): Promise<TextTokenizer> {
    this.#tokenizer ??= loadTokenizer(this.manifest.dir, this.generation.preprocessing.text.max_length).catch((err: unknown) => {
      this.#tokenizer = undefined; // a later call may retry (for example after the folder is restored)
      throw err;
    });
    return this.#tokenizer;
  }

  async encodeUsers(histories: UserHistory[]): Promise<Float32Array[]> {
    const tower = this.#tower('user');
    const { dim } = this.generation;
    const user = this.generation.preprocessing.user!; // loadManifest guarantees max_items with a user tower
    const n = user.max_items;
    return inBatches(histories, this.#maxBatch, (slice) => {
      const p = packUsers(slice, n, dim, user.time_gap_unit_seconds ?? 1);
      return tower.run({
        items: { data: p.items, dims: [slice.length, n, dim] },
        mask: { data: p.mask, dims: [slice.length, n] },
        age: { data: p.age, dims: [slice.length, n] },
      });
    });
  }

  async projectBehaviour(content: Float32Array[]): Promise<Float32Array[]> {
    const tower = this.#tower('behaviour');
    const { dim } = this.generation;
    stack(content, dim, 'content vector'); // checks every dimension before the first run
    return inBatches(content, this.#maxBatch, (slice) =>
      tower.run({ content: { data: stack(slice, dim, 'content vector'), dims: [slice.length, dim] } }),
    );
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.#towers).map((t) => t.close()));
  }
}

/**
 * Verifies the generation in `dir` (schema, sha256 of every file, dims) and returns its
 * encoders. ONNX sessions and the tokenizer open on first use, so a process that only embeds
 * text never maps the video graph.
 */
export async function loadEncoders(dir: string, opts: EncoderOptions): Promise<LoadedEncoders> {
  const gen = await loadManifest(dir);
  const precisions = towerPrecisions(gen, opts.precision ?? 'float32', opts.log);
  return new OnnxEncoders(gen, openTowers(gen, precisions, opts, opts.log), precisions, opts.maxBatch ?? 32);
}
