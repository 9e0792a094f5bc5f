import type { Duplex } from 'node:stream'
import type { Subject } from 'rxjs'
import { encode } from '../packet/index.js'
import { shortAck } from '../packet/ack.js'
import type { EncodedPublish } from '../packet/publish-template.js'
import type { Packet, ProtocolLevel } from '../packet/types.js'
import type { Connection } from '../transport/connection.js'
import { ConnectionState } from './connection-state.js'
import type { BrokerCore } from './core.js'
import type { DisconnectReason } from './events.js'
import { fitPacket } from './fit-packet.js'
import type { Logger } from './logger.js'
import { BROKER_SHARED_TAKE, OutputBatch } from './output-batch.js'
import { isCongested, OutputFlow } from './output-flow.js'
import type { Waiter } from './output-flow.js'
import type { FlushTarget } from './output-scheduler.js'

/** The connection a stream belongs to (set on the stream by `ConnectionIO`). */
const OWNER = Symbol('mqtt-broker connection')
type OwnedStream = Duplex & { [OWNER]: ConnectionIO }

/** The phases of a connection: before CONNECT, during CONNECT, live (after CONNACK), closed. */
export const NEW = 0
export const CONNECTING = 1
export const CONNECTED = 2
export const CLOSED = 3

/** Why the connection's input is not read: a handler is in progress. */
export const PAUSE_BUSY = 1
/** ... it waits for a congested receiver it fed. */
const PAUSE_BACKPRESSURE = 2
/** ... its own output passed the high-water mark: not read until it drains. */
const PAUSE_OUTPUT = 4

/**
 * The socket side of one connection: its stream's events, the output batch every packet for it is
 * gathered in (written with one `write()` by the broker's `OutputScheduler`), the encoding of
 * packets to the client's limits, the output's flow control (`OutputFlow`) and the reasons its input
 * is paused. The layers above (`InboundScheduler`, `Client`) handle what arrives and the lifecycle.
 */
export abstract class ConnectionIO implements FlushTarget, Waiter {
  /** In the broker's dirty list. */
  dirty = false
  /** What CONNECT negotiated: the limits towards the client are read here. */
  readonly negotiated = new ConnectionState()
  protected phase = NEW
  protected readonly core: BrokerCore
  protected readonly connection: Connection
  /**
   * Output flow control: back-up time, publishers waiting for this connection. Made the first time
   * its output backs up (most connections never need one).
   */
  protected flow: OutputFlow | undefined = undefined
  /** The `outgoing$` flow (made at first use). */
  protected outgoing: Subject<Packet> | undefined = undefined
  private readonly out = new OutputBatch(BROKER_SHARED_TAKE)
  private pauseFlags = 0

  abstract readonly clientId: string
  abstract readonly log: Logger

  constructor(core: BrokerCore, connection: Connection) {
    this.core = core
    this.connection = connection
    // The listeners are shared by every connection (no closures per connection): the stream
    // carries its connection.
    const stream = connection.stream as OwnedStream
    stream[OWNER] = this
    stream.on('data', ConnectionIO.streamData)
    stream.on('drain', ConnectionIO.streamDrain)
    stream.on('error', ConnectionIO.streamError)
    stream.on('close', ConnectionIO.streamEnded)
    stream.on('end', ConnectionIO.streamEnded)
  }

  private static streamData(this: OwnedStream, chunk: Buffer): void {
    this[OWNER].onData(chunk)
  }

  private static streamDrain(this: OwnedStream): void {
    this[OWNER].onDrain()
  }

  private static streamError(this: OwnedStream, error: Error): void {
    this[OWNER].onStreamError(error)
  }

  private static streamEnded(this: OwnedStream): void {
    this[OWNER].shutdown('socket')
  }

  /** Bytes arrived. */
  protected abstract onData(chunk: Buffer): void
  /** The output drained: send what waited for it. */
  protected abstract drained(): void
  /** End the connection once (see `Client.shutdown`). */
  abstract shutdown(reason: DisconnectReason, reasonCode?: number, error?: Error): void
  /** Close the connection for an unexpected error. */
  abstract internalError(error: unknown): void

  /** The connection's byte stream (its socket's byte counts are read at scrape time). */
  get stream(): Duplex {
    return this.connection.stream
  }

  /** The connection is closed. */
  get closed(): boolean {
    return this.phase === CLOSED
  }

  /** Bytes written to the socket and not yet sent, plus the batch being gathered. */
  bufferedBytes(): number {
    return this.connection.stream.writableLength + this.out.length
  }

  /** Queue the bytes of a PUBLISH template with its packet id patched in. */
  pushPublish(variant: EncodedPublish, packetId: number): void {
    this.out.pushPublish(variant, packetId)
    if (!this.dirty) this.core.output.markDirty(this)
  }

  /** Queue encoded bytes. */
  pushBytes(bytes: Buffer): void {
    this.out.push(bytes)
    if (!this.dirty) this.core.output.markDirty(this)
  }

  /** Queue `packet` encoded at `level`, fitted to the client's limits. */
  protected sendAt(packet: Packet, level: ProtocolLevel): void {
    if (this.phase === CLOSED) return
    if (packet.type === 'puback' || packet.type === 'pubrec' || packet.type === 'pubrel' || packet.type === 'pubcomp') {
      // The short acknowledgement (4 bytes, the same at every level: nothing to fit) is a shared
      // template with the packet id patched in on output: no encoding, no Buffer per ack.
      const ack = shortAck(packet)
      if (ack !== undefined && (level !== 5 || this.negotiated.maxOutgoingPacketSize >= 4)) {
        this.out.pushPublish(ack, packet.packetId)
        if (!this.dirty) this.core.output.markDirty(this)
        if (this.outgoing?.observed === true) this.outgoing.next(packet)
        return
      }
    }
    let bytes = encode(packet, level)
    const negotiated = this.negotiated
    if (level === 5 && (bytes.length > negotiated.maxOutgoingPacketSize || !negotiated.problemInformation)) {
      // Request Problem Information 0 and the client's Maximum Packet Size: drop reason strings and
      // user properties where the specification says so; a packet that still does not fit is not sent.
      const fitted = fitPacket(packet, negotiated.problemInformation, negotiated.maxOutgoingPacketSize, bytes.length)
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
    if (!this.dirty) this.core.output.markDirty(this)
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
    if (stream.write(bytes)) return
    const flow = (this.flow ??= new OutputFlow(stream, this.core.options.maxPublisherPause, this.core.options.clock))
    if (flow.backedUp(this.core.options.maxBufferedBytes) && (this.pauseFlags & PAUSE_OUTPUT) === 0) {
      this.core.stats.inputPauses++
      this.pause(PAUSE_OUTPUT)
    }
  }

  /** Flush what is left, end the socket (destroyed after a second if the peer does not read), let waiting publishers go. */
  protected endOutput(): void {
    this.flush()
    const stream = this.connection.stream
    if (!stream.destroyed) {
      // Read nothing more: what a closed connection still sends would only be garbage to collect.
      stream.pause()
      stream.end()
      // A peer that never reads must not hold the socket: destroy it soon regardless.
      this.core.options.clock.setTimeout(() => stream.destroy(), 1000).unref()
    }
    this.flow?.release()
  }

  /** End the network connection now, without a word (`broker.close()` after the drain time). */
  destroy(): void {
    this.connection.stream.destroy()
  }

  /** Whether this connection's socket holds so much unsent output that its publishers should wait. */
  congested(): boolean {
    return isCongested(this.connection.stream)
  }

  /** Make `publisher` wait until this connection's output drains (`OutputFlow.hold`). */
  holdPublisher(publisher: Waiter): boolean {
    const options = this.core.options
    return (this.flow ??= new OutputFlow(this.connection.stream, options.maxPublisherPause, options.clock)).hold(publisher)
  }

  /**
   * Pause reading this (publishing) connection until `receiver` drains, for at most
   * `maxPublisherPause` ms counted from when the receiver's output backed up (`OutputFlow.hold`).
   */
  waitFor(receiver: FlushTarget): void {
    if ((this.pauseFlags & PAUSE_BACKPRESSURE) !== 0 || !receiver.holdPublisher(this)) return
    this.core.stats.backpressurePauses++
    this.pause(PAUSE_BACKPRESSURE)
  }

  /** A receiver this connection waited for drained, or the wait ran out (`Waiter`). */
  stopWaiting(): void {
    this.resume(PAUSE_BACKPRESSURE)
  }

  protected pause(flag: number): void {
    if (this.pauseFlags === 0) this.connection.stream.pause()
    this.pauseFlags |= flag
  }

  protected resume(flag: number): void {
    if ((this.pauseFlags & flag) === 0) return
    this.pauseFlags &= ~flag
    if (this.pauseFlags === 0 && this.phase !== CLOSED) this.connection.stream.resume()
  }

  /** The socket took all its output: publishers and its own input go on, queued deliveries go out. */
  private onDrain(): void {
    const flow = this.flow
    if (this.phase === CLOSED) {
      if (flow !== undefined) flow.backedSince = 0
      return
    }
    try {
      this.resume(PAUSE_OUTPUT)
      flow?.drained()
      this.drained()
    } catch (error) {
      this.internalError(error)
    }
  }

  private onStreamError(error: Error): void {
    this.log.debug('connection error', { clientId: this.clientId, error })
    this.shutdown('socket', undefined, error)
  }
}
