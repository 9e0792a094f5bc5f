/**
 * What the parts of a connection (handshake, inbound, outbound, requests) use of it: a small
 * context the `Client` implements, so that no part imports the `Client` class (and lib/client has
 * no import cycle).
 */
import type { Subject } from 'rxjs'
import type { AuthPacket, ConnackPacket, EncodedPublish, MqttError, ProtocolLevel } from '../packet/index.js'
import type { ClientLimits, CloseInfo } from './client-types.js'
import type { Clock } from './clock.js'
import type { AckQueue, InboundMessage, Message } from './inbound.js'
import type { ClientOptions } from './options.js'
import type { ClientSession, PublishResult } from './session.js'

/** One connection, as its parts see it (implemented by `Client`). */
export interface ConnectionContext {
  readonly options: ClientOptions
  readonly protocolLevel: ProtocolLevel
  readonly clientId: string
  /** The keepalive we ask for, in seconds. */
  readonly keepalive: number
  readonly session: ClientSession
  readonly clock: Clock
  /** Valid once CONNACK was accepted. */
  readonly limits: ClientLimits
  /** True between CONNACK and the end of the connection. */
  readonly connected: boolean
  readonly closed: Promise<CloseInfo>
  readonly acks: AckQueue
  readonly messageSubject: Subject<InboundMessage>
  /** Messages held for the first observer of `messages$` (undefined once observed). */
  early: Message[] | undefined
  onConnackPacket: ((packet: ConnackPacket) => void) | undefined
  onAuthPacket: ((packet: AuthPacket) => void) | undefined
  onCloseBeforeConnack: ((error: Error) => void) | undefined
  /** Queue bytes for this turn's write. */
  send(bytes: Buffer): void
  /** Queue PUBACK (0x40), PUBREC (0x50), PUBREL (0x62) or PUBCOMP (0x70) with reason 0x00. */
  sendAck(firstByte: number, packetId: number): void
  /** Queue an encoded PUBLISH with its packet id. */
  sendPublish(variant: EncodedPublish, packetId: number): void
  /** Settled when this turn's batch has been written (QoS 0 completion). */
  flushed(): Promise<PublishResult>
  /** The connection broke a rule: tell the broker (v5) and close. */
  fail(error: MqttError): void
  /** End the connection (idempotent) and settle what is pending. */
  close(initiator: CloseInfo['initiator'], error: Error): void
  /** Close now without DISCONNECT. */
  destroy(): void
  /** CONNACK accepted. */
  established(connack: ConnackPacket): void
}
