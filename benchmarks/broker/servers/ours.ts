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
import { Broker, MemoryBackend } from '../../../lib/index.js'
import { serverArgs } from './server-args.js'

const { port, transport } = serverArgs(process.argv.slice(2))
// Speed, not the drop policy: a flooded subscriber may lag as long as it needs (maxPublisherPause).
const broker = new Broker({ backend: new MemoryBackend(), maxOutgoingQueue: 1_000_000, maxPublisherPause: 600_000 })
if (transport === 'ws') await broker.listen({ transport: 'ws', host: '127.0.0.1', port, path: '/mqtt' })
else await broker.listen({ transport: 'tcp', host: '127.0.0.1', port })
process.stdout.write(`listening ${port}\n`)
const stop = (): void => {
  const hard = setTimeout(() => process.exit(0), 2000)
  broker.close().then(() => { clearTimeout(hard); process.exit(0) }, () => process.exit(1))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
