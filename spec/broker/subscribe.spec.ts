import { expect } from 'chai'
import { ReasonCode, SUBACK_FAILURE } from '../../lib/packet/reason-codes.js'
import type { PublishPacket } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { connected, publish, subscribe } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import { beforePong, pingPong } from '../helpers/events.js'

describe('broker – SUBSCRIBE and UNSUBSCRIBE', () => {
  const teardown = useTeardown()

  it('3.1.1: an invalid filter gets 0x80, the others their QoS, in order [MQTT-3.9.3-2] [MQTT-3.9.3-1]', async () => {
    const broker = makeBroker(teardown)
    const peer = await connected(broker)
    await subscribe(
      peer,
      [
        { topicFilter: 'a/#', qos: 1 },
        { topicFilter: 'a/#/b', qos: 1 },
        { topicFilter: 'x+', qos: 0 }
      ],
      [1, SUBACK_FAILURE, SUBACK_FAILURE]
    )
  })

  it('MQTT 5: an invalid filter gets 0x8F Topic Filter invalid', async () => {
    const broker = makeBroker(teardown)
    const peer = await connected(broker, { protocolLevel: 5 })
    await subscribe(peer, [{ topicFilter: 'a/#/b', qos: 0 }], [ReasonCode.TopicFilterInvalid])
  })

  it('grants at most the broker Maximum QoS', async () => {
    const broker = makeBroker(teardown, { maximumQoS: 1 })
    const peer = await connected(broker)
    await subscribe(peer, [{ topicFilter: 'a', qos: 2 }], [1])
  })

  it('MQTT 5: wildcard subscriptions refused with 0xA2 when not available', async () => {
    const broker = makeBroker(teardown, { wildcardSubscriptionAvailable: false })
    const peer = await connected(broker, { protocolLevel: 5 })
    await subscribe(peer, [{ topicFilter: 'a/+', qos: 0 }, { topicFilter: 'a/b', qos: 0 }], [ReasonCode.WildcardSubscriptionsNotSupported, 0])
  })

  it('wildcards do not match $ topics [MQTT-4.7.2-1]; an explicit $ filter does', async () => {
    const broker = makeBroker(teardown)
    const all = await connected(broker, { clientId: 'all' })
    await subscribe(all, [{ topicFilter: '#', qos: 0 }, { topicFilter: '+/x', qos: 0 }])
    const sys = await connected(broker, { clientId: 'sys' })
    await subscribe(sys, [{ topicFilter: '$app/#', qos: 0 }])
    const pub = await connected(broker, { clientId: 'pub' })
    // ($SYS/ is the broker's own: see sys.spec.ts.)
    pub.send(publish('$app/x', 'a'))
    expect(await sys.next()).to.deep.equal(publish('$app/x', 'a'))
    await pingPong(all)
  })

  it('overlapping subscriptions deliver one copy at the highest QoS', async () => {
    const broker = makeBroker(teardown)
    const peer = await connected(broker, { clientId: 'o' })
    await subscribe(peer, [{ topicFilter: 'a/+', qos: 0 }, { topicFilter: 'a/#', qos: 1 }])
    const pub = await connected(broker, { clientId: 'pub' })
    pub.send(publish('a/b', 'x', 1, 1))
    const got = (await peer.next()) as PublishPacket
    expect(got).to.deep.include({ topic: 'a/b', qos: 1 })
    await pingPong(peer)
  })

  it('MQTT 5: No Local does not send a client its own messages [MQTT-3.8.3-3]', async () => {
    const broker = makeBroker(teardown)
    const peer = await connected(broker, { clientId: 'nl', protocolLevel: 5 })
    await subscribe(peer, [{ topicFilter: 'n', qos: 0, noLocal: true }])
    peer.send(publish('n', 'mine'))
    await pingPong(peer)
    const other = await connected(broker, { clientId: 'other', protocolLevel: 5 })
    other.send(publish('n', 'theirs'))
    expect(await peer.next()).to.deep.equal(publish('n', 'theirs'))
  })

  it('MQTT 5: No Local on a shared subscription is a protocol error [MQTT-3.8.3-4]', async () => {
    const broker = makeBroker(teardown)
    const peer = await connected(broker, { protocolLevel: 5 })
    peer.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: '$share/g/a', qos: 0, noLocal: true }] })
    expect(await peer.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.ProtocolError })
    await peer.waitClosed()
  })

  it('UNSUBSCRIBE stops delivery and answers UNSUBACK with the packet id [MQTT-3.10.4-4]', async () => {
    const broker = makeBroker(teardown)
    const peer = await connected(broker, { clientId: 'u' })
    await subscribe(peer, [{ topicFilter: 'u/#', qos: 0 }])
    peer.send({ type: 'unsubscribe', packetId: 5, topicFilters: ['u/#', 'never'] })
    expect(await peer.next()).to.deep.equal({ type: 'unsuback', packetId: 5 })
    const pub = await connected(broker, { clientId: 'pub' })
    pub.send(publish('u/1', 'x'))
    await pingPong(pub)
    await pingPong(peer, 'nothing after UNSUBSCRIBE')
  })

  it('MQTT 5: UNSUBACK has one reason code per filter (0x11 when none existed)', async () => {
    const broker = makeBroker(teardown)
    const peer = await connected(broker, { protocolLevel: 5 })
    await subscribe(peer, [{ topicFilter: 'a', qos: 0 }])
    peer.send({ type: 'unsubscribe', packetId: 2, topicFilters: ['a', 'b', 'c/#/d'] })
    expect(await peer.next()).to.deep.equal({
      type: 'unsuback',
      packetId: 2,
      reasonCodes: [0, ReasonCode.NoSubscriptionExisted, ReasonCode.TopicFilterInvalid]
    })
  })

  it('MQTT 5: shared subscriptions give each message to one member', async () => {
    const broker = makeBroker(teardown)
    const a = await connected(broker, { clientId: 'a', protocolLevel: 5 })
    const b = await connected(broker, { clientId: 'b', protocolLevel: 5 })
    await subscribe(a, [{ topicFilter: '$share/g/s', qos: 0 }])
    await subscribe(b, [{ topicFilter: '$share/g/s', qos: 0 }])
    const pub = await connected(broker, { clientId: 'pub' })
    for (let i = 0; i < 4; i++) pub.send(publish('s', String(i)))
    await pingPong(pub)
    const got = [...(await beforePong(a)), ...(await beforePong(b))]
    expect(got).to.have.length(4)
  })
})
