/**
 * Extract the MobileNetV2 that ships inside the `nsfwjs` npm package (MIT; its layers up to
 * block_10 are the Keras ImageNet weights, Apache-2.0) into a plain tfjs layers-model folder,
 * and record a reference output of the original tfjs model for the PyTorch conversion test.
 *
 *   npx node scripts/extract-nsfwjs.ts [--out .cache/nsfwjs] [--image /usr/share/darknet/data/dog.jpg]
 *
 * Writes model.json + weights.bin (the bundle's bytes as they are: uint8-quantised, the
 * manifest keeps the quantisation), and reference.json + reference.input.bin: the exact
 * [1,224,224,3] float32 input (nsfwjs preprocessing: RGB / 255, no mean/std) and the tfjs
 * outputs of block_10 and of the classifier. Runs offline, from node_modules only.
 */
import { createRequire } from 'node:module';
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';

interface WeightEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: unknown;
}
interface BundledModel {
  modelTopology: { model_config: { config: { layers: { name: string; config: { batch_input_shape?: number[] } }[] } } };
  weightsManifest: { paths: string[]; weights: WeightEntry[] }[];
}

const require = createRequire(import.meta.url);
// The bundles are not in nsfwjs's "exports" map, so reach them through the package folder.
const NSFWJS_ROOT = join(dirname(require.resolve('nsfwjs')), '..', '..');
const BUNDLE_DIR = join(NSFWJS_ROOT, 'dist', 'models', 'mobilenet_v2');
const DEFAULT_IMAGE = '/usr/share/darknet/data/dog.jpg';

/** Load the browserify bundles: one exports the model JSON, the other the base64 weight bytes. */
function loadBundles(): { model: BundledModel; weights: Uint8Array } {
  const model = require(`${BUNDLE_DIR}/model.min.js`) as BundledModel;
  const weightsBase64 = require(`${BUNDLE_DIR}/group1-shard1of1.min.js`) as unknown;
  if (typeof weightsBase64 !== 'string' || !model.weightsManifest) {
    throw new Error(`unexpected nsfwjs bundle layout in ${BUNDLE_DIR}`);
  }
  return { model, weights: new Uint8Array(Buffer.from(weightsBase64, 'base64')) };
}

async function writeModelFolder(out: string, model: BundledModel, weights: Uint8Array): Promise<void> {
  const nsfwjsVersion = (require(join(NSFWJS_ROOT, 'package.json')) as { version: string }).version;
  const manifest = [{ paths: ['weights.bin'], weights: model.weightsManifest.flatMap((g) => g.weights) }];
  const json = {
    format: 'layers-model',
    generatedBy: `nsfwjs ${nsfwjsVersion} mobilenet_v2 bundle, extracted by scripts/extract-nsfwjs.ts`,
    modelTopology: model.modelTopology,
    weightsManifest: manifest,
  };
  await writeFile(join(out, 'model.json'), JSON.stringify(json));
  await writeFile(join(out, 'weights.bin'), weights);
}

/** nsfwjs preprocessing: RGB scaled to [0,1], resized to the model's input size. */
async function loadInput(image: string, size: number): Promise<Float32Array> {
  const raw = await sharp(image).removeAlpha().resize(size, size, { fit: 'fill' }).raw().toBuffer();
  return Float32Array.from(raw, (v) => v / 255);
}

async function runReference(out: string, model: BundledModel, weights: Uint8Array, image: string): Promise<void> {
  await tf.setBackend('cpu');
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
  const net = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: model.modelTopology as unknown as tf.io.ModelJSON['modelTopology'],
      weightSpecs: model.weightsManifest.flatMap((g) => g.weights) as tf.io.WeightsManifestEntry[],
      weightData,
    }),
  );
  const size = net.inputs[0]!.shape[1] as number;
  const pixels = await loadInput(image, size);
  const input = tf.tensor4d(pixels, [1, size, size, 3]);
  const probe = tf.model({
    inputs: net.inputs,
    outputs: [net.getLayer('block_10_project_BN').output as tf.SymbolicTensor, net.outputs[0]!],
  });
  const [block10, probs] = probe.predict(input) as tf.Tensor[];
  const reference = {
    image,
    size,
    preprocessing: 'RGB / 255, resized with sharp fit=fill; no mean/std (nsfwjs infer())',
    classes: ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'],
    probabilities: Array.from(await probs!.data()),
    block_10: { shape: block10!.shape, layout: 'NHWC', values: Array.from(await block10!.data()) },
    input: { file: 'reference.input.bin', shape: [1, size, size, 3], layout: 'NHWC', dtype: 'float32' },
  };
  await writeFile(join(out, 'reference.input.bin'), Buffer.from(pixels.buffer));
  await writeFile(join(out, 'reference.json'), JSON.stringify(reference));
  console.log(`tfjs reference on ${image}: probabilities ${reference.probabilities.map((p) => p.toFixed(4)).join(' ')}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: '.cache/nsfwjs' },
      image: { type: 'string', default: DEFAULT_IMAGE },
      'no-reference': { type: 'boolean', default: false },
    },
  });
  const out = values.out;
  await mkdir(out, { recursive: true });
  const { model, weights } = loadBundles();
  await writeModelFolder(out, model, weights);
  console.log(`wrote ${join(out, 'model.json')} and weights.bin (${weights.byteLength} bytes)`);
  if (values['no-reference']) return;
  if (!existsSync(values.image)) throw new Error(`reference image ${values.image} not found (pass --image)`);
  await runReference(out, model, weights, values.image);
}

await main();
