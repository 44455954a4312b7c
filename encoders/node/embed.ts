/**
 * Embeds texts and frame tensors with a generation's ONNX files exactly as the service does
 * (its tokenizer through @huggingface/transformers, its graphs through onnxruntime-node), so the
 * trainer can compare generations as served, old ones included, whose PyTorch weights are gone.
 *
 *   node encoders/node/embed.ts REQUEST.json
 *
 * REQUEST: {"generation": DIR, "out": DIR, "texts": {"name": [strings]}, "variant"?: "int8",
 *           "frames": {"name": {"file": F32 (B, T, 3, S, S) little-endian, "shape": [...]}},
 *           "waveforms": {"name": {"file": F32 (B, samples) little-endian, "shape": [...]}}}
 * Writes OUT/<name>.f32 (rows of dim floats) and OUT/done.json {name: [rows, dim]}.
 * Called by `python3 -m montage_encoders.compare` and `montage_encoders.lit` (the locked towers' targets).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { lazyTower } from '../../src/models/onnx.ts';
import { loadTokenizer } from '../../src/models/tokenizer.ts';

interface Request {
  generation: string;
  out: string;
  texts?: Record<string, string[]>;
  frames?: Record<string, { file: string; shape: number[] }>;
  waveforms?: Record<string, { file: string; shape: number[] }>;
  /** A variant of the manifest (`variants.<name>`, e.g. int8): its tower files instead of the float32 ones. */
  variant?: string;
}

interface TowerSpec {
  file: string;
  inputs: Record<string, { shape: (number | string)[] }>;
  output: { name: string };
}

const BATCH = 32;
const req = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Request;
const manifest = JSON.parse(readFileSync(join(req.generation, 'manifest.json'), 'utf8')) as {
  towers: Record<string, TowerSpec>;
  preprocessing: { text: { max_length: number } };
  variants?: Record<string, { towers: Record<string, { file: string }> }>;
};

/** The graph a tower runs: the variant's file when one is asked for, float32 where the variant lacks the tower (as the service does). */
function towerFile(tower: string): string {
  if (req.variant && !manifest.variants?.[req.variant]) throw new Error(`${req.generation} has no ${req.variant} variant`);
  const file = (req.variant && manifest.variants?.[req.variant]?.towers[tower]?.file) || manifest.towers[tower]!.file;
  return join(req.generation, file);
}
const log = pino({ level: 'silent' });
const opts = { provider: 'cpu' as const, intraOpThreads: Number(process.env.OMP_NUM_THREADS ?? 1) };
const done: Record<string, [number, number]> = {};

function save(name: string, rows: Float32Array[]): void {
  const dim = rows[0]?.length ?? 0;
  const flat = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => flat.set(r, i * dim));
  writeFileSync(join(req.out, `${name}.f32`), Buffer.from(flat.buffer));
  done[name] = [rows.length, dim];
}

if (req.texts) {
  const spec = manifest.towers.text!;
  const maxLength = manifest.preprocessing.text.max_length;
  const tok = await loadTokenizer(req.generation, maxLength);
  const tower = lazyTower(towerFile('text'), Object.keys(spec.inputs), spec.output.name, opts, log);
  for (const [name, texts] of Object.entries(req.texts)) {
    const rows: Float32Array[] = [];
    for (let lo = 0; lo < texts.length; lo += BATCH) {
      const b = tok.encode(texts.slice(lo, lo + BATCH));
      rows.push(
        ...(await tower.run({
          input_ids: { data: b.inputIds, dims: b.dims },
          attention_mask: { data: b.attentionMask, dims: b.dims },
        })),
      );
    }
    save(name, rows);
  }
  await tower.close();
}

/** Runs one tower over float32 tensor files, BATCH rows at a time. */
async function embedTensors(tensors: Record<string, { file: string; shape: number[] }>, towerName: 'video' | 'audio'): Promise<void> {
  const spec = manifest.towers[towerName]!;
  const input = Object.keys(spec.inputs)[0]!;
  const tower = lazyTower(towerFile(towerName), [input], spec.output.name, opts, log);
  for (const [name, f] of Object.entries(tensors)) {
    const bytes = readFileSync(f.file);
    const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
    const [n, ...rest] = f.shape as [number, ...number[]];
    const per = rest.reduce((a, b) => a * b, 1);
    const rows: Float32Array[] = [];
    for (let lo = 0; lo < n; lo += BATCH) {
      const hi = Math.min(n, lo + BATCH);
      rows.push(...(await tower.run({ [input]: { data: all.slice(lo * per, hi * per), dims: [hi - lo, ...rest] } })));
    }
    save(name, rows);
  }
  await tower.close();
}

if (req.frames) await embedTensors(req.frames, 'video');
if (req.waveforms) await embedTensors(req.waveforms, 'audio');

writeFileSync(join(req.out, 'done.json'), JSON.stringify(done));
