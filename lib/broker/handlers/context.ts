import type { Backend, ClientHandle } from '../../backend/backend.js'
import type { MqttError } from '../../packet/errors.js'
import type { ConnectPacket, ConnectProperties, Packet, ProtocolLevel } from '../../packet/types.js'
import type { OutgoingRecord, Session, StoredWill } from '../../session/session.js'
import type { ConnectionInfo } from '../../transport/connection.js'
import type { BrokerClient, DisconnectReason, EventHub } from '../events.js'
import type { Logger } from '../logger.js'
import type { BrokerStats } from '../stats.js'
import type { TenantCounters } from '../sys.js'
import type { ResolvedOptions } from '../options.js'
import type { ConnectFlow } from './connect.js'
import type { Admission } from '../admission.js'

/**
 * The last step of a PUBLISH whose handling went asynchronous: it sends the acknowledgement (or
 * closes the connection). The connection runs these steps in the order the PUBLISH packets arrived.
 */
export type PublishStep = () => void

/**
 * What a packet handler may see and do: a narrow view of one connection. Handlers never reach the
 * connection's socket, decoder or output buffers.
 */
export interface HandlerContext {
  /** This connection as backends see it (pass it to every Backend call). */
  readonly handle: ClientHandle
  /** This connection as events carry it. */
  readonly view: BrokerClient
  readonly clientId: string
  readonly protocolLevel: ProtocolLevel
  readonly backend: Backend
  readonly options: ResolvedOptions
  readonly log: Logger
  readonly events: EventHub
  /**
   * The session. Only read it once CONNECT's session step ran: the dispatcher calls every handler
   * but CONNECT only after that. Throws before.
   */
  readonly session: Session
  /** Queue a packet for this connection (written with the rest of the batch). */
  send(packet: Packet): void
  /**
   * Close the connection because of `error` (malformed packet, protocol violation, backend failure):
   * MQTT 5 clients get DISCONNECT with `error.reasonCode` first; the will is published.
   */
  fail(error: MqttError, reason?: DisconnectReason): void
  /** An incoming QoS 1/2 PUBLISH starts: false when the client exceeded our Receive Maximum. */
  acquireInbound(): boolean
  /** An incoming QoS 1/2 exchange ended (PUBACK or PUBCOMP sent). */
  releaseInbound(): void
  /** An outgoing QoS 1/2 exchange completed (PUBACK, PUBCOMP, or PUBREC with an error): frees window. */
  outboundCompleted(): void
  /**
   * The client sent DISCONNECT: close the connection. The will is discarded [MQTT-3.1.2-10] unless
   * `keepWill` (MQTT 5 reason code 0x04, Disconnect with Will Message).
   */
  disconnected(keepWill: boolean): void
  /** The broker's counters. */
  readonly stats: BrokerStats
  /** The counters of the client's tenant (for `$SYS`). */
  readonly counters: TenantCounters
  /**
   * MQTT 5 inbound topic alias: bind `alias` to a non-empty `topic`, or look up an empty one.
   * Undefined when an empty topic names an alias never bound. The caller checks the range.
   */
  resolveTopicAlias(alias: number, topic: string): string | undefined
  /**
   * The received bytes of the packet being handled (`Decoder.rawPacket()`): only while a handler
   * runs synchronously for a packet that lay wholly in one input chunk; undefined otherwise.
   */
  incomingBytes(): Buffer | undefined
  /** MQTT 5: the Session Expiry Interval the CONNECT asked for (0 when absent). */
  readonly connectSessionExpiry: number
  /** MQTT 5: the Authentication Method of the CONNECT (enhanced authentication), if any. */
  readonly authenticationMethod: string | undefined
  /** The CONNECT of a client using enhanced authentication (kept for re-authentication). */
  connectPacket: ConnectPacket | undefined
  /** A CONNECT paused in the middle of its AUTH exchange. */
  authFlow: ConnectFlow | undefined
  /** A re-authentication (AUTH 0x19 from the client) is in progress. */
  reauthenticating: boolean
  /** Close from the server side (MQTT 5: DISCONNECT `reasonCode` first); see `ClientHandle.close`. */
  close(reasonCode?: number, reasonString?: string, serverReference?: string): void
  /**
   * PUBLISH handlers only, instead of returning a promise: this PUBLISH finishes asynchronously.
   * `rest` settles to its last step (undefined: nothing left), which the connection runs once every
   * earlier PUBLISH of the connection finished, so acknowledgements leave in arrival order
   * [MQTT-4.6.0-2] [MQTT-4.6.0-3]; the code of `rest` must not send or fail itself, only its step may.
   * With `issued`, every Backend and Session call of this PUBLISH has already been made: the
   * connection may start its next PUBLISH before `rest` settles (up to a bound). Without it, the
   * connection handles no further packet until `rest` settled, so Backend calls stay in arrival
   * order. A rejection of `rest` closes the connection once the earlier PUBLISH packets finished;
   * nothing after it is acknowledged. While earlier PUBLISH packets are in progress, what the
   * handler sends or fails synchronously is likewise held back until its turn.
   */
  finishPublish(rest: Promise<PublishStep | undefined>, issued: boolean): void
}

/** What the CONNECT steps may do on top of `HandlerContext`. */
export interface ConnectContext extends HandlerContext {
  /** Set the identity the CONNECT declared (client id possibly assigned by the broker). */
  identify(clientId: string, protocolLevel: ProtocolLevel, username: string | undefined): void
  /** The tenant the connection belongs to (set once, at CONNECT, before authentication). */
  tenant: string | undefined
  /** The name of the listener that accepted the connection, if any. */
  readonly listener: string | undefined
  /** Where the connection came from (transport, address, listener, client certificate), for authentication. */
  readonly connectionInfo: ConnectionInfo
  /** The user name a verified client certificate gave (TLS `usernameFrom`): replaces the CONNECT's. */
  readonly certificateUsername: string | undefined
  /** Enforce keepalive, in seconds (0: none); checked at 1.5× by the broker's timer wheel. */
  setKeepalive(seconds: number): void
  /**
   * The client's MQTT 5 CONNECT properties: Receive Maximum (outbound window), Maximum Packet Size,
   * Topic Alias Maximum (outbound aliases), Request Problem Information, Session Expiry Interval,
   * Authentication Method.
   */
  setClientProperties(properties: ConnectProperties | undefined): void
  /**
   * A delayed will (MQTT 5 Will Delay Interval) of an earlier connection of this client id: cancel
   * it (the session continues [MQTT-3.1.3-9]) or, with `clean`, publish it now (the session ended).
   */
  settleDelayedWill(clean: boolean): void
  /** Attach the session `Backend.setup` returned. */
  attachSession(session: Session): void
  /** Remember the will of this connection (published when it ends abnormally). */
  setWill(will: StoredWill | undefined): void
  /**
   * CONNACK was sent: the connection is live. Deliveries held during CONNECT go out; `inflight`
   * (a resumed session's unacknowledged exchanges) is resent first, PUBLISH with DUP set [MQTT-4.4.0-1].
   */
  markConnected(sessionPresent: boolean, inflight: OutgoingRecord[]): void
  /** Send `packet` (a refusing CONNACK) encoded at `level`, then close the connection. */
  refuse(packet: Packet, level: ProtocolLevel): void
  /** The broker's connection limits (per tenant, flapping bans) for the CONNECT's identity. */
  readonly admission: Admission
}
