import { UnsupportedProtocolVersionError } from '../packet/errors.js'
import type { MqttError } from '../packet/errors.js'
import { ConnectReturnCode, ReasonCode, VALID_REASON_CODE_TABLE } from '../packet/reason-codes.js'
import type { ConnackPacket, ProtocolLevel } from '../packet/types.js'

/** A CONNACK refusing a CONNECT that could not be decoded, and the level to encode it at. */
export interface Refusal {
  connack: ConnackPacket
  level: ProtocolLevel
}

/**
 * The CONNACK to send for a CONNECT that failed to decode, or undefined when the connection should
 * just close:
 * - an unsupported protocol version gets 0x84 (MQTT 5) or return code 1 (3.1.1) [MQTT-3.1.2-2];
 * - any other error in an MQTT 5 CONNECT gets a CONNACK with its reason code (MQTT 5.0 section 4.13),
 *   or 0x80 when that code is not a CONNACK code;
 * - 3.1/3.1.1 have no code for other errors: close.
 * `connectLevel` is the level byte read ahead of decoding (`sniffConnectLevel`), 0 when unknown.
 */
export function refusalFor(error: MqttError, connectLevel: number): Refusal | undefined {
  if (error instanceof UnsupportedProtocolVersionError) {
    return error.protocolLevel === 5
      ? { connack: { type: 'connack', sessionPresent: false, reasonCode: ReasonCode.UnsupportedProtocolVersion }, level: 5 }
      : {
          connack: { type: 'connack', sessionPresent: false, reasonCode: ConnectReturnCode.UnacceptableProtocolVersion },
          level: 4
        }
  }
  if (connectLevel !== 5) return undefined
  const code = VALID_REASON_CODE_TABLE.connack[error.reasonCode] === 1 ? error.reasonCode : ReasonCode.UnspecifiedError
  return { connack: { type: 'connack', sessionPresent: false, reasonCode: code }, level: 5 }
}

/**
 * The protocol level byte of a CONNECT starting at the beginning of `chunk`, or 0 when the chunk
 * does not hold that far: type byte, remaining length (1-4 bytes), protocol name (2-byte length +
 * bytes), level.
 */
export function sniffConnectLevel(chunk: Buffer): number {
  if (chunk[0] !== 0x10) return 0
  let i = 1
  while (i < 5 && i < chunk.length && (chunk[i]! & 0x80) !== 0) i++
  i++
  if (i + 2 > chunk.length) return 0
  const nameLength = chunk.readUInt16BE(i)
  const at = i + 2 + nameLength
  return at < chunk.length ? chunk[at]! : 0
}

