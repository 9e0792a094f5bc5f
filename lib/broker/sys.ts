import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Backend } from '../backend/backend.js'
import { isPromise } from '../util/awaitable.js'
import { MqttError } from '../packet/errors.js'
import { ReasonCode } from '../packet/reason-codes.js'
import type { Message } from '../session/session.js'
import type { Logger } from './logger.js'
import { systemClock } from './clock.js'
import type { Clock, ClockTimer } from './clock.js'

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
  /** Broker-wide values published for the default tenant only (limits and load), by topic name. */
  brokerValues?(): Record<string, string>
  /** Bytes received from / sent to each tenant's clients since the start. */
  trafficBytes?(): Map<string | undefined, { received: number; sent: number }>
}

/** The load-average windows of Mosquitto's `load/...` topics, in seconds. */
const LOAD_WINDOWS: [string, number][] = [
  ['1min', 60],
  ['5min', 300],
  ['15min', 900]
]

/** The counters whose rates are published under `load/<name>/<window>`. */
type LoadSeries = 'messages/received' | 'messages/sent' | 'publish/received' | 'publish/sent' | 'bytes/received' | 'bytes/sent'

/**
 * Exponentially weighted moving averages of one tenant's rates (per minute, as Mosquitto reports
 * them): at each publication the rate since the previous one is folded into each window.
 */
class LoadAverages {
  readonly #last = new Map<string, number>()
  readonly #averages = new Map<string, number>()
  #at = 0

  /** Folds the totals `now` into the averages; answers `load/...` topic → value. */
  update(totals: Record<string, number>, now: number): Record<string, string> {
    const out: Record<string, string> = {}
    const dt = this.#at === 0 ? 0 : (now - this.#at) / 1000
    this.#at = now
    for (const [name, total] of Object.entries(totals)) {
      const previous = this.#last.get(name)
      this.#last.set(name, total)
      const perMinute = previous === undefined || dt <= 0 ? 0 : (Math.max(0, total - previous) / dt) * 60
      for (const [window, seconds] of LOAD_WINDOWS) {
        const key = `load/${name}/${window}`
        const old = this.#averages.get(key)
        const value = old === undefined ? perMinute : perMinute + Math.exp(-dt / seconds) * (old - perMinute)
        this.#averages.set(key, value)
        out[key] = value.toFixed(2)
      }
    }
    return out
  }
}

/** Totals of a tenant's stored state, when the backend can tell (see `BackendInspection.counts`). */
type StoredCounts = { sessions?: number; subscriptions?: number; retained?: number; queued?: number }
type CountingBackend = Backend & {
  counts?: (tenant: string | undefined) => StoredCounts | Promise<StoredCounts>
  connectedCount?: (tenant: string | undefined) => number | undefined | Promise<number | undefined>
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
 * another tenant's (the messages carry their tenant, as wills do). The topics are Mosquitto's,
 * under `prefix` (default `$SYS/broker`); see docs/http-api.md for the list:
 *
 * - `version`, `uptime` ("<n> seconds");
 * - `clients/connected`, `clients/maximum` (this process), and from the backend when it can
 *   count (`BackendInspection.counts`): `clients/total`, `clients/disconnected` (stored sessions,
 *   minus the clients connected to every process when the backend can tell: `connectedCount`);
 * - `messages/received|sent` and `publish/messages/received|sent` (PUBLISH packets, this process);
 * - `bytes/received|sent` (TCP, TLS and Unix socket connections);
 * - `load/{messages,publish,bytes}/{received,sent}/{1min,5min,15min}` — moving averages per minute;
 * - `subscriptions/count`, `retained messages/count`, `store/messages/count` (offline queues),
 *   from the backend when it can count;
 * - `heap/current`, `heap/maximum` (bytes of V8 heap used by the process).
 * - for the default tenant only, the broker-wide `brokerValues` of the source: `load/overloaded`
 *   and the `limits/...` counters (see `limitValues` in stats.ts and docs/limits.md).
 *
 * A topic is published again only when its value changed. Failures are logged, never thrown.
 */
export class SysPublisher {
  readonly #source: SysSource
  readonly #prefix: string
  readonly #started: number
  readonly #clock: Clock
  readonly #version = packageVersion()
  readonly #counters = new Map<string | undefined, TenantCounters>()
  /** Last published value per tenant and topic. */
  readonly #last = new Map<string | undefined, Map<string, string>>()
  readonly #timer: ClockTimer
  readonly #loads = new Map<string | undefined, LoadAverages>()
  readonly #maxConnected = new Map<string | undefined, number>()
  #maxHeap = 0
  #running: Promise<void> | undefined = undefined

  constructor(source: SysSource, interval: number, prefix: string, clock: Clock = systemClock) {
    this.#source = source
    this.#prefix = prefix
    this.#clock = clock
    this.#started = clock.now()
    this.#timer = clock.setInterval(() => void this.publish(), interval)
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
      const now = this.#clock.now()
      const connected = this.#source.connectedPerTenant()
      const bytes = this.#source.trafficBytes?.() ?? new Map<string | undefined, { received: number; sent: number }>()
      const tenants = new Set<string | undefined>([undefined, ...this.#counters.keys(), ...connected.keys()])
      const uptime = `${Math.floor((now - this.#started) / 1000)} seconds`
      const heap = process.memoryUsage().heapUsed
      this.#maxHeap = Math.max(this.#maxHeap, heap)
      const backend = this.#source.backend as CountingBackend
      for (const tenant of tenants) {
        const counters = this.counters(tenant)
        const live = connected.get(tenant) ?? 0
        const maximum = Math.max(live, this.#maxConnected.get(tenant) ?? 0)
        this.#maxConnected.set(tenant, maximum)
        const traffic = bytes.get(tenant) ?? { received: 0, sent: 0 }
        let load = this.#loads.get(tenant)
        if (load === undefined) {
          load = new LoadAverages()
          this.#loads.set(tenant, load)
        }
        const totals: Record<LoadSeries, number> = {
          'messages/received': counters.received,
          'messages/sent': counters.sent,
          'publish/received': counters.received,
          'publish/sent': counters.sent,
          'bytes/received': traffic.received,
          'bytes/sent': traffic.sent
        }
        const values: Record<string, string> = {
          version: this.#version,
          uptime,
          'clients/connected': String(live),
          'clients/maximum': String(maximum),
          'messages/received': String(counters.received),
          'messages/sent': String(counters.sent),
          'publish/messages/received': String(counters.received),
          'publish/messages/sent': String(counters.sent),
          'bytes/received': String(traffic.received),
          'bytes/sent': String(traffic.sent),
          'heap/current': String(heap),
          'heap/maximum': String(this.#maxHeap),
          ...load.update(totals, now),
          ...(tenant === undefined ? this.#source.brokerValues?.() : undefined)
        }
        if (backend.counts !== undefined) {
          const stored = backend.counts(tenant)
          const c = isPromise(stored) ? await stored : stored
          if (c.sessions !== undefined) {
            // Stored sessions are the cluster's with a shared backend: so must the connected be.
            const everywhere = backend.connectedCount === undefined ? undefined : backend.connectedCount(tenant)
            const cluster = (isPromise(everywhere) ? await everywhere : everywhere) ?? live
            values['clients/total'] = String(Math.max(c.sessions, cluster))
            values['clients/disconnected'] = String(Math.max(0, c.sessions - cluster))
          }
          if (c.subscriptions !== undefined) values['subscriptions/count'] = String(c.subscriptions)
          if (c.retained !== undefined) values['retained messages/count'] = String(c.retained)
          if (c.queued !== undefined) values['store/messages/count'] = String(c.queued)
        }
        await this.#publishTenant(tenant, values)
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
    this.#clock.clearInterval(this.#timer)
    await this.#running
  }
}
