import { expect } from 'chai'
import { createLogger } from '../../lib/broker/logger.js'
import { CONNECT_STEPS } from '../../lib/broker/handlers/connect.js'
import { encode } from '../../lib/packet/index.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { PublishPacket } from '../../lib/packet/types.js'
import { AsyncBackend } from '../helpers/async-backend.js'
import { makeBroker } from '../helpers/broker.js'
import { connack, connect, flow, Peer } from '../helpers/flow.js'
import { connected, publish } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'

describe('broker – dispatcher and connection state', () => {
  const teardown = useTeardown()

  it('MQTT 5: AUTH without an authentication exchange is a protocol error', async () => {
    const broker = makeBroker(teardown)
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect(connack())
      .send({ type: 'auth', reasonCode: ReasonCode.ReAuthenticate, properties: { authenticationMethod: 'X' } })
      .expect({ type: 'disconnect', reasonCode: ReasonCode.ProtocolError })
      .expectClose()
      .run()
  })

  it('runs the CONNECT steps in order and logs each by name', async () => {
    const lines: string[] = []
    const broker = makeBroker(teardown, { logger: createLogger('trace', (line) => lines.push(line)) })
    await flow(broker).send(connect()).expect(connack()).run()
    const steps = lines.filter((l) => l.includes('connect step')).map((l) => /step=(\w+)/.exec(l)?.[1])
    // Written out: comparing with CONNECT_STEPS would only compare the list with itself.
    expect(steps).to.deep.equal([
      'resolveTenant',
      'checkProtocol',
      'admitIdentified',
      'authenticate',
      'countFlapping',
      'keepalive',
      'setupSession',
      'restoreInflight',
      'storeWill',
      'responseInformation',
      'connack',
      'settleWill',
      'register',
      'drainOffline'
    ])
    expect(CONNECT_STEPS).to.have.length(steps.length)
  })

  it('handles packets of one chunk strictly in order, even with an asynchronous backend', async () => {
    const broker = makeBroker(teardown, { backend: new AsyncBackend() })
    const peer = new Peer(broker)
    // CONNECT, SUBSCRIBE and PUBLISH in one write: the PUBLISH must see the subscription.
    const bytes = Buffer.concat([
      encode(connect({ clientId: 'pipelined' }), 4),
      encode({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'p', qos: 1 }] }, 4),
      encode(publish('p', 'self', 1, 2), 4)
    ])
    peer.send(bytes)
    expect(await peer.next()).to.deep.equal(connack())
    expect(await peer.next()).to.deep.equal({ type: 'suback', packetId: 1, reasonCodes: [1] })
    const rest = [await peer.next(), await peer.next()]
    expect(rest.map((p) => p.type).sort()).to.deep.equal(['puback', 'publish'])
    const delivered = rest.find((p) => p.type === 'publish') as PublishPacket
    expect(delivered.payload.toString()).to.equal('self')
  })

  it('an asynchronous authenticate that denies refuses the client', async () => {
    const broker = makeBroker(teardown, {
      backend: new AsyncBackend({ authenticate: () => ({ result: 'deny', reasonCode: ReasonCode.NotAuthorized }) })
    })
    await flow(broker).send(connect({ protocolLevel: 5 })).expect(connack(false, ReasonCode.NotAuthorized)).expectClose().run()
  })

  it('a backend that throws in authenticate refuses with Server unavailable (3.1.1: return code 3)', async () => {
    const broker = makeBroker(teardown, {
      memory: {
        authenticate: () => {
          throw new Error('database down')
        }
      }
    })
    await flow(broker).send(connect()).expect(connack(false, 3)).expectClose().run()
  })

  it('a malformed packet from one client does not disturb another', async () => {
    const broker = makeBroker(teardown)
    const good = await connected(broker, { clientId: 'good' })
    const bad = await connected(broker, { clientId: 'bad' })
    bad.send(Buffer.from([0x30, 0x02, 0x00])) // PUBLISH, truncated topic length: waits for more
    bad.send(Buffer.from([0xff, 0x00])) // then garbage
    await bad.waitClosed()
    good.send({ type: 'pingreq' })
    expect(await good.next()).to.deep.equal({ type: 'pingresp' })
    expect(broker.stats.protocolErrors).to.equal(1)
  })
})
