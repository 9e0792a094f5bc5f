import { ProtocolError } from './errors.js'
import { allocPacket, checkWritten } from './header.js'
import { propertiesLength, readProperties, writeProperties } from './properties.js'
import type { Reader } from './reader.js'
import { checkReasonCodeForEncode, readReasonCode } from './reason.js'
import type { AuthPacket, DisconnectPacket, ProtocolLevel } from './types.js'
import { varintLength } from './varint.js'

/**
 * Decode a DISCONNECT (section 3.14). Before MQTT 5 the body is empty (checked by the decoder);
 * at 5, remaining length 0 means "normal disconnection", 1 a reason code without properties.
 */
export function decodeDisconnect(r: Reader): DisconnectPacket {
  const packet: DisconnectPacket = { type: 'disconnect' }
  if (r.remaining > 0) {
    packet.reasonCode = readReasonCode(r, 'disconnect', 'DISCONNECT')
    if (r.remaining > 0) {
      const properties = readProperties(r, 'disconnect', 'DISCONNECT')
      if (properties !== undefined) packet.properties = properties
    }
  }
  r.done('DISCONNECT')
  return packet
}

/** Decode an AUTH (section 3.15, MQTT 5 only); remaining length 0 means success. */
export function decodeAuth(r: Reader): AuthPacket {
  const packet: AuthPacket = { type: 'auth' }
  if (r.remaining > 0) {
    packet.reasonCode = readReasonCode(r, 'auth', 'AUTH')
    if (r.remaining > 0) {
      const properties = readProperties(r, 'auth', 'AUTH')
      if (properties !== undefined) packet.properties = properties
    }
    // "It is a Protocol Error to omit the Authentication Method" (3.15.2.2.2); only the abbreviated
    // form (remaining length 0: success, no properties) carries none.
    if (packet.properties?.authenticationMethod === undefined) {
      throw new ProtocolError('AUTH: no authentication method')
    }
  }
  r.done('AUTH')
  return packet
}

/** Encode a DISCONNECT: empty before MQTT 5; at 5, the shortest form that carries what is set. */
export function encodeDisconnect(packet: DisconnectPacket, level: ProtocolLevel): Buffer {
  return encodeReasoned(0xe0, 'disconnect', packet.reasonCode, packet.properties, level)
}

/** Encode an AUTH (MQTT 5 only). */
export function encodeAuth(packet: AuthPacket, level: ProtocolLevel): Buffer {
  if (level !== 5) throw new TypeError('AUTH exists only in MQTT 5')
  const abbreviated = (packet.reasonCode ?? 0) === 0 && packet.properties === undefined
  if (!abbreviated && packet.properties?.authenticationMethod === undefined) {
    throw new TypeError('AUTH: an authentication method is required (3.15.2.2.2)')
  }
  return encodeReasoned(0xf0, 'auth', packet.reasonCode, packet.properties, level)
}

function encodeReasoned(
  first: number,
  type: 'disconnect' | 'auth',
  reasonCode: number | undefined,
  properties: DisconnectPacket['properties'] | AuthPacket['properties'],
  level: ProtocolLevel
): Buffer {
  const what = type.toUpperCase()
  if (level < 5) return checkWritten(allocPacket(first, 0)[0], 2, what)
  const code = checkReasonCodeForEncode(reasonCode ?? 0, type, what)
  const propsLength = propertiesLength(properties, type)
  const length = propsLength > 0 ? 1 + varintLength(propsLength) + propsLength : code !== 0 ? 1 : 0
  const [buffer, start] = allocPacket(first, length)
  let o = start
  if (length > 0) {
    buffer[o++] = code
    if (propsLength > 0) o = writeProperties(buffer, o, properties, propsLength)
  }
  return checkWritten(buffer, o, what)
}
