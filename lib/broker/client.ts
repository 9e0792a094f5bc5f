import { Subject } from 'rxjs'
import type { Observable } from 'rxjs'
import type { Backend, ClientHandle, DeliveryResult } from '../backend/backend.js'
import { Decoder, encode } from '../packet/index.js'
import { MqttError } from '../packet/errors.js'
import type { EncodedPublish } from '../packet/publish-template.js'
import { ConnectReturnCode, ReasonCode, VALID_REASON_CODE_TABLE } from '../packet/reason-codes.js'
import type { ConnectPacket, ConnectProperties, Packet, ProtocolLevel, PublishPacket, QoS } from '../packet/types.js'
import type { Message, OutgoingRecord, Session, StoredSubscription, StoredWill } from '../session/session.js'
import type { Connection, ConnectionInfo, PeerCertificate, TransportKind } from '../transport/connection.js'
import { isPromise } from '../util/awaitable.js'
import type { Awaitable } from '../util/awaitable.js'
import type { BrokerClient, DisconnectReason, DropReason, EventHub } from './events.js'
import { dispatch } from './handlers/dispatch.js'
import type { ConnectContext, PublishStep } from './handlers/context.js'
import { clientLogger } from './logger.js'
import type { Logger } from './logger.js'
import type { ResolvedOptions } from './options.js'
import { OutputBatch } from './output-batch.js'
import { OutputFlow } from './output-flow.js'
import type { Waiter } from './output-flow.js'
import { Outbound } from './outbound.js'
import type { BrokerStats } from './stats.js'
import { countRefusal } from './stats.js'
import { REFUSED_GRACE_MS, refusedConnack } from './admission.js'
import type { Admission } from './admission.js'
import type { BrokerCore } from './core.js'
import { finishConnection } from './teardown.js'
import { refusalFor, sniffConnectLevel } from './refusals.js'
import { InboundAliases, OutboundAliases } from './topic-aliases.js'
import type { ConnectFlow } from './handlers/connect.js'
import { fitPacket } from './fit-packet.js'
import { PublishPipeline } from './publish-pipeline.js'
import type { PublishPipelineHost } from './publish-pipeline.js'
import type { TenantCounters } from './sys.js'

/** The counters of a connection before CONNECT (and of every one while `$SYS` is off): never read. */
const UNCOUNTED: TenantCounters = { received: 0, sent: 0 }

export { PIPELINE_DEPTH } from './publish-pipeline.js'

const NEW = 0
const CONNECTING = 1
const CONNECTED = 2
const CLOSED = 3

const PAUSE_BUSY = 1
const PAUSE_BACKPRESSURE = 2
/** Its own output passed the high-water mark: not read until it drains. */
const PAUSE_OUTPUT = 4

/** Bytes of one unfinished packet that count as activity for keepalive (real progress on a large packet). */
const PROGRESS_BYTES = 16 * 1024


/**
 * One connection's state machine. Reads bytes, decodes packets, hands them one at a time to the
 * dispatcher (a packet whose handler returned a promise holds back the next one, so Backend calls
 * of one connection are issued in arrival order), gathers everything it must send into one output
 * batch per input chunk, and tears down (will, terminate) when the connection ends.
 *
 * PUBLISH is pipelined: a PUBLISH whose Backend calls were all issued but answered with promises
 * (`finishPublish` with `issued`) lets the next PUBLISH start, up to `PIPELINE_DEPTH` in progress.
 * Their last steps (acknowledgements) run in arrival order through the `PublishPipeline`
 * [MQTT-4.6.0-2] [MQTT-4.6.0-3]; any other packet waits until every earlier PUBLISH finished. A
 * synchronous backend never creates the pipeline.
 *
 * It is the `ClientHandle` backends deliver through, the `BrokerClient` events carry and the
 * `ConnectContext` handlers see; handlers only get the context interface.
 */
export class Client implements ClientHandle, BrokerClient, ConnectContext, PublishPipelineHost, Waiter {
  clientId = ''
  protocolLevel: ProtocolLevel = 4
  username: string | undefined = undefined
  tenant: string | undefined = undefined
  readonly transport: TransportKind
  readonly remoteAddress: string | undefined
  /** Keepalive in ms (0: none); the broker's wheel closes the connection after 1.5× of silence. */
  keepaliveMs = 0
  /**
   * Time of the last activity, ms since the epoch: a complete packet, or `PROGRESS_BYTES` more of an
   * unfinished one (a client trickling a packet byte by byte is not kept alive by it).
   */
  lastActivity: number
  readonly createdAt: number
  /** Largest packet the client accepts (its MQTT 5 Maximum Packet Size). */
  maxOutgoingPacketSize = Number.MAX_SAFE_INTEGER
  /** In the broker's dirty list. */
  dirty = false
  /** The counters of the client's tenant, from CONNECT on (for `$SYS`). */
  counters: TenantCounters = UNCOUNTED
  /** MQTT 5 topic aliases towards the client (its Topic Alias Maximum > 0). */
  aliases: OutboundAliases | undefined = undefined
  /** The Session Expiry Interval the CONNECT asked for (MQTT 5; DISCONNECT may not raise it from 0). */
  connectSessionExpiry = 0
  /** MQTT 5 Request Problem Information (false: no reason strings / user properties on most acks). */
  problemInformation = true
  /** A CONNECT waiting in the middle of enhanced authentication (AUTH exchange). */
  authFlow: ConnectFlow | undefined = undefined
  /** The authentication method of the CONNECT (MQTT 5 enhanced authentication). */
  authenticationMethod: string | undefined = undefined
  /** A re-authentication (AUTH 0x19) is in progress. */
  reauthenticating = false
  /** The CONNECT of an enhanced-authentication client, for re-authentication. */
  connectPacket: ConnectPacket | undefined = undefined
  /** Counted by the broker's admission (connection limits). */
  admitted = false
  /** Refused by admission: its CONNECT is answered with this reason code (0x97, 0x9F, 0x89). */
  refusal: number | undefined = undefined

  private state = NEW
  private readonly core: BrokerCore
  private readonly connection: Connection
  private readonly decoder: Decoder
  private readonly out = new OutputBatch()
  private currentSession: Session | undefined = undefined
  private will: StoredWill | undefined = undefined
  private outbound: Outbound | undefined = undefined
  private clientReceiveMaximum = 65535
  private inboundUnacked = 0
  private inboundAliases: InboundAliases | undefined = undefined
  private backlog: Packet[] | undefined = undefined
  /** `log`, made at first use. */
  private boundLog: Logger | undefined = undefined
  /** A handler's promise holds back every further packet. */
  private busy = false
  /** The ordered PUBLISH completion queue (created at the first asynchronous PUBLISH). */
  private pipeline: PublishPipeline | undefined = undefined
  private pauseFlags = 0
  private deferredError: MqttError | undefined = undefined
  /** The protocol level byte of the CONNECT, read ahead of decoding (0: unknown). */
  private connectLevel = 0
  /** The first input byte arrived (and was a CONNECT's). */
  private started = false
  /** Packets decoded so far (keepalive activity). */
  private packetCount = 0
  /** Bytes received since the last activity without completing a packet. */
  private partialBytes = 0
  private incoming: Subject<Packet> | undefined = undefined
  private outgoing: Subject<Packet> | undefined = undefined
  private info: ConnectionInfo | undefined = undefined
  /** Output flow control: back-up time, congestion, publishers waiting for this connection. */
  private readonly flow: OutputFlow

  constructor(core: BrokerCore, connection: Connection) {
    this.core = core
    this.connection = connection
    this.transport = connection.transport
    this.remoteAddress = connection.remoteAddress
    this.createdAt = this.lastActivity = core.options.clock.now()
    // Before CONNECT, only a small CONNECT may be buffered; `onPacket` raises the bound after it.
    this.decoder = new Decoder((packet) => this.onPacket(packet), {
      role: 'server',
      maximumPacketSize: core.options.maxConnectPacketSize
    })
    const stream = connection.stream
    this.flow = new OutputFlow(stream, core.options.maxPublisherPause, core.options.clock)
    stream.on('data', (chunk: Buffer) => this.onData(chunk))
    stream.on('drain', () => this.onDrain())
    stream.on('error', (error: Error) => this.onStreamError(error))
    stream.on('close', () => this.shutdown('socket'))
    stream.on('end', () => this.shutdown('socket'))
  }

  // ---- HandlerContext --------------------------------------------------------------------

  get handle(): ClientHandle {
    return this
  }
  get admission(): Admission {
    return this.core.admission
  }
  get view(): BrokerClient {
    return this
  }
  get backend(): Backend {
    return this.core.backend
  }
  get options(): ResolvedOptions {
    return this.core.options
  }
  /** The broker's logger, adding this connection's client id, tenant and listener to every line. */
  get log(): Logger {
    return (this.boundLog ??= clientLogger(this.core.log, this))
  }
  get events(): EventHub {
    return this.core.events
  }
  get session(): Session {
    const session = this.currentSession
    if (session === undefined) throw new Error('no session before CONNECT')
    return session
  }

  get connected(): boolean {
    return this.state === CONNECTING || this.state === CONNECTED
  }

  /** True once CONNACK accepted the connection (and until it closes). */
  get live(): boolean {
    return this.state === CONNECTED
  }

  /** True before CONNECT was handled. */
  get awaitingConnect(): boolean {
    return this.state === NEW
  }

  get incoming$(): Observable<Packet> {
    return (this.incoming ??= new Subject<Packet>()).asObservable()
  }

  get outgoing$(): Observable<Packet> {
    return (this.outgoing ??= new Subject<Packet>()).asObservable()
  }

  send(packet: Packet): void {
    const pipeline = this.pipeline
    if (pipeline !== undefined && pipeline.capturing) {
      pipeline.hold(packet)
      return
    }
    this.sendAt(packet, this.protocolLevel)
  }

  fail(error: MqttError, reason: DisconnectReason = 'protocol-error'): void {
    if (this.state === CLOSED) return
    const pipeline = this.pipeline
    if (pipeline !== undefined && pipeline.capturing) {
      // A PUBLISH failed while earlier ones are in progress: close once they finished.
      pipeline.failLater(() => this.fail(error, reason))
      return
    }
    if (reason === 'protocol-error') this.core.stats.protocolErrors++
    this.log.info('closing connection', { clientId: this.clientId, reason, error })
    if (this.core.events.observed) this.core.events.emit({ type: 'error', client: this, error })
    this.shutdown(reason, this.state === CONNECTED ? error.reasonCode : undefined, error)
  }

  acquireInbound(): boolean {
    // Receive Maximum is told to (and binding on) MQTT 5 clients only; older clients are bounded by
    // the 65,535 packet identifiers.
    const limit = this.protocolLevel === 5 ? this.core.options.receiveMaximum : 65535
    if (this.inboundUnacked >= limit) return false
    this.inboundUnacked++
    return true
  }

  releaseInbound(): void {
    if (this.inboundUnacked > 0) this.inboundUnacked--
  }

  outboundCompleted(): void {
    this.outbound?.completed()
  }

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

  get stats(): BrokerStats {
    return this.core.stats
  }

  // ---- ConnectContext -------------------------------------------------------------------

  identify(clientId: string, protocolLevel: ProtocolLevel, username: string | undefined): void {
    this.clientId = clientId
    this.protocolLevel = protocolLevel
    this.username = username
    if (this.state === NEW) this.state = CONNECTING
  }

  /** The name of the listener that accepted this connection, if any. */
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

  /** Where the connection came from, as authentication sees it (made once, on first use). */
  get connectionInfo(): ConnectionInfo {
    if (this.info !== undefined) return this.info
    const { transport, remoteAddress, listener, peerCertificate } = this.connection
    const info: ConnectionInfo = { transport, remoteAddress, listener }
    return (this.info = peerCertificate === undefined ? info : { ...info, peerCertificate })
  }

  /** End the network connection now, without a word (`broker.close()` after the drain time). */
  destroy(): void {
    this.connection.stream.destroy()
  }

  setKeepalive(seconds: number): void {
    this.keepaliveMs = seconds * 1000
  }

  setClientProperties(properties: ConnectProperties | undefined): void {
    if (properties === undefined) return
    if (properties.receiveMaximum !== undefined) this.clientReceiveMaximum = properties.receiveMaximum
    if (properties.maximumPacketSize !== undefined) this.maxOutgoingPacketSize = properties.maximumPacketSize
    const aliasMaximum = properties.topicAliasMaximum
    if (aliasMaximum !== undefined && aliasMaximum > 0) this.aliases = new OutboundAliases(aliasMaximum)
    if (properties.requestProblemInformation === false) this.problemInformation = false
    if (properties.sessionExpiryInterval !== undefined) this.connectSessionExpiry = properties.sessionExpiryInterval
    this.authenticationMethod = properties.authenticationMethod
  }

  incomingBytes(): Buffer | undefined {
    return this.decoder.rawPacket()
  }

  resolveTopicAlias(alias: number, topic: string): string | undefined {
    return (this.inboundAliases ??= new InboundAliases()).resolve(alias, topic)
  }

  settleDelayedWill(clean: boolean): void {
    this.core.settleDelayedWill(this.tenant, this.clientId, clean)
  }

  attachSession(session: Session): void {
    if (this.state === CLOSED) {
      // The connection ended while the backend was setting the session up: end it at once.
      this.core.track(finishConnection(this.core, this, session, { will: undefined, takenOver: false, queued: [] }))
      return
    }
    this.currentSession = session
    const options = this.core.options
    this.outbound = new Outbound(this, {
      window: Math.min(options.inflightWindow, this.clientReceiveMaximum),
      maxQueue: options.maxOutgoingQueue,
      maxQueueBytes: options.maxOutgoingQueueBytes,
      maxBufferedBytes: options.maxBufferedBytes
    }, options.clock)
  }

  setWill(will: StoredWill | undefined): void {
    this.will = will
  }

  markConnected(sessionPresent: boolean, inflight: OutgoingRecord[]): void {
    if (this.state !== CONNECTING) return
    this.state = CONNECTED
    this.core.stats.clientsConnected++
    this.counters = this.core.tenantCounters(this.tenant)
    this.outbound?.resume(inflight)
    if (this.core.events.observed) this.core.events.emit({ type: 'client.connected', client: this, sessionPresent, ...this.origin() })
  }

  refuse(packet: Packet, level: ProtocolLevel): void {
    if (packet.type === 'connack') countRefusal(this.core.stats, packet.reasonCode, level)
    this.sendAt(packet, level)
    this.shutdown('server')
  }

  /** Refuse `connect` with `reasonCode` (3.1/3.1.1: return code 3, Server unavailable) and close. */
  private refuseConnect(connect: ConnectPacket, reasonCode: number): void {
    this.log.info('refusing connection', { remoteAddress: this.remoteAddress, reasonCode })
    const level = connect.protocolLevel
    this.refuse(
      { type: 'connack', sessionPresent: false, reasonCode: level === 5 ? reasonCode : ConnectReturnCode.ServerUnavailable },
      level
    )
  }

  // ---- ClientHandle -------------------------------------------------------------------------

  deliver(message: Message, subscription: StoredSubscription, isRetained = false): DeliveryResult {
    const outbound = this.outbound
    if (outbound === undefined || this.state === CLOSED) {
      this.dropped(message, 'disconnected')
      return 'dropped'
    }
    if (this.core.admission.overloaded && (message.qos === 0 || subscription.qos === 0)) {
      // Overloaded: QoS 0 deliveries go first.
      this.core.stats.overloadShed++
      this.dropped(message, 'shed')
      return 'dropped'
    }
    try {
      return outbound.deliver(message, subscription, isRetained)
    } catch (error) {
      // A bug or a failing session of this receiver closes this receiver, not the publisher.
      this.internalError(error)
      return 'dropped'
    }
  }

  close(reasonCode?: number, reasonString?: string, serverReference?: string): void {
    if (reasonCode === ReasonCode.SessionTakenOver) {
      this.shutdown('takeover', reasonCode, undefined, reasonString)
      return
    }
    // A normal server-side close drops the will, like a DISCONNECT would [MQTT-3.1.2-10].
    if (reasonCode === undefined || reasonCode === ReasonCode.NormalDisconnection) this.will = undefined
    this.shutdown('server', reasonCode, undefined, reasonString, serverReference)
  }

  // ---- OutboundHost -------------------------------------------------------------------------

  bufferedBytes(): number {
    return this.connection.stream.writableLength + this.out.length
  }

  pushPublish(variant: EncodedPublish, packetId: number): void {
    this.out.pushPublish(variant, packetId)
    if (!this.dirty) this.core.markDirty(this)
  }

  pushBytes(bytes: Buffer): void {
    this.out.push(bytes)
    if (!this.dirty) this.core.markDirty(this)
  }

  sent(message: Message, qos: QoS, retain: boolean, dup: boolean, packetId: number, ids: number[] | undefined): void {
    this.core.stats.publishesSent++
    this.core.stats.publishesSentByQos[qos]++
    this.counters.sent++
    if (this.outgoing?.observed === true) {
      const packet: PublishPacket = { type: 'publish', topic: message.topic, payload: message.payload, qos, retain, dup }
      if (qos > 0) packet.packetId = packetId
      if (this.protocolLevel === 5 && (message.properties !== undefined || ids !== undefined)) {
        packet.properties = ids === undefined ? { ...message.properties } : { ...message.properties, subscriptionIdentifiers: ids }
      }
      this.outgoing.next(packet)
    }
    if (this.core.events.observed) this.core.events.emit({ type: 'delivered', client: this, message, qos })
  }

  dropped(message: Message, reason: DropReason): void {
    this.core.stats.deliveriesDropped++
    this.core.stats.droppedByReason[reason]++
    if (reason === 'evicted') this.core.stats.queueEvictions++
    else if (reason === 'buffer-full') this.core.stats.outputDrops++
    if (this.core.events.observed) this.core.events.emit({ type: 'dropped', client: this, message, reason })
  }

  slowConsumer(): void {
    this.core.stats.slowConsumers++
    this.log.warn('disconnecting slow consumer', { clientId: this.clientId })
    this.shutdown('slow-consumer', ReasonCode.QuotaExceeded)
  }

  sessionError(error: unknown): void {
    this.log.error('session write failed', { clientId: this.clientId, error })
    this.shutdown('server', ReasonCode.ImplementationSpecificError, asError(error))
  }

  // ---- I/O ----------------------------------------------------------------------------------

  /** Queue `packet` encoded at `level`. */
  private sendAt(packet: Packet, level: ProtocolLevel): void {
    if (this.state === CLOSED) return
    let bytes = encode(packet, level)
    if (level === 5 && (bytes.length > this.maxOutgoingPacketSize || !this.problemInformation)) {
      // Request Problem Information 0 and the client's Maximum Packet Size: drop reason strings and
      // user properties where the specification says so; a packet that still does not fit is not sent.
      const fitted = fitPacket(packet, this.problemInformation, this.maxOutgoingPacketSize, bytes.length)
      if (fitted === undefined) {
        this.log.debug('packet too large for the client, not sent', { clientId: this.clientId, type: packet.type })
        return
      }
      if (fitted !== packet) {
        packet = fitted
        bytes = encode(packet, level)
      }
    }
    this.out.push(bytes)
    if (!this.dirty) this.core.markDirty(this)
    if (this.outgoing?.observed === true) this.outgoing.next(packet)
  }

  /**
   * Write the batch with one `write()`. A write the socket cannot take at once starts the
   * `sendTimeout` clock (stopped by `drain`); beyond the high-water mark of its own unsent output a
   * connection's input is not read until it drains (a client that never reads cannot grow the broker).
   */
  flush(): void {
    const bytes = this.out.take()
    if (bytes === undefined) return
    const stream = this.connection.stream
    if (stream.destroyed || !stream.writable) return
    if (this.flow.write(bytes, this.core.options.maxBufferedBytes) && (this.pauseFlags & PAUSE_OUTPUT) === 0) {
      this.core.stats.inputPauses++
      this.pause(PAUSE_OUTPUT)
    }
  }

  /** The socket took all its output: publishers and its own input go on, queued deliveries go out. */
  private onDrain(): void {
    if (this.state === CLOSED) {
      this.flow.backedSince = 0
      return
    }
    try {
      this.resume(PAUSE_OUTPUT)
      this.flow.drained()
      this.outbound?.pump()
    } catch (error) {
      this.internalError(error)
    }
  }

  /** Whether this connection's socket holds so much unsent output that its publishers should wait. */
  congested(): boolean {
    return this.flow.congested
  }

  /**
   * Pause reading this (publishing) connection until `receiver` drains, for at most
   * `maxPublisherPause` ms counted from when the receiver's output backed up (`OutputFlow.hold`).
   */
  waitFor(receiver: Client): void {
    if ((this.pauseFlags & PAUSE_BACKPRESSURE) !== 0 || !receiver.flow.hold(this)) return
    this.core.stats.backpressurePauses++
    this.pause(PAUSE_BACKPRESSURE)
  }

  /** A receiver this connection waited for drained, or the wait ran out (`Waiter`). */
  stopWaiting(): void {
    this.resume(PAUSE_BACKPRESSURE)
  }

  private pause(flag: number): void {
    if (this.pauseFlags === 0) this.connection.stream.pause()
    this.pauseFlags |= flag
  }

  private resume(flag: number): void {
    if ((this.pauseFlags & flag) === 0) return
    this.pauseFlags &= ~flag
    if (this.pauseFlags === 0 && this.state !== CLOSED) this.connection.stream.resume()
  }

  finishPublish(rest: Promise<PublishStep | undefined>, issued: boolean): void {
    if (this.state === CLOSED) {
      rest.catch(() => undefined)
      return
    }
    const pipeline = (this.pipeline ??= new PublishPipeline(this))
    if (!issued) {
      this.busy = true
      this.pause(PAUSE_BUSY)
    }
    pipeline.track(rest, issued)
  }

  /** The connection is closed (`PublishPipelineHost`). */
  get closed(): boolean {
    return this.state === CLOSED
  }

  /** A PUBLISH of the pipeline settled: finish what may finish, then handle what may go now. */
  publishSettled(issued: boolean): void {
    const core = this.core
    core.depth++
    try {
      if (!issued) this.busy = false
      this.pipeline!.finishSettled()
      this.pump()
    } catch (error) {
      this.internalError(error)
    } finally {
      core.depth--
    }
    core.flushSoon(this)
  }

  /** Whether `packet` must wait in the backlog for the packets in progress. */
  private holdsBack(packet: Packet): boolean {
    if (this.busy) return true
    const pipeline = this.pipeline
    return pipeline !== undefined && pipeline.holdsBack(packet)
  }

  /** Nothing is in progress or waiting. */
  private idle(): boolean {
    return (
      !this.busy &&
      (this.pipeline === undefined || this.pipeline.idle) &&
      (this.backlog === undefined || this.backlog.length === 0)
    )
  }

  /** Handle the waiting packets that may go now; read again once none waits. */
  private pump(): void {
    const backlog = this.backlog
    while (backlog !== undefined && backlog.length > 0 && this.state !== CLOSED && !this.holdsBack(backlog[0]!)) {
      this.handle1(backlog.shift()!)
    }
    if (this.state === CLOSED || this.busy || this.pipeline?.halted === true) return
    if (backlog !== undefined && backlog.length > 0) return
    const deferred = this.deferredError
    if (deferred === undefined) {
      this.resume(PAUSE_BUSY)
    } else if (this.idle()) {
      this.deferredError = undefined
      this.onDecodeError(deferred)
    }
  }

  private onData(chunk: Buffer): void {
    if (this.state === CLOSED) return
    const core = this.core
    if (this.state === NEW && this.connectLevel === 0) {
      if (!this.started && chunk.length > 0) {
        this.started = true
        // [MQTT-3.1.0-1] the first packet must be CONNECT: anything else closes at its first byte,
        // before its remaining length or body is read.
        if (chunk[0]! >> 4 !== 1) {
          core.stats.protocolErrors++
          this.log.info('first packet is not CONNECT', { remoteAddress: this.remoteAddress, firstByte: chunk[0] })
          this.shutdown('protocol-error')
          return
        }
      }
      this.connectLevel = sniffConnectLevel(chunk)
      const level = this.connectLevel
      if (this.refusal !== undefined && (level === 3 || level === 4 || level === 5)) {
        // Refused at accept (a connection limit, the connect rate, overload): answered from the
        // CONNECT's first bytes, its body never read.
        this.log.info('refusing connection', { remoteAddress: this.remoteAddress, reasonCode: this.refusal })
        this.refuse(refusedConnack(this.refusal, level), level)
        return
      }
    }
    core.depth++
    try {
      const count = this.packetCount
      const error = this.decoder.push(chunk)
      // Keepalive counts complete packets, or real progress on a large one, not bytes [MQTT-3.1.2-23].
      if (this.packetCount !== count || (this.partialBytes += chunk.length) >= PROGRESS_BYTES) {
        this.lastActivity = core.options.clock.now()
        this.partialBytes = 0
      }
      if (error !== undefined) {
        if (this.busy || (this.pipeline !== undefined && !this.idle())) this.deferredError = error
        else this.onDecodeError(error)
      }
    } catch (error) {
      // Nothing one connection does may end the process: an unexpected error closes it (0x83).
      this.internalError(error)
    } finally {
      core.depth--
    }
    core.flushDirty(this)
  }

  private onPacket(packet: Packet): void {
    this.packetCount++
    if (this.state === CLOSED) return
    if (packet.type === 'connect') {
      // The CONNECT bound applies to the first packet only; then the negotiated maximum.
      this.decoder.maximumPacketSize = this.core.options.maximumPacketSize
      if (this.refusal !== undefined && this.state === NEW) {
        this.refuseConnect(packet, this.refusal)
        return
      }
    }
    const userProperties = (packet as { properties?: { userProperties?: unknown[] } }).properties?.userProperties
    if (userProperties !== undefined && userProperties.length > this.core.options.maxUserProperties) {
      this.core.stats.userPropertyLimitHits++
      const error = new MqttError(ReasonCode.QuotaExceeded, `${userProperties.length} user properties, more than maxUserProperties`)
      if (packet.type === 'connect' && this.state === NEW) this.refuseConnect(packet, ReasonCode.QuotaExceeded)
      else this.fail(error)
      return
    }
    if (this.busy || (this.pipeline !== undefined && (this.holdsBack(packet) || (this.backlog?.length ?? 0) > 0))) {
      ;(this.backlog ??= []).push(packet)
      this.pause(PAUSE_BUSY)
      return
    }
    this.handle1(packet)
  }

  /**
   * Dispatch one packet; a promise result holds back the next packets until it settles. A PUBLISH
   * dispatched while earlier ones are in progress gets a slot that holds back what it sends.
   */
  private handle1(packet: Packet): void {
    if (this.incoming?.observed === true) this.incoming.next(packet)
    // With PUBLISH packets in progress only a PUBLISH gets here (`holdsBack`): it gets a slot.
    const pipeline = this.pipeline
    if (pipeline !== undefined) pipeline.beginDispatch()
    let result: Awaitable<void>
    try {
      result = dispatch(this, packet)
    } catch (error) {
      if (pipeline === undefined || !pipeline.endDispatch(() => this.internalError(error))) this.internalError(error)
      return
    }
    if (pipeline !== undefined) pipeline.endDispatch(undefined)
    if (isPromise(result)) {
      this.busy = true
      this.pause(PAUSE_BUSY)
      result.then(
        () => this.afterAsync(undefined),
        (error: unknown) => this.afterAsync(error ?? new Error('handler failed'))
      )
    }
  }

  private afterAsync(error: unknown): void {
    this.busy = false
    const core = this.core
    core.depth++
    try {
      if (error !== undefined) this.internalError(error)
      else this.pump()
    } catch (thrown) {
      this.internalError(thrown)
    } finally {
      core.depth--
    }
    core.flushSoon(this)
  }

  /** Close the connection for an unexpected error of a handler (an `MqttError` is a protocol error). */
  internalError(error: unknown): void {
    if (this.state === CLOSED) return
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
  private onDecodeError(error: MqttError): void {
    if (this.state === NEW) {
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

  private onStreamError(error: Error): void {
    this.log.debug('connection error', { clientId: this.clientId, error })
    this.shutdown('socket', undefined, error)
  }

  /** The listener and certificate subject that connection events carry. */
  private origin(): { listener: string | undefined; certificateSubject?: string } {
    const subject = this.connection.peerCertificate?.subject
    return subject === undefined ? { listener: this.connection.listener } : { listener: this.connection.listener, certificateSubject: subject }
  }

  /** Called by the broker's timer wheel: connect timeout and keepalive [MQTT-3.1.2-24]. */
  tick(now: number): void {
    const state = this.state
    if (state === NEW || state === CONNECTING) {
      const timeout = this.refusal === undefined ? this.core.options.connectTimeout : Math.min(REFUSED_GRACE_MS, this.core.options.connectTimeout)
      if (now - this.createdAt > timeout) this.shutdown('connect-timeout')
    } else if (state === CONNECTED && this.keepaliveMs > 0 && now - this.lastActivity > this.keepaliveMs * 1.5) {
      this.log.info('keepalive timeout', { clientId: this.clientId })
      this.shutdown('keepalive', ReasonCode.KeepAliveTimeout)
      return
    }
    const backed = this.flow.backedSince
    if (backed !== 0 && now - backed > this.core.options.sendTimeout && this.state !== CLOSED) {
      // Its output has not drained for sendTimeout: a slow or frozen consumer.
      this.core.stats.sendTimeouts++
      this.log.warn('disconnecting slow consumer: output not drained', { clientId: this.clientId, ms: now - backed })
      this.shutdown('slow-consumer', ReasonCode.QuotaExceeded)
      this.connection.stream.destroy()
    }
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
    const previous = this.state
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
    this.authFlow = undefined
    this.state = CLOSED
    this.flush()
    const stream = this.connection.stream
    if (!stream.destroyed) {
      // Read nothing more: what a closed connection still sends would only be garbage to collect.
      stream.pause()
      stream.end()
      // A peer that never reads must not hold the socket: destroy it soon regardless.
      this.core.options.clock.setTimeout(() => stream.destroy(), 1000).unref()
    }
    this.flow.release()
    this.backlog = undefined
    this.pipeline = undefined
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
      const queued = this.outbound?.takeQueued() ?? []
      this.core.track(
        finishConnection(this.core, this, session, {
          will: this.will,
          takenOver: reason === 'takeover',
          queued
        })
      )
    }
    this.will = undefined
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
