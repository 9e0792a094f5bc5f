/**
 * MQTT control packets as a discriminated union on `type`, for protocol levels 3 (MQTT 3.1),
 * 4 (MQTT 3.1.1) and 5 (MQTT 5.0).
 *
 * One shape serves every level: fields that exist only in MQTT 5 (reason codes on acknowledgements,
 * properties, subscription options) are optional, and the encoder leaves them out at levels 3 and 4.
 * Binary data (payloads, passwords, correlation and authentication data) is a `Buffer`. Packets
 * produced by the decoder may hold views (`subarray`) of the input chunk: copy a payload with
 * `Buffer.from(payload)` before keeping it where the input chunk must not be retained.
 */

/** Protocol level byte of CONNECT: 3 = MQTT 3.1, 4 = MQTT 3.1.1, 5 = MQTT 5.0. */
export type ProtocolLevel = 3 | 4 | 5

/** Quality of service level. */
export type QoS = 0 | 1 | 2

/** A user property: a name/value pair. Order and repetition are significant [MQTT-3.3.2-18]. */
export type UserProperty = readonly [name: string, value: string]

/**
 * Every MQTT 5 property, by name. Which ones a packet may carry is checked by the decoder and the
 * encoder (see `PROPERTY_ALLOWED` in `properties.ts`); the per-packet property types below narrow
 * this for the reader.
 */
export interface Properties {
  /** 0x01. PUBLISH, Will. true = payload is UTF-8 character data. */
  payloadFormatIndicator?: boolean
  /** 0x02. PUBLISH, Will. Seconds. */
  messageExpiryInterval?: number
  /** 0x03. PUBLISH, Will. */
  contentType?: string
  /** 0x08. PUBLISH, Will. */
  responseTopic?: string
  /** 0x09. PUBLISH, Will. */
  correlationData?: Buffer
  /**
   * 0x0B. In SUBSCRIBE: at most one, 1..268,435,455. In PUBLISH (server to client): one per
   * matching subscription that had one [MQTT-3.3.4-3].
   */
  subscriptionIdentifiers?: number[]
  /** 0x11. CONNECT, CONNACK, DISCONNECT. Seconds; 0xFFFFFFFF = never expires. */
  sessionExpiryInterval?: number
  /** 0x12. CONNACK. */
  assignedClientIdentifier?: string
  /** 0x13. CONNACK. Seconds. */
  serverKeepAlive?: number
  /** 0x15. CONNECT, CONNACK, AUTH. */
  authenticationMethod?: string
  /** 0x16. CONNECT, CONNACK, AUTH. */
  authenticationData?: Buffer
  /** 0x17. CONNECT. */
  requestProblemInformation?: boolean
  /** 0x18. Will. Seconds. */
  willDelayInterval?: number
  /** 0x19. CONNECT. */
  requestResponseInformation?: boolean
  /** 0x1A. CONNACK. */
  responseInformation?: string
  /** 0x1C. CONNACK, DISCONNECT. */
  serverReference?: string
  /** 0x1F. CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH. */
  reasonString?: string
  /** 0x21. CONNECT, CONNACK. 1..65,535 (0 is a protocol error). */
  receiveMaximum?: number
  /** 0x22. CONNECT, CONNACK. */
  topicAliasMaximum?: number
  /** 0x23. PUBLISH. 1..65,535. */
  topicAlias?: number
  /** 0x24. CONNACK. 0 or 1 (absent means 2). */
  maximumQoS?: 0 | 1
  /** 0x25. CONNACK. */
  retainAvailable?: boolean
  /** 0x26. Every packet that has properties. Order preserved, names may repeat. */
  userProperties?: UserProperty[]
  /** 0x27. CONNECT, CONNACK. Bytes, 1..4,294,967,295 (0 is a protocol error). */
  maximumPacketSize?: number
  /** 0x28. CONNACK. */
  wildcardSubscriptionAvailable?: boolean
  /** 0x29. CONNACK. */
  subscriptionIdentifiersAvailable?: boolean
  /** 0x2A. CONNACK. */
  sharedSubscriptionAvailable?: boolean
}

/** Names of the properties, as a union of string literals. */
export type PropertyName = keyof Properties

export type ConnectProperties = Pick<
  Properties,
  | 'sessionExpiryInterval'
  | 'receiveMaximum'
  | 'maximumPacketSize'
  | 'topicAliasMaximum'
  | 'requestResponseInformation'
  | 'requestProblemInformation'
  | 'userProperties'
  | 'authenticationMethod'
  | 'authenticationData'
>

export type WillProperties = Pick<
  Properties,
  | 'willDelayInterval'
  | 'payloadFormatIndicator'
  | 'messageExpiryInterval'
  | 'contentType'
  | 'responseTopic'
  | 'correlationData'
  | 'userProperties'
>

export type ConnackProperties = Pick<
  Properties,
  | 'sessionExpiryInterval'
  | 'receiveMaximum'
  | 'maximumQoS'
  | 'retainAvailable'
  | 'maximumPacketSize'
  | 'assignedClientIdentifier'
  | 'topicAliasMaximum'
  | 'reasonString'
  | 'userProperties'
  | 'wildcardSubscriptionAvailable'
  | 'subscriptionIdentifiersAvailable'
  | 'sharedSubscriptionAvailable'
  | 'serverKeepAlive'
  | 'responseInformation'
  | 'serverReference'
  | 'authenticationMethod'
  | 'authenticationData'
>

export type PublishProperties = Pick<
  Properties,
  | 'payloadFormatIndicator'
  | 'messageExpiryInterval'
  | 'topicAlias'
  | 'responseTopic'
  | 'correlationData'
  | 'userProperties'
  | 'subscriptionIdentifiers'
  | 'contentType'
>

/** PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK. */
export type AckProperties = Pick<Properties, 'reasonString' | 'userProperties'>

export type SubscribeProperties = Pick<Properties, 'subscriptionIdentifiers' | 'userProperties'>

export type UnsubscribeProperties = Pick<Properties, 'userProperties'>

export type DisconnectProperties = Pick<
  Properties,
  'sessionExpiryInterval' | 'reasonString' | 'userProperties' | 'serverReference'
>

export type AuthProperties = Pick<
  Properties,
  'authenticationMethod' | 'authenticationData' | 'reasonString' | 'userProperties'
>

/** The will message carried by CONNECT. */
export interface Will {
  topic: string
  payload: Buffer
  qos: QoS
  retain: boolean
  /** MQTT 5 only. */
  properties?: WillProperties
}

export interface ConnectPacket {
  type: 'connect'
  /** 'MQIsdp' at level 3, 'MQTT' at levels 4 and 5. The encoder derives it when absent. */
  protocolName?: 'MQTT' | 'MQIsdp'
  protocolLevel: ProtocolLevel
  /** Clean Session (3.1, 3.1.1) or Clean Start (5.0). */
  clean: boolean
  /** Seconds; 0 disables keepalive. */
  keepalive: number
  /** May be empty (3.1.1 with clean session, 5.0). */
  clientId: string
  username?: string
  /** Binary at 3.1.1/5.0; 3.1 allows any string, also carried as bytes. */
  password?: Buffer
  will?: Will
  /** MQTT 5 only. */
  properties?: ConnectProperties
}

export interface ConnackPacket {
  type: 'connack'
  sessionPresent: boolean
  /** The CONNACK return code (3.1, 3.1.1: 0..5) or reason code (5.0). */
  reasonCode: number
  /** MQTT 5 only. */
  properties?: ConnackProperties
}

export interface PublishPacket {
  type: 'publish'
  /** May be empty in MQTT 5 when a topic alias stands for it. */
  topic: string
  payload: Buffer
  qos: QoS
  retain: boolean
  dup: boolean
  /** Present (1..65,535) exactly when qos > 0. */
  packetId?: number
  /** MQTT 5 only. */
  properties?: PublishProperties
}

/** PUBACK, PUBREC, PUBREL and PUBCOMP: identical layout. */
export interface AckPacket<T extends 'puback' | 'pubrec' | 'pubrel' | 'pubcomp'> {
  type: T
  packetId: number
  /** MQTT 5 only; absent means 0x00 success. */
  reasonCode?: number
  /** MQTT 5 only. */
  properties?: AckProperties
}

export type PubackPacket = AckPacket<'puback'>
export type PubrecPacket = AckPacket<'pubrec'>
export type PubrelPacket = AckPacket<'pubrel'>
export type PubcompPacket = AckPacket<'pubcomp'>

/** One entry of a SUBSCRIBE payload. */
export interface Subscription {
  topicFilter: string
  /** The requested maximum QoS. */
  qos: QoS
  /** MQTT 5 only. */
  noLocal?: boolean
  /** MQTT 5 only. */
  retainAsPublished?: boolean
  /** MQTT 5 only: 0 send retained on subscribe, 1 only if the subscription is new, 2 never. */
  retainHandling?: 0 | 1 | 2
}

export interface SubscribePacket {
  type: 'subscribe'
  packetId: number
  subscriptions: Subscription[]
  /** MQTT 5 only. */
  properties?: SubscribeProperties
}

export interface SubackPacket {
  type: 'suback'
  packetId: number
  /** One per subscription: the granted QoS (0..2) or a failure code (0x80 and up). */
  reasonCodes: number[]
  /** MQTT 5 only. */
  properties?: AckProperties
}

export interface UnsubscribePacket {
  type: 'unsubscribe'
  packetId: number
  topicFilters: string[]
  /** MQTT 5 only. */
  properties?: UnsubscribeProperties
}

export interface UnsubackPacket {
  type: 'unsuback'
  packetId: number
  /** MQTT 5 only: one per topic filter. */
  reasonCodes?: number[]
  /** MQTT 5 only. */
  properties?: AckProperties
}

export interface PingreqPacket {
  type: 'pingreq'
}

export interface PingrespPacket {
  type: 'pingresp'
}

export interface DisconnectPacket {
  type: 'disconnect'
  /** MQTT 5 only; absent means 0x00 normal disconnection. */
  reasonCode?: number
  /** MQTT 5 only. */
  properties?: DisconnectProperties
}

/** MQTT 5 only. */
export interface AuthPacket {
  type: 'auth'
  /** Absent means 0x00 success. */
  reasonCode?: number
  properties?: AuthProperties
}

export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | PubackPacket
  | PubrecPacket
  | PubrelPacket
  | PubcompPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingreqPacket
  | PingrespPacket
  | DisconnectPacket
  | AuthPacket

export type PacketType = Packet['type']

/** Control packet type numbers (the high nibble of the first byte). */
export const PacketTypeCode = {
  connect: 1,
  connack: 2,
  publish: 3,
  puback: 4,
  pubrec: 5,
  pubrel: 6,
  pubcomp: 7,
  subscribe: 8,
  suback: 9,
  unsubscribe: 10,
  unsuback: 11,
  pingreq: 12,
  pingresp: 13,
  disconnect: 14,
  auth: 15
} as const satisfies Record<PacketType, number>

/** Packet type names indexed by type number; index 0 is reserved. */
export const PACKET_TYPE_NAMES: readonly (PacketType | undefined)[] = [
  undefined,
  'connect',
  'connack',
  'publish',
  'puback',
  'pubrec',
  'pubrel',
  'pubcomp',
  'subscribe',
  'suback',
  'unsubscribe',
  'unsuback',
  'pingreq',
  'pingresp',
  'disconnect',
  'auth'
]
