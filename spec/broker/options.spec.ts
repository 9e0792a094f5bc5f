import { expect } from 'chai'
import { MAX_PACKET_SIZE, resolveOptions } from '../../lib/broker/options.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { Broker } from '../../lib/broker/broker.js'

describe('broker options', () => {
  const backend = new MemoryBackend()
  after(() => backend.close())

  it('fills in the documented defaults', () => {
    expect(resolveOptions({ backend })).to.deep.equal({
      maximumPacketSize: MAX_PACKET_SIZE,
      connectTimeout: 10_000,
      maxKeepalive: undefined,
      serverKeepAlive: undefined,
      receiveMaximum: 65535,
      inflightWindow: 500,
      maxOutgoingQueue: 10_000,
      maxBufferedBytes: 8 * 1024 * 1024,
      maximumQoS: 2,
      retainAvailable: true,
      wildcardSubscriptionAvailable: true,
      subscriptionIdentifiersAvailable: true,
      sharedSubscriptionAvailable: true,
      topicAliasMaximum: 0,
      maxSessionExpiryInterval: 0xffffffff,
      validatePayloadFormat: false,
      refuseControlCharacters: true,
      tenantResolver: undefined,
      timerInterval: 1000,
      sysInterval: 10_000,
      sysTopicPrefix: '$SYS/broker',
      drainTimeout: 5000
    })
  })

  for (const [name, value] of [
    ['maximumPacketSize', 0],
    ['maximumPacketSize', MAX_PACKET_SIZE + 1],
    ['receiveMaximum', 65536],
    ['inflightWindow', 0],
    ['connectTimeout', 1.5],
    ['drainTimeout', 0],
    ['maxKeepalive', 70000],
    ['maximumQoS', 3],
    ['topicAliasMaximum', -1],
    ['maxSessionExpiryInterval', -1]
  ] as const) {
    it(`refuses ${name} = ${value} with RangeError`, () => {
      expect(() => new Broker({ backend, [name]: value })).to.throw(RangeError, name)
    })
  }
})
