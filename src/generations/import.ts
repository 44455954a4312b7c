/**
 * `montage generation import <folder>`: a generation made outside Montage (for example a CLIP-style image and
 * text model converted to ONNX elsewhere) checked against the generation contract before anything serves it, every
 * problem listed with a stable code, then copied under the generations folder. The contract is written down in
 * docs/generations.md; src/models/manifest.ts is what the service checks at load, this goes further: it opens
 * every graph, compares what the graph declares with the manifest and the contract, and runs a dummy batch.
 */
import { existsSync } from 'node:fs';
import { cp, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { isAppError } from '../errors/index.ts';
import { CONTRACT_INPUTS, expectedInputDims, loadManifest, sha256File } from '../models/manifest.ts';
import { openGraph, type Feed, type GraphProbe } from '../models/onnx.ts';
import { loadTokenizer } from '../models/tokenizer.ts';
import type { GenerationInfo, TowerName } from '../models/types.ts';
import { generationDir } from './router.ts';

/** The codes a check can report (README "Generations"; docs/generations.md). */
export type ImportCode =
  | 'MANIFEST_MISSING'
  | 'MANIFEST_INVALID'
  | 'TOWER_MISSING'
  | 'FILE_MISSING'
  | 'FILE_HASH'
  | 'INPUT_NAME'
  | 'INPUT_DTYPE'
  | 'INPUT_SHAPE'
  | 'OUTPUT_NAME'
  | 'DIM_MISMATCH'
  | 'NOT_NORMALISED'
  | 'RUN_FAILED'
  | 'TOKENIZER_INVALID'
  | 'GENERATION_EXISTS';

export interface ImportProblem {
  code: ImportCode;
  /** The manifest field or file it is about. */
  field: string;
  message: string;
}

export interface ImportReport {
  ok: boolean;
  generation: string | null;
  dim: number | null;
  /** Per tower found: the output of the dummy batch (rows, their norms). */
  towers: Partial<Record<TowerName, { file: string; outputDims: number[]; norms: number[] }>>;
  problems: ImportProblem[];
  /** Not errors: towers the service can do without, and what it then cannot do. */
  warnings: string[];
}

/** Towers without which the service cannot ingest (video) or search by text (text). */
export const REQUIRED_TOWERS: readonly TowerName[] = ['video', 'text'];
/** What the service feeds each input (src/models/index.ts). */
const CONTRACT_DTYPES: Record<string, string> = {
  frames: 'float32',
  waveform: 'float32',
  input_ids: 'int64',
  attention_mask: 'int64',
  items: 'float32',
  mask: 'float32',
  age: 'float32',
  content: 'float32',
};
const WITHOUT: Record<TowerName, string> = {
  video: 'videos cannot be ingested',
  text: 'text search and item text are unavailable',
  audio: 'items carry no audio vector; audio is ignored',
  user: 'recommendations fall back to popular-and-fresh (no user vectors)',
  behaviour: 'items have no behaviour vector: personal recommendations and space=behaviour are unavailable',
};
/** A unit vector's norm, within this, counts as normalised in the graph (float32 rounding). */
const NORM_TOLERANCE = 1e-3;
const DUMMY_BATCH = 2;

type Manifest = {
  generation?: unknown;
  dim?: unknown;
  towers?: Record<
    string,
    {
      file?: string;
      inputs?: Record<string, { shape?: (number | string)[]; dtype?: string }>;
      output?: { name?: string; shape?: (number | string)[] };
    }
  >;
  preprocessing?: GenerationInfo['preprocessing'];
  files?: Record<string, string>;
};

/** Checks the folder against the contract; never throws for a problem of the folder (they are in the report). */
export async function checkGeneration(dir: string): Promise<ImportReport> {
  const abs = path.resolve(dir);
  const report: ImportReport = { ok: false, generation: null, dim: null, towers: {}, problems: [], warnings: [] };
  const problem = (code: ImportCode, field: string, message: string) => report.problems.push({ code, field, message });
  let m: Manifest;
  try {
    m = JSON.parse(await readFile(path.join(abs, 'manifest.json'), 'utf8')) as Manifest;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    problem(
      missing ? 'MANIFEST_MISSING' : 'MANIFEST_INVALID',
      'manifest.json',
      `${path.join(abs, 'manifest.json')}: ${(err as Error).message}`,
    );
    return report;
  }
  report.generation = typeof m.generation === 'string' ? m.generation : null;
  report.dim = typeof m.dim === 'number' ? m.dim : null;
  if (!report.generation) problem('MANIFEST_INVALID', 'generation', 'the manifest names no generation');
  if (!report.dim) problem('MANIFEST_INVALID', 'dim', 'the manifest gives no dim');
  if (!m.preprocessing) problem('MANIFEST_INVALID', 'preprocessing', 'the manifest has no preprocessing');
  const files = m.files ?? {};
  const towers = m.towers ?? {};
  for (const name of Object.keys(CONTRACT_INPUTS) as TowerName[]) {
    const spec = towers[name];
    if (!spec) {
      if (REQUIRED_TOWERS.includes(name)) problem('TOWER_MISSING', `towers.${name}`, `the manifest has no ${name} tower: ${WITHOUT[name]}`);
      else report.warnings.push(`no ${name} tower: ${WITHOUT[name]}`);
      continue;
    }
    if (report.dim && m.preprocessing)
      await checkTower(abs, name, spec, { dim: report.dim, preprocessing: m.preprocessing }, report, problem);
  }
  for (const [rel, want] of Object.entries(files)) {
    const file = path.resolve(abs, rel);
    if (!file.startsWith(abs + path.sep) || !existsSync(file)) {
      problem('FILE_MISSING', `files.${rel}`, `${rel} is listed in the manifest but missing`);
      continue;
    }
    const got = await sha256File(file);
    if (got !== want) problem('FILE_HASH', `files.${rel}`, `${rel} has sha256 ${got}, the manifest says ${want}`);
  }
  if (towers.text && m.preprocessing?.text) {
    try {
      const tok = await loadTokenizer(abs, m.preprocessing.text.max_length);
      tok.encode(['a photo of a dog']);
    } catch (err) {
      problem('TOKENIZER_INVALID', 'preprocessing.text.tokenizer', `the tokenizer does not load: ${(err as Error).message}`);
    }
  }
  // Last, the service's own load-time checks (schema, every file's hash): what they find that the above did not.
  if (report.problems.length === 0) {
    try {
      await loadManifest(abs);
    } catch (err) {
      const field = isAppError(err) ? (err.field ?? 'manifest.json') : 'manifest.json';
      problem('MANIFEST_INVALID', field, (err as Error).message);
    }
  }
  report.ok = report.problems.length === 0;
  return report;
}

async function checkTower(
  dir: string,
  name: TowerName,
  spec: NonNullable<Manifest['towers']>[string],
  info: Pick<GenerationInfo, 'dim' | 'preprocessing'>,
  report: ImportReport,
  problem: (code: ImportCode, field: string, message: string) => void,
): Promise<void> {
  const field = `towers.${name}`;
  const file = spec.file ? path.join(dir, spec.file) : '';
  if (!spec.file || !existsSync(file)) {
    problem('TOWER_MISSING', `${field}.file`, `the ${name} tower's graph ${spec.file ?? '(none named)'} is missing: ${WITHOUT[name]}`);
    return;
  }
  const declared = Object.keys(spec.inputs ?? {}).sort();
  const contract = [...CONTRACT_INPUTS[name]].sort();
  if (declared.join() !== contract.join()) {
    problem('INPUT_NAME', `${field}.inputs`, `the manifest declares inputs [${declared}], the contract says [${contract}]`);
  }
  const outShape = spec.output?.shape ?? [];
  if (outShape.length !== 2 || outShape[1] !== info.dim) {
    problem('DIM_MISMATCH', `${field}.output.shape`, `the manifest's output shape is [${outShape}], expected [batch, ${info.dim}]`);
  }
  let g: GraphProbe;
  try {
    g = await openGraph(file);
  } catch (err) {
    problem('RUN_FAILED', `${field}.file`, `${spec.file} does not open in ONNX Runtime: ${(err as Error).message}`);
    return;
  }
  try {
    const want = expectedInputDims(name, info as GenerationInfo);
    const graphInputs = g.inputs.map((i) => i.name).sort();
    if (graphInputs.join() !== contract.join()) {
      problem('INPUT_NAME', `${field}.file`, `${spec.file} has inputs [${graphInputs}], the contract says [${contract}]`);
      return;
    }
    for (const input of g.inputs) {
      const dtype = CONTRACT_DTYPES[input.name]!;
      if (input.dtype !== dtype)
        problem(
          'INPUT_DTYPE',
          `${field}.inputs.${input.name}`,
          `${spec.file} input ${input.name} is ${input.dtype}, the service feeds ${dtype}`,
        );
      const declaredDtype = spec.inputs?.[input.name]?.dtype;
      if (declaredDtype && declaredDtype !== dtype)
        problem('INPUT_DTYPE', `${field}.inputs.${input.name}.dtype`, `the manifest says ${declaredDtype}, the service feeds ${dtype}`);
      const dims = want[input.name]!;
      const bad =
        input.shape.length !== dims.length ||
        dims.some((d, i) => d !== null && typeof input.shape[i] === 'number' && input.shape[i] !== -1 && input.shape[i] !== d);
      if (bad)
        problem(
          'INPUT_SHAPE',
          `${field}.inputs.${input.name}`,
          `${spec.file} input ${input.name} has shape [${input.shape}], the service feeds [${dims.map((d) => d ?? 'batch')}]`,
        );
    }
    const outName = spec.output?.name ?? 'embedding';
    const out = g.outputs.find((o) => o.name === outName);
    if (!out) {
      problem(
        'OUTPUT_NAME',
        `${field}.output.name`,
        `${spec.file} has outputs [${g.outputs.map((o) => o.name)}], the manifest says ${outName}`,
      );
      return;
    }
    if (report.problems.some((p) => p.field.startsWith(field))) return; // no dummy run on a graph already refused
    const feeds = dummyFeeds(want);
    let res: { dims: number[]; data: Float32Array };
    try {
      res = await g.run(feeds, outName);
    } catch (err) {
      problem('RUN_FAILED', `${field}.file`, `a dummy batch through ${spec.file} failed: ${(err as Error).message}`);
      return;
    }
    if (res.dims.length !== 2 || res.dims[0] !== DUMMY_BATCH || res.dims[1] !== info.dim) {
      problem(
        'DIM_MISMATCH',
        `${field}.output`,
        `${spec.file} returned shape [${res.dims}] for a batch of ${DUMMY_BATCH}, expected [${DUMMY_BATCH}, ${info.dim}]`,
      );
      return;
    }
    const norms = Array.from({ length: DUMMY_BATCH }, (_, r) => Math.hypot(...res.data.subarray(r * info.dim, (r + 1) * info.dim)));
    if (norms.some((n) => Math.abs(n - 1) > NORM_TOLERANCE)) {
      problem(
        'NOT_NORMALISED',
        `${field}.output`,
        `${spec.file} returned rows of norm [${norms.map((n) => n.toFixed(4))}]: the contract L2-normalises inside the graph`,
      );
    }
    report.towers[name] = { file: spec.file, outputDims: res.dims, norms: norms.map((n) => Math.round(n * 1e4) / 1e4) };
  } finally {
    await g.close();
  }
}

/** A batch the service could send: ones for token ids and masks (no all-masked row), a ramp elsewhere. */
function dummyFeeds(want: Record<string, (number | null)[]>): Record<string, Feed> {
  return Object.fromEntries(
    Object.entries(want).map(([name, dims]) => {
      const shape = dims.map((d) => d ?? DUMMY_BATCH);
      const size = shape.reduce((a, b) => a * b, 1);
      if (CONTRACT_DTYPES[name] === 'int64') return [name, { data: new BigInt64Array(size).fill(1n), dims: shape }];
      const data = new Float32Array(size);
      for (let i = 0; i < size; i++) data[i] = name === 'mask' ? 1 : ((i % 97) / 97) * 0.5;
      return [name, { data, dims: shape }];
    }),
  );
}

/**
 * Checks `dir` and, when it passes, copies it to `<generationsDir>/<generation>` (through a temp folder and a
 * rename). A generation of that name already there is refused (GENERATION_EXISTS) unless it is byte-identical.
 */
export async function importGeneration(dir: string, generationsDir: string): Promise<ImportReport & { dest?: string }> {
  const report = await checkGeneration(dir);
  if (!report.ok) return report;
  const dest = generationDir(generationsDir, report.generation!);
  if (existsSync(dest)) {
    const same = await loadManifest(dest).then(
      async (g) =>
        JSON.stringify(g.raw.files) === JSON.stringify(JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')).files),
      () => false,
    );
    if (same) return { ...report, dest };
    report.problems.push({
      code: 'GENERATION_EXISTS',
      field: 'generation',
      message: `${dest} exists and differs: import it under another name`,
    });
    return { ...report, ok: false };
  }
  const tmp = `${dest}.importing-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await cp(path.resolve(dir), tmp, { recursive: true });
  await loadManifest(tmp); // the copy verifies too (a disk that lost a byte)
  await rename(tmp, dest);
  return { ...report, dest };
}
