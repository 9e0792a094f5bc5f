/**
 * A scripted broker for client protocol specs: each connection the client dials is an in-memory
 * pair whose broker end the spec drives packet by packet (`expect`, `send`).
 */
import type { Duplex } from 'node:stream'
import { expect } from 'chai'
import { Decoder, encode } from '../../../lib/packet/index.js'
import type { Packet, PacketType, ProtocolLevel } from '../../../lib/packet/index.js'
import { memoryPair } from '../../../lib/transport/memory.js'
import type { Dialer } from '../../../lib/client/dial.js'
import { settle } from './virtual-clock.js'

export class BrokerConnection {
  level: ProtocolLevel = 4
  readonly received: Packet[] = []
  /** Every chunk written by the client (to check batching). */
  readonly chunks: Buffer[] = []
  closed = false
  private waiter: (() => void) | undefined
  private readonly decoder: Decoder

  constructor(readonly stream: Duplex) {
    this.decoder = new Decoder((packet) => {
      if (packet.type === 'connect') this.level = packet.protocolLevel
      this.received.push(packet)
      this.waiter?.()
    }, { role: 'server' })
    stream.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk)
      const error = this.decoder.push(chunk)
      if (error !== undefined) throw error
    })
    const onClose = (): void => {
      this.closed = true
      this.waiter?.()
    }
    stream.on('close', onClose)
    stream.on('end', onClose)
    stream.on('error', () => undefined)
  }

  /** The next packet from the client (waits for it); asserts its type. */
  async expect<T extends PacketType>(type: T, timeoutMs = 2000): Promise<Extract<Packet, { type: T }>> {
    const deadline = Date.now() + timeoutMs
    while (this.received.length === 0) {
      if (this.closed) throw new Error(`connection closed while waiting for ${type}`)
      if (Date.now() > deadline) throw new Error(`no ${type} within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        this.waiter = resolve
        setTimeout(resolve, 50).unref()
      })
      this.waiter = undefined
    }
    const packet = this.received.shift()!
    expect(packet.type, `expected ${type}, got ${packet.type}`).to.equal(type)
    return packet as Extract<Packet, { type: T }>
  }

  /** Assert nothing more arrived (after letting I/O run). */
  async expectNothing(): Promise<void> {
    await settle()
    expect(this.received.map((p) => p.type)).to.deep.equal([])
  }

  send(packet: Packet): void {
    this.stream.write(encode(packet, this.level))
  }

  /** CONNECT → CONNACK (success). */
  async accept(connack: Partial<Extract<Packet, { type: 'connack' }>> = {}): Promise<Extract<Packet, { type: 'connect' }>> {
    const connect = await this.expect('connect')
    this.send({ type: 'connack', sessionPresent: false, reasonCode: 0, ...connack })
    return connect
  }

  end(): void {
    this.stream.destroy()
  }
}

export class ScriptedBroker {
  private readonly connections: BrokerConnection[] = []
  private waiter: (() => void) | undefined
  /** Refuse dials (network down) while true. */
  down = false
  dials = 0

  readonly dialer: Dialer = async () => {
    this.dials++
    if (this.down) throw Object.assign(new Error('connect ECONNREFUSED (scripted)'), { code: 'ECONNREFUSED' })
    const pair = memoryPair()
    this.connections.push(new BrokerConnection(pair.server.stream))
    this.waiter?.()
    return pair.client
  }

  /** The next connection the client makes. */
  async next(timeoutMs = 2000): Promise<BrokerConnection> {
    const deadline = Date.now() + timeoutMs
    while (this.connections.length === 0) {
      if (Date.now() > deadline) throw new Error('no connection')
      await new Promise<void>((resolve) => {
        this.waiter = resolve
        setTimeout(resolve, 20).unref()
      })
    }
    return this.connections.shift()!
  }
}
