import { SharedTake } from '../util/output-batch.js'

/** Moved to lib/util (the client uses it too); this path stays for the broker's imports. */
export { OutputBatch, SharedTake } from '../util/output-batch.js'

/**
 * The `SharedTake` of every broker connection in this process: subscribers that gather the same
 * packets while one input chunk is handled (fan-out) write one shared Buffer. A pure content cache
 * (same parts and ids, same bytes), so brokers in one process may share it.
 */
export const BROKER_SHARED_TAKE = new SharedTake()
