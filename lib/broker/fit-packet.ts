import { encode } from '../packet/index.js'
import type { Packet } from '../packet/types.js'

/**
 * A server packet for an MQTT 5 client adjusted to what the client asked for:
 * - with Request Problem Information 0, no Reason String or User Property on anything but
 *   PUBLISH, CONNACK and DISCONNECT [MQTT-3.1.2-29];
 * - a packet larger than the client's Maximum Packet Size loses its Reason String and User
 *   Properties first ([MQTT-3.2.2-19] [MQTT-3.2.2-20] [MQTT-3.4.2-2] [MQTT-3.4.2-3] and the same
 *   rule for every acknowledgement, DISCONNECT and AUTH).
 * `encodedLength` is the size of `packet` as it is. Returns the packet (the same object when nothing changed) or undefined when it still does not fit
 * in `maximumPacketSize`: it must not be sent [MQTT-3.1.2-24].
 */
export function fitPacket(
  packet: Packet,
  problemInformation: boolean,
  maximumPacketSize: number,
  encodedLength: number
): Packet | undefined {
  if (packet.type === 'publish') return encodedLength > maximumPacketSize ? undefined : packet
  let out: Packet = packet
  if (!problemInformation && packet.type !== 'connack' && packet.type !== 'disconnect') out = stripped(out)
  if ((out === packet ? encodedLength : encode(out, 5).length) <= maximumPacketSize) return out
  out = stripped(out)
  return encode(out, 5).length <= maximumPacketSize ? out : undefined
}

/** `packet` without Reason String and User Properties (the same object when it has neither). */
function stripped(packet: Packet): Packet {
  if (!('properties' in packet) || packet.properties === undefined) return packet
  const properties = packet.properties as { reasonString?: string; userProperties?: unknown }
  if (properties.reasonString === undefined && properties.userProperties === undefined) return packet
  const { reasonString: _reason, userProperties: _user, ...rest } = properties
  const copy: Record<string, unknown> = { ...packet }
  if (Object.keys(rest).length > 0) copy.properties = rest
  else delete copy.properties
  return copy as unknown as Packet
}
