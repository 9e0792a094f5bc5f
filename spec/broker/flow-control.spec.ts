import { expect } from 'chai'
import type { PublishPacket } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { connected, publish, subscribe } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import { beforePong } from '../helpers/events.js'

describe('broker – outbound flow control', () => {
  const teardown = useTeardown()

  it('sends at most inflightWindow QoS 1 messages before PUBACKs, the rest in order after', async () => {
    const broker = makeBroker(teardown, { inflightWindow: 3 })
    const sub = await connected(broker, { clientId: 's' })
    await subscribe(sub, [{ topicFilter: 'w', qos: 1 }])
    const pub = await connected(broker, { clientId: 'p' })
    for (let i = 1; i <= 7; i++) pub.send(publish('w', String(i), 1, i))
    await beforePong(pub) // every PUBLISH routed
    let window = (await beforePong(sub)) as PublishPacket[]
    expect(window.map((p) => p.payload.toString())).to.deep.equal(['1', '2', '3'])
    const received: string[] = window.map((p) => p.payload.toString())
    while (received.length < 7) {
      for (const p of window) sub.send({ type: 'puback', packetId: p.packetId! })
      window = (await beforePong(sub)) as PublishPacket[]
      expect(window.length).to.be.at.most(3)
      received.push(...window.map((p) => p.payload.toString()))
    }
    expect(received).to.deep.equal(['1', '2', '3', '4', '5', '6', '7'])
  })

  it('MQTT 5: the window is the smaller of inflightWindow and the client Receive Maximum', async () => {
    const broker = makeBroker(teardown)
    const sub = await connected(broker, { clientId: 's', protocolLevel: 5, properties: { receiveMaximum: 2 } })
    await subscribe(sub, [{ topicFilter: 'w', qos: 1 }])
    const pub = await connected(broker, { clientId: 'p' })
    for (let i = 1; i <= 4; i++) pub.send(publish('w', String(i), 1, i))
    await beforePong(pub)
    const window = await beforePong(sub)
    expect(window).to.have.length(2)
  })

  it('QoS 0 messages behind a full window keep their order', async () => {
    const broker = makeBroker(teardown, { inflightWindow: 1 })
    const sub = await connected(broker, { clientId: 's' })
    await subscribe(sub, [{ topicFilter: 'w', qos: 1 }])
    const pub = await connected(broker, { clientId: 'p' })
    pub.send(publish('w', 'a', 1, 1))
    pub.send(publish('w', 'b', 1, 2))
    pub.send(publish('w', 'c', 0))
    await beforePong(pub)
    const first = (await beforePong(sub)) as PublishPacket[]
    expect(first.map((p) => p.payload.toString())).to.deep.equal(['a'])
    sub.send({ type: 'puback', packetId: first[0]!.packetId! })
    const rest = (await beforePong(sub)) as PublishPacket[]
    expect(rest.map((p) => p.payload.toString())).to.deep.equal(['b', 'c'])
  })

  it('a full outgoing queue evicts QoS 0 first, then disconnects the slow consumer (counted)', async () => {
    const broker = makeBroker(teardown, { inflightWindow: 1, maxOutgoingQueue: 2 })
    const sub = await connected(broker, { clientId: 's' })
    await subscribe(sub, [{ topicFilter: 'w', qos: 1 }])
    const pub = await connected(broker, { clientId: 'p' })
    pub.send(publish('w', 'inflight', 1, 1))
    pub.send(publish('w', 'q1', 1, 2)) // queued
    pub.send(publish('w', 'q0', 0)) // queued behind it, to keep the order
    pub.send(publish('w', 'q1b', 1, 3)) // queue full: evicts q0
    await beforePong(pub)
    expect(broker.stats.queueEvictions).to.equal(1)
    expect(sub.isConnectionClosed).to.equal(false)
    pub.send(publish('w', 'overflow', 1, 4)) // no QoS 0 left: slow consumer
    await sub.waitClosed()
    expect(broker.stats.slowConsumers).to.equal(1)
  })

  it('a delivery larger than the MQTT 5 client Maximum Packet Size is dropped (MQTT 5.0 3.1.2.11.4)', async () => {
    const broker = makeBroker(teardown)
    const sub = await connected(broker, { clientId: 's', protocolLevel: 5, properties: { maximumPacketSize: 50 } })
    await subscribe(sub, [{ topicFilter: 'm', qos: 0 }])
    const pub = await connected(broker, { clientId: 'p' })
    pub.send(publish('m', 'x'.repeat(100)))
    pub.send(publish('m', 'small'))
    expect(await sub.next()).to.deep.equal(publish('m', 'small'))
    expect(broker.stats.deliveriesDropped).to.equal(1)
  })
})
