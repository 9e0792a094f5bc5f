/**
 * Reconnect chaos: two Services (publisher and subscriber, persistent sessions) talk to our broker
 * through an in-process TCP proxy that resets connections and black-holes them (no RST: only the
 * keepalive notices) at random moments while QoS 1 and QoS 2 traffic flows. Every message arrives
 * (loss 0) and at QoS 2 exactly once (duplicates 0); the Services never get stuck.
 */
import { expect } from 'chai'
import { createServer, connect } from 'node:net'
import type { Server, Socket } from 'node:net'
import { Service } from '../../lib/client/service.js'
import type { InboundMessage } from '../../lib/client/inbound.js'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'

/** A TCP proxy with a chaos switch. */
class ChaosProxy {
  readonly pairs = new Set<{ a: Socket; b: Socket; holed: boolean }>()
  server: Server
  port = 0
  resets = 0
  holes = 0
  constructor(private readonly target: number) {
    this.server = createServer((a) => {
      const b = connect({ host: '127.0.0.1', port: this.target })
      const pair = { a, b, holed: false }
      this.pairs.add(pair)
      a.on('data', (d) => void (pair.holed || b.write(d)))
      b.on('data', (d) => void (pair.holed || a.write(d)))
      const end = (): void => {
        this.pairs.delete(pair)
        a.destroy()
        b.destroy()
      }
      a.on('close', end).on('error', end)
      b.on('close', end).on('error', end)
    })
  }
  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.port = (this.server.address() as { port: number }).port
  }
  /** Hit one random live connection: reset it, or black-hole it. */
  strike(random: number): void {
    const pairs = [...this.pairs].filter((p) => !p.holed)
    const pair = pairs[Math.floor(random * pairs.length)]
    if (pair === undefined) return
    if (random < 0.5) {
      this.resets++
      pair.a.resetAndDestroy()
      pair.b.destroy()
    } else {
      this.holes++
      pair.holed = true
    }
  }
  async close(): Promise<void> {
    for (const p of this.pairs) {
      p.a.destroy()
      p.b.destroy()
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

describe('chaos – Services through a proxy that resets and black-holes connections', function () {
  this.timeout(90_000)

  for (const qos of [1, 2] as const) {
    it(`QoS ${qos}: no loss${qos === 2 ? ', no duplicates' : ''}`, async () => {
      const broker = new Broker({ backend: new MemoryBackend(), logger: silentLogger })
      const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
      const proxy = new ChaosProxy(port)
      await proxy.listen()
      const common = { url: `mqtt://127.0.0.1:${proxy.port}`, protocolVersion: 5 as const, clean: false, keepalive: 1, pingTimeoutMs: 700, connectTimeoutMs: 2000, properties: { sessionExpiryInterval: 300 }, reconnect: { minDelayMs: 20, maxDelayMs: 200, stableAfterMs: 1000 } }
      const subscriber = new Service({ ...common, clientId: `chaos-sub-${qos}` })
      const publisher = new Service({ ...common, clientId: `chaos-pub-${qos}` })
      const N = 600
      const counts = new Uint16Array(N)
      let distinct = 0
      let chaos: NodeJS.Timeout | undefined
      try {
        await subscriber.start()
        await subscriber.online()
        const got = new Promise<void>((resolve) => {
          subscriber.observe('chaos/#', { qos }).subscribe((m: InboundMessage) => {
            const seq = Number(m.payload.toString())
            if (counts[seq]!++ === 0 && ++distinct === N) resolve()
          })
        })
        // The SUBSCRIBE must be in place (and in the broker's session) before publishing starts.
        while (subscriber.session.subscriptions.size === 0) await new Promise((r) => setTimeout(r, 10))
        await publisher.start()
        const strike = (): void => {
          proxy.strike(Math.random())
          chaos = setTimeout(strike, 50 + Math.random() * 150)
        }
        chaos = setTimeout(strike, 100)
        const sent: Promise<unknown>[] = []
        for (let i = 0; i < N; i++) {
          sent.push(publisher.publish(`chaos/${i % 7}`, String(i), { qos }))
          if (i % 5 === 4) await new Promise((r) => setTimeout(r, 10))
          // Enough chaos while the messages flow, however fast client and broker are: every 100
          // messages, wait until one more connection was hit (a fast run once ended after 3 strikes).
          if (i % 100 === 99) while (proxy.resets + proxy.holes < (i + 1) / 100) await new Promise((r) => setTimeout(r, 10))
        }
        await Promise.all(sent)
        await got
        clearTimeout(chaos)
        await new Promise((r) => setTimeout(r, 300))
        const dups = [...counts].filter((c) => c > 1).length
        expect(distinct).to.equal(N)
        if (qos === 2) expect(dups, 'QoS 2 duplicates').to.equal(0)
        expect(proxy.resets + proxy.holes).to.be.greaterThan(3)
      } finally {
        clearTimeout(chaos)
        await publisher.stop()
        await subscriber.stop()
        await proxy.close()
        await broker.close()
      }
    })
  }
})
