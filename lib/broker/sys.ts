import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Backend } from '../backend/backend.js'
import { isPromise } from '../util/awaitable.js'
import { MqttError } from '../packet/errors.js'
import { ReasonCode } from '../packet/reason-codes.js'
import type { Message } from '../session/session.js'
import type { Logger } from './logger.js'

/**
 * Per-tenant traffic counters of one broker process, kept for the `$SYS` topics. Each connection
 * holds its tenant's object from CONNECT on, so counting is a field increment on the hot path.
 */
export interface TenantCounters {
  /** PUBLISH packets received from the tenant's clients. */
  received: number
  /** PUBLISH packets sent to the tenant's clients. */
  sent: number
}

/** What the `$SYS` publisher reads from its broker. */
export interface SysSource {
  readonly backend: Backend
  readonly log: Logger
  /** Live clients (CONNECT accepted, not closed) per tenant (`undefined`: the default tenant). */
  connectedPerTenant(): Map<string | undefined, number>
}

/** The package's name and version, from the nearest package.json above this module. */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const file = join(dir, 'package.json')
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string }
        if (pkg.name !== undefined && pkg.version !== undefined) return `${pkg.name} ${pkg.version}`
      } catch {
        // not ours: keep looking
      }
    }
    dir = dirname(dir)
  }
  return 'mqtt-broker-framework'
}

/**
 * Publishes the broker's `$SYS` topics every `interval` ms, as retained QoS 0 messages, **per
 * tenant**: each tenant sees its own connected clients and traffic under the same topics, never
 * another tenant's (the messages carry their tenant, as wills do). Topics, under `prefix`
 * (default `$SYS/broker`):
 *
 * - `version` — package name and version;
 * - `uptime` — "<n> seconds" since the broker started;
 * - `clients/connected` — the tenant's live clients on this process;
 * - `messages/received`, `messages/sent` — PUBLISH packets from / to the tenant's clients since
 *   the start (this process).
 *
 * A topic is published again only when its value changed. Failures are logged, never thrown.
 */
export class SysPublisher {
  readonly #source: SysSource
  readonly #prefix: string
  readonly #started = Date.now()
  readonly #version = packageVersion()
  readonly #counters = new Map<string | undefined, TenantCounters>()
  /** Last published value per tenant and topic. */
  readonly #last = new Map<string | undefined, Map<string, string>>()
  readonly #timer: ReturnType<typeof setInterval>
  #running: Promise<void> | undefined = undefined

  constructor(source: SysSource, interval: number, prefix: string) {
    this.#source = source
    this.#prefix = prefix
    this.#timer = setInterval(() => void this.publish(), interval)
    this.#timer.unref()
  }

  /** The counters of every tenant seen since the start. */
  get allCounters(): ReadonlyMap<string | undefined, TenantCounters> {
    return this.#counters
  }

  /** The counters of `tenant` (made on first use). */
  counters(tenant: string | undefined): TenantCounters {
    let counters = this.#counters.get(tenant)
    if (counters === undefined) {
      counters = { received: 0, sent: 0 }
      this.#counters.set(tenant, counters)
    }
    return counters
  }

  /** Publishes the topics whose value changed, for every tenant seen since the start. */
  async publish(): Promise<void> {
    this.#running ??= this.#publishAll().finally(() => {
      this.#running = undefined
    })
    await this.#running
  }

  async #publishAll(): Promise<void> {
    try {
      const connected = this.#source.connectedPerTenant()
      const tenants = new Set<string | undefined>([undefined, ...this.#counters.keys(), ...connected.keys()])
      const uptime = `${Math.floor((Date.now() - this.#started) / 1000)} seconds`
      for (const tenant of tenants) {
        const counters = this.counters(tenant)
        await this.#publishTenant(tenant, {
          version: this.#version,
          uptime,
          'clients/connected': String(connected.get(tenant) ?? 0),
          'messages/received': String(counters.received),
          'messages/sent': String(counters.sent)
        })
      }
    } catch (error) {
      // A backend that is away (0x88) reports that itself, once per outage: no line per interval.
      if (error instanceof MqttError && error.reasonCode === ReasonCode.ServerUnavailable) this.#source.log.debug('$SYS publish skipped', { error })
      else this.#source.log.warn('$SYS publish failed', { error })
    }
  }

  async #publishTenant(tenant: string | undefined, values: Record<string, string>): Promise<void> {
    let last = this.#last.get(tenant)
    if (last === undefined) {
      last = new Map()
      this.#last.set(tenant, last)
    }
    const backend = this.#source.backend
    for (const [name, value] of Object.entries(values)) {
      if (last.get(name) === value) continue
      const message: Message = { topic: `${this.#prefix}/${name}`, payload: Buffer.from(value), qos: 0, retain: true }
      if (tenant !== undefined) message.tenant = tenant
      const stored = backend.storeRetained(undefined, message)
      if (isPromise(stored)) await stored
      const routed = backend.publish(undefined, message)
      if (isPromise(routed)) await routed
      last.set(name, value)
    }
  }

  /** Stops the timer; resolves once a publication in progress is done. */
  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await this.#running
  }
}
