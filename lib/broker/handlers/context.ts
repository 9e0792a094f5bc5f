import type { Backend, ClientHandle } from '../../backend/backend.js'
import type { MqttError } from '../../packet/errors.js'
import type { AuthProperties, ConnectPacket, Packet, ProtocolLevel } from '../../packet/types.js'
import type { OutgoingRecord, Session, StoredWill } from '../../session/session.js'
import type { ConnectionInfo } from '../../transport/connection.js'
import type { Awaitable } from '../../util/awaitable.js'
import type { ConnectionState } from '../connection-state.js'
import type { BrokerClient, DisconnectReason, EventHub } from '../events.js'
import type { Logger } from '../logger.js'
import type { ResolvedOptions } from '../options.js'
import type { Admission } from '../admission.js'
import type { BrokerStats } from '../stats.js'

/**
 * The last step of a PUBLISH whose handling went asynchronous: it sends the acknowledgement (or
 * closes the connection). The connection runs these steps in the order the PUBLISH packets arrived.
 */
export type PublishStep = () => void

/** The connection as handlers name it to backends and events. */
export interface HandlerClient extends ClientHandle, BrokerClient {
  /** Close from the server side (MQTT 5: DISCONNECT `reasonCode` first; a Server Reference with 0x9C / 0x9D). */
  close(reasonCode?: number, reasonString?: string, serverReference?: string): void
}

/**
 * What a packet handler may see and do: the broker's services, the session, the negotiated state
 * of one connection, and a few actions on it. Handlers never reach the connection's socket,
 * decoder, output buffers or lifecycle (CONNECT and AUTH get `ConnectContext`).
 */
export interface HandlerContext {
  /** The connection as backends and events see it (pass it to every Backend call, put it in events). */
  readonly client: HandlerClient
  readonly backend: Backend
  readonly options: ResolvedOptions
  /** The broker's counters. */
  readonly stats: BrokerStats
  readonly events: EventHub
  /** The broker's logger with this connection's client id, tenant and listener on every line. */
  readonly log: Logger
  /**
   * The session. Only read it once CONNECT's session step ran: the dispatcher calls every handler
   * but CONNECT only after that. Throws before.
   */
  readonly session: Session
  /** What CONNECT negotiated, the inbound QoS 1/2 count, topic aliases, the tenant's counters. */
  readonly state: ConnectionState
  /** Queue a packet for this connection (written with the rest of the batch). */
  send(packet: Packet): void
  /**
   * Close the connection because of `error` (malformed packet, protocol violation, backend failure):
   * MQTT 5 clients get DISCONNECT with `error.reasonCode` first; the will is published.
   */
  fail(error: MqttError, reason?: DisconnectReason): void
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
  /**
   * The received bytes of the packet being handled (`Decoder.rawPacket()`): only while a handler
   * runs synchronously for a packet that lay wholly in one input chunk; undefined otherwise.
   */
  incomingBytes(): Buffer | undefined
  /** An outgoing QoS 1/2 exchange completed (PUBACK, PUBCOMP, or PUBREC with an error): frees window. */
  outboundCompleted(): void
  /**
   * The client sent DISCONNECT: close the connection. The will is discarded [MQTT-3.1.2-10] unless
   * `keepWill` (MQTT 5 reason code 0x04, Disconnect with Will Message).
   */
  disconnected(keepWill: boolean): void
}

/** MQTT 5 enhanced authentication of one connection (only for a CONNECT with an Authentication Method). */
export interface AuthExchange {
  /** The Authentication Method of the CONNECT. */
  readonly method: string
  /** The CONNECT, copied, kept for re-authentication. */
  connect: ConnectPacket | undefined
  /** A CONNECT paused in the middle of its AUTH exchange. */
  flow: ConnectFlow | undefined
  /** A re-authentication (AUTH 0x19 from the client) is in progress. */
  reauthenticating: boolean
}

/**
 * The lifecycle operations of a connection that CONNECT drives (and the dispatcher reads): its
 * identity, its origin, the session and will it gets, going live, being refused.
 */
export interface ConnectionControl {
  /** No CONNECT handled yet. */
  readonly awaitingConnect: boolean
  /** CONNACK accepted the connection (and it has not closed). */
  readonly live: boolean
  /** The tenant the connection belongs to (set once, at CONNECT, before authentication). */
  tenant: string | undefined
  /** The name of the listener that accepted the connection, if any. */
  readonly listener: string | undefined
  /** Where the connection came from (transport, address, listener, client certificate), for authentication. */
  readonly connectionInfo: ConnectionInfo
  /** The user name a verified client certificate gave (TLS `usernameFrom`): replaces the CONNECT's. */
  readonly certificateUsername: string | undefined
  /** Set the identity the CONNECT declared (client id possibly assigned by the broker). */
  identify(clientId: string, protocolLevel: ProtocolLevel, username: string | undefined): void
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

/** What CONNECT and AUTH may do on top of `HandlerContext`. */
export interface ConnectContext extends HandlerContext {
  /** MQTT 5 enhanced authentication (undefined: the CONNECT gave no Authentication Method). */
  auth: AuthExchange | undefined
  /** The connection's lifecycle, as CONNECT drives it. */
  readonly connection: ConnectionControl
}

/** The state one CONNECT carries through its steps. */
export interface ConnectFlow {
  readonly ctx: ConnectContext
  /** The CONNECT; a tenant resolver may rewrite its client id and user name. */
  packet: ConnectPacket
  /** Client identifier the broker assigned (MQTT 5 empty client id), to tell in CONNACK. */
  assignedClientId: string | undefined
  /** MQTT 5 Server Keep Alive to tell in CONNACK, when it differs from the client's. */
  serverKeepAlive: number | undefined
  sessionPresent: boolean
  /** A resumed session's unacknowledged outgoing exchanges, resent after CONNACK. */
  inflight: OutgoingRecord[]
  /** Set once CONNACK went out: later failures close instead of refusing. */
  acknowledged: boolean
  /** MQTT 5 Session Expiry Interval to tell in CONNACK, when the broker lowered the client's. */
  sessionExpiryInterval: number | undefined
  /** MQTT 5 Response Information for CONNACK (Request Response Information). */
  responseInformation: string | undefined
  /** MQTT 5 enhanced authentication: the method and final data for CONNACK. */
  authProperties: AuthProperties | undefined
}

/** One named step of CONNECT. Returns false (or a promise of false) when it refused the client. */
export interface ConnectStep {
  readonly name: string
  run(flow: ConnectFlow): Awaitable<boolean>
}
