/**
 * A throwaway redis-server for tests that kill and restart Redis: its own port and folder, append-only file on
 * (the persistence README "Redis" advises), so a restart brings back what was acknowledged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

export interface ThrowawayRedis {
  url: string;
  port: number;
  /** Starts (or restarts, on the same port and folder) the server and waits until it answers; a no-op while it runs. */
  start(): Promise<void>;
  /** SIGKILLs the server (no shutdown save: what survives is what the append-only file holds). */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a server that holds its connections open and answers nothing (a hung host). */
  pause(): void;
  resume(): void;
  /** Kills it and removes its folder. */
  destroy(): Promise<void>;
}

/** A TCP port free on loopback right now. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

export async function throwawayRedis(): Promise<ThrowawayRedis> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), 'montage-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let proc: ChildProcess | null = null;
  const kill = async () => {
    const p = proc;
    proc = null;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  };
  return {
    url,
    port,
    start: async () => {
      if (proc && proc.exitCode === null && proc.signalCode === null) return;
      proc = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'],
        { stdio: 'ignore' },
      );
      const end = Date.now() + 10_000;
      for (;;) {
        const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        r.on('error', () => undefined);
        try {
          await r.connect();
          if ((await r.ping()) === 'PONG') return;
        } catch {
          if (Date.now() > end) throw new Error(`redis-server on ${port} did not start`);
        } finally {
          r.disconnect();
        }
        await new Promise((res) => setTimeout(res, 50));
      }
    },
    kill,
    pause: () => void proc?.kill('SIGSTOP'),
    resume: () => void proc?.kill('SIGCONT'),
    destroy: async () => {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
