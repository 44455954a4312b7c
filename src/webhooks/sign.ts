/**
 * Webhook signatures: HMAC-SHA256 over `<timestamp>.<body>` with the subscription's secret (the Stripe scheme), sent
 * as `Montage-Signature: v1=<hex>` beside `Montage-Timestamp: <unix seconds>` and `Montage-Delivery: <id>`. Each try
 * is signed afresh, so a retry carries a current timestamp. A receiver checks the signature, refuses a timestamp
 * outside the replay window, and remembers the delivery ids it has accepted for that long: then a captured request
 * sent again is refused both inside the window (seen id) and after it (stale timestamp).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** How old (or how far ahead) a delivery's timestamp may be, seconds. */
export const REPLAY_WINDOW_S = 300;

export const HEADERS = {
  signature: 'montage-signature',
  timestamp: 'montage-timestamp',
  delivery: 'montage-delivery',
  event: 'montage-event',
} as const;

export function sign(secret: string, timestampS: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestampS}.${body}`).digest('hex')}`;
}

export type Verdict = 'ok' | 'bad-signature' | 'stale';

/** What a receiver does with a delivery (besides refusing a delivery id it has already accepted). */
export function verify(
  secret: string,
  headers: { signature: string | undefined; timestamp: string | undefined },
  body: string,
  nowS = Math.floor(Date.now() / 1000),
  windowS = REPLAY_WINDOW_S,
): Verdict {
  const ts = Number(headers.timestamp);
  if (!headers.signature || !Number.isInteger(ts)) return 'bad-signature';
  const want = Buffer.from(sign(secret, ts, body));
  const got = Buffer.from(headers.signature);
  if (want.length !== got.length || !timingSafeEqual(want, got)) return 'bad-signature';
  return Math.abs(nowS - ts) > windowS ? 'stale' : 'ok';
}
