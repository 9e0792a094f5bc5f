import { expect } from 'chai'
import { ConnectReturnCode, ReasonCode } from '../../lib/packet/reason-codes.js'
import type { ConnackPacket } from '../../lib/packet/types.js'
import { connack, connect, flow, Peer } from '../helpers/flow.js'
import { makeBroker } from '../helpers/broker.js'
import { useTeardown } from '../helpers/teardown.js'
import { VirtualClock, until } from '../helpers/virtual-clock.js'

describe('broker – CONNECT', () => {
  const teardown = useTeardown()

  it('accepts a 3.1.1 CONNECT with CONNACK 0', async () => {
    const broker = makeBroker(teardown)
    await flow(broker).send(connect()).expect(connack()).run()
  })

  it('accepts an MQTT 3.1 (MQIsdp) CONNECT', async () => {
    const broker = makeBroker(teardown)
    await flow(broker).send(connect({ protocolLevel: 3 })).expect(connack()).run()
  })

  it('accepts an MQTT 5 CONNECT with CONNACK 0x00', async () => {
    const broker = makeBroker(teardown)
    await flow(broker).send(connect({ protocolLevel: 5 })).expect(connack()).run()
  })

  it('refuses an unsupported protocol level with return code 1 and closes [MQTT-3.1.2-2]', async () => {
    const broker = makeBroker(teardown)
    // CONNECT "MQTT" level 6.
    const bytes = Buffer.from([0x10, 0x0d, 0, 4, 0x4d, 0x51, 0x54, 0x54, 6, 0x02, 0, 0, 0, 1, 0x61])
    await flow(broker).send(bytes).expect(connack(false, ConnectReturnCode.UnacceptableProtocolVersion)).expectClose().run()
  })

  it('closes a connection whose first packet is not CONNECT [MQTT-3.1.0-1]', async () => {
    const broker = makeBroker(teardown)
    await flow(broker).send({ type: 'pingreq' }).expectClose().run()
  })

  it('closes a connection that sends a second CONNECT [MQTT-3.1.0-2]', async () => {
    const broker = makeBroker(teardown)
    await flow(broker).send(connect()).expect(connack()).send(connect()).expectClose().run()
  })

  it('MQTT 5: a second CONNECT gets DISCONNECT 0x82 Protocol Error [MQTT-3.1.0-2]', async () => {
    const broker = makeBroker(teardown)
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect(connack())
      .send(connect({ protocolLevel: 5 }))
      .expect({ type: 'disconnect', reasonCode: ReasonCode.ProtocolError })
      .expectClose()
      .run()
  })

  it('3.1.1: an empty client id with clean session is accepted [MQTT-3.1.3-7]', async () => {
    const broker = makeBroker(teardown)
    await flow(broker).send(connect({ clientId: '' })).expect(connack()).run()
  })

  it('3.1.1: an empty client id without clean session gets return code 2 [MQTT-3.1.3-8]', async () => {
    const broker = makeBroker(teardown)
    await flow(broker)
      .send(connect({ clientId: '', clean: false }))
      .expect(connack(false, ConnectReturnCode.IdentifierRejected))
      .expectClose()
      .run()
  })

  it('MQTT 5: an empty client id gets an Assigned Client Identifier', async () => {
    const broker = makeBroker(teardown)
    await flow(broker)
      .send(connect({ clientId: '', protocolLevel: 5 }))
      .expect((packet) => {
        const ack = packet as ConnackPacket
        expect(ack.reasonCode).to.equal(0)
        expect(ack.properties?.assignedClientIdentifier).to.be.a('string').and.not.equal('')
      })
      .run()
  })

  it('denies through the backend: 3.1.1 gets return code 4 for bad user name or password', async () => {
    const broker = makeBroker(teardown, {
      memory: { authenticate: () => ({ result: 'deny', reasonCode: ReasonCode.BadUserNameOrPassword }) }
    })
    await flow(broker).send(connect()).expect(connack(false, ConnectReturnCode.BadUserNameOrPassword)).expectClose().run()
  })

  it('denies through the backend: 3.1.1 gets return code 5 for not authorized', async () => {
    const broker = makeBroker(teardown, {
      memory: { authenticate: () => Promise.resolve({ result: 'deny', reasonCode: ReasonCode.NotAuthorized }) }
    })
    await flow(broker).send(connect()).expect(connack(false, ConnectReturnCode.NotAuthorized)).expectClose().run()
  })

  it('denies through the backend: MQTT 5 gets the reason code itself', async () => {
    const broker = makeBroker(teardown, {
      memory: { authenticate: () => ({ result: 'deny', reasonCode: ReasonCode.Banned }) }
    })
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect(connack(false, ReasonCode.Banned))
      .expectClose()
      .run()
  })

  it('passes user name and password to the backend', async () => {
    let seen: { username: string | undefined; password: string | undefined } | undefined
    const broker = makeBroker(teardown, {
      memory: {
        authenticate: (_client, credentials) => {
          seen = { username: credentials.username, password: credentials.password?.toString() }
          return { result: 'allow' }
        }
      }
    })
    await flow(broker).send(connect({ username: 'u', password: Buffer.from('p') })).expect(connack()).run()
    expect(seen).to.deep.equal({ username: 'u', password: 'p' })
  })

  it('session present is 0 for a clean session [MQTT-3.2.2-1] and 1 for a resumed one', async () => {
    const broker = makeBroker(teardown)
    const first = new Peer(broker)
    expect(await first.connect({ clientId: 'p', clean: false })).to.deep.equal(connack(false))
    first.send({ type: 'disconnect' })
    await first.waitClosed()
    const second = new Peer(broker)
    expect(await second.connect({ clientId: 'p', clean: false })).to.deep.equal(connack(true))
    second.send({ type: 'disconnect' })
    await second.waitClosed()
    const third = new Peer(broker)
    expect(await third.connect({ clientId: 'p', clean: true })).to.deep.equal(connack(false))
  })

  it('MQTT 5 CONNACK carries the broker limits that differ from the defaults', async () => {
    const broker = makeBroker(teardown, {
      receiveMaximum: 10,
      maximumQoS: 1,
      retainAvailable: false,
      maximumPacketSize: 1000,
      wildcardSubscriptionAvailable: false,
      subscriptionIdentifiersAvailable: false,
      sharedSubscriptionAvailable: false,
      serverKeepAlive: 30
    })
    await flow(broker)
      .send(connect({ protocolLevel: 5, keepalive: 10 }))
      .expect({
        type: 'connack',
        sessionPresent: false,
        reasonCode: 0,
        properties: {
          receiveMaximum: 10,
          maximumQoS: 1,
          retainAvailable: false,
          maximumPacketSize: 1000,
          wildcardSubscriptionAvailable: false,
          subscriptionIdentifiersAvailable: false,
          sharedSubscriptionAvailable: false,
          serverKeepAlive: 30
        }
      })
      .run()
  })

  it('MQTT 5: a keepalive beyond maxKeepalive is lowered with Server Keep Alive', async () => {
    const broker = makeBroker(teardown, { maxKeepalive: 20 })
    await flow(broker)
      .send(connect({ protocolLevel: 5, keepalive: 100 }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 0, properties: { serverKeepAlive: 20 } })
      .run()
  })

  it('3.1.1: a keepalive beyond maxKeepalive is refused with return code 2', async () => {
    const broker = makeBroker(teardown, { maxKeepalive: 20 })
    await flow(broker)
      .send(connect({ keepalive: 100 }))
      .expect(connack(false, ConnectReturnCode.IdentifierRejected))
      .expectClose()
      .run()
  })

  it('closes a connection that never sends CONNECT (connect timeout)', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { connectTimeout: 100, timerInterval: 20, clock })
    const peer = new Peer(broker)
    await until(() => broker.stats.connectionsOpen === 1, 'the connection adopted')
    await clock.advance(100)
    expect(broker.stats.connectionsOpen, 'open at the connect timeout').to.equal(1)
    await clock.advance(20)
    expect(broker.stats.connectionsOpen, 'closed at the next tick').to.equal(0)
    await peer.waitClosed()
  })

  it('refuses a will with an invalid topic (MQTT 5: 0x90)', async () => {
    const broker = makeBroker(teardown)
    await flow(broker)
      .send(connect({ protocolLevel: 5, will: { topic: 'a/+', payload: Buffer.from('x'), qos: 0, retain: false } }))
      .expect(connack(false, ReasonCode.TopicNameInvalid))
      .expectClose()
      .run()
  })

  it('MQTT 5: refuses a will QoS above Maximum QoS with 0x9B (MQTT 5.0 3.2.2.3.4)', async () => {
    const broker = makeBroker(teardown, { maximumQoS: 0 })
    await flow(broker)
      .send(connect({ protocolLevel: 5, will: { topic: 'w', payload: Buffer.from('x'), qos: 1, retain: false } }))
      .expect(connack(false, ReasonCode.QoSNotSupported))
      .expectClose()
      .run()
  })

  it('a malformed packet closes the connection; MQTT 5 gets DISCONNECT 0x81 first', async () => {
    const broker = makeBroker(teardown)
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect(connack())
      .send(Buffer.from([0x82, 0x00])) // SUBSCRIBE with no body
      .expect((packet) => {
        expect(packet.type).to.equal('disconnect')
        expect((packet as { reasonCode?: number }).reasonCode).to.be.oneOf([ReasonCode.MalformedPacket, ReasonCode.ProtocolError])
      })
      .expectClose()
      .run()
  })

  it('MQTT 5: a packet larger than maximumPacketSize gets DISCONNECT 0x95', async () => {
    const broker = makeBroker(teardown, { maximumPacketSize: 100 })
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect((packet) => expect(packet.type).to.equal('connack'))
      .send({ type: 'publish', topic: 't', payload: Buffer.alloc(200), qos: 0, retain: false, dup: false })
      .expect({ type: 'disconnect', reasonCode: ReasonCode.PacketTooLarge })
      .expectClose()
      .run()
  })
})
