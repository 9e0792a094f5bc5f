import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { IntervalHistogram } from 'node:perf_hooks'
import type { FlappingRule, FlappingVerdict } from '../backend/backend.js'
import { ConnectReturnCode, ReasonCode } from '../packet/reason-codes.js'
import type { Logger } from './logger.js'
import type { ResolvedOptions } from './options.js'
import type { BrokerStats } from './stats.js'

/** What admission knows of a connection. */
export interface Admitted {
  readonly listener?: string | undefined
  readonly remoteAddress: string | undefined
}

/** The IP address of "host:port" or "[v6]:port" (the whole string when it has no port). */
export function addressHost(remoteAddress: string): string {
  if (remoteAddress.startsWith('[')) {
    const end = remoteAddress.indexOf(']')
    return end < 0 ? remoteAddress : remoteAddress.slice(1, end)
  }
  const colon = remoteAddress.lastIndexOf(':')
  // More than one colon without brackets: a bare IPv6 address.
  return colon < 0 || remoteAddress.indexOf(':') !== colon ? remoteAddress : remoteAddress.slice(0, colon)
}

/** What admission knows of a connection once its CONNECT named its tenant and client id. */
export interface Identified {
  readonly tenant: string | undefined
  readonly clientId: string
}

/** Flapping detection of one client id: connections since `since`, banned until `bannedUntil` (0: not). */
interface Flap {
  count: number
  since: number
  bannedUntil: number
}

/** Most client ids followed by flapping detection; beyond, the oldest is forgotten (memory bound). */
export const MAX_FLAPPING_ENTRIES = 100_000

/** A token bucket of one source address: `tokens` at time `at`. */
interface Bucket {
  tokens: number
  at: number
}

/**
 * Who may connect: connection counts (global, per listener, per source address, per tenant), the
 * connect rate per source address (token buckets), bans of flapping client ids and overload (heap in use, event-loop delay, checked on the
 * broker's timer). `admit` answers the reason code a new connection is refused with at its CONNECT
 * (undefined: admitted); every refusal is counted. Counts only track admitted connections, and the
 * maps hold only addresses and listeners with open connections or a refilling bucket.
 */
export class Admission {
  /** Broker overloaded: refuse new connections (0x89) and shed QoS 0 deliveries. */
  overloaded = false
  private open = 0
  private readonly perListener = new Map<string, number>()
  private readonly perAddress = new Map<string, number>()
  private readonly buckets = new Map<string, Bucket>()
  private readonly perTenant = new Map<string, number>()
  /** The tenant key each connection counted in `perTenant` (released with it). */
  private readonly tenantOf = new Map<object, string>()
  /** Flapping detection: tenant + client id → recent connections and ban. */
  private readonly flaps = new Map<string, Flap>()
  private lag: IntervalHistogram | undefined = undefined
  /** Consecutive calm checks while overloaded (recovery needs `CALM_CHECKS`). */
  private calm = 0

  constructor(
    private readonly options: ResolvedOptions,
    private readonly stats: BrokerStats,
    private readonly log: Logger
  ) {
    if (options.maxEventLoopLag > 0) {
      // A tenth of the threshold (10–100 ms) measures it well enough: with the default 1,000 ms the
      // sampling timer wakes an idle broker 10 times a second, not 50 (at 20 ms).
      this.lag = monitorEventLoopDelay({ resolution: Math.min(100, Math.max(10, Math.round(options.maxEventLoopLag / 10))) })
      this.lag.enable()
    }
  }

  /** The reason code to refuse `connection` with, or undefined when it is admitted (and counted). */
  admit(connection: Admitted): number | undefined {
    const o = this.options
    const stats = this.stats
    if (this.overloaded) {
      stats.overloadRefusals++
      return ReasonCode.ServerBusy
    }
    const host = connection.remoteAddress === undefined ? undefined : addressHost(connection.remoteAddress)
    if (host !== undefined && o.maxConnectRatePerAddress > 0 && !this.take(host, o.maxConnectRatePerAddress)) {
      stats.connectRateHits++
      return ReasonCode.ConnectionRateExceeded
    }
    const listener = connection.listener
    if (
      (o.maxConnections > 0 && this.open >= o.maxConnections) ||
      (listener !== undefined && o.maxConnectionsPerListener > 0 && (this.perListener.get(listener) ?? 0) >= o.maxConnectionsPerListener) ||
      (host !== undefined && o.maxConnectionsPerAddress > 0 && (this.perAddress.get(host) ?? 0) >= o.maxConnectionsPerAddress)
    ) {
      stats.connectionLimitHits++
      return ReasonCode.QuotaExceeded
    }
    this.open++
    if (listener !== undefined && o.maxConnectionsPerListener > 0) this.perListener.set(listener, (this.perListener.get(listener) ?? 0) + 1)
    if (host !== undefined && o.maxConnectionsPerAddress > 0) this.perAddress.set(host, (this.perAddress.get(host) ?? 0) + 1)
    return undefined
  }

  /**
   * At CONNECT, once the tenant and client id are known: the reason code to refuse `connection` with
   * (0x8A Banned for a client id banned for flapping, 0x97 for `maxConnectionsPerTenant`), or
   * undefined when it is admitted (and counted in its tenant). The default tenant counts as one tenant.
   */
  admitIdentified(connection: object, identity: Identified): number | undefined {
    const o = this.options
    if (o.flappingMaxCount > 0 && this.banned(identity)) return ReasonCode.Banned
    if (o.maxConnectionsPerTenant > 0 && !this.tenantOf.has(connection)) {
      const tenant = identity.tenant ?? ''
      const open = this.perTenant.get(tenant) ?? 0
      if (open >= o.maxConnectionsPerTenant) {
        this.stats.tenantConnectionLimitHits++
        return ReasonCode.QuotaExceeded
      }
      this.perTenant.set(tenant, open + 1)
      this.tenantOf.set(connection, tenant)
    }
    return undefined
  }

  /** Whether `identity` is banned for flapping now (counted as a refusal). */
  private banned(identity: Identified): boolean {
    const flap = this.flaps.get(flapKey(identity))
    if (flap === undefined || flap.bannedUntil <= Date.now()) return false
    this.stats.bannedRefusals++
    return true
  }

  /** Flapping detection's rule for a backend that counts cluster-wide; undefined when detection is off. */
  get flappingRule(): FlappingRule | undefined {
    const o = this.options
    return o.flappingMaxCount === 0 ? undefined : { maxCount: o.flappingMaxCount, window: o.flappingWindow, banTime: o.flappingBanTime }
  }

  /**
   * Flapping detection by the backend, shared by every process (`Backend.countFlapping`): its
   * verdict on one authenticated connection of `identity`. A ban is also remembered here, so that
   * the next CONNECTs of the id are refused before authentication without asking the backend.
   * True when banned (this connection is refused, 0x8A).
   */
  sharedFlapping(identity: Identified, verdict: FlappingVerdict): boolean {
    if (verdict.banMs <= 0) return false
    const now = Date.now()
    const key = flapKey(identity)
    if (!this.flaps.has(key) && this.flaps.size >= MAX_FLAPPING_ENTRIES) this.forgetOldestFlap()
    this.flaps.set(key, { count: 0, since: now, bannedUntil: now + verdict.banMs })
    this.stats.bannedRefusals++
    if (verdict.started) {
      this.stats.flappingBans++
      this.log.warn('flapping client banned (on every process of the backend)', {
        clientId: identity.clientId,
        tenant: identity.tenant,
        windowMs: this.options.flappingWindow,
        banMs: verdict.banMs
      })
    }
    return true
  }

  /**
   * Flapping detection, once `identity` authenticated (so that nobody can get another client's id
   * banned without its credentials): one more connection; true when that makes it flap — more than
   * `flappingMaxCount` connections within `flappingWindow` — and it is now banned for
   * `flappingBanTime` (this connection refused too, 0x8A). False when detection is off.
   */
  flapped(identity: Identified): boolean {
    const o = this.options
    if (o.flappingMaxCount === 0) return false
    const now = Date.now()
    const key = flapKey(identity)
    let flap = this.flaps.get(key)
    if (flap !== undefined && flap.bannedUntil > now) {
      // Banned meanwhile (by another connection of the same id while this one authenticated).
      this.stats.bannedRefusals++
      return true
    }
    if (flap === undefined || now - flap.since >= o.flappingWindow || flap.bannedUntil > 0) {
      if (flap === undefined && this.flaps.size >= MAX_FLAPPING_ENTRIES) this.forgetOldestFlap()
      flap = { count: 0, since: now, bannedUntil: 0 }
      this.flaps.set(key, flap)
    }
    if (++flap.count <= o.flappingMaxCount) return false
    flap.bannedUntil = now + o.flappingBanTime
    this.stats.flappingBans++
    this.stats.bannedRefusals++
    this.log.warn('flapping client banned', {
      clientId: identity.clientId,
      tenant: identity.tenant,
      connections: flap.count,
      windowMs: o.flappingWindow,
      banMs: o.flappingBanTime
    })
    return true
  }

  /** Map order is insertion order: forget the oldest flapping entry (memory bound). */
  private forgetOldestFlap(): void {
    for (const oldest of this.flaps.keys()) {
      this.flaps.delete(oldest)
      break
    }
  }

  /** An admitted connection closed. */
  release(connection: Admitted): void {
    this.open--
    const tenant = this.tenantOf.get(connection)
    if (tenant !== undefined) {
      this.tenantOf.delete(connection)
      decrement(this.perTenant, tenant)
    }
    const listener = connection.listener
    if (listener !== undefined && this.options.maxConnectionsPerListener > 0) decrement(this.perListener, listener)
    if (connection.remoteAddress !== undefined && this.options.maxConnectionsPerAddress > 0) {
      decrement(this.perAddress, addressHost(connection.remoteAddress))
    }
  }

  /** One token of `host`'s bucket (`rate` per second, bursts of `rate`). */
  private take(host: string, rate: number): boolean {
    const now = this.options.clock.now()
    let bucket = this.buckets.get(host)
    if (bucket === undefined) {
      bucket = { tokens: rate, at: now }
      this.buckets.set(host, bucket)
    } else {
      bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.at) * rate) / 1000)
      bucket.at = now
    }
    if (bucket.tokens < 1) return false
    bucket.tokens--
    return true
  }

  /**
   * On the broker's timer: forget full buckets, check overload, and recovery: below 80% of both
   * thresholds for `CALM_CHECKS` checks in a row (no flapping).
   */
  tick(now: number): void {
    if (this.buckets.size > 0) {
      const rate = this.options.maxConnectRatePerAddress
      for (const [host, bucket] of this.buckets) if (bucket.tokens + ((now - bucket.at) * rate) / 1000 >= rate) this.buckets.delete(host)
    }
    if (this.flaps.size > 0) {
      const window = this.options.flappingWindow
      for (const [key, flap] of this.flaps) if (flap.bannedUntil <= now && now - flap.since >= window) this.flaps.delete(key)
    }
    const { maxHeapUsed, maxEventLoopLag } = this.options
    if (maxHeapUsed === 0 && maxEventLoopLag === 0) return
    const heap = maxHeapUsed > 0 ? process.memoryUsage().heapUsed : 0
    let lag = 0
    if (this.lag !== undefined) {
      // Mean delay since the last check (ns → ms); a loop blocked for a whole interval shows as its max.
      lag = Math.max(this.lag.mean, this.lag.max / 2) / 1e6
      this.lag.reset()
    }
    const over = (maxHeapUsed > 0 && heap > maxHeapUsed) || (maxEventLoopLag > 0 && lag > maxEventLoopLag)
    const under = (maxHeapUsed === 0 || heap < maxHeapUsed * 0.8) && (maxEventLoopLag === 0 || lag < maxEventLoopLag * 0.8)
    if (!this.overloaded && over) {
      this.overloaded = true
      this.stats.overloaded = 1
      this.log.warn('overloaded: refusing new connections and shedding QoS 0', { heapUsed: heap, eventLoopLagMs: Math.round(lag) })
    } else if (this.overloaded && (under ? ++this.calm : (this.calm = 0)) >= CALM_CHECKS) {
      this.calm = 0
      this.overloaded = false
      this.stats.overloaded = 0
      this.log.warn('no longer overloaded', { heapUsed: heap, eventLoopLagMs: Math.round(lag) })
    }
  }

  /** Stop measuring. */
  close(): void {
    this.lag?.disable()
  }
}

/**
 * How long a connection refused at accept time (connection limits, connect rate, overload) may take
 * to send the start of its CONNECT, to be told why (ms): it is closed then, whatever `connectTimeout`.
 */
export const REFUSED_GRACE_MS = 1000

/**
 * The CONNACK refusing, with `reasonCode`, a connection whose CONNECT announced protocol `level`
 * (MQTT 5: the reason code; 3.1/3.1.1: return code 3 Server unavailable).
 */
export function refusedConnack(reasonCode: number, level: number): { type: 'connack'; sessionPresent: false; reasonCode: number } {
  return { type: 'connack', sessionPresent: false, reasonCode: level === 5 ? reasonCode : ConnectReturnCode.ServerUnavailable }
}

/** Calm checks in a row that end an overload. */
const CALM_CHECKS = 3

/** The key of `identity` in flapping detection: client ids are unique per tenant; U+0000 occurs in neither. */
function flapKey(identity: Identified): string {
  return identity.tenant === undefined ? identity.clientId : `${identity.tenant}\u0000${identity.clientId}`
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 0) - 1
  if (n <= 0) map.delete(key)
  else map.set(key, n)
}
