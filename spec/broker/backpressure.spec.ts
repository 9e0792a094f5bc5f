import { expect } from 'chai'
import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import { encode } from '../../lib/packet/index.js'
import { makeBroker } from '../helpers/broker.js'
import { Peer } from '../helpers/flow.js'
import { publish } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'

function open(port: number): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port }, () => resolve(socket))
  })
}

describe('broker – back-pressure', function () {
  this.timeout(10000)
  const teardown = useTeardown()

  it('pauses a publisher while a subscriber that does not read has a full socket, then resumes', async () => {
    const broker = makeBroker(teardown)
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const subSocket = teardown.add(await open(port), (s) => s.destroy())
    const sub = new Peer({ stream: subSocket })
    await sub.connect({ clientId: 'slow' })
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'flood', qos: 0 }] })
    await sub.next()
    subSocket.pause() // stop reading: the broker's writes pile up
    const pubSocket = teardown.add(await open(port), (s) => s.destroy())
    const pub = new Peer({ stream: pubSocket })
    await pub.connect({ clientId: 'fast' })
    const message = encode(publish('flood', 'x'.repeat(16 * 1024)), 4)
    const batch = Buffer.concat(Array.from({ length: 64 }, () => message)) // 1 MiB per write
    for (let i = 0; i < 8; i++) pubSocket.write(batch)
    const deadline = Date.now() + 5000
    while (broker.stats.backpressurePauses === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(broker.stats.backpressurePauses).to.be.at.least(1)
    // Reading again drains the subscriber and the publisher goes on: a PINGREQ is answered.
    subSocket.resume()
    pub.send({ type: 'pingreq' })
    let answer = await pub.next(5000)
    while (answer.type !== 'pingresp') answer = await pub.next(5000)
    expect(answer).to.deep.equal({ type: 'pingresp' })
  })
})
