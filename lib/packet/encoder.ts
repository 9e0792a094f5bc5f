import { encodeAck } from './ack.js'
import { encodeConnack } from './connack.js'
import { encodeConnect } from './connect.js'
import { encodeAuth, encodeDisconnect } from './disconnect.js'
import { encodePublish } from './publish.js'
import { encodeSubscribe } from './subscribe.js'
import { encodeSuback, encodeUnsuback } from './suback.js'
import type { Packet, ProtocolLevel } from './types.js'
import { encodeUnsubscribe } from './unsubscribe.js'

const PINGREQ = Buffer.from([0xc0, 0x00])
const PINGRESP = Buffer.from([0xd0, 0x00])

/**
 * Encode one packet to its exact bytes, in one allocation. A CONNECT is encoded at its own
 * `protocolLevel`; every other packet at `protocolLevel` (default 4). At levels 3 and 4 the
 * MQTT 5-only parts (properties, reason codes of acknowledgements) are left out.
 *
 * Throws `TypeError` for a packet that cannot be encoded (a missing or out-of-range packet id, a
 * string over 65,535 bytes, a property not allowed in the packet, AUTH before MQTT 5): these are
 * programming errors of the caller, not input from a peer.
 * PINGREQ and PINGRESP return shared constant buffers: do not modify them.
 */
export function encode(packet: Packet, protocolLevel: ProtocolLevel = 4): Buffer {
  switch (packet.type) {
    case 'publish':
      return encodePublish(packet, protocolLevel)
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return encodeAck(packet, protocolLevel)
    case 'connect':
      return encodeConnect(packet)
    case 'connack':
      return encodeConnack(packet, protocolLevel)
    case 'subscribe':
      return encodeSubscribe(packet, protocolLevel)
    case 'suback':
      return encodeSuback(packet, protocolLevel)
    case 'unsubscribe':
      return encodeUnsubscribe(packet, protocolLevel)
    case 'unsuback':
      return encodeUnsuback(packet, protocolLevel)
    case 'pingreq':
      return PINGREQ
    case 'pingresp':
      return PINGRESP
    case 'disconnect':
      return encodeDisconnect(packet, protocolLevel)
    case 'auth':
      return encodeAuth(packet, protocolLevel)
    default: {
      const unknown: never = packet
      throw new TypeError(`cannot encode packet type ${String((unknown as { type?: unknown }).type)}`)
    }
  }
}

/** The size in bytes of `encode(packet, protocolLevel)`. */
export function encodedLength(packet: Packet, protocolLevel: ProtocolLevel = 4): number {
  return encode(packet, protocolLevel).length
}

