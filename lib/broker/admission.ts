import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { IntervalHistogram } from 'node:perf_hooks'
import { ReasonCode } from '../packet/reason-codes.js'
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

/** A token bucket of one source address: `tokens` at time `at`. */
interface Bucket {
  tokens: number
  at: number
}

/**
 * Who may connect: connection counts (global, per listener, per source address), the connect rate
 * per source address (token buckets) and overload (heap in use, event-loop delay, checked on the
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
  private lag: IntervalHistogram | undefined = undefined
  /** Consecutive calm checks while overloaded (recovery needs `CALM_CHECKS`). */
  private calm = 0

  constructor(
    private readonly options: ResolvedOptions,
    private readonly stats: BrokerStats,
    private readonly log: Logger
  ) {
    if (options.maxEventLoopLag > 0) {
      this.lag = monitorEventLoopDelay({ resolution: 20 })
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

  /** An admitted connection closed. */
  release(connection: Admitted): void {
    this.open--
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

/** Calm checks in a row that end an overload. */
const CALM_CHECKS = 3

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 0) - 1
  if (n <= 0) map.delete(key)
  else map.set(key, n)
}
