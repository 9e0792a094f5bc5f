/**
 * The whole configuration pipeline of `mqtt-broker`, before anything starts: command line →
 * configuration file → flags → environment → schema → defaults → file paths → checks. Answers the
 * effective configuration or throws `UsageError` / `ConfigError` naming every problem's place.
 */
import { dirname, resolve } from 'node:path'
import { environmentOverrides, flagOverrides, parseCommandLine } from './cli.js'
import type { CommandLine } from './cli.js'
import { semanticIssues } from './checks.js'
import { applyOverrides, resolvePaths, withDefaults } from './effective.js'
import { ConfigError } from './errors.js'
import { readConfigFile, schemaIssues } from './load.js'
import type { Locate } from './load.js'
import type { BrokerConfig } from './schema.js'

/** The effective configuration and how the command line asked for it. */
export interface ResolvedConfig {
  cli: CommandLine
  /** Every default filled in, relative paths made absolute (against the file's folder). */
  config: BrokerConfig
  /** Where a key of `config` came from (file position, flag or environment variable). */
  locate: Locate
}

/** Where the pipeline reads from (defaults: the process's). */
export interface ResolveInput {
  argv: readonly string[]
  env?: NodeJS.ProcessEnv
  cwd?: string
}

/**
 * Resolves the configuration. Throws `UsageError` (bad flag) or `ConfigError` (every problem of
 * the file, flags and environment). `--help` answers with `cli.help` set and an empty config.
 */
export async function resolveConfig(input: ResolveInput): Promise<ResolvedConfig> {
  const cli = parseCommandLine(input.argv)
  if (cli.help) return { cli, config: {}, locate: () => '' }
  const cwd = input.cwd ?? process.cwd()
  let data: unknown = {}
  let fileLocate: Locate = () => '(default)'
  let fileKeyLocate: Locate = fileLocate
  let base = cwd
  if (cli.configFile !== undefined) {
    const file = resolve(cwd, cli.configFile)
    const source = await readConfigFile(file)
    data = source.data
    // Messages name the file as it was given on the command line.
    const shown = cli.configFile
    fileLocate = (path) => source.locate(path).replace(file, shown)
    fileKeyLocate = (path) => source.locateKey(path).replace(file, shown)
    base = dirname(file)
  }
  const flags = flagOverrides(cli, data)
  const withFlags = applyOverrides(data, flags, fileLocate)
  const env = environmentOverrides(input.env ?? process.env, withFlags.data)
  const merged = applyOverrides(data, [...flags, ...env], fileLocate)
  const keyLocate: Locate = (path) => {
    const place = merged.locate(path)
    return place === fileLocate(path) ? fileKeyLocate(path) : place
  }
  const issues = schemaIssues(merged.data, merged.locate, keyLocate)
  if (issues.length > 0) throw new ConfigError(issues)
  const config = resolvePaths(withDefaults(merged.data as BrokerConfig), base)
  const more = await semanticIssues(config, merged.locate)
  if (more.length > 0) throw new ConfigError(more)
  return { cli, config, locate: merged.locate }
}
