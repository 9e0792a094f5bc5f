/**
 * Our broker as a benchmark target *while watched*: the same broker as servers/ours.ts, plus the
 * HTTP listener (lib/http) on a free loopback port, a Prometheus-style scrape of `/metrics` every
 * second and the requests an open dashboard makes every second (`/api/v1/overview` and
 * `/api/v1/clients`). The HTTP client runs in the broker's own process, so its cost is charged to
 * the broker too (a pessimistic setup: a real Prometheus and browser run elsewhere).
 *
 *   node --import tsx benchmarks/broker/run.ts --targets ours --ours-script benchmarks/broker/servers/ours-observed.ts --scenarios fanin-q0
 *
 * Prints `listening <port>` once ready; closes everything and exits on SIGTERM / SIGINT.
 */
import { Broker, MemoryBackend, listenHttp } from '../../../lib/index.js'
import { serverArgs } from './server-args.js'

const { port, transport } = serverArgs(process.argv.slice(2))
const broker = new Broker({ backend: new MemoryBackend(), maxOutgoingQueue: 1_000_000 })
if (transport === 'ws') await broker.listen({ transport: 'ws', host: '127.0.0.1', port, path: '/mqtt' })
else await broker.listen({ transport: 'tcp', host: '127.0.0.1', port })
const http = await listenHttp(broker, { port: 0 })
let scrapes = 0
const watch = setInterval(() => {
  void Promise.all(
    ['/metrics', '/api/v1/overview', '/api/v1/clients?limit=200'].map(async (path) => {
      const response = await fetch(http.url + path)
      await response.arrayBuffer()
      if (!response.ok) throw new Error(`${path}: ${response.status}`)
    })
  ).then(
    () => scrapes++,
    (error: unknown) => process.stderr.write(`observer request failed: ${String(error)}\n`)
  )
}, 1000)
process.stdout.write(`listening ${port}\n`)
const stop = (): void => {
  clearInterval(watch)
  process.stderr.write(`observer: ${scrapes} rounds of scrape + dashboard requests\n`)
  const hard = setTimeout(() => process.exit(0), 2000)
  Promise.all([http.close(), broker.close()]).then(() => { clearTimeout(hard); process.exit(0) }, () => process.exit(1))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
