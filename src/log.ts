/** Structured logs (pino). One root logger; modules take a child with their own `module` field. */
import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * @param level the configured level (config.logLevel, from LOG_LEVEL).
 * @param to where the lines go: stdout, or stderr for commands whose stdout is their output (`montage status`).
 */
export function createLogger(level: string, to: 'stdout' | 'stderr' = 'stdout'): Logger {
  return pino({ level, base: { service: 'montage' } }, pino.destination(to === 'stderr' ? 2 : 1));
}
