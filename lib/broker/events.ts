import { Subject } from 'rxjs'
import type { Observable } from 'rxjs'
import type { Packet, ProtocolLevel } from '../packet/types.js'
import type { Message, StoredSubscription } from '../session/session.js'
import type { PeerCertificate, TransportKind } from '../transport/connection.js'

/**
 * The public face of one connection, as events carry it. Observing its flows costs nothing until
 * someone subscribes.
 */
export interface BrokerClient {
  /** The client identifier (assigned by the broker for an empty MQTT 5 client id); '' before CONNECT. */
  readonly clientId: string
  readonly protocolLevel: ProtocolLevel
  readonly username: string | undefined
  /** The tenant the connection belongs to (undefined: the default tenant). */
  readonly tenant: string | undefined
  /** The name of the listener that accepted the connection, if any. */
  readonly listener: string | undefined
  readonly transport: TransportKind
  /** The peer's address: the real client's when a trusted proxy said it (PROXY protocol, X-Forwarded-For). */
  readonly remoteAddress: string | undefined
  /** The client certificate, on TLS listeners that ask for one. */
  readonly peerCertificate: PeerCertificate | undefined
  /** False once the connection has closed. */
  readonly connected: boolean
  /** When the connection was accepted (ms since the epoch, the broker's clock). */
  readonly createdAt: number
  /** The Keep Alive in force (seconds; 0: none), as CONNECT negotiated it (Server Keep Alive included). */
  readonly keepalive: number
  /**
   * Every packet decoded from this client, in order, before it is handled. Hot; completes when the
   * connection closes. Subscribe early (e.g. on `client.connected`) to miss nothing after CONNECT.
   */
  readonly incoming$: Observable<Packet>
  /**
   * Every packet sent to this client, in order, as it is queued for writing. Hot; completes when the
   * connection closes. PUBLISH packets are rebuilt from the message only when observed.
   */
  readonly outgoing$: Observable<Packet>
  /** Close the connection from the server side (MQTT 5: DISCONNECT with `reasonCode` first). */
  close(reasonCode?: number, reasonString?: string): void
}

/** Why a connection ended. */
export type DisconnectReason =
  /** The client sent DISCONNECT. */
  | 'disconnect'
  /** No packet within 1.5 × keepalive [MQTT-3.1.2-24]. */
  | 'keepalive'
  /** No CONNECT within `connectTimeout`. */
  | 'connect-timeout'
  /** Malformed packet or protocol violation. */
  | 'protocol-error'
  /** The network connection closed or failed. */
  | 'socket'
  /** Another connection took the session over [MQTT-3.1.4-3]. */
  | 'takeover'
  /** Closed by the server (broker.close(), `client.close()`, a refused CONNECT). */
  | 'server'
  /** The client could not keep up: its outgoing queue overflowed. */
  | 'slow-consumer'

/** Why a delivery was dropped. */
export type DropReason =
  | 'no-local'
  | 'expired'
  | 'too-large'
  /** The outgoing queue was full and this message could not wait. */
  | 'queue-full'
  /** A QoS 0 message evicted from a full outgoing queue to make room. */
  | 'evicted'
  /** QoS 0: the receiver's unsent output passed `maxBufferedBytes`. */
  | 'buffer-full'
  /** QoS 0 shed while the broker is overloaded. */
  | 'shed'
  | 'disconnected'
  | 'no-packet-id'

/** Every event of `broker.events$`, a union on `type`. */
export type BrokerEvent =
  /** `listener`: the listener's name; `certificateSubject`: the client certificate's subject, if any. */
  | { type: 'client.connected'; client: BrokerClient; sessionPresent: boolean; listener: string | undefined; certificateSubject?: string }
  /** The connection of a client that had `client.connected` ended (exactly once per such client). */
  | {
      type: 'client.disconnected'
      client: BrokerClient
      reason: DisconnectReason
      error?: Error
      listener: string | undefined
      certificateSubject?: string
    }
  /**
   * The teardown of a connection that had a session is over (after its `client.disconnected`): the
   * QoS 1/2 messages it left are in its session's offline queue, its will is published, delayed or
   * discarded, and the backend was told (`terminate`, unless another connection took the session
   * over). Exactly once per such connection, failures included (logged); before `close()` resolves.
   */
  | { type: 'client.ended'; client: BrokerClient }
  | { type: 'subscribed'; client: BrokerClient; subscriptions: StoredSubscription[]; granted: number[] }
  | { type: 'unsubscribed'; client: BrokerClient; topicFilters: string[]; results: number[] }
  /** A message accepted for routing; `client` is undefined for wills and broker-made messages. */
  | { type: 'published'; client: BrokerClient | undefined; message: Message }
  | { type: 'delivered'; client: BrokerClient; message: Message; qos: 0 | 1 | 2 }
  | { type: 'dropped'; client: BrokerClient; message: Message; reason: DropReason }
  | { type: 'error'; client: BrokerClient | undefined; error: Error }

/** The `type` of a `BrokerEvent`. */
export type BrokerEventType = BrokerEvent['type']

/**
 * The broker's event hub. `observed` is true only while someone is subscribed: emitters check it
 * before building an event object, so unobserved events cost one property read.
 */
export class EventHub {
  private readonly subject = new Subject<BrokerEvent>()
  /** Hot; completes on `complete()` (broker closed). */
  readonly events$: Observable<BrokerEvent> = this.subject.asObservable()

  /** True while at least one subscriber listens. */
  get observed(): boolean {
    return this.subject.observed
  }

  /** Emit an event (callers check `observed` first on hot paths). */
  emit(event: BrokerEvent): void {
    this.subject.next(event)
  }

  complete(): void {
    this.subject.complete()
  }
}
