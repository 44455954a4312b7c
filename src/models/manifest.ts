/**
 * Reads and verifies a model generation's manifest.json: schema (ajv), the sha256 of every file
 * it lists, that every tower's graph is among them, and that the shapes agree with `dim` and
 * the preprocessing. Every failure is a MODEL_INVALID error naming the file or field, because a
 * generation that half-loads would write vectors that silently do not compare.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import AjvModule from 'ajv';
import { AppError } from '../errors/index.ts';
import type { GenerationInfo, TowerName } from './types.ts';

export type TensorDtype = 'float32' | 'int64' | 'uint8' | 'bool';

export interface TensorSpec {
  /** Integers are fixed sizes; strings name dynamic axes (for example "batch"). */
  shape: (number | string)[];
  dtype: TensorDtype;
}

export interface TowerSpec {
  /** Path of the ONNX graph, relative to the generation folder. */
  file: string;
  inputs: Record<string, TensorSpec>;
  output: { name: string; shape: (number | string)[] };
}

/** Encodings of a generation's towers other than float32; same inputs, output and space. */
export type Precision = 'float32' | 'int8';

export interface VerifiedGeneration {
  /** Absolute path of the generation folder. */
  dir: string;
  info: GenerationInfo;
  towers: Partial<Record<TowerName, TowerSpec>>;
  /** Per variant (int8), the graph file of each tower it has, relative to the folder; verified like the rest. */
  variants: Partial<Record<Exclude<Precision, 'float32'>, Partial<Record<TowerName, string>>>>;
  /** The manifest as read, for fields the service only reports (training, metrics). */
  raw: Record<string, unknown>;
}

/** Input names fixed by the generation contract (the design's contracts; encoders/README.md), per tower. */
export const CONTRACT_INPUTS: Record<TowerName, string[]> = {
  video: ['frames'],
  audio: ['waveform'],
  text: ['input_ids', 'attention_mask'],
  user: ['items', 'mask', 'age'],
  behaviour: ['content'],
};

const SCHEMA_PATH = fileURLToPath(new URL('../../schemas/manifest.schema.json', import.meta.url));
let validator: Promise<AjvModule.ValidateFunction> | undefined;

function invalid(message: string, field?: string, cause?: unknown): AppError {
  return new AppError('MODEL_INVALID', message, { ...(field ? { field } : {}), cause });
}

function schemaValidator(): Promise<AjvModule.ValidateFunction> {
  validator ??= readFile(SCHEMA_PATH, 'utf8').then((text) => {
    // ajv ships CommonJS; its default export sits one level down under ESM.
    const Ajv = AjvModule.default;
    return new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(text) as object);
  });
  return validator;
}

/** Streams the file through sha256 so a large graph is never held in memory twice. */
export function sha256File(path: string): Promise<string> {
  return new Promise((ok, fail) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('error', fail)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => ok(hash.digest('hex')));
  });
}

async function readManifestJson(dir: string): Promise<Record<string, unknown>> {
  const path = join(dir, 'manifest.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw invalid(`cannot read ${path}: ${(err as Error).message}`, 'manifest.json', err);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw invalid(`${path} is not valid JSON: ${(err as Error).message}`, 'manifest.json', err);
  }
}

async function validateSchema(manifest: unknown, dir: string): Promise<void> {
  const validate = await schemaValidator();
  if (validate(manifest)) return;
  const first = validate.errors?.[0];
  const where = first?.instancePath || '/';
  const all = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
  throw invalid(`${join(dir, 'manifest.json')} does not match the manifest schema: ${all.join('; ')}`, where);
}

/** Every listed file must exist inside the folder and hash to its recorded sha256. */
async function verifyFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, expected] of Object.entries(files)) {
    const path = resolve(dir, rel);
    if (!path.startsWith(dir + sep)) throw invalid(`manifest file ${rel} points outside ${dir}`, `files.${rel}`);
    let actual: string;
    try {
      actual = await sha256File(path);
    } catch (err) {
      throw invalid(`generation file ${rel} is missing in ${dir}`, `files.${rel}`, err);
    }
    if (actual !== expected) {
      throw invalid(`generation file ${rel} has sha256 ${actual}, manifest says ${expected}`, `files.${rel}`);
    }
  }
}

function checkDim(tower: string, what: string, shape: (number | string)[], axis: number, want: number): void {
  const got = shape.at(axis);
  if (got !== want) {
    throw invalid(
      `dimension mismatch: towers.${tower}.${what} has ${String(got)} at axis ${axis}, expected ${want}`,
      `towers.${tower}.${what}`,
    );
  }
}

/** Shapes the service will build must agree with the preprocessing it reads (fixed axes only). */
export function expectedInputDims(tower: TowerName, info: GenerationInfo): Record<string, (number | null)[]> {
  const { video, audio, text, user } = info.preprocessing;
  const s = video.frame_size;
  switch (tower) {
    case 'video':
      return { frames: [null, video.frames_per_segment, 3, s, s] };
    case 'audio':
      return { waveform: [null, audio.samples] };
    case 'text':
      return { input_ids: [null, text.max_length], attention_mask: [null, text.max_length] };
    case 'user': {
      const n = user?.max_items ?? null;
      return { items: [null, n, info.dim], mask: [null, n], age: [null, n] };
    }
    case 'behaviour':
      return { content: [null, info.dim] };
  }
}

function checkTower(name: TowerName, spec: TowerSpec, info: GenerationInfo, files: Record<string, string>): void {
  if (!(spec.file in files)) {
    throw invalid(`towers.${name}.file ${spec.file} is not listed in manifest.files`, `towers.${name}.file`);
  }
  const names = Object.keys(spec.inputs).sort();
  const want = [...CONTRACT_INPUTS[name]].sort();
  if (names.join() !== want.join()) {
    throw invalid(`towers.${name}.inputs are [${names}], the contract says [${want}]`, `towers.${name}.inputs`);
  }
  if (spec.output.shape.length !== 2) {
    throw invalid(`towers.${name}.output.shape must be [batch, dim]`, `towers.${name}.output.shape`);
  }
  checkDim(name, 'output.shape', spec.output.shape, 1, info.dim);
  for (const [input, dims] of Object.entries(expectedInputDims(name, info))) {
    const shape = spec.inputs[input]!.shape;
    if (shape.length !== dims.length) {
      throw invalid(
        `towers.${name}.inputs.${input}.shape has rank ${shape.length}, expected ${dims.length}`,
        `towers.${name}.inputs.${input}.shape`,
      );
    }
    dims.forEach((d, axis) => d !== null && checkDim(name, `inputs.${input}.shape`, shape, axis, d));
  }
}

/** A variant's tower must replace a tower the generation has, with a file whose sha256 is listed. */
function readVariants(raw: Record<string, unknown>, files: Record<string, string>): VerifiedGeneration['variants'] {
  const variants = (raw.variants ?? {}) as Record<string, { towers: Partial<Record<TowerName, { file: string }>> }>;
  const towers = raw.towers as Record<string, unknown>;
  const out: VerifiedGeneration['variants'] = {};
  for (const [name, variant] of Object.entries(variants) as [Exclude<Precision, 'float32'>, (typeof variants)[string]][]) {
    const entry: Partial<Record<TowerName, string>> = {};
    for (const [tower, spec] of Object.entries(variant.towers) as [TowerName, { file: string }][]) {
      const field = `variants.${name}.towers.${tower}.file`;
      if (!(tower in towers)) throw invalid(`${field}: the generation has no ${tower} tower`, field);
      if (!(spec.file in files)) throw invalid(`${field} ${spec.file} is not listed in manifest.files`, field);
      entry[tower] = spec.file;
    }
    out[name] = entry;
  }
  return out;
}

function toInfo(m: Record<string, unknown>): GenerationInfo {
  const towers = Object.keys(m.towers as object) as TowerName[];
  return {
    name: m.generation as string,
    version: m.version as string,
    dim: m.dim as number,
    towers,
    preprocessing: m.preprocessing as GenerationInfo['preprocessing'],
  };
}

/**
 * Loads `<dir>/manifest.json` and verifies the whole generation against it.
 * Throws AppError MODEL_INVALID (with `field`) on the first problem found.
 */
export async function loadManifest(dir: string): Promise<VerifiedGeneration> {
  const abs = resolve(dir);
  const raw = await readManifestJson(abs);
  await validateSchema(raw, abs);
  const info = toInfo(raw);
  const towers = raw.towers as Partial<Record<TowerName, TowerSpec>>;
  const files = raw.files as Record<string, string>;
  if (info.towers.length === 0) throw invalid('the generation has no towers', 'towers');
  if (towers.user && !info.preprocessing.user?.max_items) {
    throw invalid('a user tower needs preprocessing.user.max_items', 'preprocessing.user.max_items');
  }
  for (const name of info.towers) checkTower(name, towers[name]!, info, files);
  if (towers.text && !(info.preprocessing.text.tokenizer in files)) {
    throw invalid(`tokenizer ${info.preprocessing.text.tokenizer} is not listed in manifest.files`, 'preprocessing.text.tokenizer');
  }
  const variants = readVariants(raw, files);
  await verifyFiles(abs, files);
  return { dir: abs, info, towers, variants, raw };
}
