import { expect } from 'chai'
import { getHeapStatistics } from 'node:v8'
import { MAX_PACKET_SIZE, resolveOptions } from '../../lib/broker/options.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { Broker } from '../../lib/broker/broker.js'
import { systemClock } from '../../lib/broker/clock.js'
import type { Clock } from '../../lib/broker/clock.js'
import { VirtualClock } from '../helpers/virtual-clock.js'

describe('broker options', () => {
  const backend = new MemoryBackend()
  after(() => backend.close())

  it('fills in the documented defaults', () => {
    expect(resolveOptions({ backend })).to.deep.equal({
      maximumPacketSize: 4 * 1024 * 1024,
      maxConnectPacketSize: 65_536,
      connectTimeout: 10_000,
      maxKeepalive: 65535,
      serverKeepAlive: undefined,
      receiveMaximum: 65535,
      inflightWindow: 500,
      maxOutgoingQueue: 10_000,
      maxOutgoingQueueBytes: 64 * 1024 * 1024,
      maxBufferedBytes: 8 * 1024 * 1024,
      maxPublisherPause: 1000,
      sendTimeout: 15_000,
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
      maxTopicLength: 65535,
      maxTopicLevels: 128,
      maxSubscriptionsPerClient: 0,
      maxConnections: 0,
      maxConnectionsPerListener: 0,
      maxConnectionsPerAddress: 0,
      maxConnectRatePerAddress: 0,
      maxConnectionsPerTenant: 0,
      flappingMaxCount: 0,
      flappingWindow: 60_000,
      flappingBanTime: 300_000,
      maxUserProperties: 128,
      persistentSessionExpiry: 604_800,
      maxHeapUsed: Math.floor(getHeapStatistics().heap_size_limit * 0.9),
      maxEventLoopLag: 1000,
      idleMemoryRelease: 1000,
      timerInterval: 1000,
      sysInterval: 10_000,
      sysTopicPrefix: '$SYS/broker',
      drainTimeout: 5000,
      clock: systemClock
    })
  })

  it('takes a clock, and refuses one that lacks a member with a TypeError', () => {
    const clock = new VirtualClock()
    expect(resolveOptions({ backend, clock }).clock).to.equal(clock)
    expect(() => resolveOptions({ backend, clock: { now: () => 0 } as unknown as Clock })).to.throw(TypeError, /clock\.setTimeout must be a function/)
    expect(() => resolveOptions({ backend, clock: null as unknown as Clock })).to.throw(TypeError, /clock\.now/)
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
