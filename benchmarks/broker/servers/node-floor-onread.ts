/**
 * Benchmark target `node-floor-onread`: the floor forwarder reading with `onread` into one shared
 * buffer, through the accepted socket's undocumented `_handle` (see floor-forwarder.ts). Not a
 * broker: a lower bound for a Node.js broker.
 *
 *   node --import tsx benchmarks/broker/servers/node-floor-onread.ts --port N
 */
import { serveFloor } from './floor-forwarder.js'

serveFloor('onread', process.argv.slice(2))
