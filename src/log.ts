/** Structured logs (pino). One root logger; modules take a child with their own `module` field. */
import { pino, type Logger } from 'pino';

export type { Logger };

/** @param level the configured level (config.logLevel, from LOG_LEVEL). */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'montage' } });
}
