/** Builds a multipart/form-data body for app.inject(): text fields plus an optional file part. */
import { randomUUID } from 'node:crypto';

export function multipart(
  fields: Record<string, string | string[]>,
  file?: { name?: string; field?: string; data: Buffer; type?: string },
) {
  const boundary = `----montage${randomUUID()}`;
  const chunks: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) {
    for (const one of Array.isArray(v) ? v : [v]) {
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${one}\r\n`));
    }
  }
  if (file) {
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${file.field ?? 'file'}"; filename="${file.name ?? 'clip.mp4'}"\r\nContent-Type: ${file.type ?? 'video/mp4'}\r\n\r\n`,
      ),
    );
    chunks.push(file.data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}
