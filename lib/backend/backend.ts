import type { ProtocolLevel, QoS, ConnectPacket, AuthProperties } from '../packet/types.js'
import type { Awaitable } from '../util/awaitable.js'
import type { ConnectionInfo } from '../transport/connection.js'
import type { Message, Session, StoredSubscription, StoredWill } from '../session/session.js'

/**
 * What a backend declares it can do, checked by the engine when a `Broker` is made. Absent fields
 * are false.
 */
export interface BackendCapabilities {
  /**
   * The backend keeps tenants apart: it routes every call by `client.tenant` (and, for calls
   * without a client, by `message.tenant`), so that client ids, sessions, subscriptions, retained
   * messages and takeovers of one tenant never meet those of another. A `Broker` given a
   * `tenantResolver` refuses (throws a `TypeError` at construction) a backend that does not
   * declare it: a single-tenant backend would silently mix the tenants' sessions and retained
   * messages. `TenantBackend` (one backend per tenant) and `KeyvBackend` (one key namespace per
   * tenant) declare it.
   */
  readonly tenants?: boolean
}

/** What `ClientHandle.deliver` did with a message. */
export type DeliveryResult =
  /** Written (or batched for writing) to the connection. */
  | 'sent'
  /** Kept by the engine for this connection (inflight window full): it will be sent in order. */
  | 'queued'
  /** Not delivered: expired, too large for the client, No Local, or a bound was hit (counted). */
  | 'dropped'

/**
 * The small face of one live connection that a backend sees and delivers through. The engine
 * implements it; backends never see sockets or the engine's internals.
 */
export interface ClientHandle {
  /** The client identifier (after the broker assigned one, for an empty CONNECT client id). */
  readonly clientId: string
  /** 3, 4 or 5. */
  readonly protocolLevel: ProtocolLevel
  /** The user name of the CONNECT, if any. */
  readonly username: string | undefined
  /** The tenant the connection belongs to (multi-tenant brokers); undefined for the default. */
  readonly tenant: string | undefined
  /** False once the connection has closed. */
  readonly connected: boolean

  /**
   * Deliver a message that matched `subscription` to this client. Synchronous and cheap: the engine
   * applies the QoS downgrade (min of message and subscription QoS), assigns a packet id, honours
   * the inflight window (Receive Maximum), topic aliases, subscription identifiers, No Local and
   * Retain As Published, and encodes the message once for all receivers.
   *
   * A backend calls `deliver` at most once per client per message. When several subscriptions of
   * one client match, it passes one merged subscription: the highest QoS and every subscription
   * identifier (`mergeSubscriptions`). `isRetained` marks deliveries of retained messages at
   * subscribe time (the RETAIN flag stays set on those [MQTT-3.3.1-9]).
   */
  deliver(message: Message, subscription: StoredSubscription, isRetained?: boolean): DeliveryResult

  /**
   * Close the connection from the server side. At MQTT 5 a DISCONNECT with `reasonCode` (and
   * `reasonString`) is sent first; e.g. 0x8E when another connection took the session over.
   * The will is published unless `reasonCode` is a normal disconnection.
   */
  close(reasonCode?: number, reasonString?: string): void
}

/** Credentials and context of a CONNECT (or an AUTH during enhanced authentication). */
export interface Credentials {
  clientId: string
  username: string | undefined
  password: Buffer | undefined
  /** The whole CONNECT packet, for backends that want more (will, properties). */
  connect: ConnectPacket
  /** MQTT 5 enhanced authentication: method and data of the CONNECT or the latest AUTH. */
  authenticationMethod?: string
  authenticationData?: Buffer
  /**
   * MQTT 5 re-authentication (AUTH 0x19 on a live connection, MQTT 5.0 4.12.1): true while the
   * exchange runs. A 'deny' answer then closes the connection with DISCONNECT and that reason code.
   */
  reauthentication?: boolean
  /**
   * Where the connection came from: transport, remote address, listener name and, on TLS
   * listeners with client certificates, the peer certificate. Set by the engine for every
   * connection that came through a listener.
   */
  connection?: ConnectionInfo
}

/** The answer of `Backend.authenticate`. */
export type AuthenticationResult =
  | { result: 'allow'; properties?: AuthProperties }
  /** reasonCode is an MQTT 5 reason code; the engine maps it to a 3.1.1 return code. */
  | { result: 'deny'; reasonCode: number; reasonString?: string }
  /** MQTT 5 enhanced authentication: send AUTH 0x18 with these properties and wait for the next. */
  | { result: 'continue'; properties: AuthProperties }
  /** Refuse with "use another server" (0x9C) or "server moved" (0x9D) and a Server Reference. */
  | { result: 'redirect'; reasonCode: number; serverReference: string }

/**
 * A `Backend.authenticate` function that may say which MQTT 5 Authentication Methods it implements
 * (e.g. `ScramAuthenticator.authenticate`): `MemoryBackend` and `KeyvBackend` given such a function
 * as their `authenticate` option support those methods (see `Backend.authenticationMethods`).
 */
export type AuthenticateFunction = Backend['authenticate'] & { readonly authenticationMethods?: readonly string[] }

/** Flapping detection's rule: the broker's `flappingMaxCount`, `flappingWindow` and `flappingBanTime` (ms). */
export interface FlappingRule {
  readonly maxCount: number
  readonly window: number
  readonly banTime: number
}

/** What `Backend.countFlapping` answers: banned for `banMs` more ms (0: admitted); `started`: this connection started the ban. */
export interface FlappingVerdict {
  banMs: number
  started: boolean
}

/** The answer of `Backend.setup`. */
export interface SetupResult {
  session: Session
  /** Whether a stored session was resumed (the CONNACK Session Present flag). */
  present: boolean
}

/** A failure code of SUBACK/UNSUBACK or a granted QoS. */
export type SubscribeResult = QoS | number

/**
 * The decisions of a broker. The engine owns the wire and each connection's state machine, and
 * calls the backend for everything else: who may connect, which session a client gets, where a
 * message goes, what is retained and what waits for absent clients.
 *
 * Contract:
 * - Every method may answer synchronously or with a promise (`Awaitable`); the engine awaits only
 *   real promises, and calls the methods of one connection in order (never two at once for the
 *   same connection), but calls for different connections interleave.
 * - A method that rejects (or throws) is logged; the engine answers the client with an error
 *   reason code (or closes the connection) and never acknowledges what was not stored.
 * - Backends never import the engine: they see clients only through `ClientHandle`.
 * - The `Session` that `setup` answers is the backend's object; the engine calls it as the
 *   `Session` interface says (lib/session/session.ts has the table of who writes and reads each
 *   part). The backend keeps the session's subscriptions (see `subscribe`) and its offline queue.
 * - Errors a backend throws or rejects with: lib/backend/errors.ts (`BackendUnavailableError`,
 *   `SessionTakenOverError`, ...); an `MqttError` carries the reason code the client gets.
 *
 * docs/backends.md walks through writing one; the conformance suite (lib/backend/conformance,
 * package entry `mqtt-broker-framework/backend/conformance`) checks one.
 */
export interface Backend {
  /**
   * Optional: what the backend can do beyond the required methods (see `BackendCapabilities`).
   * No such member: no capability. Read once, when the `Broker` is made.
   */
  readonly capabilities?: BackendCapabilities

  /**
   * Decide whether a client may connect. Called before `setup`. MQTT 5 enhanced authentication
   * calls it again for each AUTH packet until it answers allow or deny.
   */
  authenticate(client: ClientHandle, credentials: Credentials): Awaitable<AuthenticationResult>

  /**
   * Optional (MQTT 5 enhanced authentication, MQTT 5.0 4.12): the Authentication Methods this
   * backend implements for `client` (its tenant is known). A CONNECT naming any other method is
   * refused with CONNACK 0x8C Bad authentication method and closed before `authenticate` is called
   * [MQTT-4.12.0-1]. No such method, or an empty list: no method is supported. Synchronous.
   */
  authenticationMethods?(client: ClientHandle): readonly string[]

  /**
   * Create or resume the session of `client.clientId`. With `clean` true any stored session is
   * discarded first and `present` is false. Any other live connection with the same client id (on
   * this process or another) is closed with `SessionTakenOver` before this resolves [MQTT-3.1.4-3].
   * `expiryInterval` is the requested session expiry (seconds) for MQTT 5, or the 3.1.1 equivalent.
   */
  setup(client: ClientHandle, clean: boolean, expiryInterval: number): Awaitable<SetupResult>

  /**
   * The connection of `client` (whose session `setup` answered) is ready: route to it whatever was
   * queued in its session while it was away (calling `client.deliver` in order, oldest first) and
   * from now on route matching publishes to it live. Called once per connection, after CONNACK.
   */
  queueOffline(client: ClientHandle): Awaitable<void>

  /**
   * Add subscriptions (already validated and authorized by the engine) to the session of
   * `client`, and answer per entry: the granted QoS, or a failure reason code (0x80 and up).
   * Retained messages are not sent here: see `queueRetained`.
   *
   * Obligation: from the moment this resolves, the session's `listSubscriptions()` lists every
   * granted entry (a subscription with the same filter replaced, `qos` the granted QoS), and keeps
   * listing it across a resume of a persistent session until `unsubscribe` removes it. The engine
   * reads that list for Retain Handling 1 (retained messages only for a filter not yet listed) and
   * for `maxSubscriptionsPerClient`. Where the backend keeps subscriptions is its choice: in the
   * session object, or in its own store that `listSubscriptions()` reads.
   */
  subscribe(client: ClientHandle, subscriptions: StoredSubscription[]): Awaitable<SubscribeResult[]>

  /**
   * Remove subscriptions of the session of `client` (they leave `listSubscriptions()`); answer
   * per filter: 0x00 success, 0x11 no subscription existed, …
   */
  unsubscribe(client: ClientHandle, topicFilters: string[]): Awaitable<number[]>

  /**
   * Store `message` as the retained message of its topic; an empty payload deletes it
   * [MQTT-3.3.1-10]. `client` is undefined for messages the broker publishes itself (wills, $SYS).
   * Answers false when a limit of the store (count or bytes of retained messages) refused the
   * message — the engine then tells MQTT 5 QoS 1/2 publishers 0x97 Quota exceeded and does not
   * route it; anything else (undefined, true) means stored.
   */
  storeRetained(client: ClientHandle | undefined, message: Message): Awaitable<void | boolean>

  /**
   * Deliver the retained messages that match a new subscription to `client` (through
   * `client.deliver(message, subscription, true)`).
   */
  queueRetained(client: ClientHandle, subscription: StoredSubscription): Awaitable<void>

  /**
   * Route `message` to every matching subscription: live clients through `deliver`, absent
   * persistent sessions through their offline queue, on every process. Resolves once the message
   * is safely accepted (the engine then acknowledges a QoS 1/2 publish). Returns the number of
   * matching subscriptions (MQTT 5 0x10 "no matching subscribers" when 0), or undefined when the
   * backend cannot tell: overlapping subscriptions of one client count one each though they get one
   * delivery, a shared group counts once, subscriptions skipped by No Local do not count.
   */
  publish(client: ClientHandle | undefined, message: Message): Awaitable<number | undefined>

  /**
   * The client's connection ended (any reason). Turn its subscriptions offline (persistent
   * session) or drop the session (clean / expiry 0): the session's `expiryInterval` says which
   * (the engine may have changed it at DISCONNECT). Not called for a connection that was taken
   * over, since its session lives on in the new connection; a backend must tolerate (ignore) a
   * call for a connection that no longer owns its session.
   *
   * MQTT 5 shared subscriptions: when the session ends here (or later, when it expires), its
   * undelivered shared-subscription messages (the offline queue, and QoS 1 deliveries never
   * acknowledged) should go to another member of the group (MQTT 5.0 4.8.2); QoS 2 deliveries
   * that were started are not redelivered elsewhere.
   */
  terminate(client: ClientHandle): Awaitable<void>

  /** Release every resource; the engine calls it once, after the last connection closed. */
  close(): Awaitable<void>

  /**
   * Optional (MQTT 5 Will Delay Interval): keep the will of `client`'s ending connection and
   * publish it once at `dueAt` (ms since the epoch; the engine passes the earlier of the delay and
   * the session's expiry) unless the session is resumed before, on any process [MQTT-3.1.3-9].
   * Called before `terminate`. Answers true when the backend keeps the will; false (or no such
   * method) and the engine keeps it in a timer of its own, which only a reconnection to the same
   * process cancels: a backend shared by several processes should keep it. Only an accepted
   * connection to the session cancels the will (or, with Clean Start, publishes it at once): a
   * backend that keeps it settles it in `queueOffline`, which the engine calls after CONNACK, never
   * in `setup` (a CONNECT refused after its setup leaves the will due, MQTT 5.0 3.1.3.2.2).
   */
  delayWill?(client: ClientHandle, will: StoredWill, dueAt: number): Awaitable<boolean>

  /**
   * Optional (MQTT 5 Request/Response, MQTT 5.0 4.10): the Response Information for a client whose
   * CONNECT set Request Response Information to 1, typically a topic prefix it may use to build
   * Response Topics. Undefined sends none. Called after `setup`, before CONNACK.
   */
  responseInformation?(client: ClientHandle): Awaitable<string | undefined>

  /**
   * Optional (flapping detection shared by every process on this backend): count one
   * authenticated connection of `client` (its tenant and client id) under `rule`, and answer
   * whether it is banned: already (banned by any process), or now, this connection being one too
   * many within the window (the ban then lasts `rule.banTime` for every process). Called after
   * `authenticate`, before `setup`, only when the broker's flapping detection is on. Without it
   * (or when it answers undefined, as a wrapper around a backend without it does, or fails) each
   * process counts and bans on its own, which a client spread over several processes escapes: a
   * backend shared by several processes should implement it.
   */
  countFlapping?(client: ClientHandle, rule: FlappingRule): Awaitable<FlappingVerdict | undefined>

  /**
   * Optional: may `client` publish `message`? Called before the message is stored or routed.
   * `true` (or 0x00) allows; `false` refuses with 0x87 Not authorized; a number of 0x80 and up
   * refuses with that reason code. A refused QoS 1/2 PUBLISH is answered with PUBACK/PUBREC
   * carrying the code (MQTT 5) or acknowledged without routing (3.1.1); QoS 0 is dropped.
   */
  authorizePublish?(client: ClientHandle, message: Message): Awaitable<boolean | number>

  /**
   * Optional: may `client` subscribe with `subscription`? Same answers as `authorizePublish`; a
   * refusal is that entry's SUBACK code (0x80 at 3.1.1), and `subscribe` is not asked for it.
   */
  authorizeSubscribe?(client: ClientHandle, subscription: StoredSubscription): Awaitable<boolean | number>
}
