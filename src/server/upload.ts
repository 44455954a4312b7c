/** Streams an upload to disk under a generated name, hashing it on the way; the size cap is enforced while streaming. */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { AppError } from '../errors/index.ts';

export interface StoredUpload {
  path: string;
  sha256: string;
  sizeBytes: number;
}

/**
 * Writes `stream` to `<dir>/tmp-<uuid>`, then renames it to `<dir>/<sha256>.upload`. The name never comes from
 * user text. A stream cut by the multipart size limit (`truncated`) is removed and refused with UPLOAD_TOO_LARGE.
 */
export async function storeUpload(stream: Readable & { truncated?: boolean }, dir: string, maxBytes: number): Promise<StoredUpload> {
  await mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `tmp-${randomUUID()}`);
  const hash = createHash('sha256');
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      if (size > maxBytes) return cb(new AppError('UPLOAD_TOO_LARGE', `the upload is larger than ${maxBytes} bytes`));
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(stream, meter, createWriteStream(tmp, { flags: 'wx' }));
    if (stream.truncated) throw new AppError('UPLOAD_TOO_LARGE', `the upload is larger than ${maxBytes} bytes`);
  } catch (err) {
    await rm(tmp, { force: true });
    if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') {
      throw new AppError('UPLOAD_TOO_LARGE', `the upload is larger than ${maxBytes} bytes`, { cause: err });
    }
    throw err;
  }
  if (size === 0) {
    await rm(tmp, { force: true });
    throw new AppError('UPLOAD_MISSING_FILE', 'the file part is empty', { field: 'file' });
  }
  const sha256 = hash.digest('hex');
  const final = path.join(dir, `${sha256}.upload`);
  await rename(tmp, final);
  return { path: final, sha256, sizeBytes: (await stat(final)).size };
}
