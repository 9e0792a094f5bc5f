import type { Backend } from '../backend/backend.js'
import type { Admission } from './admission.js'
import type { Client } from './client.js'
import type { EventHub } from './events.js'
import type { Logger } from './logger.js'
import type { ResolvedOptions } from './options.js'
import type { StoredWill } from '../session/session.js'
import type { BrokerStats } from './stats.js'
import type { TenantCounters } from './sys.js'

/** What a `Client` needs of its broker (the engine's internals, not public API). */
export interface BrokerCore {
  readonly backend: Backend
  readonly options: ResolvedOptions
  readonly log: Logger
  readonly events: EventHub
  readonly stats: BrokerStats
  /** Connection limits and overload state. */
  readonly admission: Admission
  /** `client` has output to flush: at the end of the current input chunk, or once this turn's promise jobs ran. */
  markDirty(client: Client): void
  /** Flush every connection with output; pause `source` if a receiver is congested. */
  flushDirty(source: Client | undefined): void
  /**
   * Like `flushDirty`, once this turn's promise jobs have run (for completions of asynchronous
   * backend work, which come one promise job each: flushing at each would write once per packet).
   */
  flushSoon(source: Client): void
  /** The connection closed: forget it. */
  remove(client: Client): void
  /** Keep track of a connection's asynchronous teardown (will, terminate) so `close()` can await it. */
  track(work: Promise<void>): void
  /**
   * Publish `will` of `clientId` at `dueAt` (ms since the epoch) unless a new connection to the
   * session cancels it first (MQTT 5 Will Delay Interval). Checked by the broker's shared timer.
   */
  delayWill(tenant: string | undefined, clientId: string, will: StoredWill, dueAt: number): void
  /** A new connection of `clientId` set up its session: cancel its delayed will, or publish it now if `clean`. */
  settleDelayedWill(tenant: string | undefined, clientId: string, clean: boolean): void
  /** The `$SYS` counters of `tenant` (a shared throwaway object when `$SYS` is off). */
  tenantCounters(tenant: string | undefined): TenantCounters
  /** Nesting depth of input processing (deliveries during it are flushed at its end). */
  depth: number
}
