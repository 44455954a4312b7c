/**
 * The one place an evidence engine's child process is started (tesseract today; any later CLI
 * engine too), as src/media/run.ts is for ffmpeg: argv only (no shell), input on stdin, stdout
 * collected up to a byte cap, stderr's tail kept for the message, SIGKILL at the deadline (a
 * recogniser stuck on a pathological image can ignore SIGTERM), and failures mapped to catalogue
 * codes with a stable `details.reason`:
 *
 * | reason | code | retry | when |
 * | --- | --- | --- | --- |
 * | `missing` | INTERNAL | yes | the binary is not installed (a deployment fault; a retry after the fix succeeds) |
 * | `timeout` | MEDIA_TIMEOUT | no | the engine ran past its deadline on this input |
 * | `output_too_large` | INTERNAL | no* | stdout passed the cap (the child is killed) |
 * | `exit` | INTERNAL | yes | it exited non-zero or died on a signal |
 *
 * (*) INTERNAL's catalogue row says retry; the caller decides, `details.reason` says why.
 */
import { spawn } from 'node:child_process';
import { AppError } from '../errors/index.ts';

export type EngineFailure = 'missing' | 'timeout' | 'output_too_large' | 'exit';

export interface EngineRun {
  /** Executable name (found on PATH) or path. */
  command: string;
  args: string[];
  /** Written to the child's stdin, which is then closed. */
  input?: Uint8Array;
  /** Kill the child after this long. */
  timeoutMs: number;
  /** Kill the child when stdout grows past this. */
  maxOutputBytes: number;
  /** Extra environment variables on top of this process's. */
  env?: Record<string, string>;
  /** What is being attempted, for messages: `tesseract on <video> frame 3`. */
  doing: string;
}

/** The engine's name in details and messages: the command's last path element. */
function engineName(command: string): string {
  return command.split('/').pop() ?? command;
}

function failure(run: EngineRun, reason: EngineFailure, message: string, cause?: unknown): AppError {
  const code = reason === 'timeout' ? 'MEDIA_TIMEOUT' : 'INTERNAL';
  return new AppError(code, `${run.doing} failed: ${message}`, { cause, details: { engine: engineName(run.command), reason } });
}

/** Runs the engine to completion; resolves with its stdout, rejects with an AppError as above. */
export function runEngine(run: EngineRun): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(run.command, run.args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...run.env },
      shell: false,
    });
    const out: Buffer[] = [];
    let outBytes = 0;
    let errTail = '';
    let killed: EngineFailure | undefined;
    const kill = (why: EngineFailure) => {
      killed ??= why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill('timeout'), run.timeoutMs);
    timer.unref();
    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > run.maxOutputBytes) return kill('output_too_large');
      out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      errTail = (errTail + chunk.toString('utf8')).slice(-2000);
    });
    // A child that exits before reading all its input makes the write fail with EPIPE: the exit
    // status (or the spawn error) is the failure worth reporting, not the pipe.
    child.stdin.on('error', () => {});
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT') reject(failure(run, 'missing', `${run.command} is not installed or not on PATH`, err));
      else reject(failure(run, 'exit', err.message, err));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (killed === 'timeout') return reject(failure(run, 'timeout', `killed after ${run.timeoutMs} ms`));
      if (killed === 'output_too_large') return reject(failure(run, 'output_too_large', `output passed ${run.maxOutputBytes} bytes`));
      if (code !== 0) {
        const why = signal ? `killed with signal ${signal}` : `exited with code ${code}`;
        return reject(failure(run, 'exit', `${why}: ${errTail.trim().slice(-500)}`));
      }
      resolve(Buffer.concat(out));
    });
    child.stdin.end(run.input ?? new Uint8Array(0));
  });
}
