import { Broker } from '../../../lib/index.js'
import type { Backend } from '../../../lib/index.js'

/** Arguments shared by the benchmark server scripts: `--port N [--transport tcp|ws]`. */
export function serverArgs (args: string[]): { port: number; transport: 'tcp' | 'ws' } {
  let port = NaN
  let transport: 'tcp' | 'ws' = 'tcp'
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--port') port = Number(args[++i])
    else if (args[i] === '--transport') transport = args[++i] === 'ws' ? 'ws' : 'tcp'
  }
  if (!Number.isInteger(port) || port <= 0) throw new Error('--port N is required')
  return { port, transport }
}

/**
 * Runs our broker over `backend` as a benchmark server: the same options for every variant, listens
 * on the `--port`/`--transport` of `args`, runs `extra` (what a variant adds; it answers what to
 * close at the stop), prints `listening PORT`, and exits on SIGTERM / SIGINT.
 */
export async function serveOurs (backend: Backend, args: string[],
  extra?: (broker: Broker) => Promise<() => Promise<void>>): Promise<void> {
  const { port, transport } = serverArgs(args)
  // Speed, not the drop policy: a flooded subscriber may lag as long as it needs (maxPublisherPause).
  // BENCH_MAX_EVENT_LOOP_LAG=0 (observed-ab.ts sets it for every variant): no overload shedding when
  // neighbours' load, not the broker, stretches the event loop beyond the 1 s default.
  const lag = process.env.BENCH_MAX_EVENT_LOOP_LAG
  const broker = new Broker({ backend, maxOutgoingQueue: 1_000_000, maxPublisherPause: 600_000, ...(lag === undefined ? {} : { maxEventLoopLag: Number(lag) }) })
  if (transport === 'ws') await broker.listen({ transport: 'ws', host: '127.0.0.1', port, path: '/mqtt' })
  else await broker.listen({ transport: 'tcp', host: '127.0.0.1', port })
  const closeExtra = extra === undefined ? undefined : await extra(broker)
  process.stdout.write(`listening ${port}\n`)
  const stop = (): void => {
    const hard = setTimeout(() => process.exit(0), 2000)
    Promise.all([closeExtra?.(), broker.close()]).then(() => { clearTimeout(hard); process.exit(0) }, () => process.exit(1))
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}
