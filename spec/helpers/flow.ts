/**
 * A scripted MQTT exchange over the in-memory transport pair:
 *
 * ```ts
 * await flow(broker)
 *   .send({ type: 'connect', protocolLevel: 4, clean: true, keepalive: 0, clientId: 'a' })
 *   .expect({ type: 'connack', sessionPresent: false, reasonCode: 0 })
 *   .run()
 * ```
 *
 * `Peer` is the lower-level scripted client the flow drives; specs use it directly when they need
 * several clients interleaved.
 */
import { expect } from 'chai'
import type { Duplex } from 'node:stream'
import { Decoder, encode } from '../../lib/packet/index.js'
import type { MqttError } from '../../lib/packet/errors.js'
import type { ConnectPacket, Packet, ProtocolLevel } from '../../lib/packet/types.js'
import { memoryPair } from '../../lib/transport/memory.js'
import type { Connection } from '../../lib/transport/connection.js'

/** Anything that adopts a connection (a `Broker`). */
export interface ConnectionSink {
  handle(connection: Connection): void
}

/** A scripted client on one in-memory connection. */
export class Peer {
  readonly stream: Duplex
  /** Protocol level used to encode and decode (set by the first CONNECT sent). */
  level: ProtocolLevel = 4
  private readonly decoder: Decoder
  private readonly received: Packet[] = []
  private waiter: (() => void) | undefined = undefined
  private isClosed = false
  decodeError: MqttError | undefined = undefined
  /** Resolves when the broker closed the connection. */
  readonly closed: Promise<void>

  /** Over a fresh in-memory pair handed to `sink`, or over an already connected `stream`. */
  constructor(target: ConnectionSink | { stream: Duplex }) {
    let stream: Duplex
    if ('handle' in target) {
      const pair = memoryPair()
      stream = pair.client
      target.handle(pair.server)
    } else {
      stream = target.stream
    }
    this.stream = stream
    this.decoder = new Decoder((packet) => this.onPacket(packet), { role: 'client' })
    this.closed = new Promise((resolve) => {
      const done = (): void => {
        this.isClosed = true
        resolve()
        this.wake()
      }
      stream.on('close', done)
      stream.on('end', done)
    })
    stream.on('error', () => undefined)
    stream.on('data', (chunk: Buffer) => {
      const error = this.decoder.push(chunk)
      if (error !== undefined) this.decodeError ??= error
    })
  }

  /** Encode and decode at `level` from now on (for a CONNECT sent as raw bytes). */
  speak(level: ProtocolLevel): this {
    this.level = level
    this.decoder.protocolLevel = level
    return this
  }

  get isConnectionClosed(): boolean {
    return this.isClosed
  }

  private onPacket(packet: Packet): void {
    this.received.push(packet)
    this.wake()
  }

  private wake(): void {
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.()
  }

  /** Send a packet (encoded at `level`) or raw bytes. */
  send(packet: Packet | Buffer): this {
    if (Buffer.isBuffer(packet)) {
      this.stream.write(packet)
      return this
    }
    if (packet.type === 'connect') {
      this.level = packet.protocolLevel
      this.decoder.protocolLevel = packet.protocolLevel
    }
    this.stream.write(encode(packet, this.level))
    return this
  }

  /** The next packet from the broker; rejects after `timeout` ms or when the connection closed. */
  async next(timeout = 2000): Promise<Packet> {
    const deadline = Date.now() + timeout
    while (this.received.length === 0) {
      if (this.isClosed) throw new Error('connection closed while waiting for a packet')
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no packet within ${timeout} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiter = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    return this.received.shift()!
  }

  /** The packets received and not yet taken by `next()`, taken now (no waiting). */
  takeReceived(): Packet[] {
    return this.received.splice(0)
  }

  /** Collect packets for `ms` milliseconds (what is already received included). */
  async drain(ms: number): Promise<Packet[]> {
    await new Promise((resolve) => setTimeout(resolve, ms))
    return this.received.splice(0)
  }

  /** Resolves once the broker closed the connection; rejects after `timeout` ms. */
  async waitClosed(timeout = 2000): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      this.closed,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`connection still open after ${timeout} ms`)), timeout)
      })
    ]).finally(() => clearTimeout(timer))
  }

  /** CONNECT with defaults (level 4, clean, no keepalive) and return the CONNACK. */
  async connect(fields: Partial<ConnectPacket> = {}): Promise<Packet> {
    this.send({ type: 'connect', protocolLevel: 4, clean: true, keepalive: 0, clientId: '', ...fields })
    return this.next()
  }

  /** Close the connection from the client side (no DISCONNECT). */
  destroy(): void {
    this.stream.destroy()
  }
}

type Expectation = Packet | ((packet: Packet) => void)

type Step =
  | { kind: 'send'; packet: Packet | Buffer }
  | { kind: 'expect'; expectation: Expectation }
  | { kind: 'close' }
  | { kind: 'nothing'; ms: number }
  | { kind: 'wait'; ms: number }

/** A scripted exchange: steps run in order by `run()`. */
export class Flow {
  private readonly steps: Step[] = []
  readonly peer: Peer

  constructor(sink: ConnectionSink) {
    this.peer = new Peer(sink)
  }

  /** Send a packet or raw bytes. */
  send(packet: Packet | Buffer): this {
    this.steps.push({ kind: 'send', packet })
    return this
  }

  /** Expect the next packet to deep-equal `expected`, or pass the check function. */
  expect(expected: Expectation): this {
    this.steps.push({ kind: 'expect', expectation: expected })
    return this
  }

  /** Expect the broker to close the connection (after any packets already expected). */
  expectClose(): this {
    this.steps.push({ kind: 'close' })
    return this
  }

  /** Expect no packet for `ms` milliseconds. */
  expectNothing(ms = 50): this {
    this.steps.push({ kind: 'nothing', ms })
    return this
  }

  /** Pause for `ms` milliseconds. */
  wait(ms: number): this {
    this.steps.push({ kind: 'wait', ms })
    return this
  }

  /** Run the script; rejects at the first unmet expectation. */
  async run(timeout = 2000): Promise<Peer> {
    const peer = this.peer
    for (const [index, step] of this.steps.entries()) {
      switch (step.kind) {
        case 'send':
          peer.send(step.packet)
          break
        case 'expect': {
          const packet = await peer.next(timeout).catch((error: Error) => {
            throw new Error(`step ${index}: ${error.message}`)
          })
          if (typeof step.expectation === 'function') step.expectation(packet)
          else expect(packet, `step ${index}`).to.deep.equal(step.expectation)
          break
        }
        case 'close':
          await peer.waitClosed(timeout)
          break
        case 'nothing': {
          const packets = await peer.drain(step.ms)
          expect(packets, `step ${index}: no packet expected`).to.deep.equal([])
          break
        }
        case 'wait':
          await new Promise((resolve) => setTimeout(resolve, step.ms))
          break
      }
    }
    return peer
  }
}

/** Start a scripted exchange with `sink` (a broker) over a fresh in-memory connection. */
export function flow(sink: ConnectionSink): Flow {
  return new Flow(sink)
}

/** A CONNECT packet with defaults: level 4, clean, keepalive 0. */
export function connect(fields: Partial<ConnectPacket> = {}): ConnectPacket {
  return { type: 'connect', protocolLevel: 4, clean: true, keepalive: 0, clientId: 'client', ...fields }
}

/** A successful CONNACK as the broker sends it (no properties). */
export function connack(sessionPresent = false, reasonCode = 0): Packet {
  return { type: 'connack', sessionPresent, reasonCode }
}
