/**
 * How `mqttc` prints a received message: mosquitto_sub's default / `-v` / `-N` / `-F format`,
 * pascaldekloe mqttc's `-topic -prefix -suffix -quote`, and JSON lines (`--json`). Every printer
 * returns the bytes of one message (payloads are raw bytes, binary-safe).
 *
 * `-F` implements a subset of mosquitto_sub 2.0's format (man mosquitto_sub, "Output format"),
 * byte for byte: `%% %t %p %x %X %l %q %r %I %U %j %J %C %D %E %F %P %R %S`, the escapes
 * `\\ \0 \a \e \n \r \t \v`, field width, `-` (left align) and `0` (zero padding) for `%t %p %l`
 * (as mosquitto), and the `@` time specifiers `@Y @m @d @H @M @S @z @s @N @@`. Anything else is a
 * usage error at start, never printed silently.
 */
import type { InboundMessage } from '../client/index.js'
import { UsageError } from './args.js'

/** One piece of a compiled format. */
type Piece = string | ((m: InboundMessage, now: Date) => string | Buffer)

/** A compiled `-F` format. */
export type Format = Piece[]

const ESCAPES: Record<string, string> = { '\\': '\\', '0': '\0', a: '\x07', e: '\x1b', n: '\n', r: '\r', t: '\t', v: '\v' }

/** Compile a mosquitto_sub `-F` format; throws `UsageError` for what is not supported. */
export function compileFormat(format: string): Format {
  const pieces: Piece[] = []
  let text = ''
  const push = (piece: Piece): void => {
    if (text !== '') pieces.push(text)
    text = ''
    pieces.push(piece)
  }
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!
    if (c === '\\') {
      const next = format[++i]
      const escaped = next === undefined ? undefined : ESCAPES[next]
      if (escaped === undefined) throw new UsageError(`-F: unsupported escape \\${next ?? ''}`)
      text += escaped
    } else if (c === '@') {
      const next = format[++i]
      if (next === '@') text += '@'
      else push(timePiece(next))
    } else if (c === '%') {
      const spec = /^%(-?)(0?)(\d*)(?:\.(\d+))?([a-zA-Z%])/.exec(format.slice(i))
      if (spec === null) throw new UsageError(`-F: incomplete specifier at "${format.slice(i)}"`)
      i += spec[0].length - 1
      const [, left, zero, width, , letter] = spec
      if (letter === '%') {
        text += '%'
        continue
      }
      // mosquitto_sub 2.0 pads %t %p %l (and ignores a width on %q %r); its %x/%X with a width
      // prints only the first byte, which is not worth copying: refused.
      const w = width === '' ? 0 : Number(width)
      if (w > 0 && !'tplqr'.includes(letter!)) throw new UsageError(`-F: a field width on %${letter} is not supported (only %t %p %l)`)
      push(pad(fieldPiece(letter!), left === '-', zero === '0', 'tpl'.includes(letter!) ? w : 0))
    } else text += c
  }
  if (text !== '') pieces.push(text)
  return pieces
}

/** Render one message with a compiled format. */
export function renderFormat(format: Format, message: InboundMessage, now = new Date()): Buffer {
  const parts: Buffer[] = []
  for (const piece of format) {
    const value = typeof piece === 'string' ? piece : piece(message, now)
    parts.push(typeof value === 'string' ? Buffer.from(value) : value)
  }
  return Buffer.concat(parts)
}

function pad(piece: Piece, left: boolean, zero: boolean, width: number): Piece {
  if (width === 0 || typeof piece === 'string') return piece
  return (m, now) => {
    const value = piece(m, now)
    const bytes = typeof value === 'string' ? Buffer.from(value) : value
    // Widths count bytes, as printf does.
    if (bytes.length >= width) return bytes
    const fill = Buffer.alloc(width - bytes.length, left ? ' ' : zero ? '0' : ' ')
    return left ? Buffer.concat([bytes, fill]) : Buffer.concat([fill, bytes])
  }
}

function fieldPiece(letter: string): Piece {
  switch (letter) {
    case 't':
      return (m) => m.topic
    case 'p':
      return (m) => m.payload
    case 'x':
      return (m) => m.payload.toString('hex')
    case 'X':
      return (m) => m.payload.toString('hex').toUpperCase()
    case 'l':
      return (m) => String(m.payload.length)
    case 'q':
      return (m) => String(m.qos)
    case 'r':
      return (m) => (m.retain ? '1' : '0')
    case 'I':
      return (_, now) => isoSeconds(now)
    case 'U':
      return (_, now) => unixNanos(now)
    case 'j':
      return (m, now) => json(m, now, false)
    case 'J':
      return (m, now) => json(m, now, true)
    case 'C':
      return (m) => m.properties?.contentType ?? ''
    case 'D':
      return (m) => m.properties?.correlationData ?? ''
    case 'E':
      return (m) => (m.properties?.messageExpiryInterval === undefined ? '' : String(m.properties.messageExpiryInterval))
    case 'F':
      return (m) => (m.properties?.payloadFormatIndicator === undefined ? '' : m.properties.payloadFormatIndicator ? '1' : '0')
    case 'P':
      return (m) => (m.properties?.userProperties ?? []).map(([k, v]) => `${k}:${v}`).join(' ')
    case 'R':
      return (m) => m.properties?.responseTopic ?? ''
    case 'S':
      return (m) => (m.properties?.subscriptionIdentifiers ?? []).join(',')
    default:
      throw new UsageError(`-F: %${letter} is not supported (see mqttc --help, "Output format")`)
  }
}

function two(n: number): string {
  return String(n).padStart(2, '0')
}

function zone(now: Date): string {
  const offset = -now.getTimezoneOffset()
  const sign = offset < 0 ? '-' : '+'
  const abs = Math.abs(offset)
  return `${sign}${two(Math.floor(abs / 60))}${two(abs % 60)}`
}

/** `%I`: ISO 8601 local time to the second, with the zone: 2026-12-06T09:26:09+0000. */
function isoSeconds(now: Date): string {
  return `${now.getFullYear()}-${two(now.getMonth() + 1)}-${two(now.getDate())}T${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())}${zone(now)}`
}

/** `%U`: Unix time with nanoseconds (milliseconds precision here): 1796549169.967000000. */
function unixNanos(now: Date): string {
  const ms = now.getTime()
  return `${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}000000`
}

function timePiece(letter: string | undefined): Piece {
  switch (letter) {
    case 'Y':
      return (_, now) => String(now.getFullYear())
    case 'm':
      return (_, now) => two(now.getMonth() + 1)
    case 'd':
      return (_, now) => two(now.getDate())
    case 'H':
      return (_, now) => two(now.getHours())
    case 'M':
      return (_, now) => two(now.getMinutes())
    case 'S':
      return (_, now) => two(now.getSeconds())
    case 'z':
      return (_, now) => zone(now)
    case 's':
      return (_, now) => String(Math.floor(now.getTime() / 1000))
    case 'N':
      return (_, now) => `${String(now.getMilliseconds()).padStart(3, '0')}000000`
    default:
      throw new UsageError(`-F: @${letter ?? ''} is not supported (@Y @m @d @H @M @S @z @s @N @@)`)
  }
}

/** `%j` / `%J`: mosquitto_sub's JSON object (tst, topic, qos, retain, payloadlen, properties, payload). */
function json(m: InboundMessage, now: Date, payloadAsJson: boolean): string {
  const ms = now.getTime()
  const tst = `${new Date(ms).toISOString().slice(0, 19)}.${String(ms % 1000).padStart(3, '0')}000Z+0000`
  const fields: string[] = [`"tst":${JSON.stringify(tst)}`, `"topic":${JSON.stringify(m.topic)}`, `"qos":${m.qos}`, `"retain":${m.retain ? 1 : 0}`, `"payloadlen":${m.payload.length}`]
  const p = m.properties
  if (p?.payloadFormatIndicator !== undefined) fields.push(`"payload-format-indicator":${p.payloadFormatIndicator ? 1 : 0}`)
  if (p?.messageExpiryInterval !== undefined) fields.push(`"message-expiry-interval":${p.messageExpiryInterval}`)
  if (p?.contentType !== undefined) fields.push(`"content-type":${JSON.stringify(p.contentType)}`)
  if (p?.responseTopic !== undefined) fields.push(`"response-topic":${JSON.stringify(p.responseTopic)}`)
  if (p?.correlationData !== undefined) fields.push(`"correlation-data":${JSON.stringify(p.correlationData.toString('latin1'))}`)
  if (p?.userProperties !== undefined && p.userProperties.length > 0) {
    fields.push(`"user-properties":{${p.userProperties.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`)
  }
  if (payloadAsJson) {
    try {
      JSON.parse(m.payload.toString())
    } catch {
      throw new FormatError(`Message payload is not valid JSON on topic ${m.topic}.`)
    }
    fields.push(`"payload":${m.payload.toString()}`)
  } else fields.push(`"payload":${JSON.stringify(m.payload.toString())}`)
  return `{${fields.join(',')}}`
}

/** A message that cannot be rendered with the format (`%J` on a payload that is not JSON). */
export class FormatError extends Error {
  override name = 'FormatError'
}

/** Options of the non-`-F` printers. */
export interface PrintOptions {
  /** mosquitto `-v`: "topic payload". */
  verbose: boolean
  /** mosquitto `-N`: no newline after each message. */
  noEol: boolean
  /** mqttc `-topic`/`-prefix`/`-suffix`/`-quote`; set when any of them is given. */
  mqttc?: { topic: boolean; prefix: string; suffix: string; quote: boolean }
  /** `--json`: one JSON object per line. */
  json: boolean
  /** `-F`. */
  format?: Format
}

/** Render one message for stdout. */
export function printMessage(options: PrintOptions, m: InboundMessage, now = new Date()): Buffer {
  if (options.format !== undefined) {
    const body = renderFormat(options.format, m, now)
    return options.noEol ? body : Buffer.concat([body, NL])
  }
  if (options.json) return Buffer.from(jsonLine(m, now) + '\n')
  const k = options.mqttc
  if (k !== undefined) {
    const payload = k.quote ? Buffer.from(goQuote(m.payload)) : m.payload
    const topic = k.topic ? (k.quote ? goQuote(Buffer.from(m.topic)) : m.topic) + ' ' : ''
    return Buffer.concat([Buffer.from(topic + k.prefix), payload, Buffer.from(k.suffix)])
  }
  // As mosquitto_sub: an empty payload prints nothing at all, or "topic (null)" with -v.
  if (m.payload.length === 0) return options.verbose ? Buffer.from(`${m.topic} (null)${options.noEol ? '' : '\n'}`) : EMPTY
  const head = options.verbose ? Buffer.from(m.topic + ' ') : EMPTY
  return Buffer.concat([head, m.payload, options.noEol ? EMPTY : NL])
}

const NL = Buffer.from('\n')
const EMPTY = Buffer.alloc(0)

/** Our JSON line: topic, payload (UTF-8 text, or base64 with `"encoding":"base64"`), qos, retain, properties. */
export function jsonLine(m: InboundMessage, now: Date): string {
  const text = m.payload.toString('utf8')
  const utf8 = Buffer.from(text, 'utf8').equals(m.payload)
  const p = m.properties
  const properties: Record<string, unknown> = {}
  if (p !== undefined) {
    for (const [key, value] of Object.entries(p)) {
      if (value === undefined) continue
      properties[key] = Buffer.isBuffer(value) ? value.toString('base64') : value
    }
  }
  return JSON.stringify({
    time: now.toISOString(),
    topic: m.topic,
    qos: m.qos,
    retain: m.retain,
    payload: utf8 ? text : m.payload.toString('base64'),
    ...(utf8 ? {} : { encoding: 'base64' }),
    ...(Object.keys(properties).length > 0 ? { properties } : {})
  })
}

/** Go's `%q` of a byte string: double quotes, Go escapes, non-printable runes as \x / \u. */
export function goQuote(bytes: Buffer): string {
  const text = bytes.toString('utf8')
  const valid = Buffer.from(text, 'utf8').equals(bytes)
  let out = '"'
  if (!valid) {
    for (const byte of bytes) out += byte >= 0x20 && byte < 0x7f ? quoteAscii(String.fromCharCode(byte)) : `\\x${byte.toString(16).padStart(2, '0')}`
    return out + '"'
  }
  for (const ch of text) {
    const code = ch.codePointAt(0)!
    if (code >= 0x20 && code < 0x7f) out += quoteAscii(ch)
    else if (code === 0x07) out += '\\a'
    else if (code === 0x08) out += '\\b'
    else if (code === 0x0c) out += '\\f'
    else if (code === 0x0a) out += '\\n'
    else if (code === 0x0d) out += '\\r'
    else if (code === 0x09) out += '\\t'
    else if (code === 0x0b) out += '\\v'
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`
    else if (/\p{L}|\p{M}|\p{N}|\p{P}|\p{S}|\p{Zs}/u.test(ch) && code !== 0xa0) out += ch
    else if (code < 0x10000) out += `\\u${code.toString(16).padStart(4, '0')}`
    else out += `\\U${code.toString(16).padStart(8, '0')}`
  }
  return out + '"'
}

function quoteAscii(ch: string): string {
  return ch === '"' ? '\\"' : ch === '\\' ? '\\\\' : ch
}
