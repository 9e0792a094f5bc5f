import type { Backend } from '../backend/backend.js'
import type { Admission } from './admission.js'
import type { EventHub } from './events.js'
import type { Logger } from './logger.js'
import type { ResolvedOptions } from './options.js'
import type { OutboundLimits } from './outbound.js'
import type { FlushTarget, OutputScheduler } from './output-scheduler.js'
import type { StoredWill } from '../session/session.js'
import type { BrokerStats } from './stats.js'
import type { TenantCounters } from './sys.js'

/** A connection as the broker's registry sees it when the connection closes. */
export interface CoreConnection extends FlushTarget {
  /** Counted by the broker's admission (connection limits). */
  readonly admitted: boolean
  readonly tenant: string | undefined
}

/** What a connection needs of its broker (the engine's internals, not public API). */
export interface BrokerCore {
  readonly backend: Backend
  readonly options: ResolvedOptions
  readonly log: Logger
  readonly events: EventHub
  readonly stats: BrokerStats
  /** Connection limits and overload state. */
  readonly admission: Admission
  /** The limits of a connection's `Outbound` whose window is `inflightWindow` (shared by all such). */
  readonly outboundLimits: OutboundLimits
  /** When gathered output is written (per input chunk, or once per turn), and back-pressure. */
  readonly output: OutputScheduler
  /** The connection closed: forget it. */
  remove(client: CoreConnection): void
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
}
