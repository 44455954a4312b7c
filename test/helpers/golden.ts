/** Reads a generation's golden.json and its raw little-endian arrays (see the generation contract). */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface GoldenArray {
  file: string;
  shape: number[];
  dtype?: 'float32' | 'int64' | 'uint8';
}

export interface GoldenTower {
  inputs: Record<string, GoldenArray>;
  output: GoldenArray;
  texts?: string[];
  rgb?: GoldenArray;
}

export type Golden = Record<string, GoldenTower>;

export async function readGolden(dir: string): Promise<Golden> {
  return JSON.parse(await readFile(join(dir, 'golden.json'), 'utf8')) as Golden;
}

export async function readArray(dir: string, a: GoldenArray): Promise<Float32Array | BigInt64Array | Uint8Array> {
  const buf = await readFile(join(dir, a.file));
  // copy into a fresh, aligned buffer: a Buffer's byteOffset is not always a multiple of 8
  const bytes = new Uint8Array(buf.length);
  bytes.set(buf);
  const n = a.shape.reduce((x, y) => x * y, 1);
  const out = a.dtype === 'int64' ? new BigInt64Array(bytes.buffer) : a.dtype === 'uint8' ? bytes : new Float32Array(bytes.buffer);
  if (out.length !== n) throw new Error(`${a.file} holds ${out.length} values, shape [${a.shape}] needs ${n}`);
  return out;
}

/** Row i of a [rows, ...] array. */
export function row<T extends Float32Array | BigInt64Array | Uint8Array>(a: T, shape: number[], i: number): T {
  const size = shape.slice(1).reduce((x, y) => x * y, 1);
  return a.subarray(i * size, (i + 1) * size) as T;
}
