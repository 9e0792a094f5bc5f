/** Options of `Client.connect` (and, shared, of `Service`), with their defaults. */
import type { ConnectProperties, ProtocolLevel, QoS, WillProperties } from '../packet/index.js'
import type { Awaitable } from '../util/awaitable.js'
import type { PacketTrace } from './client-types.js'
import type { Clock } from './clock.js'
import type { DialOptions, Dialer } from './dial.js'
import type { ClientSession } from './session.js'

/** Credentials given as a function are asked again for every connection attempt (token refresh). */
export type Secret = string | Buffer | (() => Awaitable<string | Buffer>)

/** MQTT 5 enhanced authentication (AUTH exchange). */
export interface EnhancedAuth {
  /** The Authentication Method (e.g. "SCRAM-SHA-256"). */
  method: string
  /** Initial Authentication Data of CONNECT. */
  data?: () => Awaitable<Buffer | undefined>
  /**
   * Answer the server's AUTH "continue authentication" (0x18) challenge: return the data to send
   * back. Throwing aborts the connect with the thrown error.
   */
  challenge(data: Buffer | undefined): Awaitable<Buffer | undefined>
}

/** The will message. */
export interface WillOptions {
  topic: string
  payload: Buffer | string
  qos?: QoS
  retain?: boolean
  properties?: WillProperties
}

export interface ClientOptions extends DialOptions {
  /** Broker URL (`mqtt://`, `mqtts://`, `ws://`, `wss://`, `mqtt+unix:///path`), unless `dialer` is given. */
  url?: string
  /** A custom transport (tests: the in-memory pair). */
  dialer?: Dialer
  /** 3 (MQTT 3.1), 4 (3.1.1, default) or 5. */
  protocolVersion?: ProtocolLevel
  /** Default: empty (5.0 and 3.1.1 with clean; the broker assigns one) or a random one at 3.1. */
  clientId?: string
  /** Clean Session / Clean Start (default true). */
  clean?: boolean
  /** Seconds (default 60); 0 turns keepalive off. A v5 Server Keep Alive wins. */
  keepalive?: number
  username?: string
  password?: Secret
  will?: WillOptions
  /**
   * MQTT 5 CONNECT properties. `receiveMaximum` (default 256) and `maximumPacketSize` are enforced on
   * inbound traffic; `topicAliasMaximum` (default 0) lets the broker use aliases towards us. With
   * `clean: false` and no `sessionExpiryInterval`, 0xFFFFFFFF is sent (what `clean: false` means in 3.1.1).
   */
  properties?: ConnectProperties
  /** MQTT 5 enhanced authentication. */
  auth?: EnhancedAuth
  /** Dial + CONNECT + CONNACK must finish within this (default 10,000 ms). */
  connectTimeoutMs?: number
  /** No answer within this after a PINGREQ ⇒ the connection is dead (default min(keepalive/2, 10 s)). */
  pingTimeoutMs?: number
  /** Our own QoS 1/2 in-flight window (the broker's Receive Maximum may lower it). Default 1,000. */
  maxInflight?: number
  /** MQTT 5: assign topic aliases to QoS 0 publishes automatically (up to the broker's maximum). Default false. */
  topicAliases?: boolean
  /** Inbound QoS 1/2 messages are acknowledged only by `message.ack()` (default: when every observer of `messages$` returned). */
  manualAck?: boolean
  /** Session state carried across connections (a Service gives its own); default a fresh one. */
  session?: ClientSession
  /** What to do with QoS 1/2 messages in doubt when the broker has no session: send again as new ('republish', default) or reject them ('fail'). */
  onSessionLost?: 'republish' | 'fail'
  /** Time source (specs inject a virtual clock). */
  clock?: Clock
  /**
   * Called with every packet in both directions from CONNECT on, synchronously (tracing, `mqttc
   * -d`); the same as observing `Client.packets$`, but it also sees CONNECT and CONNACK. Inbound
   * packets may hold views of the socket chunk: copy what you keep.
   */
  onPacket?: (trace: PacketTrace) => void
  /** Covers the whole connect. */
  signal?: AbortSignal
}

export const DEFAULT_KEEPALIVE = 60
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
export const DEFAULT_RECEIVE_MAXIMUM = 256
export const DEFAULT_MAX_INFLIGHT = 1000
