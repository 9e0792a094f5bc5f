import { expect } from 'chai'
import { Decoder, encode } from '../../lib/packet/index.js'
import type { MqttError, Packet, PublishPacket, ProtocolLevel } from '../../lib/packet/index.js'
import { TopicNameInvalidError, MalformedPacketError } from '../../lib/packet/errors.js'
import { isValidTopicName } from '../../lib/packet/topic.js'

/** Raw PUBLISH QoS 0 bytes with `topic` as given bytes (no validation by an encoder). */
function rawPublish(topic: Buffer, payload = 'p'): Buffer {
  const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 255]), topic, Buffer.from(payload)])
  return Buffer.concat([Buffer.from([0x30, body.length]), body])
}

function decodeAll(chunks: Buffer[], level: ProtocolLevel = 4): { packets: Packet[]; error: MqttError | undefined } {
  const packets: Packet[] = []
  const decoder = new Decoder((packet) => packets.push(packet), { protocolLevel: level, role: 'server' })
  let error: MqttError | undefined
  for (const chunk of chunks) error ??= decoder.push(chunk)
  return { packets, error }
}

describe('packet – the decoder remembers the last PUBLISH topic (TopicMemo)', () => {
  it('a repeated topic decodes to the very same string', () => {
    const { packets } = decodeAll([Buffer.concat([rawPublish(Buffer.from('a/b')), rawPublish(Buffer.from('a/b'))])])
    const [p1, p2] = packets as [PublishPacket, PublishPacket]
    expect(p1.topic).to.equal('a/b')
    expect(p2.topic).to.equal('a/b')
    expect(Object.is(p1.topic, p2.topic)).to.equal(true)
  })

  it('a topic of the same length but other bytes is decoded and checked again: a wildcard fails', () => {
    const { packets, error } = decodeAll([rawPublish(Buffer.from('a/b')), rawPublish(Buffer.from('a/+'))])
    expect(packets.map((p) => (p as PublishPacket).topic)).to.deep.equal(['a/b'])
    expect(error).to.be.instanceOf(TopicNameInvalidError)
  })

  it('after a remembered topic, invalid UTF-8 of the same length still fails', () => {
    const { error } = decodeAll([rawPublish(Buffer.from('ab')), rawPublish(Buffer.from([0xc0, 0x80]))])
    expect(error).to.be.instanceOf(MalformedPacketError)
  })

  it('the remembered bytes are a copy: reusing the input buffer does not change what is compared', () => {
    const packets: Packet[] = []
    const decoder = new Decoder((packet) => packets.push(packet), { protocolLevel: 4, role: 'server' })
    const shared = rawPublish(Buffer.from('x/y'))
    expect(decoder.push(shared)).to.equal(undefined)
    rawPublish(Buffer.from('x/z')).copy(shared) // the caller reuses its buffer
    expect(decoder.push(shared)).to.equal(undefined)
    expect(packets.map((p) => (p as PublishPacket).topic)).to.deep.equal(['x/y', 'x/z'])
  })

  it('an MQTT 5 empty topic with an alias is never remembered', () => {
    const withAlias = encode({ type: 'publish', topic: '', payload: Buffer.from('1'), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } }, 5)
    const { packets, error } = decodeAll([withAlias, withAlias], 5)
    expect(error).to.equal(undefined)
    expect(packets.map((p) => (p as PublishPacket).topic)).to.deep.equal(['', ''])
  })

  it('isValidTopicName answers each topic on its own, whatever it accepted before', () => {
    expect(isValidTopicName('a/b')).to.equal(true)
    expect(isValidTopicName('a/b')).to.equal(true)
    expect(isValidTopicName('a/#')).to.equal(false)
    expect(isValidTopicName('')).to.equal(false)
    expect(isValidTopicName('a/\u0000')).to.equal(false)
    expect(isValidTopicName('a/b')).to.equal(true)
  })
})
