/** Moved to lib/util (the client uses it too); this path stays for the broker's imports. */
export { OutputBatch } from '../util/output-batch.js'
