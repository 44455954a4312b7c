/**
 * The one file that imports onnxruntime-node. A tower is a lazily opened InferenceSession on
 * the configured execution provider; when that provider cannot open the graph (no CUDA
 * libraries, no WebGPU adapter) it logs a warning and opens it on the CPU instead, because a
 * slow encoder is better than a worker that cannot start.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import { AppError, wrap } from '../errors/index.ts';
import type { Logger } from '../log.ts';

export type Provider = 'cpu' | 'cuda' | 'webgpu' | 'auto';

export interface RuntimeOptions {
  /**
   * Execution provider. `auto` picks CUDA when onnxruntime-node has its CUDA provider
   * installed (`ONNXRUNTIME_NODE_INSTALL=cuda12`), else the CPU.
   * @defaultValue 'auto'
   */
  provider?: Provider;
  /** Threads inside one operator; 0 = one per core but one (the core ffmpeg decodes on). @defaultValue 0 */
  intraOpThreads?: number;
  /** Threads across independent operators (only used by parallel execution). @defaultValue 0 */
  interOpThreads?: number;
}

/** A tensor to feed: the raw typed array and its shape. */
export interface Feed {
  data: Float32Array | BigInt64Array;
  dims: number[];
}

export interface Tower {
  /** Runs one batch and returns the named output as one Float32Array per row (copied). */
  run(feeds: Record<string, Feed>): Promise<Float32Array[]>;
  /** The provider the session actually runs on, once opened; null before. */
  provider(): string | null;
  close(): Promise<void>;
}

/** True when the CUDA provider's shared library sits next to the native binding. */
function cudaInstalled(): boolean {
  const backends = ort.listSupportedBackends();
  const cuda = backends.find((b) => b.name === 'cuda');
  if (!cuda) return false;
  if (cuda.bundled) return true;
  // Not bundled means "supported by this build": the provider library is fetched at install time.
  const require = createRequire(import.meta.url);
  const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
  const bin = join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
  return existsSync(join(bin, 'libonnxruntime_providers_cuda.so'));
}

/** `auto` resolved against what this install of onnxruntime-node can do. */
export function resolveProvider(provider: Provider): Exclude<Provider, 'auto'> {
  if (provider !== 'auto') return provider;
  return cudaInstalled() ? 'cuda' : 'cpu';
}

/** What onnxruntime-node reports it can run on here: for /readyz and the bench. */
export function supportedBackends(): { name: string; bundled: boolean }[] {
  return ort.listSupportedBackends().map((b) => ({ name: b.name, bundled: b.bundled }));
}

/**
 * Threads per session: `0` means one per core but one, left to ffmpeg, which decodes beside the towers during an
 * ingest (on 2 cores, two ORT threads beside ffmpeg's made the overlapped ingest slower than one).
 */
export function intraOpThreads(configured: number): number {
  return configured > 0 ? configured : Math.max(1, availableParallelism() - 1);
}

function sessionOptions(provider: string, opts: RuntimeOptions): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: intraOpThreads(opts.intraOpThreads ?? 0),
    interOpNumThreads: opts.interOpThreads ?? 0,
    logSeverityLevel: 3, // errors only: failures also reach our log through the exception
    // Idle pool threads sleep instead of spinning: the ingest runs the towers beside ffmpeg on the same cores, and
    // a spinning thread burnt a core's worth of ffmpeg's time between two batches.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}

async function openSession(path: string, opts: RuntimeOptions, log: Logger) {
  const wanted = resolveProvider(opts.provider ?? 'auto');
  try {
    return { session: await ort.InferenceSession.create(path, sessionOptions(wanted, opts)), provider: wanted };
  } catch (err) {
    if (wanted === 'cpu') throw wrap('MODEL_INVALID', `opening ${path} on cpu`, err);
    log.warn({ provider: wanted, file: path, err: (err as Error).message }, `execution provider ${wanted} failed, falling back to cpu`);
  }
  try {
    return { session: await ort.InferenceSession.create(path, sessionOptions('cpu', opts)), provider: 'cpu' };
  } catch (err) {
    throw wrap('MODEL_INVALID', `opening ${path} on cpu`, err);
  }
}

function toTensor(name: string, feed: Feed): ort.Tensor {
  const size = feed.dims.reduce((a, b) => a * b, 1);
  if (size !== feed.data.length) {
    throw new AppError('INTERNAL', `feed ${name} has ${feed.data.length} values for shape [${feed.dims}]`);
  }
  return feed.data instanceof BigInt64Array
    ? new ort.Tensor('int64', feed.data, feed.dims)
    : new ort.Tensor('float32', feed.data, feed.dims);
}

/** Splits a [batch, D] float32 output into rows that outlive the ORT tensor. */
function rows(tensor: ort.Tensor): Float32Array[] {
  const [batch, dim] = tensor.dims as [number, number];
  const data = tensor.data as Float32Array;
  return Array.from({ length: batch }, (_, i) => data.slice(i * dim, (i + 1) * dim));
}

/**
 * A tower whose session opens on first use (so a worker that only embeds text never maps the
 * video graph). `inputs` are the names the manifest promises; the session must agree.
 */
export function lazyTower(path: string, inputs: string[], output: string, opts: RuntimeOptions, log: Logger): Tower {
  let opening: Promise<{ session: ort.InferenceSession; provider: string }> | undefined;
  const open = () => {
    opening ??= openSession(path, opts, log)
      .then((s) => {
        const missing = inputs.filter((n) => !s.session.inputNames.includes(n));
        if (missing.length || !s.session.outputNames.includes(output)) {
          throw new AppError(
            'MODEL_INVALID',
            `${path} has inputs [${s.session.inputNames}] and outputs [${s.session.outputNames}], manifest says [${inputs}] -> ${output}`,
          );
        }
        log.info({ file: path, provider: s.provider }, 'opened tower');
        return s;
      })
      .catch((err: unknown) => {
        opening = undefined; // let a later call try again rather than cache the failure forever
        throw err;
      });
    return opening;
  };
  let provider: string | null = null;
  return {
    async run(feeds) {
      const s = await open();
      provider = s.provider;
      const tensors = Object.fromEntries(Object.entries(feeds).map(([n, f]) => [n, toTensor(n, f)]));
      const out = await s.session.run(tensors, [output]);
      return rows(out[output]!);
    },
    provider: () => provider,
    async close() {
      if (!opening) return;
      const s = await opening.catch(() => undefined);
      opening = undefined;
      await s?.session.release();
    },
  };
}

/** An input or output of a graph as the graph itself declares it (a dynamic axis is a string or -1). */
export interface GraphValue {
  name: string;
  /** Element type (`float32`, `int64`...); null for a non-tensor value. */
  dtype: string | null;
  shape: (number | string)[];
}

/** A graph opened on the CPU to check it against a manifest (`montage generation import`). */
export interface GraphProbe {
  inputs: GraphValue[];
  outputs: GraphValue[];
  /** Runs one batch and returns the named output with its shape. */
  run(feeds: Record<string, Feed>, output: string): Promise<{ dims: number[]; data: Float32Array }>;
  close(): Promise<void>;
}

function graphValue(m: ort.InferenceSession.ValueMetadata): GraphValue {
  return m.isTensor ? { name: m.name, dtype: m.type, shape: [...m.shape] } : { name: m.name, dtype: null, shape: [] };
}

/** Opens `path` on the CPU, one thread: what the graph declares, and a way to run a dummy batch through it. */
export async function openGraph(path: string): Promise<GraphProbe> {
  const session = await ort.InferenceSession.create(path, sessionOptions('cpu', { intraOpThreads: 1, interOpThreads: 1 })).catch(
    (err: unknown) => {
      throw wrap('MODEL_INVALID', `opening ${path}`, err);
    },
  );
  return {
    inputs: session.inputMetadata.map(graphValue),
    outputs: session.outputMetadata.map(graphValue),
    async run(feeds, output) {
      const tensors = Object.fromEntries(Object.entries(feeds).map(([n, f]) => [n, toTensor(n, f)]));
      const out = (await session.run(tensors, [output]))[output]!;
      return { dims: [...out.dims], data: Float32Array.from(out.data as Float32Array) };
    },
    close: () => session.release(),
  };
}
