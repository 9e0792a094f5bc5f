import { expect } from 'chai'
import { willMessage } from '../../lib/session/will.js'
import { willMessage as fromTeardown } from '../../lib/broker/teardown.js'

describe('willMessage (the one will builder of the engine and the backends)', () => {
  const payload = Buffer.from('gone')

  it('is the message the broker publishes: origin for No Local, tenant for routing, no properties when there are none', () => {
    expect(willMessage({ topic: 'w', payload, qos: 1, retain: true }, 'dev', 'acme')).to.deep.equal({
      topic: 'w',
      payload,
      qos: 1,
      retain: true,
      origin: 'dev',
      tenant: 'acme'
    })
    expect(willMessage({ topic: 'w', payload, qos: 0, retain: false }, 'dev')).to.not.have.property('tenant')
  })

  it('leaves the Will Delay Interval out and counts the Message Expiry Interval from now', () => {
    const only = willMessage({ topic: 'w', payload, qos: 0, retain: false, properties: { willDelayInterval: 5 } }, 'dev', undefined, 1000)
    expect(only).to.not.have.property('properties')
    expect(only).to.not.have.property('receivedAt')
    const expiring = willMessage(
      { topic: 'w', payload, qos: 0, retain: false, properties: { willDelayInterval: 5, messageExpiryInterval: 9, contentType: 'text/plain' } },
      'dev',
      undefined,
      1000
    )
    expect(expiring.properties).to.deep.equal({ messageExpiryInterval: 9, contentType: 'text/plain' })
    expect(expiring.receivedAt).to.equal(1000)
  })

  it('is the same function the engine uses at teardown', () => {
    expect(fromTeardown).to.equal(willMessage)
  })
})
