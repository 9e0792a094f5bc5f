/**
 * Mapping between our packet objects (lib/packet/types.ts) and mqtt-packet 9's, for the differential
 * tests and the codec benchmark.
 *
 * Representation differences handled here:
 * - `type` ⇄ `cmd`, `packetId` ⇄ `messageId`, `protocolName`/`protocolLevel` ⇄ `protocolId`/
 *   `protocolVersion`, `topicFilter`/`noLocal`/`retainAsPublished`/`retainHandling` ⇄
 *   `topic`/`nl`/`rap`/`rh`, SUBACK/UNSUBACK `reasonCodes` ⇄ `granted`, UNSUBSCRIBE `topicFilters` ⇄
 *   `unsubscriptions`, CONNACK `reasonCode` ⇄ `returnCode` below level 5.
 * - User properties: ours are ordered `[name, value]` pairs; mqtt-packet's are an object whose
 *   values are a string or, for a repeated name, an array. Order across names is lost (and integer-
 *   like names are enumerated first), so `comparable()` compares them as a sorted multiset.
 * - `subscriptionIdentifiers` (always an array) ⇄ `subscriptionIdentifier` (number or array).
 * - mqtt-packet always reports `reasonCode: 0` on v5 acks, DISCONNECT and AUTH even when it was not
 *   on the wire; `comparable()` drops a zero reason code there, where absent means 0x00.
 */
import type {
  IAuthPacket,
  IConnackPacket,
  IConnectPacket,
  IDisconnectPacket,
  IPublishPacket,
  ISubackPacket,
  ISubscribePacket,
  IUnsubackPacket,
  IUnsubscribePacket,
  Packet as MqttPacket,
  UserProperties as MqttUserProperties
} from 'mqtt-packet'
import type { Packet, ProtocolLevel, Properties, Subscription, UserProperty, Will } from '../../lib/packet/types.js'

/** mqtt-packet's packet object (its `Packet` union). */
export type { MqttPacket }

type Dict = Record<string, unknown>

/** Our user property pairs as mqtt-packet's object (repeated names become arrays). */
export function userPropertiesToMqtt(pairs: readonly UserProperty[]): MqttUserProperties {
  const out = Object.create(null) as Record<string, string | string[]>
  for (const [name, value] of pairs) {
    const prev = out[name]
    if (prev === undefined) out[name] = value
    else if (Array.isArray(prev)) prev.push(value)
    else out[name] = [prev, value]
  }
  return out
}

/** mqtt-packet's user property object as pairs (names in enumeration order, values in order). */
export function userPropertiesFromMqtt(obj: MqttUserProperties): UserProperty[] {
  const out: UserProperty[] = []
  for (const name of Object.getOwnPropertyNames(obj)) {
    const v = obj[name]
    if (Array.isArray(v)) for (const x of v) out.push([name, x])
    else if (v !== undefined) out.push([name, v])
  }
  return out
}

/** Our properties as mqtt-packet's (`undefined` when there are none). */
export function propertiesToMqtt(p: Properties | undefined): Dict | undefined {
  if (p === undefined) return undefined
  const out: Dict = {}
  for (const [k, v] of Object.entries(p)) {
    if (v === undefined) continue
    if (k === 'userProperties') out[k] = userPropertiesToMqtt(v as UserProperty[])
    else if (k === 'subscriptionIdentifiers') {
      const ids = v as number[]
      out.subscriptionIdentifier = ids.length === 1 ? ids[0] : ids
    } else out[k] = v
  }
  return Object.keys(out).length === 0 ? undefined : out
}

/** mqtt-packet's properties as ours (`undefined` when there are none). */
export function propertiesFromMqtt(p: Dict | undefined): Properties | undefined {
  if (p === undefined || p === null) return undefined
  const out: Dict = {}
  for (const [k, v] of Object.entries(p)) {
    if (v === undefined) continue
    if (k === 'userProperties') out[k] = userPropertiesFromMqtt(v as MqttUserProperties)
    else if (k === 'subscriptionIdentifier') out.subscriptionIdentifiers = Array.isArray(v) ? v : [v]
    else out[k] = v
  }
  return Object.keys(out).length === 0 ? undefined : (out as Properties)
}

function withProps<T extends Dict>(o: T, p: Dict | undefined): T {
  if (p !== undefined) (o as Dict).properties = p
  return o
}

/**
 * Our packet as the object mqtt-packet's `generate(obj, { protocolVersion: level })` takes.
 * `level` is the level of the stream (ignored for CONNECT, which carries its own).
 */
export function toMqttPacket(packet: Packet, level: ProtocolLevel): MqttPacket {
  switch (packet.type) {
    case 'connect': {
      const o: Dict = {
        cmd: 'connect',
        protocolId: packet.protocolName ?? (packet.protocolLevel === 3 ? 'MQIsdp' : 'MQTT'),
        protocolVersion: packet.protocolLevel,
        clean: packet.clean,
        keepalive: packet.keepalive,
        clientId: packet.clientId
      }
      if (packet.username !== undefined) o.username = packet.username
      if (packet.password !== undefined) o.password = packet.password
      if (packet.will !== undefined) {
        const w = packet.will
        o.will = withProps({ topic: w.topic, payload: w.payload, qos: w.qos, retain: w.retain }, propertiesToMqtt(w.properties))
      }
      return withProps(o, propertiesToMqtt(packet.properties)) as unknown as IConnectPacket
    }
    case 'connack': {
      const o: Dict = { cmd: 'connack', sessionPresent: packet.sessionPresent }
      if (level === 5) o.reasonCode = packet.reasonCode
      else o.returnCode = packet.reasonCode
      return withProps(o, propertiesToMqtt(packet.properties)) as unknown as IConnackPacket
    }
    case 'publish': {
      const o: Dict = { cmd: 'publish', topic: packet.topic, payload: packet.payload, qos: packet.qos, retain: packet.retain, dup: packet.dup }
      if (packet.packetId !== undefined) o.messageId = packet.packetId
      return withProps(o, propertiesToMqtt(packet.properties)) as unknown as IPublishPacket
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return withProps({ cmd: packet.type, messageId: packet.packetId, reasonCode: packet.reasonCode ?? 0 }, propertiesToMqtt(packet.properties)) as unknown as MqttPacket
    case 'subscribe':
      return withProps(
        {
          cmd: 'subscribe',
          messageId: packet.packetId,
          subscriptions: packet.subscriptions.map((s) => {
            const o: Dict = { topic: s.topicFilter, qos: s.qos }
            if (s.noLocal !== undefined) o.nl = s.noLocal
            if (s.retainAsPublished !== undefined) o.rap = s.retainAsPublished
            if (s.retainHandling !== undefined) o.rh = s.retainHandling
            return o
          })
        },
        propertiesToMqtt(packet.properties)
      ) as unknown as ISubscribePacket
    case 'suback':
      return withProps({ cmd: 'suback', messageId: packet.packetId, granted: [...packet.reasonCodes] }, propertiesToMqtt(packet.properties)) as unknown as ISubackPacket
    case 'unsubscribe':
      return withProps({ cmd: 'unsubscribe', messageId: packet.packetId, unsubscriptions: [...packet.topicFilters] }, propertiesToMqtt(packet.properties)) as unknown as IUnsubscribePacket
    case 'unsuback': {
      const o: Dict = { cmd: 'unsuback', messageId: packet.packetId }
      if (packet.reasonCodes !== undefined) o.granted = [...packet.reasonCodes]
      return withProps(o, propertiesToMqtt(packet.properties)) as unknown as IUnsubackPacket
    }
    case 'pingreq':
    case 'pingresp':
      return { cmd: packet.type }
    case 'disconnect':
      return withProps({ cmd: 'disconnect', reasonCode: packet.reasonCode ?? 0 }, propertiesToMqtt(packet.properties)) as unknown as IDisconnectPacket
    case 'auth':
      return withProps({ cmd: 'auth', reasonCode: packet.reasonCode ?? 0 }, propertiesToMqtt(packet.properties)) as unknown as IAuthPacket
  }
}

/** A field of a parsed mqtt-packet object, untyped. */
function f(o: MqttPacket, name: string): unknown {
  return (o as unknown as Dict)[name]
}

function put<T extends Dict>(o: T, key: string, value: unknown): T {
  if (value !== undefined && value !== null) (o as Dict)[key] = value
  return o
}

/** A packet parsed by mqtt-packet's parser at stream level `level`, as ours. */
export function fromMqttPacket(m: MqttPacket, level: ProtocolLevel): Packet {
  const props = (o: { properties?: unknown }): Properties | undefined => propertiesFromMqtt(o.properties as Dict | undefined)
  switch (m.cmd) {
    case 'connect': {
      const o: Dict = {
        type: 'connect',
        protocolName: m.protocolId,
        protocolLevel: m.protocolVersion,
        clean: m.clean,
        keepalive: m.keepalive,
        clientId: m.clientId
      }
      put(o, 'username', m.username)
      put(o, 'password', m.password)
      if (m.will) {
        const w = m.will
        o.will = put({ topic: w.topic, payload: w.payload, qos: w.qos, retain: w.retain }, 'properties', props(w))
      }
      return put(o, 'properties', props(m)) as unknown as Packet
    }
    case 'connack':
      return put({ type: 'connack', sessionPresent: m.sessionPresent, reasonCode: level === 5 ? m.reasonCode : m.returnCode }, 'properties', props(m)) as unknown as Packet
    case 'publish':
      return put(
        put({ type: 'publish', topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain, dup: m.dup }, 'packetId', m.qos > 0 ? m.messageId : undefined),
        'properties',
        props(m)
      ) as unknown as Packet
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return put(put({ type: m.cmd, packetId: m.messageId }, 'reasonCode', m.reasonCode), 'properties', props(m)) as unknown as Packet
    case 'subscribe':
      return put(
        {
          type: 'subscribe',
          packetId: m.messageId,
          subscriptions: m.subscriptions.map((s) =>
            put(put(put({ topicFilter: s.topic, qos: s.qos }, 'noLocal', s.nl), 'retainAsPublished', s.rap), 'retainHandling', s.rh)
          )
        },
        'properties',
        props(m)
      ) as unknown as Packet
    case 'suback':
      return put({ type: 'suback', packetId: m.messageId, reasonCodes: m.granted }, 'properties', props(m)) as unknown as Packet
    case 'unsubscribe':
      return put({ type: 'unsubscribe', packetId: m.messageId, topicFilters: m.unsubscriptions }, 'properties', props(m)) as unknown as Packet
    case 'unsuback':
      return put(put({ type: 'unsuback', packetId: m.messageId }, 'reasonCodes', f(m, 'granted')), 'properties', props(m)) as unknown as Packet
    case 'pingreq':
    case 'pingresp':
      return { type: m.cmd }
    case 'disconnect':
    case 'auth':
      return put(put({ type: m.cmd }, 'reasonCode', m.reasonCode), 'properties', props(m)) as unknown as Packet
  }
}

const ZERO_MEANS_ABSENT = new Set(['puback', 'pubrec', 'pubrel', 'pubcomp', 'disconnect', 'auth'])

function comparableProps(p: Properties | undefined): Dict | undefined {
  if (p === undefined) return undefined
  const out: Dict = { ...p }
  if (p.userProperties !== undefined) {
    // A sorted multiset: mqtt-packet keeps neither the order across names nor integer-like names' place.
    out.userProperties = p.userProperties
      .map((u) => [u[0], u[1]])
      .sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : a[1]! < b[1]! ? -1 : a[1]! > b[1]! ? 1 : 0))
  }
  return Object.keys(out).length === 0 ? undefined : out
}

/**
 * A normal form in which ours and mqtt-packet's views of one packet are deep-equal: user
 * properties as a sorted multiset, zero reason codes of acks/DISCONNECT/AUTH dropped, no undefined
 * keys. Not a round-trip form.
 */
export function comparable(packet: Packet): Dict {
  const o: Dict = {}
  for (const [k, v] of Object.entries(packet)) {
    if (v === undefined) continue
    if (k === 'properties') put(o, k, comparableProps(v as Properties))
    else if (k === 'will') {
      const { properties, ...rest } = v as Will
      o.will = put({ ...rest }, 'properties', comparableProps(properties))
    } else if (k === 'reasonCode' && v === 0 && ZERO_MEANS_ABSENT.has(packet.type)) continue
    else if (k === 'subscriptions') o[k] = (v as Subscription[]).map((s) => ({ ...s }))
    else o[k] = v
  }
  return o
}
