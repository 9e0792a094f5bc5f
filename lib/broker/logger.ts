/**
 * The engine's logger: leveled, structured, and cheap when a level is off (callers check
 * `enabled(level)` before building anything expensive). Two formats: `text` (one human-readable
 * line per entry) and `json` (JSON lines, written by pino). `clientLogger` binds a connection's
 * client id, tenant and listener to every line logged about it.
 */
import pino from 'pino'

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

/**
 * A value that must be quoted in a text line: empty, or with any white space (Unicode's too: a
 * no-break or ideographic space splits a field for line readers that split on `\s`), `=`, `"`, `\`
 * or a control character.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const NEEDS_QUOTES = /^$|[\s\u0000-\u0020"=\\\u007f-\u009f\u2028\u2029]/u

/**
 * One field value of a text line, logfmt style: as is when it is one plain word, else in quotes with
 * `"` and `\` escaped (control characters are escaped for the whole line afterwards), so that a
 * value, whatever a client put in it, is exactly one field.
 */
function formatValue(text: string): string {
  if (!NEEDS_QUOTES.test(text)) return text
  return `"${text.replace(/["\\]/g, (c) => `\\${c}`)}"`
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
    out += ` ${key}=${formatValue(text)}`
  }
  return out
}

/**
 * A logger writing one line per entry (`2026-01-01T00:00:00.000Z INFO message key=value`) to
 * `write` (default: standard error) for every level up to `level`. Fields are `key=value`, a value
 * in quotes (`key="a \"b\" c"`) unless it is one plain word; control characters in the line (client
 * ids, user names, topics, error messages: any client data) are escaped as `\xNN`, so a client can
 * neither break a line, nor forge one, nor add a field to one (`escapeControlCharacters`).
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

/** Output formats: `text` (`createLogger`) and `json` (`createJsonLogger`). */
export type LogFormat = 'text' | 'json'

/**
 * A logger writing JSON lines with pino for every level up to `level`:
 * `{"level":"info","time":"2026-01-01T00:00:00.000Z","msg":"listening","name":"mqtt",...}`.
 * Fields are top-level keys; an `Error` field is serialized with its type, message and stack.
 * Written synchronously to `write` (default: standard error), so nothing is lost at exit. Client data
 * is JSON-escaped, C1 controls and U+2028/U+2029 included: it cannot break or forge a line.
 */
export function createJsonLogger(level: LogLevel = 'info', write?: (line: string) => void): Logger {
  const sink = write === undefined ? pino.destination({ dest: 2, sync: true }) : { write: (text: string) => write(text.replace(/\n$/, '')) }
  // JSON escapes C0 controls; C1 controls and U+2028/U+2029 (line breaks to some readers) too, here.
  const destination = { write: (text: string) => sink.write(escapeJsonLineBreaks(text)) }
  const errorSerializer = pino.stdSerializers.err
  const serialize = (value: unknown): unknown => (value instanceof Error ? errorSerializer(value) : value)
  const log = pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { error: serialize, err: serialize }
    },
    destination
  )
  const make =
    (name: Exclude<LogLevel, 'silent'>) =>
    (message: string, fields?: LogFields): void => {
      if (fields === undefined) log[name](message)
      else log[name](fields, message)
    }
  return {
    enabled: (l) => log.isLevelEnabled(l),
    error: make('error'),
    warn: make('warn'),
    info: make('info'),
    debug: make('debug'),
    trace: make('trace')
  }
}

const JSON_UNESCAPED = /[\u007f-\u009f\u2028\u2029]/gu

/** A JSON text with DEL, C1 controls, U+2028 and U+2029 written as `\uNNNN` (the same JSON value). */
function escapeJsonLineBreaks(text: string): string {
  JSON_UNESCAPED.lastIndex = 0
  if (!JSON_UNESCAPED.test(text)) return text
  JSON_UNESCAPED.lastIndex = 0
  return text.replace(JSON_UNESCAPED, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** A logger of `format` (`text`: `createLogger`, `json`: `createJsonLogger`) writing to standard error. */
export function createFormatLogger(format: LogFormat, level: LogLevel = 'info'): Logger {
  return format === 'json' ? createJsonLogger(level) : createLogger(level)
}

/** What `clientLogger` reads of a connection, at each line (the values change at CONNECT). */
export interface ClientLogSource {
  readonly clientId: string
  readonly tenant: string | undefined
  readonly listener: string | undefined
}

/**
 * A logger that adds `clientId`, `tenant` and `listener` of `client` to every line (fields given
 * at the call win). Costs nothing for a level that is off. One small object per connection (its
 * methods are shared), made when the connection first logs.
 */
export function clientLogger(base: Logger, client: ClientLogSource): Logger {
  return new ClientLogger(base, client)
}

class ClientLogger implements Logger {
  constructor(
    private readonly base: Logger,
    private readonly client: ClientLogSource
  ) {}

  enabled(level: Exclude<LogLevel, 'silent'>): boolean {
    return this.base.enabled(level)
  }

  error(message: string, fields?: LogFields): void {
    this.write('error', message, fields)
  }

  warn(message: string, fields?: LogFields): void {
    this.write('warn', message, fields)
  }

  info(message: string, fields?: LogFields): void {
    this.write('info', message, fields)
  }

  debug(message: string, fields?: LogFields): void {
    this.write('debug', message, fields)
  }

  trace(message: string, fields?: LogFields): void {
    this.write('trace', message, fields)
  }

  private write(level: Exclude<LogLevel, 'silent'>, message: string, fields: LogFields | undefined): void {
    const base = this.base
    if (!base.enabled(level)) return
    const client = this.client
    base[level](message, { clientId: client.clientId, tenant: client.tenant, listener: client.listener, ...fields })
  }
}

/** A logger that writes nothing. */
export const silentLogger: Logger = createLogger('silent', () => undefined)
