/**
 * What the engine needs of a network connection, whatever carries it (TCP, WebSocket, an in-memory
 * pair). Every transport hands the broker a `Duplex` of bytes plus a little metadata.
 */
import type { Duplex } from 'node:stream'

/** The name of a transport, for logs and events. */
export type TransportKind = 'tcp' | 'tls' | 'ws' | 'wss' | 'unix' | 'memory'

/** What a TLS client certificate says about its holder (mTLS listeners). */
export interface PeerCertificate {
  /** The subject as a one-line distinguished name ("CN=device-1,O=Acme"). */
  readonly subject: string
  /** The subject's Common Name, when it has one. */
  readonly commonName: string | undefined
  /** Subject Alternative Names as Node prints them ("DNS:a.example", "URI:...", "email:..."). */
  readonly subjectAltNames: readonly string[]
  readonly issuer: string
  /** SHA-256 fingerprint, colon-separated hex. */
  readonly fingerprint256: string
  /** Whether the certificate chained to the listener's CA (false only where client certificates are optional). */
  readonly authorized: boolean
}

/**
 * Where a connection came from, as authentication, access rules and events see it: the transport,
 * the peer's address (the real client's behind a trusted proxy), the listener and, on TLS
 * listeners that ask for one, the client certificate.
 */
export interface ConnectionInfo {
  readonly transport: TransportKind
  /**
   * The peer's address ("127.0.0.1:53422", "[::1]:53422"), when known: behind a trusted proxy the
   * client's (PROXY protocol; from X-Forwarded-For, which has no port: "203.0.113.7", "[2001:db8::7]").
   * Undefined on Unix sockets.
   */
  readonly remoteAddress: string | undefined
  /** The name of the listener that accepted it ("tcp:1883" unless named), when it came from one. */
  readonly listener?: string | undefined
  /** The verified (or, with optional client certificates, presented) client certificate. */
  readonly peerCertificate?: PeerCertificate | undefined
}

/**
 * One accepted connection: a byte stream and where it came from.
 *
 * Contract: `stream` emits `data` with `Buffer` chunks (never strings), `close` once, and accepts
 * `write(Buffer)`. The engine owns the stream after `onConnection` returned: it reads, writes,
 * pauses and destroys it.
 */
export interface Connection extends ConnectionInfo {
  readonly stream: Duplex
  /**
   * A user name the transport established: the one a TLS listener with `usernameFrom` made of a
   * verified client certificate. It replaces the CONNECT's user name for authentication.
   */
  readonly certificateUsername?: string
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
