import { expect } from 'chai'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import { makeBroker } from '../helpers/broker.js'
import { connected } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import { VirtualClock } from '../helpers/virtual-clock.js'

describe('broker – keepalive', () => {
  const teardown = useTeardown()

  it('answers PINGREQ with PINGRESP [MQTT-3.12.4-1]', async () => {
    const broker = makeBroker(teardown)
    const peer = await connected(broker)
    peer.send({ type: 'pingreq' })
    expect(await peer.next()).to.deep.equal({ type: 'pingresp' })
  })

  it('keeps a connection that sends within the keepalive alive', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { timerInterval: 50, clock })
    const peer = await connected(broker, { keepalive: 1 })
    // 4 × 900 ms: more than 1.5 × keepalive in all, never that long without a packet.
    for (let i = 0; i < 4; i++) {
      await clock.advance(900)
      peer.send({ type: 'pingreq' })
      expect(await peer.next()).to.deep.equal({ type: 'pingresp' })
    }
    expect(peer.isConnectionClosed).to.equal(false)
    expect(broker.connectedClients).to.have.length(1)
  })

  it('closes after 1.5 × keepalive of silence; MQTT 5 gets DISCONNECT 0x8D [MQTT-3.1.2-24]', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { timerInterval: 50, clock })
    const peer = await connected(broker, { keepalive: 1, protocolLevel: 5 })
    // The wheel closes a connection synchronously in its tick: the broker's own list tells.
    await clock.advance(1450)
    expect(broker.connectedClients, 'still open at 1.45 s').to.have.length(1)
    await clock.advance(150)
    expect(broker.connectedClients, 'closed by 1.6 s').to.have.length(0)
    expect(await peer.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.KeepAliveTimeout })
    await peer.waitClosed()
  })

  it('keepalive 0 turns the check off', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { clock })
    const peer = await connected(broker, { keepalive: 0 })
    await clock.advance(10 * 60 * 1000)
    expect(broker.connectedClients).to.have.length(1)
    peer.send({ type: 'pingreq' })
    expect(await peer.next()).to.deep.equal({ type: 'pingresp' })
    expect(peer.isConnectionClosed).to.equal(false)
  })
})
