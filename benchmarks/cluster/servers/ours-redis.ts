/**
 * Our broker on the Redis backend as a cluster benchmark target: `Broker` with a `KeyvBackend`,
 * default options except an outgoing queue as large as the single-process benchmark's.
 *
 *   node --import tsx benchmarks/cluster/servers/ours-redis.ts --port N --redis URL --prefix P --node ID
 *
 * Listens on 127.0.0.1 and prints `listening <port>` once ready. Exits on SIGTERM / SIGINT.
 */
import { Broker } from '../../../lib/broker/broker.js'
import { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import { clusterArgs } from './cluster-args.js'

const { port, redis, prefix, node } = clusterArgs(process.argv.slice(2))
const backend = new KeyvBackend({ url: redis, prefix, nodeId: node, log: (level, message) => level === 'error' && console.error(message) })
await backend.ready()
const broker = new Broker({ backend, maxOutgoingQueue: 1_000_000 })
await broker.listen({ transport: 'tcp', host: '127.0.0.1', port })
process.stdout.write(`listening ${port}\n`)
const stop = (): void => {
  const hard = setTimeout(() => process.exit(0), 3000)
  broker.close().then(
    () => {
      clearTimeout(hard)
      process.exit(0)
    },
    () => process.exit(1)
  )
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
