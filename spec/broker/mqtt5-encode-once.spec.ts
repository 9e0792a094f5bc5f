import { expect } from 'chai'
import { Outbound } from '../../lib/broker/outbound.js'
import type { OutboundHost } from '../../lib/broker/outbound.js'
import { OutboundAliases } from '../../lib/broker/topic-aliases.js'
import { MemorySession } from '../../lib/session/memory-session.js'
import type { Message } from '../../lib/session/session.js'
import type { EncodedPublish } from '../../lib/packet/publish-template.js'
import type { ProtocolLevel } from '../../lib/packet/types.js'

/** A host that records how each PUBLISH was queued: shared template bytes or bytes of its own. */
function host(level: ProtocolLevel, aliases?: OutboundAliases): OutboundHost & { shared: EncodedPublish[]; own: Buffer[] } {
  const shared: EncodedPublish[] = []
  const own: Buffer[] = []
  return {
    clientId: 'h',
    protocolLevel: level,
    session: new MemorySession('h'),
    maxOutgoingPacketSize: Number.MAX_SAFE_INTEGER,
    aliases,
    shared,
    own,
    bufferedBytes: () => 0,
    pushPublish: (variant) => shared.push(variant),
    pushBytes: (bytes) => own.push(bytes),
    sent: () => undefined,
    dropped: () => undefined,
    slowConsumer: () => undefined,
    sessionError: () => undefined
  }
}

function outbound(h: OutboundHost): Outbound {
  const o = new Outbound(h, { window: 10, maxQueue: 10, maxBufferedBytes: 1 << 20 })
  o.live = true
  return o
}

describe('MQTT 5 – encode once', () => {
  it('v5 receivers without aliases or identifiers share the same bytes, expiry interval unchanged', () => {
    const message: Message = {
      topic: 't',
      payload: Buffer.from('x'),
      qos: 0,
      retain: false,
      properties: { messageExpiryInterval: 60, userProperties: [['a', 'b']] },
      receivedAt: Date.now()
    }
    const a = host(5)
    const b = host(5)
    outbound(a).deliver(message, { topicFilter: 't', qos: 0 }, false)
    outbound(b).deliver(message, { topicFilter: '#', qos: 0 }, false)
    expect(a.own).to.deep.equal([])
    expect(b.own).to.deep.equal([])
    expect(a.shared[0]).to.equal(b.shared[0]) // the very same cached variant
  })

  it('a receiver with topic aliases or subscription identifiers gets its own encoding', () => {
    const message: Message = { topic: 't', payload: Buffer.from('x'), qos: 0, retain: false }
    const aliased = host(5, new OutboundAliases(3))
    const identified = host(5)
    outbound(aliased).deliver(message, { topicFilter: 't', qos: 0 }, false)
    outbound(identified).deliver(message, { topicFilter: 't', qos: 0, subscriptionIdentifiers: [4] }, false)
    expect(aliased.shared).to.deep.equal([])
    expect(aliased.own).to.have.length(1)
    expect(identified.own).to.have.length(1)
  })

  it('a message that waited a second or more is re-encoded with the remaining interval [MQTT-3.3.2-6]', () => {
    const message: Message = {
      topic: 't',
      payload: Buffer.from('x'),
      qos: 0,
      retain: false,
      properties: { messageExpiryInterval: 60 },
      receivedAt: Date.now() - 2500
    }
    const h = host(5)
    outbound(h).deliver(message, { topicFilter: 't', qos: 0 }, false)
    expect(h.shared).to.deep.equal([])
    expect(h.own).to.have.length(1)
  })
})
