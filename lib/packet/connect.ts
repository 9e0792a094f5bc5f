import { MalformedPacketError, ProtocolError, UnsupportedProtocolVersionError } from './errors.js'
import { allocPacket, checkWritten } from './header.js'
import { propertiesLength, readProperties, stringBytes, writeBinary, writeProperties, writeString } from './properties.js'
import { checkResponseTopicForDecode, checkTopicNameForDecode } from './publish.js'
import type { Reader } from './reader.js'
import type { ConnectPacket, ProtocolLevel, QoS, Will } from './types.js'
import { varintLength } from './varint.js'

const WHAT = 'CONNECT'

/** Decode the body of a CONNECT (section 3.1). The protocol level comes from the packet itself. */
export function decodeConnect(r: Reader): ConnectPacket {
  // Protocol name and level first: a peer speaking another version gets 0x84 [MQTT-3.1.2-2].
  let protocolName: string
  try {
    protocolName = r.string(`${WHAT} protocol name`)
  } catch (cause) {
    throw new UnsupportedProtocolVersionError(`${WHAT}: unreadable protocol name`, undefined, undefined, { cause })
  }
  const level = r.u8(`${WHAT} protocol level`)
  if (!((protocolName === 'MQTT' && (level === 4 || level === 5)) || (protocolName === 'MQIsdp' && level === 3))) {
    throw new UnsupportedProtocolVersionError(
      `${WHAT}: unsupported protocol ${JSON.stringify(protocolName)} level ${level} [MQTT-3.1.2-1] [MQTT-3.1.2-2]`,
      protocolName,
      level
    )
  }
  const protocolLevel = level as ProtocolLevel
  const flags = r.u8(`${WHAT} flags`)
  // Reserved from 3.1.1 on [MQTT-3.1.2-3]; MQTT 3.1 says the bit is "not used": ignored there.
  if ((flags & 0x01) !== 0 && protocolLevel !== 3) throw new MalformedPacketError(`${WHAT}: reserved flag bit 0 is set [MQTT-3.1.2-3]`)
  const willFlag = (flags & 0x04) !== 0
  const willQoS = (flags >> 3) & 0x03
  const willRetain = (flags & 0x20) !== 0
  const hasPassword = (flags & 0x40) !== 0
  const hasUsername = (flags & 0x80) !== 0
  if (willQoS === 3) throw new MalformedPacketError(`${WHAT}: will QoS 3 [MQTT-3.1.2-12]`)
  if (!willFlag && (willQoS !== 0 || willRetain)) {
    throw new MalformedPacketError(`${WHAT}: will QoS or will retain set without the will flag [MQTT-3.1.2-11] [MQTT-3.1.2-13]`)
  }
  if (protocolLevel < 5 && hasPassword && !hasUsername) {
    throw new MalformedPacketError(`${WHAT}: password flag set without the user name flag [MQTT-3.1.2-22]`)
  }
  const keepalive = r.u16(`${WHAT} keep alive`)
  const packet: ConnectPacket = {
    type: 'connect',
    protocolName: protocolName as 'MQTT' | 'MQIsdp',
    protocolLevel,
    clean: (flags & 0x02) !== 0,
    keepalive,
    clientId: ''
  }
  if (protocolLevel === 5) {
    const properties = readProperties(r, 'connect', WHAT)
    if (properties !== undefined) {
      if (properties.authenticationData !== undefined && properties.authenticationMethod === undefined) {
        // "It is a Protocol Error to include Authentication Data if there is no Authentication Method" (3.1.2.11.10).
        throw new ProtocolError(`${WHAT}: authentication data without an authentication method`)
      }
      packet.properties = properties
    }
  }
  packet.clientId = r.string(`${WHAT} client identifier`)
  if (willFlag) {
    const willProperties = protocolLevel === 5 ? readProperties(r, 'will', `${WHAT} will`) : undefined
    checkResponseTopicForDecode(willProperties?.responseTopic, `${WHAT} will`)
    const topic = r.string(`${WHAT} will topic`)
    checkTopicNameForDecode(topic, `${WHAT} will topic`, false)
    const will: Will = { topic, payload: r.binary(`${WHAT} will payload`), qos: willQoS as QoS, retain: willRetain }
    if (willProperties !== undefined) will.properties = willProperties
    packet.will = will
  }
  if (hasUsername) packet.username = r.string(`${WHAT} user name`)
  if (hasPassword) packet.password = r.binary(`${WHAT} password`)
  r.done(WHAT)
  return packet
}

/** Encode a CONNECT at `packet.protocolLevel`. */
export function encodeConnect(packet: ConnectPacket): Buffer {
  const level = packet.protocolLevel
  if (level !== 3 && level !== 4 && level !== 5) throw new TypeError(`CONNECT: unsupported protocolLevel ${String(level)}`)
  const name = packet.protocolName ?? (level === 3 ? 'MQIsdp' : 'MQTT')
  const v5 = level === 5
  const will = packet.will
  if (packet.password !== undefined && packet.username === undefined && !v5) {
    throw new TypeError('CONNECT: a password needs a user name before MQTT 5 [MQTT-3.1.2-22]')
  }
  let length = 2 + name.length + 1 + 1 + 2 + 2 + stringBytes('clientId', packet.clientId)
  let propsLength = 0
  if (v5) {
    propsLength = propertiesLength(packet.properties, 'connect')
    length += varintLength(propsLength) + propsLength
  }
  let willPropsLength = 0
  if (will !== undefined) {
    if (v5) {
      willPropsLength = propertiesLength(will.properties, 'will')
      length += varintLength(willPropsLength) + willPropsLength
    }
    length += 2 + stringBytes('will topic', will.topic) + 2 + payloadBytes(will.payload, 'will payload')
  }
  if (packet.username !== undefined) length += 2 + stringBytes('username', packet.username)
  if (packet.password !== undefined) length += 2 + payloadBytes(packet.password, 'password')
  const [buffer, start] = allocPacket(0x10, length)
  let o = writeString(buffer, start, name)
  buffer[o++] = level
  let flags = packet.clean ? 0x02 : 0
  if (will !== undefined) flags |= 0x04 | (will.qos << 3) | (will.retain ? 0x20 : 0)
  if (packet.password !== undefined) flags |= 0x40
  if (packet.username !== undefined) flags |= 0x80
  buffer[o++] = flags
  buffer.writeUInt16BE(checkKeepalive(packet.keepalive), o)
  o += 2
  if (v5) o = writeProperties(buffer, o, packet.properties, propsLength)
  o = writeString(buffer, o, packet.clientId)
  if (will !== undefined) {
    if (v5) o = writeProperties(buffer, o, will.properties, willPropsLength)
    o = writeString(buffer, o, will.topic)
    o = writeBinary(buffer, o, will.payload)
  }
  if (packet.username !== undefined) o = writeString(buffer, o, packet.username)
  if (packet.password !== undefined) o = writeBinary(buffer, o, packet.password)
  return checkWritten(buffer, o, WHAT)
}

function checkKeepalive(keepalive: number): number {
  if (!Number.isInteger(keepalive) || keepalive < 0 || keepalive > 65_535) {
    throw new TypeError(`CONNECT: keepalive must be an integer in 0..65,535 (got ${keepalive})`)
  }
  return keepalive
}

function payloadBytes(value: Buffer, what: string): number {
  if (!Buffer.isBuffer(value)) throw new TypeError(`CONNECT: ${what} must be a Buffer`)
  if (value.length > 65_535) throw new TypeError(`CONNECT: ${what} is longer than 65,535 bytes`)
  return value.length
}
