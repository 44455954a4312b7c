/**
 * A whole Montage service for a test: real Redis (a fresh key prefix, removed after), the embedded store in a
 * temp dir, the real ONNX generation, the Fastify app, and optionally in-process workers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { createLogger } from '../../src/log.ts';
import { createRuntime, startRuntimeWorkers, type Runtime } from '../../src/runtime.ts';
import { buildApp } from '../../src/server/app.ts';
import type { RunningWorkers } from '../../jobs/worker.ts';
import type { JobDeps } from '../../jobs/index.ts';
import { defaultGenerationDir, ROOT } from './generation.ts';

export interface TestService {
  config: Config;
  env: Record<string, string>;
  rt: Runtime;
  app: FastifyInstance;
  workers: RunningWorkers | null;
  close(): Promise<void>;
}

export function requireGeneration(): string {
  const dir = defaultGenerationDir();
  if (!dir) throw new Error('no model generation found: train one (encoders/README.md) or set MONTAGE_GENERATION_DIR');
  return dir;
}

/** Env for a fresh, isolated service: its own data dir and queue prefix. */
export async function testEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'montage-test-'));
  return {
    MONTAGE_DATA_DIR: dataDir,
    MONTAGE_QUEUE_PREFIX: `montage-test-${randomUUID().slice(0, 8)}`,
    MONTAGE_GENERATION_DIR: requireGeneration(),
    MONTAGE_INTRA_OP_THREADS: '2',
    // Tests read right after another process (the worker) writes: strong consistency, not the 1 s default.
    MONTAGE_STORE_READ_CONSISTENCY_S: '0',
    // Worker processes at the tests' own priority: the lifecycle tests compress lock times to 1.5 s, which a worker
    // lowered below a busy machine's other work could miss while it runs. bench/load.ts measures the default.
    MONTAGE_WORKER_NICE: '0',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
    ...extra,
  };
}

/** Deletes every Redis key under the prefix. */
export async function dropPrefix(redisUrl: string, prefix: string): Promise<void> {
  const r = new Redis(redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

export async function startTestService(
  opts: {
    workers?: boolean;
    env?: Record<string, string>;
    stalledIntervalMs?: number;
    /** Parts the in-process workers' processors use instead of the runtime's (a hook, a wrapped store). */
    jobDeps?: (rt: Runtime) => Partial<JobDeps>;
  } = {},
): Promise<TestService> {
  const env = await testEnv(opts.env);
  const config = loadConfig(env);
  const rt = await createRuntime({ config, log: createLogger(config.logLevel), role: 'test', buildIndexes: opts.workers ?? false });
  const app = await buildApp(rt);
  const workers = opts.workers
    ? startRuntimeWorkers(rt, {
        ...(opts.stalledIntervalMs ? { stalledIntervalMs: opts.stalledIntervalMs, lockMs: 1000 } : {}),
        ...(opts.jobDeps ? { override: opts.jobDeps(rt) } : {}),
      })
    : null;
  return {
    config,
    env,
    rt,
    app,
    workers,
    close: async () => {
      await workers?.close();
      await app.close();
      await rt.close();
      await dropPrefix(config.redis.url, config.redis.prefix);
      await rm(config.dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls a job until it is completed or failed (with `apiKey` when the service has keys configured). */
export async function waitForJob(svc: TestService, jobId: string, timeoutMs = 120_000, apiKey?: string): Promise<Record<string, unknown>> {
  const end = Date.now() + timeoutMs;
  const headers = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  for (;;) {
    const res = await svc.app.inject({ method: 'GET', url: `/v1/jobs/${jobId}`, headers });
    const body = res.json() as Record<string, unknown>;
    if (body.state === 'completed' || body.state === 'failed') return body;
    if (Date.now() > end) throw new Error(`job ${jobId} still ${String(body.state)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Serves the test app on a loopback port; returns its base URL. */
export async function listenLoopback(svc: TestService): Promise<string> {
  await svc.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = svc.app.server.address();
  return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
}

/** A worker in a process of its own (`montage worker`) on the service's Redis prefix and data folder. */
export interface WorkerProcess {
  proc: ChildProcess;
  /** What it printed so far (stdout and stderr). */
  log(): string;
  /** SIGTERM, then waits for the exit (nothing when it already exited). */
  stop(): Promise<void>;
}

export function spawnWorker(svc: TestService, env: Record<string, string> = {}): WorkerProcess {
  const proc = spawn(process.execPath, [path.join(ROOT, 'src/cli/main.ts'), 'worker'], {
    env: { ...process.env, ...svc.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  for (const s of [proc.stdout!, proc.stderr!]) s.on('data', (d: Buffer) => (out += d.toString()));
  return {
    proc,
    log: () => out,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}
