/**
 * Aedes 1.2 clustered the way its README describes: aedes-persistence-redis 11 (sessions,
 * retained, offline queues) and mqemitter-redis 7 (cross-process fan-out through Redis pub/sub).
 *
 *   node --import tsx benchmarks/cluster/servers/aedes-redis.ts --port N --redis URL --prefix P --node ID
 *
 * Listens on 127.0.0.1 and prints `listening <port>` once ready. Exits on SIGTERM / SIGINT.
 */
import net from 'node:net'
import { createRequire } from 'node:module'
import { Aedes } from 'aedes'
import { clusterArgs } from './cluster-args.js'

const require = createRequire(import.meta.url)
const persistenceRedis = require('aedes-persistence-redis') as (opts: object) => unknown
const mqemitterRedis = require('mqemitter-redis') as (opts: object) => unknown

const { port, redis, node } = clusterArgs(process.argv.slice(2))
const url = new URL(redis)
const connection = { host: url.hostname, port: Number(url.port), family: 4 }
const aedes = await Aedes.createBroker({
  id: node,
  persistence: persistenceRedis(connection),
  mq: mqemitterRedis(connection)
} as unknown as Parameters<typeof Aedes.createBroker>[0])
const server = net.createServer(aedes.handle)
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${port}\n`)
})
const stop = (): void => {
  server.close()
  aedes.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 3000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
