import { ProtocolError } from './errors.js'
import { allocPacket, checkPacketId, checkWritten } from './header.js'
import { propertiesLength, readProperties, writeProperties } from './properties.js'
import type { Reader } from './reader.js'
import { checkReasonCodeForEncode, readReasonCode } from './reason.js'
import type { AckPacket, ProtocolLevel } from './types.js'
import { varintLength } from './varint.js'

export type AckType = 'puback' | 'pubrec' | 'pubrel' | 'pubcomp'

const FIRST_BYTE: Record<AckType, number> = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 }

/**
 * Decode PUBACK, PUBREC, PUBREL or PUBCOMP (sections 3.4–3.7): a packet identifier, and in MQTT 5
 * an optional reason code and properties (remaining length 2 means success, no properties).
 */
export function decodeAck<T extends AckType>(type: T, r: Reader, level: ProtocolLevel): AckPacket<T> {
  const what = type.toUpperCase()
  const packetId = r.u16(`${what} packet identifier`)
  if (packetId === 0) throw new ProtocolError(`${what}: packet identifier 0 [MQTT-2.2.1-3]`)
  const packet: AckPacket<T> = { type, packetId }
  if (level === 5 && r.remaining > 0) {
    packet.reasonCode = readReasonCode(r, type, what)
    if (r.remaining > 0) {
      const properties = readProperties(r, 'ack', what)
      if (properties !== undefined) packet.properties = properties
    }
  }
  r.done(what)
  return packet
}

/** Encode an acknowledgement; at MQTT 5 the short form when the reason is 0 and no properties. */
export function encodeAck(packet: AckPacket<AckType>, level: ProtocolLevel): Buffer {
  const what = packet.type.toUpperCase()
  const packetId = checkPacketId(packet.packetId, what)
  const code = packet.reasonCode ?? 0
  let propsLength = 0
  let length = 2
  if (level === 5) {
    checkReasonCodeForEncode(code, packet.type, what)
    propsLength = propertiesLength(packet.properties, 'ack')
    if (propsLength > 0) length += 1 + varintLength(propsLength) + propsLength
    else if (code !== 0) length += 1
  }
  const [buffer, start] = allocPacket(FIRST_BYTE[packet.type], length)
  buffer.writeUInt16BE(packetId, start)
  let o = start + 2
  if (length > 2) {
    buffer[o++] = code
    if (propsLength > 0) o = writeProperties(buffer, o, packet.properties, propsLength)
  }
  return checkWritten(buffer, o, what)
}
