/**
 * Configuration errors: each problem names its place (`broker.yaml:12:9`, `--port`, or
 * `MQTT_BROKER_REDIS_URL`), the key (`listeners[1].port`) and what was expected.
 */

/** A path into the configuration: object keys and array indexes. */
export type ConfigPath = readonly (string | number)[]

/** One problem found in a configuration. */
export interface ConfigIssue {
  /** Where: `file:line:col`, a flag (`--port`) or an environment variable; empty when unknown. */
  readonly place: string
  /** The key, dotted with indexes (`listeners[0].tls.cert`); empty for the whole file. */
  readonly key: string
  /** What was expected, or what is wrong. */
  readonly message: string
}

/** Formats a path as a key: `listeners[0].tls.cert`. */
export function formatKey(path: ConfigPath): string {
  let out = ''
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out.length === 0 ? part : `.${part}`
  return out
}

/** One line per issue: `place: key: message`. */
export function formatIssue(issue: ConfigIssue): string {
  return [issue.place, issue.key, issue.message].filter((part) => part.length > 0).join(': ')
}

/** Sort key of an issue: its line and column, -1 without (a flag, a variable). */
function position(issue: ConfigIssue): number {
  const match = /:(\d+):(\d+)$/.exec(issue.place)
  return match === null ? -1 : Number(match[1]) * 1e6 + Number(match[2])
}

/**
 * The configuration cannot be used: nothing was started. `issues` lists every problem found (at
 * least one); the message has one line per issue. The command exits with code 2.
 */
export class ConfigError extends Error {
  override name = 'ConfigError'
  readonly issues: readonly ConfigIssue[]

  /** `issues` are sorted: flags and environment variables first, then in the order of the file. */
  constructor(issues: readonly ConfigIssue[]) {
    const sorted = [...issues].sort((a, b) => position(a) - position(b))
    super(sorted.map(formatIssue).join('\n'))
    this.issues = sorted
  }
}
