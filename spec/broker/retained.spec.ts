import { expect } from 'chai'
import { makeBroker } from '../helpers/broker.js'
import { connected, publish, subscribe } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import { pingPong } from '../helpers/events.js'

describe('broker – retained messages', () => {
  const teardown = useTeardown()

  it('delivers a retained message to a new subscriber with RETAIN 1 [MQTT-3.3.1-6] [MQTT-3.3.1-8]', async () => {
    const broker = makeBroker(teardown)
    const pub = await connected(broker, { clientId: 'pub' })
    pub.send(publish('r/1', 'kept', 1, 1, { retain: true }))
    expect(await pub.next()).to.deep.equal({ type: 'puback', packetId: 1 })
    const sub = await connected(broker, { clientId: 'sub' })
    await subscribe(sub, [{ topicFilter: 'r/#', qos: 0 }])
    expect(await sub.next()).to.deep.equal(publish('r/1', 'kept', 0, undefined, { retain: true }))
  })

  it('delivers at the lower of the message and subscription QoS', async () => {
    const broker = makeBroker(teardown)
    const pub = await connected(broker, { clientId: 'pub' })
    pub.send(publish('r', 'x', 1, 1, { retain: true }))
    await pub.next()
    const sub = await connected(broker, { clientId: 'sub' })
    await subscribe(sub, [{ topicFilter: 'r', qos: 2 }])
    const got = await sub.next()
    expect(got).to.deep.include({ type: 'publish', qos: 1, retain: true })
  })

  it('a live subscriber gets RETAIN 0 on a retained publish [MQTT-3.3.1-9]', async () => {
    const broker = makeBroker(teardown)
    const sub = await connected(broker, { clientId: 'sub' })
    await subscribe(sub, [{ topicFilter: 'r', qos: 0 }])
    const pub = await connected(broker, { clientId: 'pub' })
    pub.send(publish('r', 'x', 0, undefined, { retain: true }))
    expect(await sub.next()).to.deep.equal(publish('r', 'x'))
  })

  it('MQTT 5: Retain As Published keeps RETAIN 1 for live delivery (MQTT 5.0 3.3.1.3)', async () => {
    const broker = makeBroker(teardown)
    const sub = await connected(broker, { clientId: 'sub', protocolLevel: 5 })
    await subscribe(sub, [{ topicFilter: 'r', qos: 0, retainAsPublished: true }])
    const pub = await connected(broker, { clientId: 'pub', protocolLevel: 5 })
    pub.send(publish('r', 'x', 0, undefined, { retain: true }))
    expect(await sub.next()).to.deep.equal(publish('r', 'x', 0, undefined, { retain: true }))
  })

  it('replaces the retained message of a topic [MQTT-3.3.1-7]', async () => {
    const broker = makeBroker(teardown)
    const pub = await connected(broker, { clientId: 'pub' })
    pub.send(publish('r', 'old', 0, undefined, { retain: true }))
    pub.send(publish('r', 'new', 1, 1, { retain: true }))
    await pub.next()
    const sub = await connected(broker, { clientId: 'sub' })
    await subscribe(sub, [{ topicFilter: 'r', qos: 0 }])
    expect(await sub.next()).to.deep.equal(publish('r', 'new', 0, undefined, { retain: true }))
    await pingPong(sub)
  })

  it('an empty retained payload deletes the retained message [MQTT-3.3.1-10]', async () => {
    const broker = makeBroker(teardown)
    const pub = await connected(broker, { clientId: 'pub' })
    pub.send(publish('r', 'old', 0, undefined, { retain: true }))
    pub.send(publish('r', '', 1, 1, { retain: true }))
    await pub.next()
    const sub = await connected(broker, { clientId: 'sub' })
    await subscribe(sub, [{ topicFilter: 'r', qos: 0 }])
    await pingPong(sub)
  })

  it('MQTT 5: Retain Handling 1 sends retained only for a new subscription, 2 never', async () => {
    const broker = makeBroker(teardown)
    const pub = await connected(broker, { clientId: 'pub' })
    pub.send(publish('r', 'x', 1, 1, { retain: true }))
    await pub.next()
    const sub = await connected(broker, { clientId: 'sub', protocolLevel: 5 })
    await subscribe(sub, [{ topicFilter: 'r', qos: 0, retainHandling: 1 }])
    expect(await sub.next()).to.deep.include({ topic: 'r', retain: true })
    await subscribe(sub, [{ topicFilter: 'r', qos: 0, retainHandling: 1 }], undefined, 2)
    await pingPong(sub)
    await subscribe(sub, [{ topicFilter: 'r/#', qos: 0, retainHandling: 2 }], undefined, 3)
    await pingPong(sub)
  })
})
