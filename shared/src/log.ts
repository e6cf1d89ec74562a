import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Structured JSON logs (pino) to stderr. Fields that may carry secrets are redacted at the
 * logger, so a careless `log.info({req})` can never print a key or token.
 */
export function createLogger(name: string, level: string = process.env['SKEIN_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    redact: { paths: ['*.private_key', '*.privateKey', '*.authorization', '*.token', 'headers.authorization', 'headers.cookie'], censor: '[redacted]' },
  }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that discards everything, for tests and embedded use. */
export function silentLogger(): Logger { return pino({ level: 'silent' }); }
