import { ProtocolError } from './errors.js'
import { allocPacket, checkPacketId, checkWritten } from './header.js'
import { propertiesLength, readProperties, stringBytes, writeProperties, writeString } from './properties.js'
import type { Reader } from './reader.js'
import type { ProtocolLevel, UnsubscribePacket } from './types.js'
import { varintLength } from './varint.js'

const WHAT = 'UNSUBSCRIBE'

/** Decode an UNSUBSCRIBE (section 3.10). */
export function decodeUnsubscribe(r: Reader, level: ProtocolLevel): UnsubscribePacket {
  const packetId = r.u16(`${WHAT} packet identifier`)
  if (packetId === 0) throw new ProtocolError(`${WHAT}: packet identifier 0 [MQTT-2.2.1-3]`)
  const packet: UnsubscribePacket = { type: 'unsubscribe', packetId, topicFilters: [] }
  if (level === 5) {
    const properties = readProperties(r, 'unsubscribe', WHAT)
    if (properties !== undefined) packet.properties = properties
  }
  if (r.remaining === 0) throw new ProtocolError(`${WHAT}: no topic filter in the payload [MQTT-3.10.3-2]`)
  while (r.remaining > 0) packet.topicFilters.push(r.string(`${WHAT} topic filter`))
  return packet
}

/** Encode an UNSUBSCRIBE. */
export function encodeUnsubscribe(packet: UnsubscribePacket, level: ProtocolLevel): Buffer {
  const packetId = checkPacketId(packet.packetId, WHAT)
  if (packet.topicFilters.length === 0) throw new TypeError(`${WHAT}: at least one topic filter is required`)
  let length = 2
  let propsLength = 0
  if (level === 5) {
    propsLength = propertiesLength(packet.properties, 'unsubscribe')
    length += varintLength(propsLength) + propsLength
  }
  for (const f of packet.topicFilters) length += 2 + stringBytes('topicFilter', f)
  const [buffer, start] = allocPacket(0xa2, length)
  buffer.writeUInt16BE(packetId, start)
  let o = start + 2
  if (level === 5) o = writeProperties(buffer, o, packet.properties, propsLength)
  for (const f of packet.topicFilters) o = writeString(buffer, o, f)
  return checkWritten(buffer, o, WHAT)
}
