/**
 * A herd: 1,000 Services in one process connected to our broker; the broker is stopped and started
 * again on the same port. Jittered backoff spreads the reconnects: in no 100 ms window do more than
 * 15 % of the Services schedule their first attempt after the drop (35 % counting the retries actually made), all are online again within 2 × maxDelay after the broker
 * is back, and memory stays bounded.
 */
import { expect } from 'chai'
import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { Service } from '../../lib/client/service.js'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'

const N = Number(process.env.HERD_N ?? 1000)

/**
 * Our broker behind a plain TCP server we control: `stop()` drops every connection at once (a
 * crashed broker). (Broker.close() itself closes its listeners before disconnecting clients, and a
 * Node server's close() waits for open connections: with clients connected it never returns.)
 */
async function startBroker(port: number): Promise<{ port: number; stop(): Promise<void> }> {
  const broker = new Broker({ backend: new MemoryBackend(), logger: silentLogger })
  const sockets = new Set<Socket>()
  const server: Server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    broker.handle({ stream: socket, transport: 'tcp', remoteAddress: `${socket.remoteAddress}:${socket.remotePort}` })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
  return {
    port: (server.address() as { port: number }).port,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const socket of sockets) socket.destroy()
      await closed
      await broker.close()
    }
  }
}

describe('herd – 1,000 Services reconnecting after a broker restart', function () {
  this.timeout(120_000)

  it('spreads the reconnects by jitter and gets every Service back online', async () => {
    let broker = await startBroker(0)
    const port = broker.port
    const attempts: number[] = []
    /** The first attempt of each Service after the drop (the herd proper). */
    const firsts = new Map<number, number>()
    const services: Service[] = []
    const maxDelayMs = 4000
    try {
      for (let i = 0; i < N; i++) {
        const service = new Service({ url: `mqtt://127.0.0.1:${port}`, clientId: `herd-${i}`, keepalive: 0, connectTimeoutMs: 10_000, reconnect: { minDelayMs: 1000, maxDelayMs, stableAfterMs: 500 } })
        service.state$.subscribe((s) => {
          // When the policy schedules the first attempt after the drop (one process holding 1,000
          // clients runs their timers late and in clumps while it handles 1,000 drops at once; the
          // schedule is what separate devices would follow).
          if (s.type === 'offline' && !firsts.has(i)) firsts.set(i, performance.now() + s.retryInMs)
          if (s.type === 'connecting') attempts.push(performance.now())
        })
        services.push(service)
      }
      await Promise.all(services.map((s) => s.start()))
      await Promise.all(services.map((s) => s.online()))
      await new Promise((r) => setTimeout(r, 600))
      if (global.gc !== undefined) global.gc()
      const heapBefore = process.memoryUsage().heapUsed
      attempts.length = 0
      firsts.clear()
      const down = performance.now()
      await broker.stop()
      await new Promise((r) => setTimeout(r, 1500))
      broker = await startBroker(port)
      const back = performance.now()
      await Promise.all(services.map((s) => s.online()))
      const allOnline = performance.now()
      const busiestWindow = (times: Iterable<number>): number => {
        const windows = new Map<number, number>()
        for (const t of times) windows.set(Math.floor((t - down) / 100), (windows.get(Math.floor((t - down) / 100)) ?? 0) + 1)
        return Math.max(...windows.values())
      }
      const busiest = busiestWindow(firsts.values())
      const busiestAll = busiestWindow(attempts)
      console.log(`      ${attempts.length} attempts; busiest 100 ms window: scheduled first attempts ${busiest} (${((100 * busiest) / N).toFixed(1)} %), all attempts made ${busiestAll} (${((100 * busiestAll) / N).toFixed(1)} %), all online ${Math.round(allOnline - back)} ms after the broker was back, heap ${((process.memoryUsage().heapUsed - heapBefore) / 1e6).toFixed(1)} MB more`)
      expect(busiest / N, 'first attempts after the drop').to.be.at.most(0.15)
      // Retries of clients that found the broker still down overlap the first wave: each client tries
      // about once every 0.5–1 s while it is away, so ~13 % per window is the floor of any retry policy
      // with a 1 s minimum delay.
      expect(busiestAll / N, 'all attempts').to.be.at.most(0.35)
      expect(allOnline - back).to.be.below(2 * maxDelayMs + 2000)
    } finally {
      await Promise.all(services.map((s) => s.stop()))
      await broker.stop()
    }
  })
})
