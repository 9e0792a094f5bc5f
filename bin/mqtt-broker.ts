#!/usr/bin/env node
/**
 * `mqtt-broker`: an MQTT broker (3.1, 3.1.1, 5.0) with the in-memory backend, or one process of a
 * cluster over Redis, set up by a configuration file (`--config broker.yaml`, see
 * docs/configuration.md), command-line flags (which override the file) and a few environment
 * variables (which override both).
 *
 * Prints `mqtt-broker listening on tcp://HOST:PORT` (one line per listener: tls://, ws://…/path,
 * wss://…, unix:PATH) once every listener is bound. Exit codes: 0 after a stop by SIGINT/SIGTERM
 * (or after --help, --print-config, --check-config); 2 for a bad flag or configuration (nothing
 * started); 1 for a start-up failure (port in use, Redis unreachable: what had started is closed)
 * or a stop that did not finish in time (a second signal, or the drain time plus a few seconds
 * exceeded). SIGHUP re-reads the TLS certificates and the access-control files (`auth:`). With an `http:` section it also serves health,
 * metrics, the REST API and the dashboard (`mqtt-broker HTTP on URL`), started and stopped with the
 * MQTT listeners. `mqtt-broker passwd FILE USER` manages a password file (lib/auth `runPasswd`).
 */
import cluster from 'node:cluster'
import { stringify } from 'yaml'
import { Broker } from '../lib/broker/broker.js'
import { createFormatLogger } from '../lib/broker/logger.js'
import type { Logger } from '../lib/broker/logger.js'
import type { Backend } from '../lib/backend/backend.js'
import { KeyvBackend } from '../lib/backend/keyv/index.js'
import { BackendStartError, brokerOptions, listenerConfigs, makeBackend } from '../lib/config/build.js'
import type { AccessControl } from '../lib/auth/access-control.js'
import { runPasswd } from '../lib/auth/passwd-command.js'
import { accessControl, anonymousAllowed, authenticationMethods, guardBackend } from '../lib/config/access.js'
import { hasAuthentication, isLoopback } from '../lib/config/checks.js'
import { ENVIRONMENT_HELP, USAGE, UsageError } from '../lib/config/cli.js'
import { maskSecrets } from '../lib/config/effective.js'
import { ConfigError } from '../lib/config/errors.js'
import { startHttp } from '../lib/config/http.js'
import type { StartedHttp } from '../lib/config/http.js'
import { resolveConfig } from '../lib/config/resolve.js'
import type { ResolvedConfig } from '../lib/config/resolve.js'
import type { BrokerConfig } from '../lib/config/schema.js'
import type { BoundListener } from '../lib/transport/listeners.js'
import { runSupervisor } from '../lib/workers/supervisor.js'
import { onPrimaryGone, reportListening, workerConfig, workerSlot, workersProblem } from '../lib/workers/worker.js'

/** `tcp://127.0.0.1:1883`, `ws://127.0.0.1:8080/mqtt`, `unix:/run/mqtt.sock`. */
function url(bound: BoundListener): string {
  if (bound.kind === 'unix') return `unix:${bound.socketPath ?? bound.host}`
  const host = bound.host.includes(':') ? `[${bound.host}]` : bound.host
  return `${bound.kind}://${host}:${bound.port}${bound.path ?? ''}`
}

/** Warnings about access, once the logger exists. */
function warnAboutAccess(config: BrokerConfig, logger: Logger): void {
  if (hasAuthentication(config)) logger.info('access control', { methods: authenticationMethods(config).join(',') })
  if (!anonymousAllowed(config)) return
  const open = (config.listeners ?? []).filter((l) => l.kind !== 'unix' && !isLoopback(l.host ?? '127.0.0.1')).map((l) => l.name)
  logger.warn('anonymous access allowed (allow_anonymous): any client that can reach the broker may connect', {
    listeners: open.length > 0 ? open.join(',') : undefined
  })
}

/** The effective configuration, or an exit code after a message. */
async function configure(argv: string[]): Promise<ResolvedConfig | number> {
  let resolved: ResolvedConfig
  try {
    resolved = await resolveConfig({ argv })
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`mqtt-broker: ${error.message}\n\n${USAGE}`)
      return 2
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`mqtt-broker: the configuration cannot be used, nothing was started:\n${error.message}\n`)
      return 2
    }
    throw error
  }
  const { cli, config } = resolved
  if (cli.help) {
    process.stdout.write(`${USAGE}\n${ENVIRONMENT_HELP}`)
    return 0
  }
  // The format follows the terminal unless configured: text for people, JSON lines for collectors.
  const log = (config.log ??= {})
  log.format ??= process.stderr.isTTY === true ? 'text' : 'json'
  if (cli.printConfig) {
    process.stdout.write(stringify(maskSecrets(config)))
    return 0
  }
  if (cli.checkConfig) {
    // The access-control files are parsed too (password and ACL files, JWT keys).
    try {
      await accessControl(config, undefined)?.close()
    } catch (error) {
      process.stderr.write(`mqtt-broker: the configuration cannot be used:\n${(error as Error).message}\n`)
      return 2
    }
    process.stdout.write(`mqtt-broker: the configuration is valid (${config.listeners?.length ?? 0} listeners)\n`)
    return 0
  }
  return resolved
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'passwd') return runPasswd(argv.slice(1), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr })
  const resolved = await configure(argv)
  if (typeof resolved === 'number') return resolved
  const slot = workerSlot()
  const config = slot === undefined ? resolved.config : workerConfig(resolved.config, slot)
  const logger = createFormatLogger(config.log?.format ?? 'text', config.log?.level ?? 'info')
  if ((config.workers ?? 1) > 1 && cluster.isPrimary) return supervise(config, logger)
  if (slot === undefined) warnAboutAccess(config, logger)
  let access: AccessControl | undefined
  try {
    access = accessControl(config, logger)
  } catch (error) {
    process.stderr.write(`mqtt-broker: the configuration cannot be used, nothing was started:\n${(error as Error).message}\n`)
    return 2
  }
  let backend: Backend
  try {
    backend = await makeBackend(config, logger)
  } catch (error) {
    await access?.close()
    if (!(error instanceof BackendStartError)) throw error
    process.stderr.write(`mqtt-broker: ${error.message}\n`)
    return 1
  }
  const options = brokerOptions(config)
  // Each process of a cluster publishes its own figures: under its node id.
  const sysTopicPrefix =
    config.broker?.sys_topic_prefix === undefined && backend instanceof KeyvBackend
      ? `$SYS/brokers/${backend.nodeId.replace(/[+#/]/g, '_').split('\u0000').join('_')}`
      : undefined
  backend = guardBackend(backend, access, sysTopicPrefix ?? config.broker?.sys_topic_prefix ?? '$SYS/broker', Math.round((config.broker?.sys_interval ?? 10) * 1000))
  const broker = new Broker({ ...options, backend, logger, ...(sysTopicPrefix === undefined ? {} : { sysTopicPrefix }) })
  let bound: readonly BoundListener[]
  let http: StartedHttp | undefined
  try {
    const listeners = await broker.listenAll(listenerConfigs(config))
    bound = listeners.addresses
    // The HTTP endpoints start with the MQTT listeners, all or none.
    http = await startHttp(broker, config, listeners)
  } catch (error) {
    const err = error as NodeJS.ErrnoException
    const hint =
      err.code === 'EADDRINUSE'
        ? ' (address already in use)'
        : /bad decrypt|bad password/i.test(err.message)
          ? ' (a wrong or missing passphrase? see MQTT_BROKER_TLS_PASSPHRASE, and MQTT_BROKER_HTTP_TLS_PASSPHRASE for the HTTPS key)'
          : ''
    process.stderr.write(`mqtt-broker: cannot start, nothing was started: ${err.message}${hint}\n`)
    await broker.close()
    await access?.close()
    return 1
  }
  // The signal handlers first: whoever reads a listening line may signal at once, and a SIGTERM
  // before the handlers would kill the process with the default action (no drain, no exit code).
  const stopped = waitForStop({ broker, http, access }, logger, options.drainTimeout ?? 5000)
  const lines = bound.map((listener) => `mqtt-broker listening on ${url(listener)}`)
  if (http !== undefined) lines.push(`mqtt-broker HTTP on ${http.description}`)
  if (slot === undefined) process.stdout.write(lines.map((line) => `${line}\n`).join(''))
  else {
    // A worker of --workers: the primary prints once every worker listens; it stops with it.
    reportListening(lines)
    onPrimaryGone(() => process.kill(process.pid, 'SIGTERM'))
  }
  return stopped
}

/** `--workers N` (N > 1): this process supervises N broker processes (lib/workers, docs/multicore.md). */
function supervise(config: BrokerConfig, logger: Logger): Promise<number> {
  const problem = workersProblem(config)
  if (problem !== undefined) {
    process.stderr.write(`mqtt-broker: the configuration cannot be used, nothing was started:\n${problem}\n`)
    return Promise.resolve(2)
  }
  warnAboutAccess(config, logger)
  return runSupervisor({
    count: config.workers ?? 1,
    logger,
    drainTimeout: brokerOptions(config).drainTimeout ?? 5000,
    onReady: (lines) => {
      for (const line of lines) process.stdout.write(`${line}\n`)
      process.stdout.write(`mqtt-broker workers: ${config.workers ?? 1}\n`)
    }
  })
}

/** What runs until a signal stops it. */
interface Running {
  broker: Broker
  http: StartedHttp | undefined
  access: AccessControl | undefined
}

/**
 * Milliseconds past the drain time after which a stop is forced: `broker.close()` bounds itself
 * (drain time, then up to a second for the backend), this is the guard should it not.
 */
const OVERRUN_GRACE = 3000

/**
 * Installs the signal handlers at once (before it returns), then runs until SIGINT/SIGTERM: then `broker.close()` (bounded by the drain time), exit 0. A second
 * signal, or a close that overruns the drain time by `OVERRUN_GRACE`, exits 1 at once. SIGHUP re-reads
 * the TLS certificates, the HTTP listener's included (a listener whose new files are unusable keeps
 * its old ones), and the access-control files.
 */
function waitForStop(running: Running, logger: Logger, drainTimeout: number): Promise<number> {
  const { broker, http, access } = running
  return new Promise<number>((resolve) => {
    let stopping = false
    const reload = (): void => {
      logger.info(access === undefined ? 'SIGHUP: reloading the TLS certificates' : 'SIGHUP: reloading the TLS certificates and the access-control files')
      broker.reloadCertificates().then(
        () => logger.info('TLS certificates reloaded'),
        (error: unknown) => logger.error('TLS certificates not reloaded, the previous ones stay in use', { error })
      )
      http?.reloadCertificates().catch((error: unknown) => logger.error('HTTPS certificates not reloaded, the previous ones stay in use', { error }))
      access?.reload().then(
        () => logger.info('access-control files reloaded'),
        (error: unknown) => logger.error('access-control files not all reloaded, what could not be read stays as it was', { error })
      )
    }
    const stop = (signal: string): void => {
      if (stopping) {
        logger.warn('second signal: exiting at once', { signal })
        resolve(1)
        return
      }
      stopping = true
      logger.info('stopping', { signal, drainTimeout })
      const overrun = setTimeout(() => {
        logger.error('the stop did not finish within the drain time: exiting', { drainTimeout })
        resolve(1)
      }, drainTimeout + OVERRUN_GRACE)
      overrun.unref()
      const closeHttp = http === undefined ? Promise.resolve() : http.close().catch((error: unknown) => logger.warn('error while closing HTTP', { error }))
      closeHttp
        .then(() => broker.close())
        .then(() => access?.close())
        .then(
          () => {
            clearTimeout(overrun)
            logger.info('stopped')
            resolve(0)
          },
          (error: unknown) => {
            logger.error('error while closing', { error })
            resolve(1)
          }
        )
    }
    process.on('SIGINT', () => stop('SIGINT'))
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGHUP', reload)
  })
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`mqtt-broker: ${(error as Error).stack ?? String(error)}\n`)
    process.exit(1)
  }
)
