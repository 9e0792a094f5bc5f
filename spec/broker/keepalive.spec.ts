import { expect } from 'chai'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import { makeBroker } from '../helpers/broker.js'
import { connected } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'

describe('broker – keepalive', () => {
  const teardown = useTeardown()

  it('answers PINGREQ with PINGRESP [MQTT-3.12.4-1]', async () => {
    const broker = makeBroker(teardown)
    const peer = await connected(broker)
    peer.send({ type: 'pingreq' })
    expect(await peer.next()).to.deep.equal({ type: 'pingresp' })
  })

  it('keeps a connection that sends within the keepalive alive', async () => {
    const broker = makeBroker(teardown, { timerInterval: 50 })
    const peer = await connected(broker, { keepalive: 1 })
    for (let i = 0; i < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500))
      peer.send({ type: 'pingreq' })
      expect(await peer.next()).to.deep.equal({ type: 'pingresp' })
    }
    expect(peer.isConnectionClosed).to.equal(false)
  })

  it('closes after 1.5 × keepalive of silence; MQTT 5 gets DISCONNECT 0x8D [MQTT-3.1.2-24]', async () => {
    const broker = makeBroker(teardown, { timerInterval: 50 })
    const peer = await connected(broker, { keepalive: 1, protocolLevel: 5 })
    const started = Date.now()
    expect(await peer.next(3000)).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.KeepAliveTimeout })
    await peer.waitClosed()
    const elapsed = Date.now() - started
    expect(elapsed).to.be.at.least(1450)
  })

  it('keepalive 0 turns the check off', async () => {
    const broker = makeBroker(teardown, { timerInterval: 20 })
    const peer = await connected(broker, { keepalive: 0 })
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(peer.isConnectionClosed).to.equal(false)
  })
})
