/** Structured logs (pino). One root logger; modules take a child with their own `module` field. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { service: 'montage' } });
}
