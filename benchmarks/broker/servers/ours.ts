/**
 * Our broker as a benchmark target: `Broker` with a `MemoryBackend`, default options except an
 * outgoing queue as large as Mosquitto's `max_queued_messages 1000000` in the benchmark config,
 * and publishers paused for a lagging subscriber as long as it takes (no QoS 0 dropped for a
 * subscriber slowed by the load generator sharing the machine).
 *
 *   node --import tsx benchmarks/broker/servers/ours.ts --port N [--transport tcp|ws]
 *
 * Listens on 127.0.0.1 (WebSocket: path /mqtt) and prints `listening <port>` once ready. Closes
 * the broker and exits on SIGTERM / SIGINT.
 */
import { MemoryBackend } from '../../../lib/index.js'
import { serveOurs } from './server-args.js'

await serveOurs(new MemoryBackend(), process.argv.slice(2))
