import type { Backend } from '../backend/backend.js'
import type { Client } from './client.js'
import type { EventHub } from './events.js'
import type { Logger } from './logger.js'
import type { ResolvedOptions } from './options.js'
import type { BrokerStats } from './stats.js'

/** What a `Client` needs of its broker (the engine's internals, not public API). */
export interface BrokerCore {
  readonly backend: Backend
  readonly options: ResolvedOptions
  readonly log: Logger
  readonly events: EventHub
  readonly stats: BrokerStats
  /** `client` has output to flush: at the end of the current input chunk, or in a microtask. */
  markDirty(client: Client): void
  /** Flush every connection with output; pause `source` if a receiver is congested. */
  flushDirty(source: Client | undefined): void
  /** The connection closed: forget it. */
  remove(client: Client): void
  /** Keep track of a connection's asynchronous teardown (will, terminate) so `close()` can await it. */
  track(work: Promise<void>): void
  /** Nesting depth of input processing (deliveries during it are flushed at its end). */
  depth: number
}
