/**
 * Our broker as a benchmark target *while watched*: the same broker as servers/ours.ts, plus the
 * HTTP listener (lib/http: metrics with prom-client's runtime metrics, the API, the dashboard) on a
 * free loopback port. What watches it is chosen by the `BENCH_OBSERVER` environment variable:
 *
 * - `external`: nobody in this process. The URL is printed (`http <url>`) for a scraper in
 *   another process (benchmarks/broker/observed-ab.ts runs one), as a real Prometheus and a browser
 *   are: the broker pays for answering the requests, not for making them.
 * - `in-process` (default, so that `run.ts --ours-script` measures a watched broker): a Prometheus-style scrape of `/metrics` plus the requests an open dashboard makes
 *   (`/api/v1/overview`, `/api/v1/clients?limit=200`) every second, made by `fetch` in the broker's own
 *   process (pessimistic: the HTTP client's CPU and heap are charged to the broker too).
 * - `idle`: the listener and the metrics registry, no requests (what merely enabling them costs).
 *
 *   node --import tsx benchmarks/broker/observed-ab.ts --pairs 8 --scale 20
 *
 * Prints `listening <port>` once ready; closes everything and exits on SIGTERM / SIGINT.
 */
import { MemoryBackend, listenHttp } from '../../../lib/index.js'
import { serveOurs } from './server-args.js'

/** One observation round: a scrape plus what an open dashboard asks each second (as observed-ab.ts). */
const OBSERVER_PATHS = ['/metrics', '/api/v1/overview', '/api/v1/clients?limit=200']

const mode = process.env.BENCH_OBSERVER ?? 'in-process'
if (!['external', 'in-process', 'idle'].includes(mode)) throw new Error(`BENCH_OBSERVER must be external, in-process or idle, got ${mode}`)

await serveOurs(new MemoryBackend(), process.argv.slice(2), async (broker) => {
  const http = await listenHttp(broker, { port: 0 })
  process.stdout.write(`http ${http.url}\n`)
  let rounds = 0
  const watch =
    mode !== 'in-process'
      ? undefined
      : setInterval(() => {
          void Promise.all(
            OBSERVER_PATHS.map(async (path) => {
              const response = await fetch(http.url + path)
              await response.arrayBuffer()
              if (!response.ok) throw new Error(`${path}: ${response.status}`)
            })
          ).then(
            () => rounds++,
            (error: unknown) => process.stderr.write(`observer request failed: ${String(error)}\n`)
          )
        }, 1000)
  return async () => {
    if (watch !== undefined) {
      clearInterval(watch)
      process.stderr.write(`observer: ${rounds} rounds of scrape + dashboard requests\n`)
    }
    await http.close()
  }
})
