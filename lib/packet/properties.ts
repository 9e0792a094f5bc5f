import { MalformedPacketError, ProtocolError } from './errors.js'
import type { Reader } from './reader.js'
import type { Properties, PropertyName, UserProperty } from './types.js'
import { varintLength, writeVarint } from './varint.js'

/** Which packets a property may appear in: one bit per kind. */
export const PropertyContext = {
  connect: 1 << 0,
  connack: 1 << 1,
  publish: 1 << 2,
  ack: 1 << 3,
  subscribe: 1 << 4,
  suback: 1 << 5,
  unsubscribe: 1 << 6,
  unsuback: 1 << 7,
  disconnect: 1 << 8,
  auth: 1 << 9,
  will: 1 << 10
} as const

export type PropertyContextName = keyof typeof PropertyContext

type Kind = 'bool' | 'qos01' | 'u16' | 'u16nz' | 'u32' | 'u32nz' | 'varint' | 'string' | 'binary' | 'pair'

interface PropertyDef {
  id: number
  name: PropertyName
  kind: Kind
  /** Bitmask of `PropertyContext`. */
  allowed: number
  /** Contexts in which the property may appear more than once. */
  repeatable: number
}

const C = PropertyContext
const ALL = C.connect | C.connack | C.publish | C.ack | C.subscribe | C.suback | C.unsubscribe | C.unsuback | C.disconnect | C.auth | C.will

/** Every MQTT 5 property (section 2.2.2.2, table 2-4). */
const DEFS: PropertyDef[] = [
  { id: 0x01, name: 'payloadFormatIndicator', kind: 'bool', allowed: C.publish | C.will, repeatable: 0 },
  { id: 0x02, name: 'messageExpiryInterval', kind: 'u32', allowed: C.publish | C.will, repeatable: 0 },
  { id: 0x03, name: 'contentType', kind: 'string', allowed: C.publish | C.will, repeatable: 0 },
  { id: 0x08, name: 'responseTopic', kind: 'string', allowed: C.publish | C.will, repeatable: 0 },
  { id: 0x09, name: 'correlationData', kind: 'binary', allowed: C.publish | C.will, repeatable: 0 },
  // Several in a PUBLISH from the server [MQTT-3.3.4-3]; at most one in SUBSCRIBE.
  { id: 0x0b, name: 'subscriptionIdentifiers', kind: 'varint', allowed: C.publish | C.subscribe, repeatable: C.publish },
  { id: 0x11, name: 'sessionExpiryInterval', kind: 'u32', allowed: C.connect | C.connack | C.disconnect, repeatable: 0 },
  { id: 0x12, name: 'assignedClientIdentifier', kind: 'string', allowed: C.connack, repeatable: 0 },
  { id: 0x13, name: 'serverKeepAlive', kind: 'u16', allowed: C.connack, repeatable: 0 },
  { id: 0x15, name: 'authenticationMethod', kind: 'string', allowed: C.connect | C.connack | C.auth, repeatable: 0 },
  { id: 0x16, name: 'authenticationData', kind: 'binary', allowed: C.connect | C.connack | C.auth, repeatable: 0 },
  { id: 0x17, name: 'requestProblemInformation', kind: 'bool', allowed: C.connect, repeatable: 0 },
  { id: 0x18, name: 'willDelayInterval', kind: 'u32', allowed: C.will, repeatable: 0 },
  { id: 0x19, name: 'requestResponseInformation', kind: 'bool', allowed: C.connect, repeatable: 0 },
  { id: 0x1a, name: 'responseInformation', kind: 'string', allowed: C.connack, repeatable: 0 },
  { id: 0x1c, name: 'serverReference', kind: 'string', allowed: C.connack | C.disconnect, repeatable: 0 },
  {
    id: 0x1f,
    name: 'reasonString',
    kind: 'string',
    allowed: C.connack | C.ack | C.suback | C.unsuback | C.disconnect | C.auth,
    repeatable: 0
  },
  { id: 0x21, name: 'receiveMaximum', kind: 'u16nz', allowed: C.connect | C.connack, repeatable: 0 },
  { id: 0x22, name: 'topicAliasMaximum', kind: 'u16', allowed: C.connect | C.connack, repeatable: 0 },
  // Alias 0 is the engine's to refuse (DISCONNECT 0x94 Topic Alias invalid) [MQTT-3.3.2-8].
  { id: 0x23, name: 'topicAlias', kind: 'u16', allowed: C.publish, repeatable: 0 },
  { id: 0x24, name: 'maximumQoS', kind: 'qos01', allowed: C.connack, repeatable: 0 },
  { id: 0x25, name: 'retainAvailable', kind: 'bool', allowed: C.connack, repeatable: 0 },
  { id: 0x26, name: 'userProperties', kind: 'pair', allowed: ALL, repeatable: ALL },
  { id: 0x27, name: 'maximumPacketSize', kind: 'u32nz', allowed: C.connect | C.connack, repeatable: 0 },
  { id: 0x28, name: 'wildcardSubscriptionAvailable', kind: 'bool', allowed: C.connack, repeatable: 0 },
  { id: 0x29, name: 'subscriptionIdentifiersAvailable', kind: 'bool', allowed: C.connack, repeatable: 0 },
  { id: 0x2a, name: 'sharedSubscriptionAvailable', kind: 'bool', allowed: C.connack, repeatable: 0 }
]

const BY_ID: (PropertyDef | undefined)[] = []
const BY_NAME = new Map<string, PropertyDef>()
for (const def of DEFS) {
  BY_ID[def.id] = def
  BY_NAME.set(def.name, def)
}

/** The property identifier of a property name (for error messages and tests). */
export function propertyId(name: PropertyName): number {
  return (BY_NAME.get(name) as PropertyDef).id
}

/**
 * Read a property list (length + properties) for a packet of kind `context`. Returns undefined
 * for an empty list. Properties come out in wire order (object key order). Checks: known
 * identifier, allowed in this packet, not repeated unless allowed, values in range.
 */
export function readProperties(reader: Reader, context: PropertyContextName, what: string): Properties | undefined {
  const length = reader.varint(`${what} property length`)
  if (length === 0) return undefined
  const end = reader.pos + length
  if (end > reader.end) throw new MalformedPacketError(`${what}: property length runs past the end of the packet`)
  const bit = PropertyContext[context]
  const props: Record<string, unknown> = {}
  let seenLow = 0
  let seenHigh = 0
  const outerEnd = reader.end
  reader.end = end
  try {
    while (reader.pos < end) {
      const id = reader.varint(`${what} property identifier`)
      const def = BY_ID[id]
      if (def === undefined) {
        throw new MalformedPacketError(`${what}: unknown property identifier 0x${id.toString(16)}`)
      }
      if ((def.allowed & bit) === 0) {
        // "A Control Packet which contains an Identifier which is not valid for its packet type
        // ... is a Malformed Packet" (5.0 section 2.2.2.2).
        throw new MalformedPacketError(`${what}: property ${def.name} is not allowed in this packet`)
      }
      const mask = 1 << (id & 31)
      const seen = id < 32 ? seenLow & mask : seenHigh & mask
      if (seen !== 0 && (def.repeatable & bit) === 0) {
        throw new ProtocolError(`${what}: property ${def.name} included more than once`)
      }
      if (id < 32) seenLow |= mask
      else seenHigh |= mask
      readValue(reader, def, props, what)
    }
  } finally {
    reader.end = outerEnd
  }
  return props as Properties
}

function readValue(reader: Reader, def: PropertyDef, props: Record<string, unknown>, what: string): void {
  const label = `${what} ${def.name}`
  switch (def.kind) {
    case 'bool': {
      const v = reader.u8(label)
      if (v > 1) throw new ProtocolError(`${label}: value ${v} is neither 0 nor 1`)
      props[def.name] = v === 1
      return
    }
    case 'qos01': {
      const v = reader.u8(label)
      if (v > 1) throw new ProtocolError(`${label}: value ${v} is neither 0 nor 1`)
      props[def.name] = v
      return
    }
    case 'u16':
      props[def.name] = reader.u16(label)
      return
    case 'u16nz': {
      const v = reader.u16(label)
      if (v === 0) throw new ProtocolError(`${label}: value 0 is not allowed`)
      props[def.name] = v
      return
    }
    case 'u32':
      props[def.name] = reader.u32(label)
      return
    case 'u32nz': {
      const v = reader.u32(label)
      if (v === 0) throw new ProtocolError(`${label}: value 0 is not allowed`)
      props[def.name] = v
      return
    }
    case 'varint': {
      const v = reader.varint(label)
      // "It is a Protocol Error if the Subscription Identifier has a value of 0" (3.8.2.1.2).
      if (v === 0) throw new ProtocolError(`${label}: subscription identifier 0 is not allowed`)
      const list = props[def.name] as number[] | undefined
      if (list === undefined) props[def.name] = [v]
      else list.push(v)
      return
    }
    case 'string':
      props[def.name] = reader.string(label)
      return
    case 'binary':
      props[def.name] = reader.binary(label)
      return
    case 'pair': {
      const name = reader.string(`${label} name`)
      const value = reader.string(`${label} value`)
      const list = props[def.name] as UserProperty[] | undefined
      if (list === undefined) props[def.name] = [[name, value]]
      else list.push([name, value])
      return
    }
  }
}

/**
 * Bytes of the property list's content (without its own length prefix) for `props` in `context`.
 * Properties not allowed in the context are refused with a TypeError (encoding is the caller's
 * programming, not the peer's input). Undefined-valued keys are skipped.
 */
export function propertiesLength(props: Properties | undefined, context: PropertyContextName): number {
  if (props === undefined) return 0
  const bit = PropertyContext[context]
  let length = 0
  for (const name in props) {
    const value = (props as Record<string, unknown>)[name]
    if (value === undefined) continue
    const def = BY_NAME.get(name)
    if (def === undefined) throw new TypeError(`unknown MQTT property ${name}`)
    if ((def.allowed & bit) === 0) throw new TypeError(`property ${name} is not allowed in ${context}`)
    length += valueLength(def, value)
  }
  return length
}

function valueLength(def: PropertyDef, value: unknown): number {
  switch (def.kind) {
    case 'bool':
    case 'qos01':
      return 2
    case 'u16':
    case 'u16nz':
      return 3
    case 'u32':
    case 'u32nz':
      return 5
    case 'varint': {
      const list = value as number[]
      if (!Array.isArray(list)) throw new TypeError(`${def.name} must be an array of numbers`)
      let n = 0
      for (const v of list) {
        checkVarint(def, v)
        n += 1 + varintLength(v)
      }
      return n
    }
    case 'string':
      return 3 + stringBytes(def.name, value as string)
    case 'binary':
      return 3 + binaryBytes(def.name, value as Buffer)
    case 'pair': {
      const list = value as UserProperty[]
      let n = 0
      for (const [k, v] of list) n += 5 + stringBytes(def.name, k) + stringBytes(def.name, v)
      return n
    }
  }
}

function checkVarint(def: PropertyDef, v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > 268_435_455) {
    throw new TypeError(`${def.name}: ${v} is not in 1..268,435,455`)
  }
}

/** UTF-8 byte length of a string field, checked against the 65,535 limit. */
export function stringBytes(what: string, value: string): number {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string`)
  const n = Buffer.byteLength(value, 'utf8')
  if (n > 65_535) throw new TypeError(`${what} is longer than 65,535 bytes`)
  return n
}

function binaryBytes(what: string, value: Buffer): number {
  if (!Buffer.isBuffer(value)) throw new TypeError(`${what} must be a Buffer`)
  if (value.length > 65_535) throw new TypeError(`${what} is longer than 65,535 bytes`)
  return value.length
}

/** Write a property list with its length prefix; `length` is `propertiesLength(props, context)`. */
export function writeProperties(target: Buffer, offset: number, props: Properties | undefined, length: number): number {
  offset = writeVarint(target, offset, length)
  if (props === undefined || length === 0) return offset
  for (const name in props) {
    const value = (props as Record<string, unknown>)[name]
    if (value === undefined) continue
    const def = BY_NAME.get(name) as PropertyDef
    offset = writeValue(target, offset, def, value)
  }
  return offset
}

function writeValue(target: Buffer, offset: number, def: PropertyDef, value: unknown): number {
  switch (def.kind) {
    case 'bool':
      target[offset++] = def.id
      target[offset++] = value === true ? 1 : 0
      return offset
    case 'qos01':
      target[offset++] = def.id
      target[offset++] = value as number
      return offset
    case 'u16':
    case 'u16nz':
      target[offset++] = def.id
      target.writeUInt16BE(value as number, offset)
      return offset + 2
    case 'u32':
    case 'u32nz':
      target[offset++] = def.id
      target.writeUInt32BE(value as number, offset)
      return offset + 4
    case 'varint':
      for (const v of value as number[]) {
        target[offset++] = def.id
        offset = writeVarint(target, offset, v)
      }
      return offset
    case 'string':
      target[offset++] = def.id
      return writeString(target, offset, value as string)
    case 'binary':
      target[offset++] = def.id
      return writeBinary(target, offset, value as Buffer)
    case 'pair':
      for (const [k, v] of value as UserProperty[]) {
        target[offset++] = def.id
        offset = writeString(target, offset, k)
        offset = writeString(target, offset, v)
      }
      return offset
  }
}

/**
 * Write a UTF-8 Encoded String (two-byte length + bytes). `byteLength`, when the caller already
 * knows it, lets an ASCII string (byte length = string length) take the faster latin1 write.
 */
export function writeString(target: Buffer, offset: number, value: string, byteLength?: number): number {
  const n =
    byteLength === value.length
      ? target.write(value, offset + 2, byteLength, 'latin1')
      : target.write(value, offset + 2, 'utf8')
  target[offset] = n >> 8
  target[offset + 1] = n & 0xff
  return offset + 2 + n
}

/** Write Binary Data (two-byte length + bytes). */
export function writeBinary(target: Buffer, offset: number, value: Buffer): number {
  target[offset] = value.length >> 8
  target[offset + 1] = value.length & 0xff
  value.copy(target, offset + 2)
  return offset + 2 + value.length
}
