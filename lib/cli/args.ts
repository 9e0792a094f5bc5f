/**
 * A small command-line parser that speaks two dialects at once (docs/cli.md "Flags"):
 *
 * - `-x` (a dash and one letter) is a mosquitto_pub/sub short flag;
 * - `-name`, `--name` and `--name=value` are long flags (Go `flag` style, as pascaldekloe's
 *   mqttc, and GNU style, as mosquitto's long options);
 * - no bundling (`-vN` is not `-v -N`: mosquitto does not bundle either);
 * - a word that is not a flag is a positional argument.
 *
 * `node:util parseArgs` cannot do single-dash long flags, hence this. Errors are `UsageError`
 * (exit status 2).
 */

/** An invocation the command cannot run: exit status 2 with the message. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** One flag: its spellings, how many values it takes, and whether it may repeat. */
export interface FlagSpec {
  /** The key in `ParsedArgs.values`. */
  key: string
  /**
   * Spellings without dashes: one letter = `-x` only; longer = `-name`, `--name`, `--name=v`.
   * A spelling written with a leading dash (`'-topic'`) is the single-dash word only and wins over
   * another flag's plain spelling (mqttc's `-topic` switch vs mosquitto's `--topic TOPIC`).
   */
  names: readonly string[]
  /** 0: a switch; 1: one value; 'property': mosquitto's `-D command identifier [name] value`. */
  arity: 0 | 1 | 'property'
  repeat?: boolean
}

/** The parse result: flag values by key (switches: true; repeated: arrays) and positionals. */
export interface ParsedArgs {
  values: Map<string, string | true | string[]>
  /** `-D` properties in order: [command, identifier, name?, value]. */
  properties: string[][]
  positionals: string[]
  /** Every flag spelling seen, in order (for messages and mode detection). */
  seen: string[]
}

/** Parse `argv` against `specs`; throws `UsageError`. */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[]): ParsedArgs {
  const short = new Map<string, FlagSpec>()
  const long = new Map<string, FlagSpec>()
  for (const spec of specs) for (const name of spec.names) (name.length === 1 ? short : long).set(name, spec)
  const result: ParsedArgs = { values: new Map(), properties: [], positionals: [], seen: [] }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      result.positionals.push(...argv.slice(i + 1))
      break
    }
    if (!arg.startsWith('-') || arg === '-') {
      result.positionals.push(arg)
      continue
    }
    const body = arg.startsWith('--') ? arg.slice(2) : arg.slice(1)
    const eq = body.indexOf('=')
    const name = eq > 0 && body.length > 1 ? body.slice(0, eq) : body
    let inline: string | undefined = eq > 0 && body.length > 1 ? body.slice(eq + 1) : undefined
    const single = !arg.startsWith('--')
    const spec = name.length === 1 && single ? short.get(name) : ((single ? long.get(`-${name}`) : undefined) ?? long.get(name))
    if (spec === undefined) {
      // `-x=1` is not a mosquitto spelling; `-xyz` where -x takes a value is not either (no bundling).
      throw new UsageError(`unknown flag ${arg}`)
    }
    if (name.length === 1 && inline !== undefined) throw new UsageError(`unknown flag ${arg} (write "-${name} value")`)
    result.seen.push(arg.startsWith('--') ? `--${name}` : `-${name}`)
    const take = (): string => {
      if (inline !== undefined) {
        const value = inline
        inline = undefined
        return value
      }
      const value = argv[++i]
      if (value === undefined) throw new UsageError(`${arg} needs a value`)
      return value
    }
    if (spec.arity === 'property') {
      const command = take()
      const identifier = take()
      const values = identifier === 'user-property' ? [take(), take()] : [take()]
      result.properties.push([command, identifier, ...values])
      continue
    }
    if (spec.arity === 0) {
      if (inline !== undefined) {
        if (!['true', 'false', '1', '0'].includes(inline)) throw new UsageError(`${name} is a switch: ${arg}`)
        if (inline === 'true' || inline === '1') result.values.set(spec.key, true)
        else result.values.delete(spec.key)
      } else result.values.set(spec.key, true)
      continue
    }
    const value = take()
    if (spec.repeat === true) {
      const list = result.values.get(spec.key)
      if (Array.isArray(list)) list.push(value)
      else result.values.set(spec.key, [value])
    } else result.values.set(spec.key, value)
  }
  return result
}

/** A string flag, or undefined. */
export function str(args: ParsedArgs, key: string): string | undefined {
  const value = args.values.get(key)
  return typeof value === 'string' ? value : undefined
}

/** A repeatable flag's values (empty when absent). */
export function list(args: ParsedArgs, key: string): string[] {
  const value = args.values.get(key)
  return Array.isArray(value) ? value : typeof value === 'string' ? [value] : []
}

/** A switch. */
export function flag(args: ParsedArgs, key: string): boolean {
  return args.values.get(key) === true
}

/** An integer flag within [min, max], or undefined; a bad value is a `UsageError`. */
export function int(args: ParsedArgs, key: string, min: number, max: number, label = key): number | undefined {
  const value = str(args, key)
  if (value === undefined) return undefined
  if (!/^-?\d+$/.test(value)) throw new UsageError(`${label}: "${value}" is not an integer`)
  const n = Number(value)
  if (n < min || n > max) throw new UsageError(`${label}: ${n} is not within ${min}..${max}`)
  return n
}

/**
 * A duration: Go syntax (`4s`, `1.5s`, `250ms`, `2m`, `1h30m`) or plain seconds (`4`, `0.5`).
 * Returns milliseconds; a bad value is a `UsageError`.
 */
export function durationMs(text: string, label: string): number {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  let rest = text
  let total = 0
  if (rest === '') throw new UsageError(`${label}: empty duration`)
  while (rest !== '') {
    const match = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest)
    if (match === null) throw new UsageError(`${label}: "${text}" is not a duration (4s, 250ms, 1m30s or seconds)`)
    total += Number(match[1]) * unit[match[2]!]!
    rest = rest.slice(match[0].length)
  }
  return total
}
