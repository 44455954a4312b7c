/** How the embedded store talks to LanceDB and its folder: error mapping, commit-conflict retries, per-table write queues, atomic files. */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { isAppError, wrap } from '../../errors/index.ts';

/** Runs `fn`; any failure that is not already a catalogue error is STORE_UNAVAILABLE saying what was being done. */
export async function guard<T>(doing: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw isAppError(err) ? err : wrap('STORE_UNAVAILABLE', doing, err);
  }
}

/** Retries LanceDB's optimistic-commit conflicts (another process committed first). */
export async function retryConflicts<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !/conflict|retryable/i.test(String((err as Error)?.message))) throw err;
      await new Promise((r) => setTimeout(r, 20 * 2 ** i));
    }
  }
}

/** Chains work per key (a table): LanceDB commits are optimistic, and queuing in-process avoids needless conflicts. */
export class SerialQueues {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    this.#tails.set(
      key,
      run.catch(() => undefined),
    );
    return run;
  }

  /** Settles once everything queued so far has. */
  async drain(): Promise<void> {
    await Promise.allSettled(this.#tails.values());
  }
}

/** Write-then-rename, so a reader (or a crash) never sees half a file. */
export async function atomicWrite(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

/** A JSON file's content, or `fallback` when it does not exist. */
export async function readJson<T>(path: string, fallback: T): Promise<T> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw err;
  }
}
