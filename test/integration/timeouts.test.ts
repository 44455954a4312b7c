/**
 * A client that starts an upload and stops sending is cut off after MONTAGE_UPLOAD_TIMEOUT_MS with 408
 * REQUEST_TIMEOUT in the error shape, on a real listening server (inject() has no sockets to time out).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startTestService, type TestService } from '../helpers/service.ts';

const TIMEOUT_MS = 1000;
let svc: TestService;

before(async () => {
  svc = await startTestService({ env: { MONTAGE_UPLOAD_TIMEOUT_MS: String(TIMEOUT_MS) } });
  await svc.app.listen({ host: '127.0.0.1', port: 0 });
});
after(async () => svc?.close());

test('a stalled upload is answered 408 REQUEST_TIMEOUT within a bound, and the server keeps serving', async () => {
  const { port } = svc.app.server.address() as { port: number };
  const sock = connect(port, '127.0.0.1');
  const t0 = performance.now();
  let raw = '';
  sock.on('data', (d) => (raw += d.toString()));
  const closed = new Promise((r) => sock.on('close', r));
  sock.write(
    'POST /v1/videos HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n' +
      '--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nabc',
  );
  await closed;
  const ms = performance.now() - t0;
  assert.match(raw, /^HTTP\/1\.1 408/);
  const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
  assert.equal(body.error.code, 'REQUEST_TIMEOUT');
  assert.ok(ms >= TIMEOUT_MS * 0.9 && ms < TIMEOUT_MS + 5000, `cut off after ${ms.toFixed(0)} ms`);
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.equal(health.status, 200);
});
