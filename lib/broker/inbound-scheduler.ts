import type { Subject } from 'rxjs'
import { Decoder } from '../packet/index.js'
import { MqttError } from '../packet/errors.js'
import { ReasonCode } from '../packet/reason-codes.js'
import type { ConnectPacket, Packet, ProtocolLevel } from '../packet/types.js'
import type { Connection } from '../transport/connection.js'
import { isPromise } from '../util/awaitable.js'
import type { Awaitable } from '../util/awaitable.js'
import { CLOSED, CONNECTED, ConnectionIO, NEW, PAUSE_BUSY } from './connection-io.js'
import type { BrokerCore } from './core.js'
import type { DisconnectReason } from './events.js'
import { dispatch } from './handlers/dispatch.js'
import type { ConnectContext, PublishStep } from './handlers/context.js'
import { PublishPipeline } from './publish-pipeline.js'
import type { PublishPipelineHost } from './publish-pipeline.js'
import { sniffConnectLevel } from './refusals.js'
import { refusedConnack } from './admission.js'

/** Bytes of one unfinished packet that count as activity for keepalive (real progress on a large packet). */
const PROGRESS_BYTES = 16 * 1024

/**
 * A live connection that received nothing for this long (ms) gives back its decoder at the next
 * tick of the broker's wheel (about 300 B: the decoder, its callback, its topic memo); the next
 * byte makes a new one. A connection sending more often keeps its decoder; one sending less often
 * makes a new one per packet, little next to what decoding and handling that packet allocate.
 */
export const IDLE_RELEASE_MS = 1000

/**
 * The input side of one connection: decodes its bytes and hands the packets to the dispatcher one
 * at a time. A packet whose handler returned a promise holds back the next one (they wait in the
 * backlog, the socket paused), so Backend calls of one connection are issued in arrival order.
 *
 * PUBLISH is pipelined: a PUBLISH whose Backend calls were all issued but answered with promises
 * (`finishPublish` with `issued`) lets the next PUBLISH start, up to `PIPELINE_DEPTH` in progress.
 * Their last steps (acknowledgements) run in arrival order through the `PublishPipeline`
 * [MQTT-4.6.0-2] [MQTT-4.6.0-3]; any other packet waits until every earlier PUBLISH finished. A
 * synchronous backend never creates the pipeline.
 *
 * Everything a handler sends goes through `send` (held back by the pipeline while earlier PUBLISH
 * packets are in progress). Output produced while a chunk is handled is flushed at its end.
 */
export abstract class InboundScheduler extends ConnectionIO implements PublishPipelineHost {
  /**
   * Time of the last activity, ms since the epoch: a complete packet, or `PROGRESS_BYTES` more of an
   * unfinished one (a client trickling a packet byte by byte is not kept alive by it).
   */
  lastActivity: number
  /** Refused by admission: its CONNECT is answered with this reason code (0x97, 0x9F, 0x89). */
  refusal: number | undefined = undefined
  /** The `incoming$` flow (made at first use). */
  protected incoming: Subject<Packet> | undefined = undefined
  /** The protocol level byte of the CONNECT, read ahead of decoding (0: unknown). */
  protected connectLevel = 0
  /** Made at the first byte, given back while the connection is idle (`releaseIdle`). */
  private decoder: Decoder | undefined = undefined
  private backlog: Packet[] | undefined = undefined
  /** A handler's promise holds back every further packet. */
  private busy = false
  /** The ordered PUBLISH completion queue (created at the first asynchronous PUBLISH). */
  private pipeline: PublishPipeline | undefined = undefined
  /** A decoding error found while packets were in progress: handled once they finished. */
  private deferredError: MqttError | undefined = undefined
  /** The first input byte arrived (and was a CONNECT's). */
  private started = false
  /** Packets decoded so far (keepalive activity). */
  private packetCount = 0
  /** Bytes received since the last activity without completing a packet. */
  private partialBytes = 0

  /** What the handlers get. */
  protected abstract readonly context: ConnectContext

  constructor(core: BrokerCore, connection: Connection) {
    super(core, connection)
    this.lastActivity = core.options.clock.now()
  }

  abstract readonly protocolLevel: ProtocolLevel
  /** Close the connection for `error` (see `HandlerContext.fail`). */
  abstract fail(error: MqttError, reason?: DisconnectReason): void
  /** A packet could not be decoded. */
  protected abstract onDecodeError(error: MqttError): void
  /** Refuse `connect` with `reasonCode` and close (admission, limits). */
  protected abstract refuseConnect(connect: ConnectPacket, reasonCode: number): void
  /** Send `packet` (a refusing CONNACK) encoded at `level`, then close. */
  abstract refuse(packet: Packet, level: ProtocolLevel): void

  /** Queue `packet` for the client (held back while earlier PUBLISH packets are in progress). */
  send(packet: Packet): void {
    const pipeline = this.pipeline
    if (pipeline !== undefined && pipeline.capturing) {
      pipeline.hold(packet)
      return
    }
    this.sendAt(packet, this.protocolLevel)
  }

  /** See `HandlerContext.incomingBytes`. */
  incomingBytes(): Buffer | undefined {
    return this.decoder?.rawPacket()
  }

  /**
   * Called by the broker's wheel: a live connection quiet for `IDLE_RELEASE_MS` with nothing
   * half-decoded and nothing in progress drops its decoder (made again at its next byte). True
   * when the connection is idle so (its decoder dropped now or before).
   */
  protected releaseIdle(now: number): boolean {
    if (this.phase !== CONNECTED || now - this.lastActivity < IDLE_RELEASE_MS) return false
    const decoder = this.decoder
    if (decoder !== undefined) {
      if (!decoder.idle || !this.idle()) return false
      this.decoder = undefined
    }
    return true
  }

  /**
   * The decoder for the next bytes. Before CONNECT only a small CONNECT may be buffered (`onPacket`
   * raises the bound after it); a decoder made again after an idle time starts where the dropped
   * one was: after CONNECT, at the connection's protocol level.
   */
  private makeDecoder(): Decoder {
    const options = this.core.options
    const connected = this.phase !== NEW
    // A bound method, not an arrow function: no closure context per connection (48 B, not 96).
    return (this.decoder = new Decoder(this.onPacket.bind(this), {
      role: 'server',
      maximumPacketSize: connected ? options.maximumPacketSize : options.maxConnectPacketSize,
      protocolLevel: connected ? this.protocolLevel : 4
    }))
  }

  /**
   * A failure while a PUBLISH is dispatched with earlier ones in progress: kept for its turn
   * (true), or to be handled now (false).
   */
  protected failLater(failure: () => void): boolean {
    const pipeline = this.pipeline
    if (pipeline === undefined || !pipeline.capturing) return false
    pipeline.failLater(failure)
    return true
  }

  /** See `HandlerContext.finishPublish`. */
  finishPublish(rest: Promise<PublishStep | undefined>, issued: boolean): void {
    if (this.phase === CLOSED) {
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

  /** A PUBLISH of the pipeline settled: finish what may finish, then handle what may go now. */
  publishSettled(issued: boolean): void {
    const output = this.core.output
    output.depth++
    try {
      if (!issued) this.busy = false
      this.pipeline!.finishSettled()
      this.pump()
    } catch (error) {
      this.internalError(error)
    } finally {
      output.depth--
    }
    output.flushSoon(this)
  }

  /** The connection closed: nothing waiting will be handled. */
  protected stopInput(): void {
    this.backlog = undefined
    this.pipeline = undefined
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
    while (backlog !== undefined && backlog.length > 0 && this.phase !== CLOSED && !this.holdsBack(backlog[0]!)) {
      this.handle1(backlog.shift()!)
    }
    if (this.phase === CLOSED || this.busy || this.pipeline?.halted === true) return
    if (backlog !== undefined && backlog.length > 0) return
    const deferred = this.deferredError
    if (deferred === undefined) {
      this.resume(PAUSE_BUSY)
    } else if (this.idle()) {
      this.deferredError = undefined
      this.onDecodeError(deferred)
    }
  }

  protected onData(chunk: Buffer): void {
    if (this.phase === CLOSED) return
    const core = this.core
    if (this.phase === NEW && this.connectLevel === 0) {
      if (!this.started && chunk.length > 0) {
        this.started = true
        // [MQTT-3.1.0-1] the first packet must be CONNECT: anything else closes at its first byte,
        // before its remaining length or body is read.
        if (chunk[0]! >> 4 !== 1) {
          core.stats.protocolErrors++
          this.log.info('first packet is not CONNECT', { remoteAddress: this.connection.remoteAddress, firstByte: chunk[0] })
          this.shutdown('protocol-error')
          return
        }
      }
      this.connectLevel = sniffConnectLevel(chunk)
      const level = this.connectLevel
      if (this.refusal !== undefined && (level === 3 || level === 4 || level === 5)) {
        // Refused at accept (a connection limit, the connect rate, overload): answered from the
        // CONNECT's first bytes, its body never read.
        this.log.info('refusing connection', { remoteAddress: this.connection.remoteAddress, reasonCode: this.refusal })
        this.refuse(refusedConnack(this.refusal, level), level)
        return
      }
    }
    const output = core.output
    output.depth++
    try {
      const count = this.packetCount
      const error = (this.decoder ?? this.makeDecoder()).push(chunk)
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
      output.depth--
    }
    output.flushDirty(this)
  }

  private onPacket(packet: Packet): void {
    this.packetCount++
    if (this.phase === CLOSED) return
    const options = this.core.options
    if (packet.type === 'connect') {
      // The CONNECT bound applies to the first packet only; then the negotiated maximum.
      this.decoder!.maximumPacketSize = options.maximumPacketSize
      if (this.refusal !== undefined && this.phase === NEW) {
        this.refuseConnect(packet, this.refusal)
        return
      }
    }
    const userProperties = (packet as { properties?: { userProperties?: unknown[] } }).properties?.userProperties
    if (userProperties !== undefined && userProperties.length > options.maxUserProperties) {
      this.core.stats.userPropertyLimitHits++
      const error = new MqttError(ReasonCode.QuotaExceeded, `${userProperties.length} user properties, more than maxUserProperties`)
      if (packet.type === 'connect' && this.phase === NEW) this.refuseConnect(packet, ReasonCode.QuotaExceeded)
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
      result = dispatch(this.context, packet)
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
    const output = this.core.output
    output.depth++
    try {
      if (error !== undefined) this.internalError(error)
      else this.pump()
    } catch (thrown) {
      this.internalError(thrown)
    } finally {
      output.depth--
    }
    output.flushSoon(this)
  }
}
