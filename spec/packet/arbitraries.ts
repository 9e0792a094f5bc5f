/**
 * fast-check arbitraries for VALID MQTT packets of every type at every protocol level (3, 4, 5), in
 * the exact shape our decoder produces for them (see lib/packet/types.ts and the codec notes): the
 * round trip `decode(encode(p)) deep-equals p` holds for every generated `p`.
 *
 * "Valid" means: accepted by a conforming receiver. Strings are well-formed UTF-8 without U+0000 or
 * surrogates [MQTT-1.5.4-1] [MQTT-1.5.4-2]; topic names carry no wildcard [MQTT-3.3.2-2] and are not
 * empty [MQTT-4.7.3-1] (except a v5 PUBLISH with a topic alias); topic filters put wildcards only
 * where they may stand [MQTT-4.7.1-1] [MQTT-4.7.1-2]; packet ids are 1..65535 [MQTT-2.2.1-3];
 * QoS 0 PUBLISH has DUP 0 [MQTT-3.3.1-2]; reason codes are ones the packet type allows; v5
 * properties appear only in packets that allow them, with values in their legal ranges.
 *
 * `mode: 'mqtt-packet'` narrows the arbitraries to what mqtt-packet 9 can represent and generate
 * (user property names unique per packet; see spec/packet/differential.spec.ts for each disagreement
 * and the statement that decides it).
 */
import fc from 'fast-check'
import type { Arbitrary } from 'fast-check'
import type {
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  PacketType,
  ProtocolLevel,
  PublishPacket,
  QoS,
  SubackPacket,
  SubscribePacket,
  Subscription,
  UnsubackPacket,
  UnsubscribePacket,
  UserProperty,
  Will
} from '../../lib/packet/types.js'

/** Which peer the generated packets must be representable by. */
export type ArbitraryMode = 'full' | 'mqtt-packet'

/** Options of the packet arbitraries. */
export interface PacketArbitraryOptions {
  /** 'full' (default): everything valid. 'mqtt-packet': only what mqtt-packet 9 round-trips. */
  mode?: ArbitraryMode
  /** Largest payload / binary field generated (default 20_000: remaining lengths of 1 to 3 varint bytes). */
  maxPayload?: number
}

/** A packet with the level it is encoded at. */
export interface LeveledPacket {
  level: ProtocolLevel
  packet: Packet
}

/** Every packet type, AUTH last (it exists at level 5 only). */
export const PACKET_TYPES: readonly PacketType[] = [
  'connect', 'connack', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe',
  'suback', 'unsubscribe', 'unsuback', 'pingreq', 'pingresp', 'disconnect', 'auth'
]

/** The levels at which a packet type exists. */
export function levelsOf(type: PacketType): ProtocolLevel[] {
  return type === 'auth' ? [5] : [3, 4, 5]
}

/** MQTT 5 reason codes allowed per packet type (MQTT 5.0 section 2.4 and each packet's table). */
export const V5_REASON_CODES = {
  connack: [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f],
  puback: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrec: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrel: [0x00, 0x92],
  pubcomp: [0x00, 0x92],
  suback: [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2],
  unsuback: [0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91],
  disconnect: [0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2],
  auth: [0x00, 0x18, 0x19]
} as const

// ---------------------------------------------------------------------------------------------
// Scalars

/**
 * One Unicode scalar value as a string: no U+0000 [MQTT-1.5.4-2], no surrogate [MQTT-1.5.4-1],
 * no U+FFFE/U+FFFF. Mostly printable ASCII, with control characters, 2-, 3- and 4-byte sequences
 * and U+FEFF (which must not be stripped [MQTT-1.5.4-3]).
 */
const codePoint: Arbitrary<string> = fc
  .oneof(
    { weight: 12, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
    { weight: 1, arbitrary: fc.integer({ min: 0x01, max: 0x1f }) },
    { weight: 2, arbitrary: fc.integer({ min: 0x80, max: 0x7ff }) },
    { weight: 2, arbitrary: fc.integer({ min: 0x800, max: 0xd7ff }) },
    { weight: 1, arbitrary: fc.integer({ min: 0xe000, max: 0xfffd }) },
    { weight: 1, arbitrary: fc.constant(0xfeff) },
    { weight: 2, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }) }
  )
  .map((cp) => String.fromCodePoint(cp))

/** A code point that may stand inside a topic level: no '/', '+', '#'. */
const levelCodePoint = codePoint.filter((c) => c !== '/' && c !== '+' && c !== '#')

/** A UTF-8 string (any content a UTF-8 Encoded String may hold). */
export function utf8String(maxLength = 12, minLength = 0): Arbitrary<string> {
  return fc.string({ unit: codePoint, minLength, maxLength })
}

const u16 = fc.integer({ min: 0, max: 0xffff })
const u32 = fc.integer({ min: 0, max: 0xffffffff })
/** Packet identifiers are non-zero [MQTT-2.2.1-3]. */
export const packetIdArb = fc.integer({ min: 1, max: 0xffff })
const qosArb: Arbitrary<QoS> = fc.constantFrom(0, 1, 2)
/** Subscription identifiers: 1..268,435,455 (0 is a protocol error) [MQTT-3.8.2.1.2]. */
const subscriptionIdArb = fc.oneof(
  fc.integer({ min: 1, max: 127 }),
  fc.integer({ min: 128, max: 16_383 }),
  fc.integer({ min: 1, max: 268_435_455 })
)

/** Deterministic pseudo-random bytes (fast for large sizes, unlike one arbitrary per byte). */
export function fillBytes(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length)
  let x = seed | 0 || 0x9e3779b9
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

/** Binary data: mostly short, sometimes up to `max` bytes. */
export function bytesArb(max: number): Arbitrary<Buffer> {
  const small = Math.min(max, 48)
  return fc.oneof(
    { weight: 6, arbitrary: fc.uint8Array({ maxLength: small }).map((a) => Buffer.from(a)) },
    { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 0, max: Math.min(max, 600) }), fc.integer()).map(([n, s]) => fillBytes(n, s)) },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max }), fc.integer()).map(([n, s]) => fillBytes(n, s)) }
  )
}

/** A topic name: levels without wildcards, never empty [MQTT-3.3.2-2] [MQTT-4.7.3-1]. */
export const topicNameArb: Arbitrary<string> = fc
  .array(fc.string({ unit: levelCodePoint, maxLength: 8 }), { minLength: 1, maxLength: 5 })
  .map((levels) => levels.join('/'))
  .filter((t) => t.length > 0)

/** A topic filter: '+' as a whole level, '#' only as the last level [MQTT-4.7.1-1] [MQTT-4.7.1-2]. */
export function topicFilterArb(level: ProtocolLevel): Arbitrary<string> {
  const plain = fc
    .tuple(
      fc.array(fc.oneof({ weight: 4, arbitrary: fc.string({ unit: levelCodePoint, maxLength: 8 }) }, { weight: 1, arbitrary: fc.constant('+') }), { minLength: 1, maxLength: 5 }),
      fc.boolean()
    )
    .map(([levels, hash]) => (hash ? [...levels, '#'] : levels).join('/'))
    .filter((f) => f.length > 0)
  const hashOnly = fc.constant('#')
  if (level < 5) return fc.oneof({ weight: 8, arbitrary: plain }, { weight: 1, arbitrary: hashOnly })
  // Shared subscription: $share/{ShareName}/{filter}, ShareName without '/', '+', '#' [MQTT-4.8.2-1] [MQTT-4.8.2-2].
  const shared = fc
    .tuple(fc.string({ unit: levelCodePoint, minLength: 1, maxLength: 6 }), fc.oneof(plain, hashOnly))
    .map(([name, filter]) => `$share/${name}/${filter}`)
  return fc.oneof({ weight: 6, arbitrary: plain }, { weight: 1, arbitrary: hashOnly }, { weight: 1, arbitrary: shared })
}

/** True when the filter is a shared subscription (no-local is forbidden there [MQTT-3.8.3-4]). */
export function isShared(filter: string): boolean {
  return filter.startsWith('$share/')
}

// ---------------------------------------------------------------------------------------------
// Properties

/** User properties; names repeat in 'full' mode (order and repetition matter [MQTT-3.3.2-18]). */
export function userPropertiesArb(mode: ArbitraryMode): Arbitrary<UserProperty[]> {
  const pair = fc.tuple(fc.oneof(utf8String(8), fc.constantFrom('a', 'key', '1', 'ключ')), utf8String(10))
  if (mode === 'mqtt-packet') {
    return fc.uniqueArray(pair, { selector: (p) => p[0], minLength: 1, maxLength: 4 }).map((a) => a.map((p): UserProperty => [p[0], p[1]]))
  }
  return fc.array(pair, { minLength: 1, maxLength: 5 }).map((a) => a.map((p): UserProperty => [p[0], p[1]]))
}

/** An object without the keys whose value is undefined (decoded packets have no undefined keys). */
export function compact<T extends object>(o: T): T {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v
  return out as T
}

/**
 * Some of the given properties, or none (`undefined`): a third of the time none, a third a sparse
 * subset (each property with probability 1/2), a third most of them.
 */
function propsArb<T extends object>(model: { [K in keyof T]: Arbitrary<T[K]> }): Arbitrary<Partial<T> | undefined> {
  const sparseModel: Record<string, Arbitrary<unknown>> = {}
  for (const [key, arb] of Object.entries(model) as [string, Arbitrary<unknown>][]) sparseModel[key] = fc.option(arb, { nil: undefined, freq: 2 })
  const finish = (p: Partial<T>): Partial<T> | undefined => {
    const c = compact(p)
    return Object.keys(c).length === 0 ? undefined : c
  }
  return fc.oneof(
    fc.constant(undefined),
    fc.record(sparseModel, { noNullPrototype: true }).map((p) => finish(p as Partial<T>)),
    fc.record(model, { requiredKeys: [], noNullPrototype: true }).map((p) => finish(p as Partial<T>))
  )
}

/** Authentication Data only together with Authentication Method (MQTT 5.0 3.1.2.11.10, 3.2.2.3.18, 3.15.2.2.3). */
function fixAuth<T extends { authenticationMethod?: string; authenticationData?: Buffer }>(p: T | undefined): T | undefined {
  if (p === undefined || p.authenticationData === undefined || p.authenticationMethod !== undefined) return p
  const { authenticationData: _drop, ...rest } = p
  return Object.keys(rest).length === 0 ? undefined : (rest as T)
}

// ---------------------------------------------------------------------------------------------
// Packets

function willArb(level: ProtocolLevel, o: Required<PacketArbitraryOptions>): Arbitrary<Will> {
  return fc
    .record({
      topic: topicNameArb,
      payload: bytesArb(Math.min(o.maxPayload, 2000)),
      qos: qosArb,
      retain: fc.boolean(),
      properties:
        level === 5
          ? propsArb({
              willDelayInterval: u32,
              payloadFormatIndicator: fc.boolean(),
              messageExpiryInterval: u32,
              contentType: utf8String(),
              responseTopic: topicNameArb,
              correlationData: bytesArb(32),
              userProperties: userPropertiesArb(o.mode)
            })
          : fc.constant(undefined)
    }, { noNullPrototype: true })
    .map((w) => compact(w))
}

function connectArb(level: ProtocolLevel, o: Required<PacketArbitraryOptions>): Arbitrary<ConnectPacket> {
  // MQTT 3.1: client id of 1..23 characters; 3.1.1/5.0: may be empty.
  const clientId = level === 3 ? fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 23 }) : utf8String(23)
  return fc
    .record({
      clean: fc.boolean(),
      keepalive: u16,
      clientId,
      username: fc.option(utf8String(), { nil: undefined }),
      password: fc.option(bytesArb(32), { nil: undefined }),
      will: fc.option(willArb(level, o), { nil: undefined }),
      properties:
        level === 5
          ? propsArb({
              sessionExpiryInterval: u32,
              receiveMaximum: fc.integer({ min: 1, max: 0xffff }),
              maximumPacketSize: fc.integer({ min: 1, max: 0xffffffff }),
              topicAliasMaximum: u16,
              requestResponseInformation: fc.boolean(),
              requestProblemInformation: fc.boolean(),
              userProperties: userPropertiesArb(o.mode),
              authenticationMethod: utf8String(),
              authenticationData: bytesArb(32)
            })
          : fc.constant(undefined)
    }, { noNullPrototype: true })
    .map((c) => {
      let { clean, password } = c
      // A zero-byte client id requires Clean Session at 3.1.1 [MQTT-3.1.3-7]; mqtt-packet demands it at 5.0 too.
      if (c.clientId === '' && (level === 4 || o.mode === 'mqtt-packet')) clean = true
      // Password without user name: forbidden at 3.1/3.1.1 [MQTT-3.1.2-22], allowed at 5.0
      // (3.1.2.9) but not generated by mqtt-packet.
      if (c.username === undefined && (level < 5 || o.mode === 'mqtt-packet')) password = undefined
      return compact<ConnectPacket>({
        type: 'connect',
        protocolName: level === 3 ? 'MQIsdp' : 'MQTT',
        protocolLevel: level,
        clean,
        keepalive: c.keepalive,
        clientId: c.clientId,
        username: c.username,
        password,
        will: c.will,
        properties: fixAuth(c.properties)
      })
    })
}

function connackArb(level: ProtocolLevel, o: Required<PacketArbitraryOptions>): Arbitrary<ConnackPacket> {
  const codes = level === 5 ? fc.constantFrom(...V5_REASON_CODES.connack) : fc.integer({ min: 0, max: 5 })
  return fc
    .record({
      sessionPresent: fc.boolean(),
      reasonCode: codes,
      properties:
        level === 5
          ? propsArb({
              sessionExpiryInterval: u32,
              receiveMaximum: fc.integer({ min: 1, max: 0xffff }),
              maximumQoS: fc.constantFrom<0 | 1>(0, 1),
              retainAvailable: fc.boolean(),
              maximumPacketSize: fc.integer({ min: 1, max: 0xffffffff }),
              assignedClientIdentifier: utf8String(23),
              topicAliasMaximum: u16,
              reasonString: utf8String(),
              userProperties: userPropertiesArb(o.mode),
              wildcardSubscriptionAvailable: fc.boolean(),
              subscriptionIdentifiersAvailable: fc.boolean(),
              sharedSubscriptionAvailable: fc.boolean(),
              serverKeepAlive: u16,
              responseInformation: utf8String(),
              serverReference: utf8String(),
              authenticationMethod: utf8String(),
              authenticationData: bytesArb(32)
            })
          : fc.constant(undefined)
    }, { noNullPrototype: true })
    .map((c) =>
      compact<ConnackPacket>({
        type: 'connack',
        // Session Present is 0 with a non-zero code [MQTT-3.2.2-4] [MQTT-3.2.2-6]; 3.1 has no such flag.
        sessionPresent: level > 3 && c.reasonCode === 0 && c.sessionPresent,
        reasonCode: c.reasonCode,
        properties: fixAuth(c.properties)
      })
    )
}

function publishArb(level: ProtocolLevel, o: Required<PacketArbitraryOptions>): Arbitrary<PublishPacket> {
  return fc
    .record({
      qos: qosArb,
      retain: fc.boolean(),
      dup: fc.boolean(),
      packetId: packetIdArb,
      topic: level === 5 ? fc.oneof({ weight: 8, arbitrary: topicNameArb }, { weight: 1, arbitrary: fc.constant('') }) : topicNameArb,
      payload: bytesArb(o.maxPayload),
      utf8Payload: utf8String(40),
      properties:
        level === 5
          ? propsArb({
              payloadFormatIndicator: fc.boolean(),
              messageExpiryInterval: u32,
              topicAlias: fc.integer({ min: 1, max: 0xffff }),
              responseTopic: topicNameArb,
              correlationData: bytesArb(64),
              userProperties: userPropertiesArb(o.mode),
              subscriptionIdentifiers: fc.array(subscriptionIdArb, { minLength: 1, maxLength: 3 }),
              contentType: utf8String()
            })
          : fc.constant(undefined)
    }, { noNullPrototype: true })
    .map((p) => {
      let properties = p.properties
      // An empty topic name needs a topic alias (3.3.2.3.4) [MQTT-3.3.2-1]
      if (p.topic === '' && properties?.topicAlias === undefined) properties = { ...properties, topicAlias: 1 }
      // Payload Format Indicator 1: the payload is UTF-8 [MQTT-3.3.2-4].
      const payload = properties?.payloadFormatIndicator === true ? Buffer.from(p.utf8Payload, 'utf8') : p.payload
      return compact<PublishPacket>({
        type: 'publish',
        topic: p.topic,
        payload,
        qos: p.qos,
        retain: p.retain,
        dup: p.qos > 0 && p.dup, // DUP is 0 for QoS 0 [MQTT-3.3.1-2]
        packetId: p.qos > 0 ? p.packetId : undefined,
        properties
      })
    })
}

/**
 * Acks with reason code and properties in the decoded shape: properties present => reason code
 * present (it precedes them on the wire); no properties => reason code absent or non-zero (0 with
 * no properties is the short form, which decodes without `reasonCode`).
 */
function reasonAndProps<P extends object>(
  level: ProtocolLevel,
  codes: readonly number[],
  props: Arbitrary<P | undefined>
): Arbitrary<{ reasonCode?: number; properties?: P }> {
  if (level < 5) return fc.constant({})
  return fc.tuple(fc.constantFrom(...codes), props).map(([reasonCode, properties]) => {
    if (properties !== undefined) return { reasonCode, properties }
    return reasonCode === 0 ? {} : { reasonCode }
  })
}

function ackProps(o: Required<PacketArbitraryOptions>): Arbitrary<{ reasonString?: string; userProperties?: UserProperty[] } | undefined> {
  return propsArb({ reasonString: utf8String(), userProperties: userPropertiesArb(o.mode) })
}

function pubAckArb(type: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp', level: ProtocolLevel, o: Required<PacketArbitraryOptions>): Arbitrary<Packet> {
  return fc
    .tuple(packetIdArb, reasonAndProps(level, V5_REASON_CODES[type], ackProps(o)))
    .map(([packetId, rp]) => compact({ type, packetId, ...rp }) as Packet)
}

function subscribeArb(level: ProtocolLevel, o: Required<PacketArbitraryOptions>): Arbitrary<SubscribePacket> {
  const sub: Arbitrary<Subscription> = fc
    .record({
      topicFilter: topicFilterArb(level),
      qos: qosArb,
      noLocal: fc.boolean(),
      retainAsPublished: fc.boolean(),
      retainHandling: fc.constantFrom<0 | 1 | 2>(0, 1, 2)
    }, { noNullPrototype: true })
    .map((s): Subscription =>
      level < 5
        ? { topicFilter: s.topicFilter, qos: s.qos }
        : { ...s, noLocal: s.noLocal && !isShared(s.topicFilter) }
    )
  return fc
    .record({
      packetId: packetIdArb,
      subscriptions: fc.array(sub, { minLength: 1, maxLength: 4 }),
      properties:
        level === 5
          ? propsArb({
              subscriptionIdentifiers: subscriptionIdArb.map((n) => [n]),
              userProperties: userPropertiesArb(o.mode)
            })
          : fc.constant(undefined)
    }, { noNullPrototype: true })
    .map((s) => compact<SubscribePacket>({ type: 'subscribe', ...s }))
}

function subackArb(level: ProtocolLevel, o: Required<PacketArbitraryOptions>): Arbitrary<SubackPacket> {
  const codes = level === 5 ? V5_REASON_CODES.suback : level === 4 ? [0, 1, 2, 0x80] : [0, 1, 2]
  return fc
    .record({
      packetId: packetIdArb,
      reasonCodes: fc.array(fc.constantFrom(...codes), { minLength: 1, maxLength: 6 }),
      properties: level === 5 ? ackProps(o) : fc.constant(undefined)
    }, { noNullPrototype: true })
    .map((s) => compact<SubackPacket>({ type: 'suback', ...s }))
}

function unsubscribeArb(level: ProtocolLevel, o: Required<PacketArbitraryOptions>): Arbitrary<UnsubscribePacket> {
  return fc
    .record({
      packetId: packetIdArb,
      topicFilters: fc.array(topicFilterArb(level), { minLength: 1, maxLength: 4 }),
      properties: level === 5 ? propsArb({ userProperties: userPropertiesArb(o.mode) }) : fc.constant(undefined)
    }, { noNullPrototype: true })
    .map((s) => compact<UnsubscribePacket>({ type: 'unsubscribe', ...s }))
}

function unsubackArb(level: ProtocolLevel, o: Required<PacketArbitraryOptions>): Arbitrary<UnsubackPacket> {
  return fc
    .record({
      packetId: packetIdArb,
      reasonCodes: level === 5 ? fc.array(fc.constantFrom(...V5_REASON_CODES.unsuback), { minLength: 1, maxLength: 6 }) : fc.constant(undefined),
      properties: level === 5 ? ackProps(o) : fc.constant(undefined)
    }, { noNullPrototype: true })
    .map((s) => compact<UnsubackPacket>({ type: 'unsuback', ...s }))
}

function disconnectArb(level: ProtocolLevel, o: Required<PacketArbitraryOptions>): Arbitrary<DisconnectPacket> {
  const props = propsArb({
    sessionExpiryInterval: u32,
    reasonString: utf8String(),
    userProperties: userPropertiesArb(o.mode),
    serverReference: utf8String()
  })
  return reasonAndProps(level, V5_REASON_CODES.disconnect, props).map((rp) => compact<DisconnectPacket>({ type: 'disconnect', ...rp }))
}

/**
 * AUTH: the abbreviated form (remaining length 0: Success, no properties) or a reason code with
 * properties that include the Authentication Method, whose omission is a protocol error (3.15.2.2.2).
 * mqtt-packet cannot parse the abbreviated form (see differential.spec.ts), so that mode leaves it out.
 */
function authArb(o: Required<PacketArbitraryOptions>): Arbitrary<AuthPacket> {
  const full = fc
    .record({
      reasonCode: fc.constantFrom(...V5_REASON_CODES.auth),
      method: utf8String(),
      props: propsArb({ authenticationData: bytesArb(64), reasonString: utf8String(), userProperties: userPropertiesArb(o.mode) })
    }, { noNullPrototype: true })
    .map(({ reasonCode, method, props }): AuthPacket => ({ type: 'auth', reasonCode, properties: { authenticationMethod: method, ...props } }))
  if (o.mode === 'mqtt-packet') return full
  return fc.oneof({ weight: 1, arbitrary: fc.constant<AuthPacket>({ type: 'auth' }) }, { weight: 6, arbitrary: full })
}

/** Valid packets of one type at one level, in decoded shape. */
export function packetArbitrary(type: PacketType, level: ProtocolLevel, options: PacketArbitraryOptions = {}): Arbitrary<Packet> {
  const o: Required<PacketArbitraryOptions> = { mode: options.mode ?? 'full', maxPayload: options.maxPayload ?? 20_000 }
  switch (type) {
    case 'connect': return connectArb(level, o)
    case 'connack': return connackArb(level, o)
    case 'publish': return publishArb(level, o)
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp': return pubAckArb(type, level, o)
    case 'subscribe': return subscribeArb(level, o)
    case 'suback': return subackArb(level, o)
    case 'unsubscribe': return unsubscribeArb(level, o)
    case 'unsuback': return unsubackArb(level, o)
    case 'pingreq': return fc.constant({ type: 'pingreq' })
    case 'pingresp': return fc.constant({ type: 'pingresp' })
    case 'disconnect': return disconnectArb(level, o)
    case 'auth':
      if (level !== 5) throw new RangeError('AUTH exists at level 5 only')
      return authArb(o)
  }
}

/** Valid packets of one type at any level where the type exists, with their level. */
export function leveledArbitrary(type: PacketType, options: PacketArbitraryOptions = {}): Arbitrary<LeveledPacket> {
  return fc.oneof(...levelsOf(type).map((level) => packetArbitrary(type, level, options).map((packet): LeveledPacket => ({ level, packet }))))
}

/** Valid packets of any type at any level. */
export function anyPacketArbitrary(options: PacketArbitraryOptions = {}): Arbitrary<LeveledPacket> {
  return fc.oneof(...PACKET_TYPES.map((t) => leveledArbitrary(t, options)))
}
