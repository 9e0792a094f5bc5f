import { Subject } from 'rxjs'
import type { Observable } from 'rxjs'
import type { ClientHandle } from '../backend/backend.js'
import { MqttError } from '../packet/errors.js'
import { ConnectReturnCode, ReasonCode, VALID_REASON_CODE_TABLE } from '../packet/reason-codes.js'
import type { ConnectPacket, Packet, ProtocolLevel } from '../packet/types.js'
import type { OutgoingRecord, Session, StoredWill } from '../session/session.js'
import type { Connection, ConnectionInfo, PeerCertificate, TransportKind } from '../transport/connection.js'
import { isPromise } from '../util/awaitable.js'
import { ClientContext } from './client-context.js'
import type { ContextOwner } from './client-context.js'
import { CLOSED, CONNECTED, CONNECTING, NEW } from './connection-io.js'
import type { BrokerCore, CoreConnection } from './core.js'
import type { BrokerClient, DisconnectReason } from './events.js'
import { ClientDelivery } from './client-delivery.js'
import { clientLogger } from './logger.js'
import type { Logger } from './logger.js'
import { refusalFor } from './refusals.js'
import { REFUSED_GRACE_MS } from './admission.js'
import type { Admission } from './admission.js'
import { countRefusal } from './stats.js'
import { finishConnection } from './teardown.js'

export { PIPELINE_DEPTH } from './publish-pipeline.js'

/**
 * One connection: its lifecycle (NEW → CONNECTING → CONNECTED → CLOSED, the timeouts, the end with
 * its will and `Backend.terminate`) and its faces, the `ClientHandle` backends deliver through and
 * the `BrokerClient` events carry. The layers below: `ConnectionIO` (socket, output),
 * `InboundScheduler` (decoding, one packet at a time, PUBLISH pipelining), `ClientDelivery`
 * (`deliver` and its `Outbound`); the negotiated values are `ConnectionState`'s. Handlers get a
 * `ClientContext`, never this object.
 */
export class Client extends ClientDelivery implements ClientHandle, BrokerClient, ContextOwner, CoreConnection {
  clientId = ''
  protocolLevel: ProtocolLevel = 4
  username: string | undefined = undefined
  tenant: string | undefined = undefined
  readonly transport: TransportKind
  readonly remoteAddress: string | undefined
  readonly createdAt: number
  /** Counted by the broker's admission (connection limits). */
  admitted = false
  protected readonly context: ClientContext
  private will: StoredWill | undefined = undefined
  /** `log`, made at first use. */
  private boundLog: Logger | undefined = undefined

  constructor(core: BrokerCore, connection: Connection) {
    super(core, connection)
    this.transport = connection.transport
    this.remoteAddress = connection.remoteAddress
    this.createdAt = this.lastActivity
    this.context = new ClientContext(this, core)
  }

  /** The broker's logger, adding this connection's client id, tenant and listener to every line. */
  get log(): Logger {
    return (this.boundLog ??= clientLogger(this.core.log, this))
  }

  get connected(): boolean {
    return this.phase === CONNECTING || this.phase === CONNECTED
  }

  /** True once CONNACK accepted the connection (and until it closes). */
  get live(): boolean {
    return this.phase === CONNECTED
  }

  /** True before CONNECT was handled. */
  get awaitingConnect(): boolean {
    return this.phase === NEW
  }

  protected get view(): BrokerClient {
    return this
  }

  get incoming$(): Observable<Packet> {
    return (this.incoming ??= new Subject<Packet>()).asObservable()
  }

  get outgoing$(): Observable<Packet> {
    return (this.outgoing ??= new Subject<Packet>()).asObservable()
  }

  /** The name of the listener that accepted this connection, if any. */
  get keepalive(): number {
    return this.negotiated.keepaliveMs / 1000
  }

  /** The broker's connection limits (per tenant, flapping bans), for CONNECT. */
  get admission(): Admission {
    return this.core.admission
  }

  get listener(): string | undefined {
    return this.connection.listener
  }

  /** The client certificate (TLS listeners that ask for one). */
  get peerCertificate(): PeerCertificate | undefined {
    return this.connection.peerCertificate
  }

  get certificateUsername(): string | undefined {
    return this.connection.certificateUsername
  }

  /** Where the connection came from, as authentication sees it (made at each call: CONNECT and AUTH only). */
  get connectionInfo(): ConnectionInfo {
    const { transport, remoteAddress, listener, peerCertificate } = this.connection
    const info: ConnectionInfo = { transport, remoteAddress, listener }
    return peerCertificate === undefined ? info : { ...info, peerCertificate }
  }

  // ---- Lifecycle ------------------------------------------------------------------------------

  /** Close the connection because of `error` (see `HandlerContext.fail`). */
  fail(error: MqttError, reason: DisconnectReason = 'protocol-error'): void {
    if (this.phase === CLOSED) return
    // A PUBLISH failed while earlier ones are in progress: close once they finished.
    if (this.failLater(() => this.fail(error, reason))) return
    if (reason === 'protocol-error') this.core.stats.protocolErrors++
    this.log.info('closing connection', { clientId: this.clientId, reason, error })
    if (this.core.events.observed) this.core.events.emit({ type: 'error', client: this, error })
    this.shutdown(reason, this.phase === CONNECTED ? error.reasonCode : undefined, error)
  }

  /** Close the connection for an unexpected error of a handler (an `MqttError` is a protocol error). */
  internalError(error: unknown): void {
    if (this.phase === CLOSED) return
    if (error instanceof MqttError) {
      this.fail(error, 'protocol-error')
      return
    }
    this.core.stats.internalErrors++
    this.log.error('internal error while handling a packet', { clientId: this.clientId, error })
    try {
      if (this.core.events.observed) this.core.events.emit({ type: 'error', client: this, error: asError(error) })
    } finally {
      this.shutdown('server', ReasonCode.ImplementationSpecificError, asError(error))
    }
  }

  /**
   * A packet could not be decoded. Before CONNECT, an unsupported protocol version gets the right
   * CONNACK [MQTT-3.1.2-2]; anything else closes (MQTT 5: DISCONNECT with the reason code first).
   */
  protected onDecodeError(error: MqttError): void {
    if (this.phase === NEW) {
      const refusal = refusalFor(error, this.connectLevel)
      if (refusal !== undefined) {
        this.core.stats.protocolErrors++
        this.log.info('refusing CONNECT', { error, remoteAddress: this.remoteAddress })
        this.refuse(refusal.connack, refusal.level)
        return
      }
    }
    this.fail(error, 'protocol-error')
  }

  /** See `HandlerContext.disconnected`. */
  disconnected(keepWill: boolean): void {
    if (!keepWill) {
      this.will = undefined
      const session = this.currentSession
      if (session !== undefined) {
        const cleared = session.clearWill()
        if (isPromise(cleared)) cleared.catch((error: unknown) => this.log.warn('clearWill failed', { error }))
      }
    }
    this.shutdown('disconnect')
  }

  identify(clientId: string, protocolLevel: ProtocolLevel, username: string | undefined): void {
    this.clientId = clientId
    this.protocolLevel = protocolLevel
    this.username = username
    if (this.phase === NEW) this.phase = CONNECTING
  }

  settleDelayedWill(clean: boolean): void {
    this.core.settleDelayedWill(this.tenant, this.clientId, clean)
  }

  attachSession(session: Session): void {
    if (this.phase === CLOSED) {
      // The connection ended while the backend was setting the session up: end it at once.
      this.core.track(finishConnection(this.core, this, session, { will: undefined, accepted: false, takenOver: false, queued: [] }))
      return
    }
    this.currentSession = session
  }

  setWill(will: StoredWill | undefined): void {
    this.will = will
  }

  markConnected(sessionPresent: boolean, inflight: OutgoingRecord[]): void {
    if (this.phase !== CONNECTING) return
    this.phase = CONNECTED
    this.core.stats.clientsConnected++
    this.negotiated.counters = this.core.tenantCounters(this.tenant)
    this.goLive(inflight)
    if (this.core.events.observed) this.core.events.emit({ type: 'client.connected', client: this, sessionPresent, ...this.origin() })
  }

  refuse(packet: Packet, level: ProtocolLevel): void {
    if (packet.type === 'connack') countRefusal(this.core.stats, packet.reasonCode, level)
    this.sendAt(packet, level)
    this.shutdown('server')
  }

  /** Refuse `connect` with `reasonCode` (3.1/3.1.1: return code 3, Server unavailable) and close. */
  protected refuseConnect(connect: ConnectPacket, reasonCode: number): void {
    this.log.info('refusing connection', { remoteAddress: this.remoteAddress, reasonCode })
    const level = connect.protocolLevel
    this.refuse(
      { type: 'connack', sessionPresent: false, reasonCode: level === 5 ? reasonCode : ConnectReturnCode.ServerUnavailable },
      level
    )
  }

  /** The listener and certificate subject that connection events carry. */
  private origin(): { listener: string | undefined; certificateSubject?: string } {
    const subject = this.connection.peerCertificate?.subject
    return subject === undefined ? { listener: this.connection.listener } : { listener: this.connection.listener, certificateSubject: subject }
  }

  /** Called by the broker's timer wheel: connect timeout, keepalive [MQTT-3.1.2-24], slow consumers, idle state given back. */
  tick(now: number): void {
    const phase = this.phase
    const keepaliveMs = this.negotiated.keepaliveMs
    if (phase === NEW || phase === CONNECTING) {
      const timeout = this.refusal === undefined ? this.core.options.connectTimeout : Math.min(REFUSED_GRACE_MS, this.core.options.connectTimeout)
      if (now - this.createdAt > timeout) this.shutdown('connect-timeout')
    } else if (phase === CONNECTED && keepaliveMs > 0 && now - this.lastActivity > keepaliveMs * 1.5) {
      this.log.info('keepalive timeout', { clientId: this.clientId })
      this.shutdown('keepalive', ReasonCode.KeepAliveTimeout)
      return
    }
    const backed = this.flow === undefined ? 0 : this.flow.backedSince
    if (backed !== 0 && now - backed > this.core.options.sendTimeout && this.phase !== CLOSED) {
      // Its output has not drained for sendTimeout: a slow or frozen consumer.
      this.core.stats.sendTimeouts++
      this.log.warn('disconnecting slow consumer: output not drained', { clientId: this.clientId, ms: now - backed })
      this.shutdown('slow-consumer', ReasonCode.QuotaExceeded)
      this.connection.stream.destroy()
      return
    }
    // Idle for a while: the decoder and the bound logger go (made again when needed).
    if (this.releaseIdle(now)) this.boundLog = undefined
  }

  /**
   * End the connection once. MQTT 5 clients that completed CONNECT get DISCONNECT `reasonCode`
   * first. Then the socket ends, and (for a connection that got a session) the will and
   * `Backend.terminate` run asynchronously, tracked by the broker.
   */
  shutdown(
    reason: DisconnectReason,
    reasonCode?: number,
    error?: Error,
    reasonString?: string,
    serverReference?: string
  ): void {
    const previous = this.phase
    if (previous === CLOSED) return
    if (reasonCode !== undefined && previous === CONNECTED && this.protocolLevel === 5) {
      const packet: Packet = { type: 'disconnect', reasonCode: disconnectCode(reasonCode) }
      if (reasonString !== undefined || serverReference !== undefined) {
        packet.properties = {}
        if (reasonString !== undefined) packet.properties.reasonString = reasonString
        if (serverReference !== undefined) packet.properties.serverReference = serverReference // 0x9C / 0x9D
      }
      this.sendAt(packet, 5)
    }
    const auth = this.context.auth
    if (auth !== undefined) auth.flow = undefined
    this.phase = CLOSED
    this.endOutput()
    this.stopInput()
    this.core.remove(this)
    this.log.debug('connection closed', { clientId: this.clientId, reason, error })
    const session = this.currentSession
    if (previous === CONNECTED && this.core.events.observed) {
      this.core.events.emit(
        error === undefined
          ? { type: 'client.disconnected', client: this, reason, ...this.origin() }
          : { type: 'client.disconnected', client: this, reason, error, ...this.origin() }
      )
    }
    this.incoming?.complete()
    this.outgoing?.complete()
    if (session !== undefined) {
      const queued = this.takeQueued()
      this.core.track(
        finishConnection(this.core, this, session, {
          will: this.will,
          accepted: previous === CONNECTED,
          takenOver: reason === 'takeover',
          queued
        })
      )
    }
    this.will = undefined
  }

  // ---- ClientHandle ---------------------------------------------------------------------------

  close(reasonCode?: number, reasonString?: string, serverReference?: string): void {
    if (reasonCode === ReasonCode.SessionTakenOver) {
      this.shutdown('takeover', reasonCode, undefined, reasonString)
      return
    }
    // A normal server-side close drops the will, like a DISCONNECT would [MQTT-3.1.2-10].
    if (reasonCode === undefined || reasonCode === ReasonCode.NormalDisconnection) this.will = undefined
    this.shutdown('server', reasonCode, undefined, reasonString, serverReference)
  }
}

/**
 * A reason code DISCONNECT can carry: a code only valid elsewhere (a CONNACK code such as 0x86 from
 * a failed re-authentication) becomes 0x87 Not authorized for authentication failures, else 0x80.
 */
function disconnectCode(reasonCode: number): number {
  if (VALID_REASON_CODE_TABLE.disconnect[reasonCode] === 1) return reasonCode
  return reasonCode === ReasonCode.BadUserNameOrPassword || reasonCode === ReasonCode.Banned
    ? ReasonCode.NotAuthorized
    : ReasonCode.UnspecifiedError
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}
