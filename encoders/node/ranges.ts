/**
 * Calibration for static int8 quantisation: the min and max that named intermediate tensors of
 * an ONNX graph reach over a set of inputs, run by onnxruntime-node (the service's runtime, so
 * the ranges are those of the graph it will serve).
 *
 *   node encoders/node/ranges.ts REQUEST.json
 *
 * REQUEST: {"model": FILE, "input": NAME, "file": F32 (B, ...) little-endian, "shape": [...],
 *           "tensors": [NAME...], "out": FILE}
 * Writes OUT: {"tensor": [min, max]}. The graph must list `tensors` among its outputs
 * (montage_encoders.quantize adds them to a copy). Called by `python3 -m montage_encoders.quantize`.
 * It imports onnxruntime-node itself because the service's Tower (src/models/onnx.ts) returns one
 * output by design, and calibration needs dozens.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

interface Request {
  model: string;
  input: string;
  file: string;
  shape: number[];
  tensors: string[];
  out: string;
}

const BATCH = 16;
const req = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Request;
const session = await ort.InferenceSession.create(req.model, {
  executionProviders: ['cpu'],
  intraOpNumThreads: Number(process.env.OMP_NUM_THREADS ?? 1),
  logSeverityLevel: 3,
});
const bytes = readFileSync(req.file);
const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
const [n, ...rest] = req.shape as [number, ...number[]];
const per = rest.reduce((a, b) => a * b, 1);
const ranges: Record<string, [number, number]> = Object.fromEntries(req.tensors.map((t) => [t, [Infinity, -Infinity]]));

for (let lo = 0; lo < n; lo += BATCH) {
  const hi = Math.min(n, lo + BATCH);
  const feed = { [req.input]: new ort.Tensor('float32', all.slice(lo * per, hi * per), [hi - lo, ...rest]) };
  const out = await session.run(feed, req.tensors);
  for (const t of req.tensors) {
    const data = out[t]!.data as Float32Array;
    const r = ranges[t]!;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v < r[0]) r[0] = v;
      if (v > r[1]) r[1] = v;
    }
  }
}
await session.release();
writeFileSync(req.out, JSON.stringify(ranges));
