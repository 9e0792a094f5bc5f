import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { Client } from '../../lib/client/index.js'
import { makeBroker } from '../helpers/broker.js'
import { useTeardown } from '../helpers/teardown.js'
import { MQTTC, startCli } from './helpers.js'

describe('mqttc – -l with --session survives SIGKILL', function () {
  this.timeout(120_000)
  const teardown = useTeardown()

  for (const qos of [1, 2] as const) {
    it(`QoS ${qos}: every journaled line arrives${qos === 2 ? ' exactly once' : ''} after a restart with the session directory`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'mqttc-session-'))
      teardown.defer(() => rmSync(dir, { recursive: true, force: true }))
      const broker = makeBroker(teardown)
      const port = (await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port
      const sub = teardown.add(await Client.connect(`mqtt://127.0.0.1:${port}`), (c) => c.destroy())
      const received: number[] = []
      sub.messages$.subscribe((m) => received.push(Number(m.payload.toString())))
      await sub.subscribe({ topicFilter: 'feed', qos: 2 })

      const proxy = await holdingProxy(port)
      teardown.defer(() => proxy.close())
      const args = ['-p', String(proxy.port), '-t', 'feed', '-l', '-q', String(qos), '-c', '-i', `feeder-${qos}`, '--session', dir, '-verbose']
      const first = startCli(teardown, MQTTC, args)
      let next = 1
      // Bursts of 100 lines; each is fully journaled (reported on stderr) before the next is written,
      // so at the kill every line mqttc has read is on disk: nothing read can be lost unjournaled.
      for (let burst = 0; burst < 4; burst++) {
        // Before the last burst the proxy stops forwarding: QoS 1 both ways (the broker never sees
        // burst 4: without the session it would be lost); QoS 2 only the broker's answers (the
        // broker has burst 4 but mqttc never sees PUBREC: a careless resend would repeat it).
        if (burst === 3) proxy.hold(qos === 1 ? 'both' : 'down')
        const lines: string[] = []
        for (let i = 0; i < 100; i++) lines.push(String(next++))
        first.child.stdin!.write(lines.join('\n') + '\n')
        await first.waitForStderr(new RegExp(`journaled ${next - 1}\\n`))
      }
      first.child.kill('SIGKILL')
      expect((await first.result).code).to.equal(137)
      const atKill = received.length

      proxy.release()
      const second = startCli(teardown, MQTTC, args)
      const rest: string[] = []
      for (let i = 0; i < 100; i++) rest.push(String(next++))
      second.child.stdin!.end(rest.join('\n') + '\n')
      const result = await second.result
      expect(result.code, result.stderr).to.equal(0)
      await waitUntil(() => new Set(received).size >= 500)
      const expected = Array.from({ length: 500 }, (_, i) => i + 1)
      expect([...new Set(received)].sort((a, b) => a - b)).to.deep.equal(expected)
      if (qos === 2) expect(received.length).to.equal(500)
      // Messages were in flight at the kill (QoS 1: at least burst 4 never reached the broker).
      expect(atKill).to.be.below(qos === 1 ? 301 : 401)
    })
  }
})

/** A TCP proxy to the broker that can hold traffic (and drops what it held when the client dies). */
async function holdingProxy(target: number): Promise<{ port: number; hold(direction: 'both' | 'down'): void; release(): void; close(): Promise<void> }> {
  let held: 'none' | 'both' | 'down' = 'none'
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1')
    sockets.add(client).add(upstream)
    client.on('data', (chunk) => {
      if (held !== 'both') upstream.write(chunk)
    })
    upstream.on('data', (chunk) => {
      if (held === 'none') client.write(chunk)
    })
    const end = (): void => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    hold(direction) {
      held = direction
    },
    release() {
      held = 'none'
    },
    close: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

async function waitUntil(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
