/**
 * Real TCP connections to a broker for the specs that send exact bytes: the broker listens on
 * 127.0.0.1 port 0, each client is a `node:net` socket, and everything is closed by the teardown.
 *
 * - `tcpPeer` wraps the socket in a `Peer` (decoded packets, `waitClosed`, raw `send(Buffer)`).
 * - `RawClient` keeps every byte the broker sent, for assertions on the exact bytes.
 */
import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import type { Broker } from '../../lib/broker/broker.js'
import type { ProtocolLevel } from '../../lib/packet/types.js'
import { Peer } from './flow.js'
import type { Teardown } from './teardown.js'

const ports = new WeakMap<Broker, Promise<number>>()

/** The port of the broker's TCP listener on 127.0.0.1 (bound on first use). */
export function tcpPort(broker: Broker): Promise<number> {
  let port = ports.get(broker)
  if (port === undefined) {
    port = broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 }).then((address) => address.port)
    ports.set(broker, port)
  }
  return port
}

/** A socket connected to the broker's TCP listener, destroyed by the teardown. */
export async function openSocket(teardown: Teardown, broker: Broker): Promise<Socket> {
  const port = await tcpPort(broker)
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = tcpConnect({ host: '127.0.0.1', port }, () => resolve(s))
    s.once('error', reject)
  })
  return teardown.add(socket, (s) => s.destroy())
}

/** A `Peer` over a real TCP connection; `level` is the protocol level it decodes at. */
export async function tcpPeer(teardown: Teardown, broker: Broker, level: ProtocolLevel = 4): Promise<Peer> {
  const peer = new Peer({ stream: await openSocket(teardown, broker) })
  peer.speak(level)
  return peer
}

/** A TCP client that records the exact bytes the broker sends. */
export class RawClient {
  private bytes = Buffer.alloc(0)
  private waiter: (() => void) | undefined = undefined
  private ended = false
  /** Resolves when the broker closed the connection. */
  readonly closed: Promise<void>

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.bytes = Buffer.concat([this.bytes, chunk])
      this.wake()
    })
    this.closed = new Promise((resolve) => {
      const done = (): void => {
        this.ended = true
        resolve()
        this.wake()
      }
      socket.on('end', done)
      socket.on('close', done)
    })
    socket.on('error', () => undefined)
  }

  static async open(teardown: Teardown, broker: Broker): Promise<RawClient> {
    return new RawClient(await openSocket(teardown, broker))
  }

  private wake(): void {
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.()
  }

  send(bytes: Buffer | number[]): this {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes))
    return this
  }

  /** Everything received so far. */
  get received(): Buffer {
    return this.bytes
  }

  /** Wait for at least `n` bytes in all (rejects after `timeout` ms or when closed first). */
  async read(n: number, timeout = 3000): Promise<Buffer> {
    const deadline = Date.now() + timeout
    while (this.bytes.length < n) {
      if (this.ended) throw new Error(`connection closed after ${this.bytes.length} of ${n} bytes`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`only ${this.bytes.length} of ${n} bytes within ${timeout} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiter = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    return this.bytes.subarray(0, n)
  }

  /** Resolves once the broker closed the connection; rejects after `timeout` ms. */
  async waitClosed(timeout = 3000): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      this.closed,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`connection still open after ${timeout} ms`)), timeout)
      })
    ]).finally(() => clearTimeout(timer))
  }
}

/** Bytes from a hex string with spaces and `|` separators ignored (annotated byte strings). */
export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/[\s|]/g, ''), 'hex')
}
