/**
 * The one owner of a video's files on disk: nothing else builds their paths or deletes them.
 * - uploads: `<dataDir>/uploads/<sha256>.upload`, named by content (the same bytes are one file; the name never
 *   comes from user text), streamed in through a temp file, hashed on the way, size-capped while streaming;
 * - posters: `<dataDir>/posters/<videoId>.jpg`, written by the ingest job.
 */
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

export class VideoFiles {
  readonly #uploads: string;
  readonly #posters: string;
  readonly #maxUploadBytes: number;

  /** @param maxUploadBytes the upload size cap (config.server.maxUploadBytes), enforced while streaming. */
  constructor(dataDir: string, maxUploadBytes: number) {
    this.#uploads = path.join(dataDir, 'uploads');
    this.#posters = path.join(dataDir, 'posters');
    this.#maxUploadBytes = maxUploadBytes;
  }

  /**
   * Writes `stream` to `uploads/tmp-<uuid>`, then renames it to `uploads/<sha256>.upload`. A stream cut by the
   * multipart size limit (`truncated`) is removed and refused with UPLOAD_TOO_LARGE, an empty one with
   * UPLOAD_MISSING_FILE.
   */
  async receive(stream: Readable & { truncated?: boolean }): Promise<StoredUpload> {
    const maxBytes = this.#maxUploadBytes;
    const tooLarge = () => new AppError('UPLOAD_TOO_LARGE', `the upload is larger than ${maxBytes} bytes`);
    await mkdir(this.#uploads, { recursive: true });
    const tmp = path.join(this.#uploads, `tmp-${randomUUID()}`);
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (size > maxBytes) return cb(tooLarge());
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(stream, meter, createWriteStream(tmp, { flags: 'wx' }));
      if (stream.truncated) throw tooLarge();
    } catch (err) {
      await rm(tmp, { force: true });
      if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE')
        throw new AppError('UPLOAD_TOO_LARGE', tooLarge().message, { cause: err });
      throw err;
    }
    if (size === 0) {
      await rm(tmp, { force: true });
      throw new AppError('UPLOAD_MISSING_FILE', 'the file part is empty', { field: 'file' });
    }
    const sha256 = hash.digest('hex');
    const final = path.join(this.#uploads, `${sha256}.upload`);
    await rename(tmp, final);
    return { path: final, sha256, sizeBytes: (await stat(final)).size };
  }

  /** Where a video's poster goes; the folder is created. */
  async posterPath(videoId: string): Promise<string> {
    await mkdir(this.#posters, { recursive: true });
    return path.join(this.#posters, `${videoId}.jpg`);
  }

  /** Removes a stored upload (the path its record or job carries); no error when it is already gone. */
  async removeUpload(uploadPath: string): Promise<void> {
    await rm(uploadPath, { force: true });
  }

  /** Removes a video's poster, whether or not its record points at it yet; no error when there is none. */
  async removePoster(videoId: string): Promise<void> {
    await rm(path.join(this.#posters, `${videoId}.jpg`), { force: true });
  }
}
