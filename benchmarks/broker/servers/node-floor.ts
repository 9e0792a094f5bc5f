/**
 * Benchmark target `node-floor`: the floor forwarder reading with `'data'` events, as ours does
 * (see floor-forwarder.ts). Not a broker: a lower bound for a Node.js broker.
 *
 *   node --import tsx benchmarks/broker/servers/node-floor.ts --port N
 */
import { serveFloor } from './floor-forwarder.js'

serveFloor('data', process.argv.slice(2))
