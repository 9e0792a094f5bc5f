import { expect } from 'chai'
import type { ConnectPacket, PublishPacket, QoS } from '../../lib/packet/types.js'
import type { Broker } from '../../lib/broker/broker.js'
import type { BrokerEvent } from '../../lib/broker/events.js'
import { makeBroker } from '../helpers/broker.js'
import { Peer } from '../helpers/flow.js'
import { useTeardown } from '../helpers/teardown.js'
import { pingPong, sentinelNext } from '../helpers/events.js'
import { VirtualClock } from '../helpers/virtual-clock.js'

async function peer(broker: Broker, fields: Partial<ConnectPacket>): Promise<Peer> {
  const p = new Peer(broker)
  expect(await p.connect({ protocolLevel: 5, ...fields })).to.include({ type: 'connack', reasonCode: 0 })
  return p
}

async function subscribe(p: Peer, topicFilter: string, qos: QoS): Promise<void> {
  p.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter, qos }] })
  expect(await p.next()).to.deep.include({ type: 'suback' })
}

function publish(topic: string, payload: string, qos: QoS, expiry?: number, extra: Partial<PublishPacket> = {}): PublishPacket {
  const packet: PublishPacket = { type: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false, ...extra }
  if (qos > 0) packet.packetId = 1
  if (expiry !== undefined) packet.properties = { messageExpiryInterval: expiry }
  return packet
}

describe('MQTT 5 – message expiry', () => {
  const teardown = useTeardown()

  it('a live delivery carries the interval unchanged (no time waited)', async () => {
    const broker = makeBroker(teardown)
    const sub = await peer(broker, { clientId: 's' })
    await subscribe(sub, 't', 0)
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('t', 'x', 0, 60))
    const got = (await sub.next()) as PublishPacket
    expect(got.properties).to.deep.equal({ messageExpiryInterval: 60 })
  })

  it('forwards the interval minus the time the message waited [MQTT-3.3.2-6]', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { clock })
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('t', 'x', 1, 60, { retain: true }))
    expect(await pub.next()).to.deep.include({ type: 'puback' })
    await clock.advance(1100)
    const sub = await peer(broker, { clientId: 's' })
    await subscribe(sub, 't', 0)
    const got = (await sub.next()) as PublishPacket
    expect(got.retain).to.equal(true)
    expect(got.properties?.messageExpiryInterval).to.equal(59)
  })

  it('an expired retained message is not delivered [MQTT-3.3.2-5]', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { clock })
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('t', 'x', 1, 1, { retain: true }))
    await pub.next()
    await clock.advance(1100)
    const sub = await peer(broker, { clientId: 's' })
    await subscribe(sub, 't', 0)
    await sentinelNext(broker, sub, 't')
  })

  it('an expired message is not delivered from an offline queue [MQTT-3.3.2-5]', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { clock })
    const sub = await peer(broker, { clientId: 's', clean: false, properties: { sessionExpiryInterval: 60 } })
    await subscribe(sub, 't', 1)
    sub.send({ type: 'disconnect' })
    await sub.waitClosed()
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('t', 'short', 1, 1))
    await pub.next()
    pub.send(publish('t', 'long', 1, 60))
    await pub.next()
    await clock.advance(1100)
    const back = await peer(broker, { clientId: 's', clean: false, properties: { sessionExpiryInterval: 60 } })
    const got = (await back.next()) as PublishPacket
    expect(got.payload.toString()).to.equal('long')
    expect(got.properties?.messageExpiryInterval).to.equal(59)
    await pingPong(back, 'nothing after the message that did not expire')
  })

  it('a message that expires while waiting beyond the inflight window is never sent', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { clock })
    const events: BrokerEvent[] = []
    const subscription = broker.events$.subscribe((e) => events.push(e))
    teardown.defer(() => subscription.unsubscribe())
    const sub = await peer(broker, { clientId: 's', properties: { receiveMaximum: 1 } })
    await subscribe(sub, 't', 1)
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('t', 'first', 1))
    await pub.next()
    pub.send(publish('t', 'waits', 1, 1))
    await pub.next()
    const first = (await sub.next()) as PublishPacket
    expect(first.payload.toString()).to.equal('first')
    await clock.advance(1100)
    sub.send({ type: 'puback', packetId: first.packetId! })
    await pingPong(sub, 'the expired message is not sent when the window opens')
    expect(events.some((e) => e.type === 'dropped' && e.reason === 'expired')).to.equal(true)
  })

  it('a will with a Message Expiry Interval keeps it', async () => {
    const broker = makeBroker(teardown)
    const sub = await peer(broker, { clientId: 's' })
    await subscribe(sub, 'w', 0)
    const p = await peer(broker, {
      clientId: 'p',
      will: { topic: 'w', payload: Buffer.from('bye'), qos: 0, retain: false, properties: { messageExpiryInterval: 30 } }
    })
    p.destroy()
    const got = (await sub.next()) as PublishPacket
    expect(got.properties).to.deep.equal({ messageExpiryInterval: 30 })
  })
})
