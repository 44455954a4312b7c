/**
 * Picks the vector store from config: Qdrant when `QDRANT_URL` is set (production: sharding,
 * replication, a server of its own), the embedded LanceDB store otherwise (one machine, no
 * server). Both satisfy the same VectorStore contract (test/integration/store.contract.test.ts).
 * The caller opens the returned store with its generation.
 */
import type { StoreConfig } from '../config/index.ts';
import { EmbeddedStore } from './embedded.ts';
import { QdrantStore } from './qdrant.ts';
import type { StoreGeneration, VectorStore } from './types.ts';

export type { VectorStore } from './types.ts';
export { EmbeddedStore } from './embedded.ts';
export { QdrantStore } from './qdrant.ts';

/** A store that can also repoint its aliases (the backfill's final, atomic switch). */
export type AdminStore = VectorStore & { pointAliases(gen: StoreGeneration): Promise<void> };

export interface CreateStoreOptions {
  log?: { warn: (obj: object, msg: string) => void };
  /**
   * Embedded store only: build and refresh ANN indexes in this process. Give it to the worker
   * (the writer) and not to the API server, so two processes never train the same index.
   */
  autoIndex: boolean;
}

export async function createStore(config: StoreConfig, opts: CreateStoreOptions): Promise<AdminStore> {
  if (config.qdrant) return new QdrantStore(config.qdrant);
  return new EmbeddedStore({ ...config.embedded, autoIndex: opts.autoIndex, ...(opts.log ? { log: opts.log } : {}) });
}
