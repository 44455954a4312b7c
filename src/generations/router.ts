/**
 * Serving two generations at once. While a backfill runs (and after a switch, until the old generation is retired)
 * a process holds one pinned store and one set of encoders per generation, and every request or job runs inside
 * one generation's context (AsyncLocalStorage): the query is encoded with that generation's towers and searched in
 * that generation's collections, so a response never mixes the two, even when the aliases move mid-request.
 *
 * Which generation serves is what the store's aliases say (re-read at most every `refreshMs`); the other one, the
 * "secondary" (the backfill target, or after a switch the previous generation, kept for a lossless rollback), is
 * named in Redis (src/generations/state.ts) and receives every new upload and user vector too.
 *
 * `encoders` and `store` are drop-in Encoders / VectorStore objects that route each call to the context's
 * generation; the rest of the service keeps its one-encoder, one-store shape.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { AppError } from '../errors/index.ts';
import type { Logger } from '../log.ts';
import { loadEncoders, type LoadedEncoders, type Precision } from '../models/index.ts';
import type { FrameSegment, GenerationInfo, TowerName, UserHistory } from '../models/types.ts';
import type { AdminStore } from '../store/index.ts';
import type {
  ItemFilter,
  ItemHit,
  ItemPoint,
  SearchRequest,
  SegmentHit,
  SegmentPoint,
  StoreGeneration,
  UserPoint,
} from '../store/types.ts';
import type { VerifiedGeneration } from '../models/manifest.ts';
import type { GenerationState } from './state.ts';

/** One generation as a process serves it: its towers and its own (pinned) collections. */
export interface GenerationPair {
  encoders: LoadedEncoders;
  store: AdminStore;
}

export interface GenerationRouterOptions {
  /** The configured generation, already loaded (the one the process booted with). */
  boot: LoadedEncoders;
  /** Opened with the boot generation, not pinned: reads the aliases and moves them. */
  admin: AdminStore;
  /** A new store, unopened (the router opens it pinned to one generation). */
  newStore: () => Promise<AdminStore>;
  /** Loads a generation folder's encoders. */
  load: (dir: string) => Promise<LoadedEncoders>;
  /** `config.models.generationsDir`: where generations other than the boot one are found by name. */
  generationsDir: string;
  /** How long a read of the aliases and of the secondary is trusted, ms. */
  refreshMs: number;
  state: GenerationState;
  log: Logger;
}

export class GenerationRouter {
  readonly #o: GenerationRouterOptions;
  readonly #als = new AsyncLocalStorage<string>();
  readonly #pairs = new Map<string, Promise<GenerationPair>>();
  readonly #ready = new Map<string, GenerationPair>();
  #served: string;
  #secondary: string | null = null;
  #readAt = 0;
  #refreshing: Promise<void> | null = null;
  /** Routes each call to the context's generation (see the module comment). */
  readonly encoders: LoadedEncoders;
  readonly store: AdminStore;

  constructor(opts: GenerationRouterOptions) {
    this.#o = opts;
    this.#served = opts.boot.generation.name;
    this.encoders = new RoutedEncoders(() => this.pair().encoders);
    this.store = new RoutedStore(this);
  }

  /** Reads the aliases and the secondary, loads both generations. Call once at boot. */
  async start(): Promise<void> {
    await this.refresh(true);
  }

  /** The store that reads and moves the aliases. */
  get admin(): AdminStore {
    return this.#o.admin;
  }

  /** The generation the aliases point at, as last read (refresh() re-reads). */
  get served(): string {
    return this.#served;
  }

  /** The backfill target, or the previous generation kept after a switch; null when only one generation is live. */
  get secondary(): string | null {
    return this.#secondary;
  }

  /** The generation of the running request or job; the served one outside any. */
  current(): string {
    return this.#als.getStore() ?? this.#served;
  }

  /** The loaded pair of the current generation. */
  pair(name = this.current()): GenerationPair {
    const p = this.#ready.get(name);
    if (!p) throw new AppError('INTERNAL', `generation ${name} is not loaded in this process`);
    return p;
  }

  /** Every generation this process has loaded (writes that must reach all of them: deletes). */
  loaded(): GenerationPair[] {
    return [...this.#ready.values()];
  }

  /** Runs `fn` in `name`'s context (loading it first when needed). */
  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    await this.ensure(name);
    return this.#als.run(name, fn);
  }

  /** Runs `fn` in the served generation's context, pinned for its whole run. */
  async runServed<T>(fn: () => Promise<T>): Promise<T> {
    await this.refresh();
    return this.run(this.#served, fn);
  }

  /** Enters `name`'s context for the rest of a callback chain (a Fastify hook's `done`). */
  enter(name: string, next: () => void): void {
    this.#als.run(name, next);
  }

  /** Re-reads which generation serves and which is secondary when the last read is older than refreshMs. */
  async refresh(force = false): Promise<void> {
    if (!force && Date.now() - this.#readAt < this.#o.refreshMs) return;
    this.#refreshing ??= (async () => {
      try {
        await this.#read();
      } catch (err) {
        // At boot (forced) a generation that cannot load is fatal; later, the last good read keeps serving (a
        // request must not fail because a switch named a generation this process cannot find), loudly.
        if (force) throw err;
        this.#readAt = Date.now();
        this.#o.log.error({ err }, 'reading the served generation failed; answering from the last one read');
      } finally {
        this.#refreshing = null;
      }
    })();
    await this.#refreshing;
  }

  /** Reads the aliases and the secondary, loads both generations, then swaps them in. */
  async #read(): Promise<void> {
    const aliases = await this.#o.admin.aliases();
    const served = aliases.items?.name ?? this.#o.boot.generation.name;
    const secondary = await this.#o.state.secondary();
    await this.ensure(served);
    if (secondary && secondary !== served) await this.ensure(secondary);
    this.#served = served;
    this.#secondary = secondary && secondary !== served ? secondary : null;
    this.#readAt = Date.now();
  }

  /** Loads a generation (its encoders, its pinned store) once; later calls share the load. */
  async ensure(name: string): Promise<GenerationPair> {
    let p = this.#pairs.get(name);
    if (!p) {
      p = this.#load(name);
      this.#pairs.set(name, p);
      p.then(
        (pair) => this.#ready.set(name, pair),
        () => this.#pairs.delete(name),
      );
    }
    return p;
  }

  async #load(name: string): Promise<GenerationPair> {
    const boot = this.#o.boot;
    const dir = generationDir(this.#o.generationsDir, name);
    // Collections whose generation has no folder here (written by a benchmark, or by a generation since removed) are
    // read with the boot generation's towers, as before generations could be switched; the store still refuses
    // them if their dimension differs.
    const foreign = name !== boot.generation.name && !existsSync(path.join(dir, 'manifest.json'));
    if (foreign) {
      this.#o.log.warn(
        { generation: name, towers: boot.generation.name, generationsDir: this.#o.generationsDir },
        'no folder for the generation: its collections are read with the boot towers',
      );
    }
    const encoders = name === boot.generation.name || foreign ? boot : await this.#o.load(dir);
    if (!foreign && encoders.generation.name !== name) {
      throw new AppError('GENERATION_MISMATCH', `the folder of generation ${name} holds ${encoders.generation.name}`);
    }
    const store = await this.#o.newStore();
    try {
      await store.open({ name, dim: encoders.generation.dim }, { pinned: true });
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
    this.#o.log.info({ generation: name, dim: encoders.generation.dim }, 'generation loaded');
    return { encoders, store };
  }

  /** Closes every pinned store and every encoder but the boot one (the runtime closes that). */
  async close(): Promise<void> {
    const pairs = await Promise.allSettled(this.#pairs.values());
    for (const r of pairs) {
      if (r.status !== 'fulfilled') continue;
      await r.value.store.close().catch(() => undefined);
      if (r.value.encoders !== this.#o.boot) await r.value.encoders.close().catch(() => undefined);
    }
    this.#pairs.clear();
    this.#ready.clear();
  }
}

/** `<generationsDir>/<name>`, refusing a name that is not a plain folder name. */
export function generationDir(generationsDir: string, name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/.test(name)) {
    throw new AppError('CONFIG_INVALID', `${JSON.stringify(name)} is not a generation name`);
  }
  return path.join(generationsDir, name);
}

/** Loads a generation folder with the runtime's settings. */
export function encoderLoader(opts: Parameters<typeof loadEncoders>[1]): (dir: string) => Promise<LoadedEncoders> {
  return (dir) => loadEncoders(dir, opts);
}

/** Encoders that forward each call to the context's generation. */
class RoutedEncoders implements LoadedEncoders {
  readonly #pick: () => LoadedEncoders;
  constructor(pick: () => LoadedEncoders) {
    this.#pick = pick;
  }
  get generation(): GenerationInfo {
    return this.#pick().generation;
  }
  get manifest(): VerifiedGeneration {
    return this.#pick().manifest;
  }
  provider(tower: TowerName): string | null {
    return this.#pick().provider(tower);
  }
  precision(tower: TowerName): Precision {
    return this.#pick().precision(tower);
  }
  encodeImages(images: Uint8Array[]): Promise<Float32Array[]> {
    return this.#pick().encodeImages(images);
  }
  encodeFrames(segments: FrameSegment[]): Promise<Float32Array[]> {
    return this.#pick().encodeFrames(segments);
  }
  encodeAudio(segments: Float32Array[]): Promise<Float32Array[]> {
    return this.#pick().encodeAudio(segments);
  }
  encodeText(texts: string[]): Promise<Float32Array[]> {
    return this.#pick().encodeText(texts);
  }
  unknownWordShare(text: string): Promise<number> {
    return this.#pick().unknownWordShare(text);
  }
  encodeUsers(histories: UserHistory[]): Promise<Float32Array[]> {
    return this.#pick().encodeUsers(histories);
  }
  projectBehaviour(content: Float32Array[]): Promise<Float32Array[]> {
    return this.#pick().projectBehaviour(content);
  }
  has(tower: TowerName): boolean {
    return this.#pick().has(tower);
  }
  /** The router closes the generations it loaded. */
  async close(): Promise<void> {}
}

/**
 * A store that reads and writes the context generation's collections; deletes reach every loaded generation, and
 * the alias operations go to the router's admin store.
 */
class RoutedStore implements AdminStore {
  readonly #r: GenerationRouter;
  constructor(r: GenerationRouter) {
    this.#r = r;
  }
  #s(): AdminStore {
    return this.#r.pair().store;
  }
  /** Already open: the router opened every generation it serves. */
  async open(): Promise<void> {}
  aliases(): Promise<Partial<Record<'items' | 'segments' | 'users', StoreGeneration>>> {
    return this.#r.admin.aliases();
  }
  async pointAliases(gen: StoreGeneration): Promise<void> {
    await this.#r.admin.pointAliases(gen);
    await this.#r.refresh(true);
  }
  upsertItems(points: ItemPoint[]): Promise<void> {
    return this.#s().upsertItems(points);
  }
  upsertSegments(videoId: string, points: SegmentPoint[]): Promise<void> {
    return this.#s().upsertSegments(videoId, points);
  }
  getItem(videoId: string, withVectors?: boolean): Promise<ItemHit | null> {
    return this.#s().getItem(videoId, withVectors);
  }
  getSegments(videoId: string): Promise<SegmentPoint[]> {
    return this.#s().getSegments(videoId);
  }
  getItems(videoIds: string[], withVectors?: boolean): Promise<Array<ItemHit | null>> {
    return this.#s().getItems(videoIds, withVectors);
  }
  /** A deleted video leaves every generation: the served one, the secondary, any other this process loaded. */
  async deleteVideo(videoId: string): Promise<void> {
    await this.#r.refresh();
    for (const p of this.#r.loaded()) await p.store.deleteVideo(videoId);
  }
  searchItems(req: SearchRequest): Promise<ItemHit[]> {
    return this.#s().searchItems(req);
  }
  searchSegments(req: SearchRequest & { using: 'fused' | 'video' | 'audio' }): Promise<SegmentHit[]> {
    return this.#s().searchSegments(req);
  }
  countItems(filter?: ItemFilter): Promise<number> {
    return this.#s().countItems(filter);
  }
  upsertUsers(points: UserPoint[]): Promise<void> {
    return this.#s().upsertUsers(points);
  }
  getUser(userId: string): Promise<UserPoint | null> {
    return this.#s().getUser(userId);
  }
  ping(): Promise<void> {
    return this.#s().ping();
  }
  /** The router closes the generations it loaded. */
  async close(): Promise<void> {}
}
