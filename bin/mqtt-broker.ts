#!/usr/bin/env node
/**
 * `mqtt-broker`: an MQTT broker (3.1, 3.1.1, 5.0) with the in-memory backend.
 *
 *   mqtt-broker [--host 127.0.0.1] [--port 1883] [--ws-port N] [--max-packet-size BYTES]
 *               [--topic-alias-maximum N] [--max-session-expiry SECONDS] [--log-level info] [--help]
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

const USAGE = `Usage: mqtt-broker [options]

An MQTT broker (MQTT 3.1, 3.1.1 and 5.0) with the in-memory backend.

Options:
  --host HOST              interface to listen on (default 127.0.0.1)
  --port PORT              TCP port (default 1883; 0 picks a free port)
  --ws-port PORT           also listen for MQTT over WebSocket on PORT, path /mqtt
  --max-packet-size BYTES  largest packet accepted (default ${MAX_PACKET_SIZE})
  --topic-alias-maximum N  MQTT 5 topic aliases a client may use (default 0, at most 65535)
  --max-session-expiry S   longest MQTT 5 Session Expiry Interval granted, in seconds (default none)
  --log-level LEVEL        ${LOG_LEVELS.join(', ')} (default info)
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
  logLevel: LogLevel
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
        'log-level': { type: 'string' },
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
  return {
    host,
    port: integer('port', values.port, 0, 65535) ?? 1883,
    wsPort: integer('ws-port', values['ws-port'], 0, 65535),
    maxPacketSize: integer('max-packet-size', values['max-packet-size'], 2, MAX_PACKET_SIZE),
    topicAliasMaximum: integer('topic-alias-maximum', values['topic-alias-maximum'], 0, 65535),
    maxSessionExpiry: integer('max-session-expiry', values['max-session-expiry'], 0, 0xffff_ffff),
    logLevel: logLevel as LogLevel
  }
}

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
  const broker = new Broker({
    backend: new MemoryBackend(),
    logger,
    ...(options.maxPacketSize === undefined ? {} : { maximumPacketSize: options.maxPacketSize }),
    ...(options.topicAliasMaximum === undefined ? {} : { topicAliasMaximum: options.topicAliasMaximum }),
    ...(options.maxSessionExpiry === undefined ? {} : { maxSessionExpiryInterval: options.maxSessionExpiry })
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
