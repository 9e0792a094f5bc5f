import { MalformedPacketError, ProtocolError } from './errors.js'
import { allocPacket, checkPacketId, checkWritten } from './header.js'
import { propertiesLength, readProperties, writeProperties } from './properties.js'
import type { Reader } from './reader.js'
import { checkReasonCodeForEncode, readReasonCode } from './reason.js'
import type { ProtocolLevel, SubackPacket, UnsubackPacket } from './types.js'
import { varintLength } from './varint.js'

/** Decode a SUBACK (section 3.9): granted QoS or failure per subscription. */
export function decodeSuback(r: Reader, level: ProtocolLevel): SubackPacket {
  const what = 'SUBACK'
  const packetId = r.u16(`${what} packet identifier`)
  if (packetId === 0) throw new ProtocolError(`${what}: packet identifier 0 [MQTT-2.2.1-3]`)
  const packet: SubackPacket = { type: 'suback', packetId, reasonCodes: [] }
  if (level === 5) {
    const properties = readProperties(r, 'suback', what)
    if (properties !== undefined) packet.properties = properties
  }
  if (r.remaining === 0) throw new MalformedPacketError(`${what}: no return codes`)
  while (r.remaining > 0) {
    if (level === 5) {
      packet.reasonCodes.push(readReasonCode(r, 'suback', what))
    } else {
      const code = r.u8(`${what} return code`)
      // 3.1.1 allows 0x00, 0x01, 0x02 and 0x80 [MQTT-3.9.3-2].
      if (code > 2 && code !== 0x80) throw new MalformedPacketError(`${what}: return code 0x${code.toString(16)} is reserved`)
      packet.reasonCodes.push(code)
    }
  }
  return packet
}

/** Decode an UNSUBACK (section 3.11): reason codes and properties only in MQTT 5. */
export function decodeUnsuback(r: Reader, level: ProtocolLevel): UnsubackPacket {
  const what = 'UNSUBACK'
  const packetId = r.u16(`${what} packet identifier`)
  if (packetId === 0) throw new ProtocolError(`${what}: packet identifier 0 [MQTT-2.2.1-3]`)
  const packet: UnsubackPacket = { type: 'unsuback', packetId }
  if (level === 5) {
    const properties = readProperties(r, 'unsuback', what)
    if (properties !== undefined) packet.properties = properties
    if (r.remaining === 0) throw new MalformedPacketError(`${what}: no reason codes`)
    const codes: number[] = []
    while (r.remaining > 0) codes.push(readReasonCode(r, 'unsuback', what))
    packet.reasonCodes = codes
  }
  r.done(what)
  return packet
}

/** Encode a SUBACK. */
export function encodeSuback(packet: SubackPacket, level: ProtocolLevel): Buffer {
  return encodeCodes(0x90, 'suback', packet.packetId, packet.reasonCodes, packet.properties, level, true)
}

/** Encode an UNSUBACK (reason codes only at MQTT 5). */
export function encodeUnsuback(packet: UnsubackPacket, level: ProtocolLevel): Buffer {
  return encodeCodes(0xb0, 'unsuback', packet.packetId, packet.reasonCodes ?? [], packet.properties, level, false)
}

function encodeCodes(
  first: number,
  type: 'suback' | 'unsuback',
  id: number,
  codes: number[],
  properties: SubackPacket['properties'],
  level: ProtocolLevel,
  codesBefore5: boolean
): Buffer {
  const what = type.toUpperCase()
  const packetId = checkPacketId(id, what)
  let length = 2
  let propsLength = 0
  const withCodes = level === 5 || codesBefore5
  if (level === 5) {
    propsLength = propertiesLength(properties, type)
    length += varintLength(propsLength) + propsLength
    if (codes.length === 0) throw new TypeError(`${what}: at least one reason code is required`)
    for (const c of codes) checkReasonCodeForEncode(c, type, what)
  } else if (codesBefore5) {
    if (codes.length === 0) throw new TypeError(`${what}: at least one return code is required`)
    for (const c of codes) if (c !== 0 && c !== 1 && c !== 2 && c !== 0x80) throw new TypeError(`${what}: bad return code ${c}`)
  }
  if (withCodes) length += codes.length
  const [buffer, start] = allocPacket(first, length)
  buffer.writeUInt16BE(packetId, start)
  let o = start + 2
  if (level === 5) o = writeProperties(buffer, o, properties, propsLength)
  if (withCodes) for (const c of codes) buffer[o++] = c
  return checkWritten(buffer, o, what)
}
