/** Video records written straight to the catalog, for tests of what reads records (events, recommendations). */
import type { VideoRecord } from '../../src/catalog/index.ts';

/** A video record with no job or files behind it (for tests of what reads records). */
export function fakeRecord(videoId: string): VideoRecord {
  return {
    videoId,
    title: 'fake',
    description: '',
    tags: [],
    sha256: videoId.padEnd(64, '0'),
    sizeBytes: 1,
    uploadPath: '/nonexistent',
    status: 'queued',
    jobId: `ingest-${videoId}`,
    generation: 'x',
    modalities: [],
    uploadedAt: Date.now(),
  };
}
