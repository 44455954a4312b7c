/**
 * The one place a child ffmpeg is started. fluent-ffmpeg builds and spawns the command; on top of
 * it this module adds what fluent's own `timeout` option lacks: the child is killed with SIGKILL
 * (fluent sends SIGTERM, which a decoder stuck in a read can ignore), also when the timer fires
 * before fluent has finished its capability checks and spawned the child.
 */
import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import ffmpeg from 'fluent-ffmpeg';
import { AppError, wrap, type ErrorCode } from '../errors/index.ts';

export interface FfmpegJob {
  /** Input name (already `file:`-prefixed) and the options that go before it. */
  input: string;
  inputOptions: string[];
  /** Options after the input, format included. */
  outputOptions: string[];
  /** A file path, or undefined to stream the output on stdout. */
  output?: string;
  timeoutMs: number;
  /** What is being attempted, for messages: `ffmpeg frames on <label>`. */
  doing: string;
  /** The code a failed decode maps to. @defaultValue CORRUPT_MEDIA */
  failCode?: ErrorCode;
}

export interface FfmpegRun {
  /** The output pipe; undefined when the output is a file. */
  stdout: Readable | undefined;
  /** Settles when the child has exited: resolves on success, rejects with an AppError. */
  done: Promise<void>;
  /** Kills the child now (SIGKILL); `done` then rejects unless it had already settled. */
  kill(): void;
}

/** Where ffmpeg is found: `ffmpeg` on PATH until the runtime sets the configured one (FFMPEG_PATH). */
export function setFfmpegPath(path: string): void {
  ffmpeg.setFfmpegPath(path);
}

/** Starts one ffmpeg child with a SIGKILL deadline. */
export function startFfmpeg(job: FfmpegJob): FfmpegRun {
  // Variadic calls: fluent splits array entries that contain one space, which would break filters.
  const cmd = ffmpeg({ stdoutLines: 0 }).input(job.input);
  cmd.inputOptions(...(job.inputOptions as [string, ...string[]]));
  cmd.outputOptions(...(job.outputOptions as [string, ...string[]]));
  let proc: ChildProcess | undefined;
  let killed: 'timeout' | 'caller' | undefined;
  const kill = (why: 'timeout' | 'caller') => {
    killed ??= why;
    proc?.kill('SIGKILL');
  };
  // fluent-ffmpeg may report the end (e.g. "Output stream closed") before the child has exited; callers that
  // await `done` must find no process left, so `done` also waits for the child's exit once it has started.
  let exited: Promise<void> | undefined;
  const done = new Promise<void>((resolve, reject) => {
    cmd.on('start', () => {
      const child = (cmd as unknown as { ffmpegProc: ChildProcess }).ffmpegProc;
      proc = child;
      exited = new Promise<void>((res) => {
        if (child.exitCode !== null || child.signalCode !== null) res();
        else child.once('exit', () => res());
      });
      if (killed) child.kill('SIGKILL');
    });
    cmd.on('end', () => resolve());
    cmd.on('error', (err: Error) => reject(failure(job, err, killed)));
  });
  const timer = setTimeout(() => kill('timeout'), job.timeoutMs);
  timer.unref();
  const settled = done.finally(async () => {
    clearTimeout(timer);
    await exited;
  });
  settled.catch(() => {}); // the caller observes `done`; this copy must not be "unhandled"
  let stdout: Readable | undefined;
  if (job.output === undefined) stdout = cmd.pipe() as Readable;
  else cmd.output(job.output).run();
  return { stdout, done: settled, kill: () => kill('caller') };
}

function failure(job: FfmpegJob, err: Error, killed: 'timeout' | 'caller' | undefined): AppError {
  if (killed === 'timeout') {
    return new AppError('MEDIA_TIMEOUT', `${job.doing} failed: killed after ${job.timeoutMs} ms`, { cause: err });
  }
  if (killed === 'caller') return wrap('INTERNAL', job.doing, new Error('stopped by the caller', { cause: err }));
  // A child that ran and exited non-zero could not decode the file; anything else (ffmpeg missing,
  // spawn failure) is ours and worth a retry.
  const decodeFailed = /exited with code|killed with signal/.test(err.message);
  return wrap(decodeFailed ? (job.failCode ?? 'CORRUPT_MEDIA') : 'INTERNAL', job.doing, err);
}
