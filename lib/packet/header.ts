import { MAX_VARINT, varintLength, writeVarint } from './varint.js'

/**
 * Allocate a whole packet of `bodyLength` bytes after the fixed header, write the fixed header
 * (`firstByte` = type << 4 | flags, then the remaining length), and return the buffer with the
 * offset where the body starts. One allocation per encoded packet.
 */
export function allocPacket(firstByte: number, bodyLength: number): [buffer: Buffer, offset: number] {
  if (bodyLength > MAX_VARINT) throw new TypeError(`packet body of ${bodyLength} bytes exceeds the MQTT maximum`)
  const buffer = Buffer.allocUnsafe(1 + varintLength(bodyLength) + bodyLength)
  buffer[0] = firstByte
  return [buffer, writeVarint(buffer, 1, bodyLength)]
}

/** Check a packet identifier for encoding: 1..65,535 [MQTT-2.2.1-3]. */
export function checkPacketId(packetId: number | undefined, what: string): number {
  if (packetId === undefined || !Number.isInteger(packetId) || packetId < 1 || packetId > 65_535) {
    throw new TypeError(`${what}: packetId must be an integer in 1..65,535 (got ${String(packetId)})`)
  }
  return packetId
}

/** Check that the encoder wrote exactly what it planned (a bug guard, cheap). */
export function checkWritten(buffer: Buffer, offset: number, what: string): Buffer {
  if (offset !== buffer.length) throw new Error(`internal error: ${what} encoded ${offset} of ${buffer.length} bytes`)
  return buffer
}
