import { MalformedPacketError, ProtocolError } from './errors.js'
import { allocPacket, checkWritten } from './header.js'
import { propertiesLength, readProperties, writeProperties } from './properties.js'
import type { Reader } from './reader.js'
import { checkReasonCodeForEncode, readReasonCode } from './reason.js'
import type { ConnackPacket, ProtocolLevel } from './types.js'
import { varintLength } from './varint.js'

const WHAT = 'CONNACK'

/**
 * Decode a CONNACK (section 3.2). At level 3 the first byte is reserved ("not used" in MQTT 3.1):
 * ignored, and Session Present is false.
 */
export function decodeConnack(r: Reader, level: ProtocolLevel): ConnackPacket {
  const flags = r.u8(`${WHAT} acknowledge flags`)
  if (level !== 3 && (flags & 0xfe) !== 0) throw new MalformedPacketError(`${WHAT}: reserved acknowledge flag bits set [MQTT-3.2.2-1]`)
  const packet: ConnackPacket = { type: 'connack', sessionPresent: level !== 3 && flags === 1, reasonCode: 0 }
  if (level === 5) {
    packet.reasonCode = readReasonCode(r, 'connack', WHAT)
    const properties = readProperties(r, 'connack', WHAT)
    if (properties !== undefined) packet.properties = properties
  } else {
    packet.reasonCode = r.u8(`${WHAT} return code`)
  }
  // A refused connection has no session [MQTT-3.2.2-4] [MQTT-3.2.2-6].
  if (packet.sessionPresent && packet.reasonCode !== 0) {
    throw new ProtocolError(`${WHAT}: session present with a non-zero reason code [MQTT-3.2.2-4] [MQTT-3.2.2-6]`)
  }
  r.done(WHAT)
  return packet
}

/** Encode a CONNACK (at level 3 without Session Present: its byte is reserved in MQTT 3.1). */
export function encodeConnack(packet: ConnackPacket, level: ProtocolLevel): Buffer {
  let length = 2
  let propsLength = 0
  if (level === 5) {
    checkReasonCodeForEncode(packet.reasonCode, 'connack', WHAT)
    propsLength = propertiesLength(packet.properties, 'connack')
    length += varintLength(propsLength) + propsLength
  } else if (!Number.isInteger(packet.reasonCode) || packet.reasonCode < 0 || packet.reasonCode > 255) {
    throw new TypeError(`${WHAT}: return code must be a byte`)
  }
  const [buffer, start] = allocPacket(0x20, length)
  // MQTT 3.1 has no Session Present flag: that byte is reserved ("not used") and sent as 0.
  buffer[start] = packet.sessionPresent && level !== 3 ? 1 : 0
  buffer[start + 1] = packet.reasonCode
  let o = start + 2
  if (level === 5) o = writeProperties(buffer, o, packet.properties, propsLength)
  return checkWritten(buffer, o, WHAT)
}
