import { ProtocolError } from './errors.js'
import { allocPacket, checkPacketId, checkWritten } from './header.js'
import { propertiesLength, readProperties, writeProperties } from './properties.js'
import type { Reader } from './reader.js'
import { checkReasonCodeForEncode, readReasonCode } from './reason.js'
import type { EncodedPublish } from './publish-template.js'
import type { AckPacket, ProtocolLevel } from './types.js'
import { varintLength } from './varint.js'

export type AckType = 'puback' | 'pubrec' | 'pubrel' | 'pubcomp'

const FIRST_BYTE: Record<AckType, number> = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 }
/** Names for errors, made once: no string is built per acknowledgement on the hot path. */
const WHAT: Record<AckType, string> = { puback: 'PUBACK', pubrec: 'PUBREC', pubrel: 'PUBREL', pubcomp: 'PUBCOMP' }
const ID_LABEL: Record<AckType, string> = {
  puback: 'PUBACK packet identifier',
  pubrec: 'PUBREC packet identifier',
  pubrel: 'PUBREL packet identifier',
  pubcomp: 'PUBCOMP packet identifier'
}

/**
 * The short form of each acknowledgement (packet identifier only, reason 0, no properties: the same
 * 4 bytes at every protocol level) as a template whose packet identifier is patched in while it is
 * copied into an output batch (`OutputBatch.pushPublish`, `writePublish`): acknowledging costs no
 * Buffer and no encoding. The bytes must never be written (their identifier bytes stay zero).
 */
export const SHORT_ACKS: Readonly<Record<AckType, EncodedPublish>> = {
  puback: { bytes: Buffer.from([FIRST_BYTE.puback, 2, 0, 0]), packetIdOffset: 2 },
  pubrec: { bytes: Buffer.from([FIRST_BYTE.pubrec, 2, 0, 0]), packetIdOffset: 2 },
  pubrel: { bytes: Buffer.from([FIRST_BYTE.pubrel, 2, 0, 0]), packetIdOffset: 2 },
  pubcomp: { bytes: Buffer.from([FIRST_BYTE.pubcomp, 2, 0, 0]), packetIdOffset: 2 }
}

/** Whether `part` is one of the `SHORT_ACKS` templates. */
export function isShortAck(part: unknown): boolean {
  return part === SHORT_ACKS.puback || part === SHORT_ACKS.pubrec || part === SHORT_ACKS.pubrel || part === SHORT_ACKS.pubcomp
}

/** The `SHORT_ACKS` template that encodes `packet`, or undefined when it needs its long form (or is invalid). */
export function shortAck(packet: AckPacket<AckType>): EncodedPublish | undefined {
  const id = packet.packetId
  if ((packet.reasonCode ?? 0) !== 0 || packet.properties !== undefined || !(id >= 1 && id <= 0xffff && (id | 0) === id)) return undefined
  return SHORT_ACKS[packet.type]
}

/**
 * Decode PUBACK, PUBREC, PUBREL or PUBCOMP (sections 3.4–3.7): a packet identifier, and in MQTT 5
 * an optional reason code and properties (remaining length 2 means success, no properties).
 */
export function decodeAck<T extends AckType>(type: T, r: Reader, level: ProtocolLevel): AckPacket<T> {
  const what = WHAT[type]
  const packetId = r.u16(ID_LABEL[type])
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
  const what = WHAT[packet.type]
  const packetId = checkPacketId(packet.packetId, what)
  const code = packet.reasonCode ?? 0
  if (code === 0 && packet.properties === undefined) {
    // The common case at every level: 4 bytes, written directly.
    const buffer = Buffer.allocUnsafe(4)
    buffer[0] = FIRST_BYTE[packet.type]
    buffer[1] = 2
    buffer[2] = packetId >> 8
    buffer[3] = packetId & 0xff
    return buffer
  }
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
