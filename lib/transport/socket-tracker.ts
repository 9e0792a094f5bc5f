import type { Socket } from 'node:net'

/** The tracker a socket is tracked by (set on the socket: one shared `close` listener, no closure per socket). */
const TRACKER = Symbol('socket tracker')
type TrackedSocket = Socket & { [TRACKER]?: SocketTracker }

/**
 * The raw sockets a listener accepted, until they close, and whether each was handed to the engine
 * yet. On close, the ones still in a handshake (TLS, PROXY header, WebSocket upgrade) are dropped at
 * once; the handed ones belong to the engine, which ends them (`destroyAll` is the last resort).
 */
export class SocketTracker {
  private readonly sockets = new Map<Socket, boolean>()

  /** Track a newly accepted socket until it closes. */
  add(socket: Socket): void {
    this.sockets.set(socket, false)
    ;(socket as TrackedSocket)[TRACKER] = this
    socket.on('close', SocketTracker.closed)
  }

  private static closed(this: TrackedSocket): void {
    this[TRACKER]?.sockets.delete(this)
  }

  /** The socket now belongs to the engine. */
  handed(socket: Socket): void {
    if (this.sockets.has(socket)) this.sockets.set(socket, true)
  }

  /** Destroy the sockets not handed to the engine. */
  dropPending(): void {
    for (const [socket, handed] of this.sockets) if (!handed) socket.destroy()
  }

  /** Destroy every socket left. */
  destroyAll(): void {
    for (const socket of this.sockets.keys()) socket.destroy()
  }

  get size(): number {
    return this.sockets.size
  }
}

/** A listen error naming the listener and the address, keeping the system error code. */
export function listenError(label: string, where: string, error: NodeJS.ErrnoException): Error {
  const reason = error.code ?? error.message
  const message = error.message.startsWith(`listener "${label}"`)
    ? error.message
    : `listener "${label}": cannot listen on ${where}: ${reason}`
  return Object.assign(new Error(message, { cause: error }), { code: error.code, listener: label })
}
