/**
 * `Client`: one network connection's MQTT protocol state (3.1, 3.1.1, 5.0; QoS 0/1/2 both ways).
 * It never reconnects: when the connection ends, what is pending settles (see errors.ts) and the
 * `ClientSession` is left for the next connection (the `Service`'s job).
 *
 * Output is batched per event-loop turn: every packet produced in one turn goes out in one
 * `write()` (`OutputBatch`), QoS 1/2 PUBLISH bytes are encoded once (`PublishTemplate`) and the
 * packet id patched in while copying.
 */
import type { Duplex } from 'node:stream'
import { Observable, Subject } from 'rxjs'
import { Decoder, ProtocolError, ReasonCode, encode } from '../packet/index.js'
import type { MqttError, ConnackPacket, EncodedPublish, Packet, ProtocolLevel, PublishPacket } from '../packet/index.js'
import { OutputBatch } from '../util/output-batch.js'
import type { Clock, Timer } from './clock.js'
import { AbandonedError, CanceledError, ClosedError, ConnectionLostError, KeepaliveTimeoutError, OfflineError, ServerDisconnectError } from './errors.js'
import { AckQueue } from './inbound.js'
import type { InboundMessage, Message } from './inbound.js'
import { Inbound } from './client-inbound.js'
import { Requests } from './client-requests.js'
import type { SubscribeOptions, SubscribeRequest, SubscribeResult, UnsubscribeResult } from './client-requests.js'
import { handshake, legacyConnackRefusal, reauthenticate, resolveLimits } from './client-connect.js'
import type { ConnectionContext } from './client-context.js'
import type { ClientLimits, CloseInfo, EndOptions, PacketTrace } from './client-types.js'
import { Outbound } from './client-outbound.js'
import type { PublishOptions } from './client-outbound.js'
import { DEFAULT_KEEPALIVE } from './options.js'
import type { ClientOptions } from './options.js'
import { ClientSession } from './session.js'
import type { PublishResult } from './session.js'
import { connectWith } from './client-dial.js'

export type { CloseInfo, EndOptions, PacketTrace } from './client-types.js'

/** PUBACK / PUBREC / PUBREL / PUBCOMP with reason 0x00, by packet type, for `sendAck`. */
const ACK_TEMPLATES: (EncodedPublish | undefined)[] = []
for (const firstByte of [0x40, 0x50, 0x62, 0x70]) ACK_TEMPLATES[firstByte >> 4] = Object.freeze({ bytes: Buffer.from([firstByte, 2, 0, 0]), packetIdOffset: 2 })

const PINGREQ = Buffer.from([0xc0, 0])

const RESOLVED = Promise.resolve()

type PingWaiter = (error: Error | undefined) => void

/** The result of a QoS 0 publish (shared, frozen). */
const WRITTEN: PublishResult = Object.freeze({ reasonCode: 0 }) as PublishResult

const CONNECTING = 0
const CONNECTED = 1
const CLOSED = 2

/** One connection; see the module comment. Create with `Client.connect`. */
export class Client implements ConnectionContext {
  /** The broker's CONNACK. */
  connack!: ConnackPacket
  /** What the broker allows, from CONNACK (defaults before MQTT 5). */
  limits!: ClientLimits
  readonly session: ClientSession
  readonly protocolLevel: ProtocolLevel
  readonly clientId: string
  /** Resolves (never rejects) when the connection has ended. */
  readonly closed: Promise<CloseInfo>
  /** @internal */ readonly clock: Clock
  /** @internal */ readonly options: ClientOptions
  /** @internal */ readonly acks: AckQueue
  /** @internal */ readonly inbound: Inbound
  /** @internal */ readonly requests: Requests
  /** @internal */ readonly outbound: Outbound
  /** @internal */ readonly messageSubject = new Subject<InboundMessage>()
  private readonly packetSubject = new Subject<PacketTrace>()
  /** Decodes our own output for `packets$` (made on first use). */
  private outTrace: Decoder | undefined
  private readonly stream: Duplex
  private readonly decoder: Decoder
  private readonly batch = new OutputBatch()
  private flushScheduled = false
  /** One promise for every QoS 0 publish of this turn's batch: no promise per message. */
  private flushWaiter: { promise: Promise<PublishResult>; resolve: (result: PublishResult) => void; reject: (error: Error) => void } | undefined
  private state = CONNECTING
  private resolveClosed!: (info: CloseInfo) => void
  private readonly onConnack: ((client: Client) => void) | undefined
  /** @internal */ onConnackPacket: ((packet: ConnackPacket) => void) | undefined
  /** @internal */ onAuthPacket: ((packet: Packet & { type: 'auth' }) => void) | undefined
  /** @internal */ onCloseBeforeConnack: ((error: Error) => void) | undefined
  private readonly flushAcks = (): void => this.acks.flush()
  /** `flush` bound once (no closure per batch). */
  private readonly flushNow = (): void => this.flush()
  private keepaliveMs = 0
  private pingTimeoutMs = 0
  private lastSent = 0
  private keepaliveTimer: Timer | undefined
  private pingDeadline: Timer | undefined
  /** One slot per PINGREQ awaiting its PINGRESP, in order (undefined: keepalive or abandoned). */
  private readonly pings: (PingWaiter | undefined)[] = []
  /** Set by the first inbound bytes (a 3.x CONNACK to a v5 CONNECT is looked for there). */
  private heard = false
  private closeError: Error | undefined
  private closeInitiator: CloseInfo['initiator'] = 'network'

  /**
   * Connect to a broker: dial, CONNECT, wait for CONNACK. Rejects with `ConnectionRefusedError`
   * (CONNACK ≠ 0), `ConnectTimeoutError`, `CanceledError` (signal), `ConnectFailedError` (dial) or
   * `ConnectionLostError` (closed before CONNACK); never hangs.
   */
  static connect(url: string, options?: ClientOptions): Promise<Client>
  static connect(options: ClientOptions): Promise<Client>
  static connect(target: string | ClientOptions, options: ClientOptions = {}): Promise<Client> {
    return Client.open(typeof target === 'string' ? { ...options, url: target } : target, undefined)
  }

  /** @internal `Client.connect` with `onConnack`, run on CONNACK before anything queued is sent (the Service resubscribes there). */
  static open(options: ClientOptions, onConnack: ((client: Client) => void) | undefined): Promise<Client> {
    return connectWith(options, (stream, level, clock) => new Client(stream, options, level, clock, onConnack), handshake)
  }

  /** @internal Use `Client.connect`. */
  constructor(stream: Duplex, options: ClientOptions, level: ProtocolLevel, clock: Clock, onConnack?: (client: Client) => void) {
    this.stream = stream
    this.onConnack = onConnack
    this.options = options
    this.protocolLevel = level
    this.clock = clock
    this.clientId = options.clientId ?? (level === 3 ? `client-${Math.random().toString(16).slice(2, 10)}` : '')
    this.session = options.session ?? new ClientSession(level)
    // PUBACK / PUBREC with reason 0x00 are the same 4 bytes at every level [MQTT-3.4.2-1].
    this.acks = new AckQueue((qos, packetId) => this.sendAck(qos === 1 ? 0x40 : 0x50, packetId))
    this.inbound = new Inbound(this)
    this.requests = new Requests(this)
    this.outbound = new Outbound(this)
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve))
    this.decoder = new Decoder((packet) => this.onPacket(packet), {
      role: 'client',
      protocolLevel: level,
      maximumPacketSize: options.properties?.maximumPacketSize
    })
    if (options.onPacket !== undefined) this.packetSubject.subscribe(options.onPacket)
    stream.on('data', (chunk: Buffer) => {
      if (!this.heard) {
        this.heard = true
        const refused = level === 5 && this.state === CONNECTING ? legacyConnackRefusal(chunk) : undefined
        if (refused !== undefined) return this.close('server', refused)
      }
      const error = this.decoder.push(chunk)
      if (error !== undefined) this.fail(error)
    })
    stream.on('error', (error: Error) => this.onStreamClosed(error))
    stream.on('close', () => this.onStreamClosed(undefined))
    stream.on('end', () => this.onStreamClosed(undefined))
  }

  /** True between CONNACK and the end of the connection. */
  get connected(): boolean {
    return this.state === CONNECTED
  }

  /** Inbound messages: hot, synchronous, completes when the connection ends. A message is acked when every observer's `next` has returned (unless one `hold`s it). */
  get messages$(): Observable<InboundMessage> {
    return this.messages
  }

  /**
   * Messages that arrived before anyone observed `messages$` (a persistent session's backlog comes
   * right behind CONNACK, before `connect` resolves): held, unacknowledged, and handed to the first
   * observer. Bounded by our Receive Maximum for QoS 1/2 and by `EARLY_QOS0` for QoS 0.
   */
  /** @internal */ early: Message[] | undefined = []
  private readonly messages = new Observable<InboundMessage>((subscriber) => {
    const subscription = this.messageSubject.subscribe(subscriber)
    const early = this.early
    if (early !== undefined) {
      this.early = undefined
      for (const message of early) {
        subscriber.next(message)
        if (this.options.manualAck !== true || message.qos === 0) message.release()
      }
    }
    return subscription
  })

  /**
   * Every packet in both directions, for tracing and debugging (`mqttc -d`): hot, completes when
   * the connection ends; costs nothing while unobserved (outgoing batches are decoded only then).
   * Inbound packets may hold views of the socket chunk: copy what you keep.
   */
  get packets$(): Observable<PacketTrace> {
    return this.packetSubject.asObservable()
  }

  /**
   * Publish. Resolves when the broker acknowledged it per its QoS: QoS 0 once written to the
   * socket, QoS 1 on PUBACK, QoS 2 on PUBCOMP. Rejects with `InvalidRequestError` (bad topic, too
   * large, QoS or retain not available), `OfflineError`/`ClosedError`, `CanceledError` /
   * `AbandonedError` (signal), `PublishFailedError` (v5 reason ≥ 0x80) or `ConnectionLostError`.
   */
  publish(topic: string, payload: Buffer | Uint8Array | string, options: PublishOptions = {}): Promise<PublishResult> {
    if (this.state !== CONNECTED) return Promise.reject(this.state === CLOSED ? new ClosedError() : new OfflineError())
    return this.outbound.publish(topic, payload, options)
  }

  /** Subscribe; resolves on SUBACK (rejects with `SubscribeError` when a filter is refused, unless `allowPartial`). */
  subscribe(subscriptions: string | SubscribeRequest | readonly (string | SubscribeRequest)[], options: SubscribeOptions = {}): Promise<SubscribeResult> {
    if (this.state !== CONNECTED) return Promise.reject(this.state === CLOSED ? new ClosedError() : new OfflineError())
    return this.requests.subscribe(subscriptions, options)
  }

  /** Unsubscribe; resolves on UNSUBACK. */
  unsubscribe(filters: string | readonly string[], options: SubscribeOptions = {}): Promise<UnsubscribeResult> {
    if (this.state !== CONNECTED) return Promise.reject(this.state === CLOSED ? new ClosedError() : new OfflineError())
    return this.requests.unsubscribe(filters, options)
  }

  /**
   * Disconnect gracefully: optionally wait (`drainMs`) for unfinished QoS 1/2 exchanges, send
   * DISCONNECT, close. Pending work then settles with `ClosedError`. Resolves once closed.
   */
  async end(options: EndOptions = {}): Promise<void> {
    if (this.state === CLOSED) return
    const signal = options.signal
    const onAbort = (): void => this.destroy()
    if (signal?.aborted === true) onAbort()
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      if (this.state === CONNECTED && (options.drainMs ?? 0) > 0) await this.outbound.drain(options.drainMs ?? 0)
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
    if (this.state === CONNECTED) {
      const reasonCode = options.reasonCode ?? 0
      this.send(encode({ type: 'disconnect', reasonCode, properties: options.properties }, this.protocolLevel))
      this.closeInitiator = 'user'
      this.closeError = new ClosedError()
      this.flush()
      this.stream.end()
    }
    this.close('user', new ClosedError())
    await this.closed
  }

  /**
   * MQTT 5: re-authenticate on this connection (AUTH 0x19 with the `auth` option's method and
   * data; the broker's challenges are answered by `auth.challenge`). Resolves on the broker's AUTH
   * 0x00; a refusal comes as a DISCONNECT and rejects with `ServerDisconnectError`.
   */
  reauthenticate(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.state !== CONNECTED) return Promise.reject(this.state === CLOSED ? new ClosedError() : new OfflineError())
    return reauthenticate(this, options.signal)
  }

  /** Close now without DISCONNECT (the broker publishes the will). */
  destroy(): void {
    this.close('user', new ClosedError())
  }

  /** @internal Queue bytes for this turn's write. */
  send(bytes: Buffer): void {
    if (this.state === CLOSED) return
    this.batch.push(bytes)
    this.scheduleFlush()
  }

  /**
   * @internal Queue PUBACK (0x40), PUBREC (0x50), PUBREL (0x62) or PUBCOMP (0x70) with reason 0x00:
   * the same 4 bytes at every level (MQTT 5 leaves out a success reason code [MQTT-3.4.2-1]).
   */
  sendAck(firstByte: number, packetId: number): void {
    if (this.state === CLOSED) return
    // A shared 4-byte template whose packet id is patched in while the batch is copied: no
    // Buffer per acknowledgement.
    this.batch.pushPublish(ACK_TEMPLATES[firstByte >> 4]!, packetId)
    this.scheduleFlush()
  }

  /** @internal Queue an encoded PUBLISH with its packet id. */
  sendPublish(variant: EncodedPublish, packetId: number): void {
    if (this.state === CLOSED) return
    this.batch.pushPublish(variant, packetId)
    this.scheduleFlush()
  }

  /** @internal A promise settled when this turn's batch has been written (QoS 0 completion). */
  flushed(): Promise<PublishResult> {
    let waiter = this.flushWaiter
    if (waiter === undefined) {
      let resolve!: (result: PublishResult) => void
      let reject!: (error: Error) => void
      const promise = new Promise<PublishResult>((res, rej) => {
        resolve = res
        reject = rej
      })
      waiter = this.flushWaiter = { promise, resolve, reject }
    }
    return waiter.promise
  }

  /** @internal The connection broke a rule: tell the broker (v5) and close. */
  fail(error: MqttError): void {
    if (this.state === CLOSED) return
    if (this.protocolLevel === 5 && this.state === CONNECTED) {
      this.send(encode({ type: 'disconnect', reasonCode: error.reasonCode }, 5))
      this.flush()
    }
    this.close('protocol', error)
  }

  /** @internal CONNACK accepted: apply limits, start keepalive, restore the session. */
  established(connack: ConnackPacket): void {
    this.connack = connack
    this.limits = resolveLimits(this, connack)
    this.state = CONNECTED
    this.keepaliveMs = this.limits.keepalive * 1000
    this.pingTimeoutMs = this.options.pingTimeoutMs ?? Math.min(this.keepaliveMs / 2, 10_000)
    this.armKeepalive()
    this.session.flushAcks = this.flushAcks
    this.onConnack?.(this)
    this.outbound.resume(connack.sessionPresent && this.protocolLevel >= 4)
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    // A plain promise reaction: queueMicrotask wraps every call in an AsyncResource (two async
    // hook emits per flush), a measurable share of a QoS 1 publisher's time.
    RESOLVED.then(this.flushNow)
  }

  private flush(): void {
    this.flushScheduled = false
    const bytes = this.batch.take()
    const waiter = this.flushWaiter
    this.flushWaiter = undefined
    if (bytes === undefined || this.stream.destroyed) {
      if (waiter !== undefined) {
        if (bytes === undefined) waiter.resolve(WRITTEN)
        else waiter.reject(new ConnectionLostError('not-sent'))
      }
      return
    }
    this.lastSent = this.clock.now()
    if (this.packetSubject.observed) this.traceOut(bytes)
    if (waiter === undefined) {
      this.stream.write(bytes)
      return
    }
    this.stream.write(bytes, (error) => {
      if (error == null) waiter.resolve(WRITTEN)
      else waiter.reject(new ConnectionLostError('unknown', 'connection lost', { cause: error }))
    })
  }

  private traceOut(bytes: Buffer): void {
    this.outTrace ??= new Decoder((packet) => this.packetSubject.next({ direction: 'out', packet }), { role: 'server', protocolLevel: this.protocolLevel })
    this.outTrace.push(bytes)
  }

  private onPacket(packet: Packet): void {
    if (this.state === CLOSED) return
    if (this.packetSubject.observed) this.packetSubject.next({ direction: 'in', packet })
    if (this.pingDeadline !== undefined) {
      // Anything from the broker proves the connection alive.
      this.pingDeadline.cancel()
      this.pingDeadline = undefined
    }
    if (this.state === CONNECTING) {
      if (packet.type === 'connack') this.onConnackPacket?.(packet)
      else if (packet.type === 'auth') this.onAuthPacket?.(packet)
      else if (packet.type === 'disconnect') this.onDisconnect(packet)
      else this.fail(new ProtocolError(`${packet.type.toUpperCase()} before CONNACK`))
      return
    }
    switch (packet.type) {
      case 'publish':
        this.inbound.onPublish(packet as PublishPacket, this.decoder)
        return
      case 'puback':
      case 'pubrec':
      case 'pubcomp':
        this.outbound.onAck(packet)
        return
      case 'pubrel':
        this.inbound.onPubrel(packet.packetId)
        return
      case 'suback':
      case 'unsuback':
        this.requests.onAck(packet)
        return
      case 'pingresp':
        // PINGRESPs answer PINGREQs in order; one nobody asked for is ignored.
        if (this.pings.length > 0) this.pings.shift()?.(undefined)
        return
      case 'disconnect':
        this.onDisconnect(packet)
        return
      case 'auth':
        this.onAuthPacket?.(packet)
        return
      default:
        this.fail(new ProtocolError(`unexpected ${packet.type.toUpperCase()}`))
    }
  }

  /**
   * Send PINGREQ; resolves with the round trip in milliseconds on its PINGRESP. Rejects with
   * `OfflineError`/`ClosedError` when not connected, `CanceledError` when `signal` is already
   * aborted, `AbandonedError` when it aborts later (a PINGRESP may still come), `ClosedError` /
   * `ConnectionLostError` (outcome unknown) when the connection ends first.
   */
  ping(options: { signal?: AbortSignal | undefined } = {}): Promise<number> {
    if (this.state !== CONNECTED) return Promise.reject(this.state === CLOSED ? new ClosedError() : new OfflineError())
    const signal = options.signal
    if (signal?.aborted === true) return Promise.reject(new CanceledError({ cause: signal.reason }))
    return new Promise<number>((resolve, reject) => {
      const started = this.clock.now()
      const onAbort = (): void => {
        const at = this.pings.indexOf(waiter)
        // The slot stays: the broker still answers this PINGREQ, in order.
        if (at >= 0) this.pings[at] = undefined
        reject(new AbandonedError({ cause: signal?.reason }))
      }
      const waiter: PingWaiter = (error) => {
        signal?.removeEventListener('abort', onAbort)
        if (error === undefined) resolve(this.clock.now() - started)
        else reject(error)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.sendPing(waiter)
    })
  }

  /** PINGREQ now; `waiter` (undefined for keepalive) is told by the PINGRESP that answers it. */
  private sendPing(waiter: PingWaiter | undefined): void {
    this.pings.push(waiter)
    this.send(PINGREQ)
    this.flush()
  }

  private onDisconnect(packet: Packet & { type: 'disconnect' }): void {
    const error = new ServerDisconnectError(packet.reasonCode ?? ReasonCode.NormalDisconnection, packet.properties?.reasonString, packet.properties?.serverReference)
    this.close('server', error)
  }

  private armKeepalive(): void {
    if (this.keepaliveMs <= 0 || this.state !== CONNECTED) return
    const idle = this.clock.now() - this.lastSent
    const wait = this.keepaliveMs - idle
    if (wait > 0) {
      this.keepaliveTimer = this.clock.setTimer(() => this.armKeepalive(), wait)
      return
    }
    // Nothing sent for a whole keepalive period: PINGREQ [MQTT-3.1.2-23].
    this.sendPing(undefined)
    if (this.pingDeadline === undefined) {
      this.pingDeadline = this.clock.setTimer(() => this.close('network', new KeepaliveTimeoutError(this.pingTimeoutMs)), this.pingTimeoutMs)
    }
    this.keepaliveTimer = this.clock.setTimer(() => this.armKeepalive(), this.keepaliveMs)
  }

  private onStreamClosed(error: Error | undefined): void {
    if (this.state === CLOSED) return
    this.close('network', this.closeError ?? new ConnectionLostError('unknown', 'connection lost', { cause: error }))
  }

  /** @internal End the connection (idempotent) and settle what is pending. */
  close(initiator: CloseInfo['initiator'], error: Error): void {
    if (this.state === CLOSED) return
    const wasConnecting = this.state === CONNECTING
    this.state = CLOSED
    this.closeInitiator = initiator
    this.keepaliveTimer?.cancel()
    this.pingDeadline?.cancel()
    if (!this.stream.destroyed) {
      // Give a graceful end's DISCONNECT a chance to leave; destroy otherwise.
      if (initiator === 'user' && this.stream.writableEnded) setImmediate(() => this.stream.destroy())
      else this.stream.destroy()
    }
    const lost = error instanceof ClosedError ? error : undefined
    this.flush()
    this.acks.clear()
    if (this.session.flushAcks === this.flushAcks) this.session.flushAcks = undefined
    const pings = this.pings.splice(0)
    for (const waiter of pings) waiter?.(lost !== undefined ? new ClosedError('unknown') : new ConnectionLostError('unknown', 'connection lost', { cause: error }))
    this.requests.closeAll(lost)
    this.outbound.closeAll(lost, error)
    if (wasConnecting) this.onCloseBeforeConnack?.(error)
    this.messageSubject.complete()
    this.packetSubject.complete()
    this.resolveClosed({ initiator, error: initiator === 'user' ? undefined : error })
  }

  /** The keepalive actually used, in seconds (a v5 Server Keep Alive wins). */
  get keepalive(): number {
    return this.options.keepalive ?? DEFAULT_KEEPALIVE
  }
}
