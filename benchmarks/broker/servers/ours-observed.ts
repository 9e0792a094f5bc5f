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
import { MemoryBackend, listenHttp } from '../../../lib/index.js'
import { serveOurs } from './server-args.js'

await serveOurs(new MemoryBackend(), process.argv.slice(2), async (broker) => {
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
  return async () => {
    clearInterval(watch)
    process.stderr.write(`observer: ${scrapes} rounds of scrape + dashboard requests\n`)
    await http.close()
  }
})
