/**
 * The engine's logger: leveled, structured, and cheap when a level is off (callers check
 * `enabled(level)` before building anything expensive).
 */

import { escapeControlCharacters } from '../util/control-characters.js'

/** Log levels, most severe first. `silent` logs nothing. */
export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

/** Every level name, in order of verbosity. */
export const LOG_LEVELS: readonly LogLevel[] = ['silent', 'error', 'warn', 'info', 'debug', 'trace']

/** Structured fields of a log line. */
export type LogFields = Record<string, unknown>

/**
 * A logger. Implementations must not throw. `enabled(level)` says whether a line at `level` would
 * be written, so hot paths can skip formatting.
 */
export interface Logger {
  enabled(level: Exclude<LogLevel, 'silent'>): boolean
  error(message: string, fields?: LogFields): void
  warn(message: string, fields?: LogFields): void
  info(message: string, fields?: LogFields): void
  debug(message: string, fields?: LogFields): void
  trace(message: string, fields?: LogFields): void
}

function formatFields(fields: LogFields | undefined): string {
  if (fields === undefined) return ''
  let out = ''
  for (const key of Object.keys(fields)) {
    const value = fields[key]
    if (value === undefined) continue
    const text =
      value instanceof Error
        ? `${value.name}: ${value.message}`
        : typeof value === 'string'
          ? value
          : JSON.stringify(value)
    out += ` ${key}=${text}`
  }
  return out
}

/**
 * A logger writing one line per entry (`2026-01-01T00:00:00.000Z INFO message key=value`) to
 * `write` (default: standard error) for every level up to `level`. Control characters in the line
 * (client ids, user names, topics, error messages: any client data) are escaped as `\xNN`, so a
 * client can neither break a line nor forge one (`escapeControlCharacters`).
 */
export function createLogger(level: LogLevel = 'info', write: (line: string) => void = (line) => process.stderr.write(line + '\n')): Logger {
  const max = LOG_LEVELS.indexOf(level)
  const make =
    (name: Exclude<LogLevel, 'silent'>) =>
    (message: string, fields?: LogFields): void => {
      if (LOG_LEVELS.indexOf(name) > max) return
      write(escapeControlCharacters(`${new Date().toISOString()} ${name.toUpperCase()} ${message}${formatFields(fields)}`))
    }
  return {
    enabled: (l) => LOG_LEVELS.indexOf(l) <= max,
    error: make('error'),
    warn: make('warn'),
    info: make('info'),
    debug: make('debug'),
    trace: make('trace')
  }
}

/** A logger that writes nothing. */
export const silentLogger: Logger = createLogger('silent', () => undefined)
