/**
 * Plain types of a client connection shared by its parts and by the options (no code: a leaf of
 * lib/client's import graph, so that no part has to import the `Client` class).
 */
import type { DisconnectProperties, Packet, QoS } from '../packet/index.js'

/** One packet sent or received (`packets$`). */
export interface PacketTrace {
  direction: 'in' | 'out'
  packet: Packet
}

/** Why a connection ended. */
export interface CloseInfo {
  /** Who ended it: the application, the broker (DISCONNECT), the network, or a protocol violation. */
  initiator: 'user' | 'server' | 'network' | 'protocol'
  error?: Error | undefined
}

/** Options of `end()`. */
export interface EndOptions {
  /** MQTT 5 DISCONNECT reason code (default 0x00; 0x04 sends the will). */
  reasonCode?: number
  properties?: DisconnectProperties
  /** Wait up to this long for unfinished QoS 1/2 exchanges before disconnecting (default 0). */
  drainMs?: number
  /** Aborting turns the graceful end into `destroy()` (no DISCONNECT, the will is published). */
  signal?: AbortSignal
}

/** What the broker allows on this connection, from CONNACK (defaults before MQTT 5). */
export interface ClientLimits {
  /** Our in-flight window: min(the broker's Receive Maximum, `maxInflight`). */
  receiveMaximum: number
  /** The largest packet the broker accepts (bytes). */
  maximumPacketSize: number
  /** Topic aliases the broker accepts from us. */
  topicAliasMaximum: number
  maximumQoS: QoS
  retainAvailable: boolean
  wildcardSubscriptionAvailable: boolean
  subscriptionIdentifiersAvailable: boolean
  sharedSubscriptionAvailable: boolean
  /** Seconds (the broker's Server Keep Alive wins). */
  keepalive: number
  /** Our client id (assigned by the broker when we sent an empty one). */
  clientId: string
  /** MQTT 5 Response Information (a base for response topics), when requested and given. */
  responseInformation: string | undefined
}
