import { Duplex } from 'node:stream'
import type { Connection } from './connection.js'

/**
 * One end of an in-memory byte pipe. Bytes written to one end are read from the other, in order,
 * asynchronously (never within the `write` call). Ending or destroying one end closes both.
 */
class MemoryEnd extends Duplex {
  peer: MemoryEnd | undefined

  override _read(): void {
    // Data is pushed by the peer as it is written; nothing to pull.
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const peer = this.peer
    if (peer === undefined || peer.destroyed) {
      callback()
      return
    }
    // Copy: the writer may reuse its buffer; a real socket would not share memory either.
    const copy = Buffer.from(chunk)
    setImmediate(() => {
      if (!peer.destroyed) peer.push(copy)
    })
    callback()
  }

  override _final(callback: (error?: Error | null) => void): void {
    const peer = this.peer
    setImmediate(() => {
      if (peer !== undefined && !peer.destroyed) peer.push(null)
    })
    callback()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const peer = this.peer
    this.peer = undefined
    if (peer !== undefined && !peer.destroyed) {
      setImmediate(() => {
        peer.push(null)
        peer.destroy()
      })
    }
    callback(error)
  }
}

/** The two ends of an in-memory connection. */
export interface MemoryPair {
  /** The broker's end, ready to hand to `Broker.handle`. */
  server: Connection
  /** The client's end: write packets to it, read the broker's answers from it. */
  client: Duplex
}

/**
 * An in-memory connection for tests: no sockets, no ports, same byte-stream semantics (chunks in
 * order, asynchronous delivery, close propagates to the other end).
 */
export function memoryPair(): MemoryPair {
  const a = new MemoryEnd()
  const b = new MemoryEnd()
  a.peer = b
  b.peer = a
  return { server: { stream: a, transport: 'memory', remoteAddress: 'memory' }, client: b }
}
