import { decodeAll } from '../../packet/index.js'
import type { ProtocolLevel, PublishPacket } from '../../packet/index.js'

/**
 * Decode a PUBLISH kept in a store (`OutboundEntry.packet`, `InboundEntry.packet`). The contract
 * lets a session store an outbound PUBLISH with any packet identifier bytes — typically zeros,
 * patched on send — which the codec rightly refuses [MQTT-2.2.1-3]; this decodes such bytes
 * (through a copy with a placeholder identifier) and returns the packet with `packetId` set to
 * `packetId` (the entry's, 0 for none). Returns undefined for bytes that are not a PUBLISH.
 */
export function decodeStoredPublish(packet: Buffer, protocolLevel: ProtocolLevel, packetId = 0): PublishPacket | undefined {
  let bytes = packet
  const qos = ((packet[0] ?? 0) >> 1) & 3
  if (packet[0] !== undefined && packet[0] >> 4 === 3 && qos > 0) {
    let at = 1
    while (at < packet.length && ((packet[at++] ?? 0) & 0x80) !== 0);
    if (at + 2 > packet.length) return undefined
    const idAt = at + 2 + packet.readUInt16BE(at)
    if (idAt + 2 > packet.length) return undefined
    if (packet.readUInt16BE(idAt) === 0) {
      bytes = Buffer.from(packet)
      bytes.writeUInt16BE(1, idAt)
    }
  }
  const decoded = decodeAll(bytes, { protocolLevel, role: 'client' }).packets[0]
  if (decoded?.type !== 'publish') return undefined
  if (decoded.qos > 0) decoded.packetId = packetId === 0 ? undefined : packetId
  return decoded
}
