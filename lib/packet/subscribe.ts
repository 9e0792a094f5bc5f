import { MalformedPacketError, ProtocolError } from './errors.js'
import { allocPacket, checkPacketId, checkWritten } from './header.js'
import { propertiesLength, readProperties, stringBytes, writeProperties, writeString } from './properties.js'
import type { Reader } from './reader.js'
import type { ProtocolLevel, QoS, SubscribePacket, Subscription } from './types.js'
import { varintLength } from './varint.js'

const WHAT = 'SUBSCRIBE'

/**
 * Decode a SUBSCRIBE (section 3.8). Topic filters are returned as sent: their validity (wildcard
 * placement, shared subscription syntax) is the broker's to judge, because it answers an invalid
 * filter with a SUBACK failure code rather than closing the connection.
 */
export function decodeSubscribe(r: Reader, level: ProtocolLevel): SubscribePacket {
  const packetId = r.u16(`${WHAT} packet identifier`)
  if (packetId === 0) throw new ProtocolError(`${WHAT}: packet identifier 0 [MQTT-2.2.1-3]`)
  const packet: SubscribePacket = { type: 'subscribe', packetId, subscriptions: [] }
  if (level === 5) {
    const properties = readProperties(r, 'subscribe', WHAT)
    if (properties !== undefined) packet.properties = properties
  }
  if (r.remaining === 0) throw new ProtocolError(`${WHAT}: no topic filter in the payload [MQTT-3.8.3-3]`)
  while (r.remaining > 0) {
    const topicFilter = r.string(`${WHAT} topic filter`)
    const options = r.u8(`${WHAT} subscription options`)
    const qos = options & 0x03
    if (level === 5) {
      // "It is a Protocol Error if the Maximum QoS field has the value 3" (5.0 section 3.8.3.1).
      if (qos === 3) throw new ProtocolError(`${WHAT}: requested QoS 3`)
      if ((options & 0xc0) !== 0) throw new MalformedPacketError(`${WHAT}: reserved option bits set [MQTT-3.8.3-5]`)
      const retainHandling = (options >> 4) & 0x03
      if (retainHandling === 3) throw new ProtocolError(`${WHAT}: Retain Handling 3`)
      if ((options & 0x04) !== 0 && topicFilter.startsWith('$share/')) {
        throw new ProtocolError(`${WHAT}: No Local on a shared subscription [MQTT-3.8.3-4]`)
      }
      packet.subscriptions.push({
        topicFilter,
        qos: qos as QoS,
        noLocal: (options & 0x04) !== 0,
        retainAsPublished: (options & 0x08) !== 0,
        retainHandling: retainHandling as 0 | 1 | 2
      })
    } else {
      if (qos === 3) throw new MalformedPacketError(`${WHAT}: requested QoS 3 [MQTT-3-8.3-4]`)
      if ((options & 0xfc) !== 0) throw new MalformedPacketError(`${WHAT}: reserved option bits set [MQTT-3-8.3-4]`)
      packet.subscriptions.push({ topicFilter, qos: qos as QoS })
    }
  }
  return packet
}

/** Encode a SUBSCRIBE; MQTT 5 options are left out at levels 3 and 4. */
export function encodeSubscribe(packet: SubscribePacket, level: ProtocolLevel): Buffer {
  const packetId = checkPacketId(packet.packetId, WHAT)
  if (packet.subscriptions.length === 0) throw new TypeError(`${WHAT}: at least one subscription is required [MQTT-3.8.3-3]`)
  let length = 2
  let propsLength = 0
  if (level === 5) {
    propsLength = propertiesLength(packet.properties, 'subscribe')
    length += varintLength(propsLength) + propsLength
  }
  for (const s of packet.subscriptions) length += 3 + stringBytes('topicFilter', s.topicFilter)
  const [buffer, start] = allocPacket(0x82, length)
  buffer.writeUInt16BE(packetId, start)
  let o = start + 2
  if (level === 5) o = writeProperties(buffer, o, packet.properties, propsLength)
  for (const s of packet.subscriptions) {
    o = writeString(buffer, o, s.topicFilter)
    buffer[o++] = optionsByte(s, level)
  }
  return checkWritten(buffer, o, WHAT)
}

function optionsByte(s: Subscription, level: ProtocolLevel): number {
  if (s.qos !== 0 && s.qos !== 1 && s.qos !== 2) throw new TypeError(`${WHAT}: qos must be 0, 1 or 2`)
  if (level < 5) return s.qos
  const rh = s.retainHandling ?? 0
  if (rh !== 0 && rh !== 1 && rh !== 2) throw new TypeError(`${WHAT}: retainHandling must be 0, 1 or 2`)
  return s.qos | (s.noLocal === true ? 0x04 : 0) | (s.retainAsPublished === true ? 0x08 : 0) | (rh << 4)
}
