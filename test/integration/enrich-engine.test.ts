/** The engine child-process seam on real processes: output, and each failure's code and stable reason. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError } from '../../src/errors/index.ts';
import { runEngine, type EngineRun } from '../../src/enrich/engine.ts';

const base: Omit<EngineRun, 'command' | 'args'> = { timeoutMs: 5000, maxOutputBytes: 1 << 16, doing: 'engine test' };

function rejectsWith(reason: string, code: string) {
  return (err: unknown) => {
    assert.ok(err instanceof AppError, String(err));
    assert.equal(err.code, code);
    assert.equal(err.details?.reason, reason);
    assert.match(err.message, /^engine test failed: /);
    return true;
  };
}

test('stdin goes in, stdout comes back; the environment is passed', async () => {
  const out = await runEngine({
    ...base,
    command: 'sh',
    args: ['-c', 'tr a-z A-Z; printf " $X"'],
    input: Buffer.from('hello'),
    env: { X: 'env' },
  });
  assert.equal(out.toString(), 'HELLO env');
});

test('arguments are never read by a shell', async () => {
  const out = await runEngine({ ...base, command: 'printf', args: ['%s', '$(echo no); `x` | >'] });
  assert.equal(out.toString(), '$(echo no); `x` | >');
});

test('a missing binary is INTERNAL, reason missing', async () => {
  await assert.rejects(runEngine({ ...base, command: 'montage-no-such-engine', args: [] }), rejectsWith('missing', 'INTERNAL'));
});

test('a child past its deadline is killed: MEDIA_TIMEOUT, reason timeout', async () => {
  const started = Date.now();
  // `exec` makes the shell the process that ignores SIGTERM and sleeps: only SIGKILL ends it.
  await assert.rejects(
    runEngine({ ...base, command: 'sh', args: ['-c', "trap '' TERM; exec sleep 30"], timeoutMs: 300 }),
    rejectsWith('timeout', 'MEDIA_TIMEOUT'),
  );
  assert.ok(Date.now() - started < 5000, 'killed well before the child would have ended');
});

test('output past the cap kills the child: reason output_too_large', async () => {
  await assert.rejects(
    runEngine({ ...base, command: 'yes', args: [], maxOutputBytes: 10_000 }),
    rejectsWith('output_too_large', 'INTERNAL'),
  );
});

test('a non-zero exit is INTERNAL, reason exit, with the tail of stderr', async () => {
  await assert.rejects(runEngine({ ...base, command: 'sh', args: ['-c', 'echo bad frame >&2; exit 3'] }), (err: unknown) => {
    rejectsWith('exit', 'INTERNAL')(err);
    assert.match((err as Error).message, /exited with code 3: bad frame/);
    return true;
  });
});
