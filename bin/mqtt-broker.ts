#!/usr/bin/env node
/**
 * `mqtt-broker`: an MQTT broker (3.1, 3.1.1, 5.0) with the in-memory backend, or one process of a
 * cluster over Redis (`--redis URL`).
 *
 *   mqtt-broker [--host 127.0.0.1] [--port 1883] [--ws-port N] [--max-packet-size BYTES]
 *               [--topic-alias-maximum N] [--max-session-expiry SECONDS] [--sys-interval SECONDS] [--log-level info]
 *               [--redis URL [--node-id ID] [--redis-prefix mq]] [--tenant-by username|client-id | --tenant ID]
 *               [--help]
 *
 * Prints `mqtt-broker listening on tcp://HOST:PORT` (and `ws://HOST:PORT/mqtt`) once listening.
 * A bad flag or value, or a port in use, stops it with a message on standard error and exit code 2
 * (usage) or 1 (runtime). SIGINT / SIGTERM close the broker and exit 0.
 */
import { parseArgs } from 'node:util'
import { Broker } from '../lib/broker/broker.js'
import { createLogger, LOG_LEVELS } from '../lib/broker/logger.js'
import type { LogLevel } from '../lib/broker/logger.js'
import { MAX_PACKET_SIZE } from '../lib/broker/options.js'
import { MemoryBackend } from '../lib/backend/memory-backend.js'
import { KeyvBackend } from '../lib/backend/keyv/index.js'
import { TenantBackend } from '../lib/backend/tenant-backend.js'
import type { Backend } from '../lib/backend/backend.js'
import type { Logger } from '../lib/broker/logger.js'
import { byClientIdPrefix, byFunction, byUsernameDomain, isValidTenant } from '../lib/tenancy/index.js'
import type { TenantResolver } from '../lib/tenancy/index.js'

const USAGE = `Usage: mqtt-broker [options]

An MQTT broker (MQTT 3.1, 3.1.1 and 5.0): the in-memory backend, or with --redis one process of a
cluster (run several on different ports with the same --redis URL: they form one broker).

Options:
  --host HOST              interface to listen on (default 127.0.0.1)
  --port PORT              TCP port (default 1883; 0 picks a free port)
  --ws-port PORT           also listen for MQTT over WebSocket on PORT, path /mqtt
  --max-packet-size BYTES  largest packet accepted (default ${MAX_PACKET_SIZE})
  --topic-alias-maximum N  MQTT 5 topic aliases a client may use (default 0, at most 65535)
  --max-session-expiry S   longest MQTT 5 Session Expiry Interval granted, in seconds (default none)
  --sys-interval S         seconds between two publications of the $SYS topics (default 10; 0: none);
                           under $SYS/broker/, or $SYS/brokers/<node id>/ with --redis
  --log-level LEVEL        ${LOG_LEVELS.join(', ')} (default info)
  --redis URL              keep sessions, queues and retained messages in Redis and share them with
                           the other processes on the same Redis (e.g. redis://127.0.0.1:6379)
  --node-id ID             this process's id in the cluster (default: hostname:pid:random)
  --redis-prefix PREFIX    root of every Redis key (default mq)
  --tenant-by WHAT         multi-tenancy: "username" (user@tenant) or "client-id" (tenant:client)
  --tenant ID              put every client of this process in tenant ID
  -h, --help               show this help
`

/** A usage error: bad flag or value. */
class UsageError extends Error {}

interface CliOptions {
  host: string
  port: number
  wsPort: number | undefined
  maxPacketSize: number | undefined
  topicAliasMaximum: number | undefined
  maxSessionExpiry: number | undefined
  sysInterval: number | undefined
  logLevel: LogLevel
  redis: string | undefined
  nodeId: string | undefined
  redisPrefix: string | undefined
  tenantBy: 'username' | 'client-id' | undefined
  tenant: string | undefined
}

function integer(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined
  if (!/^\d+$/.test(text)) throw new UsageError(`--${name} must be an integer, got "${text}"`)
  const value = Number(text)
  if (value < min || value > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${value}`)
  return value
}

function parse(argv: string[]): CliOptions | 'help' {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: 'string' },
        port: { type: 'string' },
        'ws-port': { type: 'string' },
        'max-packet-size': { type: 'string' },
        'topic-alias-maximum': { type: 'string' },
        'max-session-expiry': { type: 'string' },
        'sys-interval': { type: 'string' },
        'log-level': { type: 'string' },
        redis: { type: 'string' },
        'node-id': { type: 'string' },
        'redis-prefix': { type: 'string' },
        'tenant-by': { type: 'string' },
        tenant: { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      }
    })
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  const values = parsed.values
  if (values.help === true) return 'help'
  const logLevel = values['log-level'] ?? 'info'
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`)
  }
  const host = values.host ?? '127.0.0.1'
  if (host.length === 0) throw new UsageError('--host must not be empty')
  const redis = values.redis
  if (redis !== undefined && !/^rediss?:\/\/./.test(redis)) {
    throw new UsageError(`--redis must be a redis:// or rediss:// URL, got "${redis}"`)
  }
  if (redis === undefined && values['node-id'] !== undefined) throw new UsageError('--node-id needs --redis')
  if (redis === undefined && values['redis-prefix'] !== undefined) throw new UsageError('--redis-prefix needs --redis')
  const prefix = values['redis-prefix']
  if (prefix !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(prefix)) {
    throw new UsageError(`--redis-prefix must be 1 to 32 letters, digits, _ or -, got "${prefix}"`)
  }
  const tenantBy = values['tenant-by']
  if (tenantBy !== undefined && tenantBy !== 'username' && tenantBy !== 'client-id') {
    throw new UsageError(`--tenant-by must be "username" or "client-id", got "${tenantBy}"`)
  }
  const tenant = values.tenant
  if (tenant !== undefined && !isValidTenant(tenant)) {
    throw new UsageError(`--tenant must be 1 to 63 lowercase letters, digits, _ or - (starting with a letter or digit), got "${tenant}"`)
  }
  if (tenant !== undefined && tenantBy !== undefined) throw new UsageError('--tenant and --tenant-by exclude each other')
  return {
    host,
    port: integer('port', values.port, 0, 65535) ?? 1883,
    wsPort: integer('ws-port', values['ws-port'], 0, 65535),
    maxPacketSize: integer('max-packet-size', values['max-packet-size'], 2, MAX_PACKET_SIZE),
    topicAliasMaximum: integer('topic-alias-maximum', values['topic-alias-maximum'], 0, 65535),
    maxSessionExpiry: integer('max-session-expiry', values['max-session-expiry'], 0, 0xffff_ffff),
    sysInterval: integer('sys-interval', values['sys-interval'], 0, 86_400),
    logLevel: logLevel as LogLevel,
    redis,
    nodeId: values['node-id'],
    redisPrefix: prefix,
    tenantBy,
    tenant
  }
}

function tenantResolver(options: CliOptions): TenantResolver | undefined {
  if (options.tenant !== undefined) {
    const tenant = options.tenant
    return byFunction(() => tenant)
  }
  if (options.tenantBy === 'username') return byUsernameDomain()
  if (options.tenantBy === 'client-id') return byClientIdPrefix()
  return undefined
}

/**
 * The backend: MemoryBackend (one per tenant when tenants are on), or one KeyvBackend, which keys
 * its data by tenant itself. A Redis that cannot be reached stops the start with a clear message.
 */
async function makeBackend(options: CliOptions, logger: Logger): Promise<Backend> {
  const tenants = options.tenant !== undefined || options.tenantBy !== undefined
  if (options.redis === undefined) {
    return tenants ? new TenantBackend(() => new MemoryBackend()) : new MemoryBackend()
  }
  const backend = new KeyvBackend({
    url: options.redis,
    ...(options.nodeId === undefined ? {} : { nodeId: options.nodeId }),
    ...(options.redisPrefix === undefined ? {} : { prefix: options.redisPrefix }),
    log: (level, message) => logger[level](message, { backend: 'redis' })
  })
  try {
    await backend.ready()
  } catch (error) {
    await Promise.resolve(backend.close()).catch(() => undefined)
    throw new StartError(`cannot use Redis at ${options.redis}: ${(error as Error).message}`)
  }
  const warning = await backend.checkDurability().catch(() => undefined)
  if (warning !== undefined) logger.warn(warning)
  logger.info('using Redis', { url: options.redis })
  return backend
}

/** A start-up failure with a message for the operator (exit code 1). */
class StartError extends Error {}

async function main(argv: string[]): Promise<number> {
  let options: CliOptions | 'help'
  try {
    options = parse(argv)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    process.stderr.write(`mqtt-broker: ${error.message}\n\n${USAGE}`)
    return 2
  }
  if (options === 'help') {
    process.stdout.write(USAGE)
    return 0
  }
  const logger = createLogger(options.logLevel)
  let backend: Backend
  try {
    backend = await makeBackend(options, logger)
  } catch (error) {
    if (!(error instanceof StartError)) throw error
    process.stderr.write(`mqtt-broker: ${error.message}\n`)
    return 1
  }
  const resolver = tenantResolver(options)
  const broker = new Broker({
    backend,
    logger,
    ...(resolver === undefined ? {} : { tenantResolver: resolver }),
    ...(options.maxPacketSize === undefined ? {} : { maximumPacketSize: options.maxPacketSize }),
    ...(options.topicAliasMaximum === undefined ? {} : { topicAliasMaximum: options.topicAliasMaximum }),
    ...(options.maxSessionExpiry === undefined ? {} : { maxSessionExpiryInterval: options.maxSessionExpiry }),
    ...(options.sysInterval === undefined ? {} : { sysInterval: options.sysInterval }),
    // Each process of a cluster publishes its own figures: under its node id.
    ...(backend instanceof KeyvBackend ? { sysTopicPrefix: `$SYS/brokers/${backend.nodeId.replace(/[+#/]/g, '_').split('\u0000').join('_')}` } : {})
  })
  try {
    const tcp = await broker.listen({ transport: 'tcp', host: options.host, port: options.port })
    process.stdout.write(`mqtt-broker listening on tcp://${tcp.host}:${tcp.port}\n`)
    if (options.wsPort !== undefined) {
      const ws = await broker.listen({ transport: 'ws', host: options.host, port: options.wsPort, path: '/mqtt' })
      process.stdout.write(`mqtt-broker listening on ws://${ws.host}:${ws.port}${ws.path ?? ''}\n`)
    }
  } catch (error) {
    const err = error as NodeJS.ErrnoException
    const reason = err.code === 'EADDRINUSE' ? 'address already in use' : err.message
    process.stderr.write(`mqtt-broker: cannot listen: ${reason}\n`)
    await broker.close()
    return 1
  }
  return new Promise<number>((resolve) => {
    let stopping = false
    const stop = (signal: string): void => {
      if (stopping) return
      stopping = true
      logger.info('stopping', { signal })
      broker.close().then(
        () => resolve(0),
        (error: unknown) => {
          logger.error('error while closing', { error })
          resolve(1)
        }
      )
    }
    process.once('SIGINT', () => stop('SIGINT'))
    process.once('SIGTERM', () => stop('SIGTERM'))
  })
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`mqtt-broker: ${(error as Error).stack ?? String(error)}\n`)
    process.exit(1)
  }
)
