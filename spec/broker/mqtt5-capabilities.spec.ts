import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { PublishPacket } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { connect, flow } from '../helpers/flow.js'
import { useTeardown } from '../helpers/teardown.js'

const publish = (qos: 0 | 1 | 2, retain = false): PublishPacket => ({
  type: 'publish',
  topic: 't',
  payload: Buffer.from('x'),
  qos,
  retain,
  dup: false,
  ...(qos > 0 ? { packetId: 1 } : {})
})

describe('MQTT 5 – capabilities told in CONNACK and enforced', () => {
  const teardown = useTeardown()

  it('Maximum QoS: told, subscriptions granted at most it, a PUBLISH above it is DISCONNECT 0x9B [MQTT-3.2.2-11]', async () => {
    const broker = makeBroker(teardown, { maximumQoS: 1 })
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 0, properties: { maximumQoS: 1 } })
      .send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 't', qos: 2 }] })
      .expect({ type: 'suback', packetId: 1, reasonCodes: [1] })
      .send(publish(2))
      .expect({ type: 'disconnect', reasonCode: ReasonCode.QoSNotSupported })
      .expectClose()
      .run()
  })

  it('Retain Available false: told, a retained PUBLISH is DISCONNECT 0x9A [MQTT-3.2.2-14]', async () => {
    const broker = makeBroker(teardown, { retainAvailable: false })
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 0, properties: { retainAvailable: false } })
      .send(publish(0, true))
      .expect({ type: 'disconnect', reasonCode: ReasonCode.RetainNotSupported })
      .expectClose()
      .run()
  })

  it('Wildcard Subscription Available false: told, a wildcard filter gets SUBACK 0xA2', async () => {
    const broker = makeBroker(teardown, { wildcardSubscriptionAvailable: false })
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 0, properties: { wildcardSubscriptionAvailable: false } })
      .send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'a/#', qos: 0 }, { topicFilter: 'a/b', qos: 0 }] })
      .expect({ type: 'suback', packetId: 1, reasonCodes: [ReasonCode.WildcardSubscriptionsNotSupported, 0] })
      .run()
  })

  it('Subscription Identifiers Available false: told, a SUBSCRIBE with one is DISCONNECT 0xA1', async () => {
    const broker = makeBroker(teardown, { subscriptionIdentifiersAvailable: false })
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 0, properties: { subscriptionIdentifiersAvailable: false } })
      .send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 't', qos: 0 }], properties: { subscriptionIdentifiers: [3] } })
      .expect({ type: 'disconnect', reasonCode: ReasonCode.SubscriptionIdentifiersNotSupported })
      .expectClose()
      .run()
  })

  it('3.1.1 clients are told nothing and get 0x80 for a refused filter', async () => {
    const broker = makeBroker(teardown, { wildcardSubscriptionAvailable: false, sharedSubscriptionAvailable: false, maximumQoS: 1 })
    await flow(broker)
      .send(connect({ protocolLevel: 4 }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 0 })
      .send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'a/+', qos: 0 }, { topicFilter: 'a', qos: 2 }] })
      .expect({ type: 'suback', packetId: 1, reasonCodes: [0x80, 1] })
      .run()
  })
})
