/**
 * The configuration file: schema, loader with `file:line:col` errors, flags and environment
 * overrides, checks, and the mapping to broker options, backend, tenancy and listeners.
 * See docs/configuration.md.
 */
export { CONFIG_SCHEMA } from './schema.js'
export type { BrokerConfig, BrokerSection, ListenerEntry, MemorySection, RedisSection, TenancySection, TlsConfig } from './schema.js'
export { ConfigError, formatIssue, formatKey } from './errors.js'
export type { ConfigIssue, ConfigPath } from './errors.js'
export { loadConfigText, parseConfig, readConfigFile, schemaIssues } from './load.js'
export type { ConfigSource, Locate } from './load.js'
export { applyOverrides, maskSecrets, maskUrl, resolvePaths, withDefaults } from './effective.js'
export type { Override } from './effective.js'
export { hasAuthentication, isLoopback, semanticIssues } from './checks.js'
export { ENVIRONMENT, USAGE, UsageError, environmentOverrides, envName, flagOverrides, parseCommandLine } from './cli.js'
export type { CommandLine } from './cli.js'
export { BackendStartError, brokerOptions, listenerConfig, listenerConfigs, makeBackend, memoryOptions, redisOptions, tenancyEnabled, tenantResolver } from './build.js'
export { resolveConfig } from './resolve.js'
export type { ResolveInput, ResolvedConfig } from './resolve.js'
