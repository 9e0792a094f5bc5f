/**
 * What the engine needs of a network connection, whatever carries it (TCP, WebSocket, an in-memory
 * pair). Every transport hands the broker a `Duplex` of bytes plus a little metadata.
 */
import type { Duplex } from 'node:stream'

/** The name of a transport, for logs and events. */
export type TransportKind = 'tcp' | 'ws' | 'memory'

/**
 * One accepted connection: a byte stream and where it came from.
 *
 * Contract: `stream` emits `data` with `Buffer` chunks (never strings), `close` once, and accepts
 * `write(Buffer)`. The engine owns the stream after `onConnection` returned: it reads, writes,
 * pauses and destroys it.
 */
export interface Connection {
  readonly stream: Duplex
  readonly transport: TransportKind
  /** The peer's address ("127.0.0.1:53422"), when known. */
  readonly remoteAddress: string | undefined
  /** The name of the listener that accepted it ("tcp:1883" unless named), when it came from one. */
  readonly listener?: string | undefined
}

/** Called by a listener for each accepted connection. Must not throw. */
export type ConnectionHandler = (connection: Connection) => void

/** The address a listener is bound to. */
export interface ListenAddress {
  transport: TransportKind
  host: string
  port: number
  /** WebSocket only: the HTTP path served. */
  path?: string
}

/** A bound listener. `close()` stops accepting; it does not close accepted connections. */
export interface Listener {
  readonly address: ListenAddress
  close(): Promise<void>
}
