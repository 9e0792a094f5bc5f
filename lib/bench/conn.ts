/**
 * One raw MQTT 3.1.1 client connection of the load generator, over TCP or WebSocket.
 *
 * It reads with a shared receive buffer (TCP `onread`), splits packets with `PacketSplitter` and
 * hands them to the current handler, then calls `onChunkEnd` once per received chunk so that a
 * role can answer a whole chunk with a single write. Nothing here allocates per packet.
 */
import net from 'node:net'
import tls from 'node:tls'
import { WebSocket } from 'ws'
import { PacketSplitter, PacketType, encodeConnect, encodeSubscribe, DISCONNECT, type PacketSink } from './mqtt-bytes.js'

/** Where and how to connect. */
export interface ConnTarget {
  host: string
  port: number
  transport: 'tcp' | 'ws' | 'tls' | 'wss'
  /** WebSocket path (default '/mqtt'). */
  path?: string
  /** TLS options of `tls` / `wss` (ca, servername, rejectUnauthorized). */
  tls?: tls.ConnectionOptions
}

/** A role's packet handler; `onChunkEnd` runs after every packet of one received chunk. */
export interface ConnHandler extends PacketSink {
  onChunkEnd (): void
}

/** One shared receive buffer: reads are processed synchronously, so every connection can use it. */
const SHARED_READ = Buffer.allocUnsafe(64 * 1024)

const NOOP: ConnHandler = { onPacket () {}, onChunkEnd () {} }

/**
 * A connected, CONNACKed MQTT client connection. `write` returns false when the caller should
 * wait for `drained()`. Errors and unexpected closes are recorded in `error` / `closed` (and
 * reported through `onClose`), never thrown at the caller asynchronously.
 */
export class Conn implements PacketSink {
  handler: ConnHandler = NOOP
  closed = false
  error: Error | undefined
  onClose: ((c: Conn) => void) | undefined
  private readonly splitter = new PacketSplitter(this)
  private waiting: { type: number; resolve: (b: Buffer) => void } | undefined
  private drainWaiters: Array<() => void> = []
  private tcp: net.Socket | undefined
  private ws: WebSocket | undefined

  /** Opens a connection, sends CONNECT and resolves once CONNACK (return code 0) arrived. */
  static async open (target: ConnTarget, clientId: string, keepalive = 60, timeoutMs = 30_000): Promise<Conn> {
    const c = new Conn()
    const connack = c.expect(PacketType.CONNACK)
    await c.connect(target, timeoutMs)
    c.write(encodeConnect(clientId, keepalive))
    const body = await withTimeout(connack, timeoutMs, `CONNACK for ${clientId}`)
    if (body[1] !== 0) throw new Error(`CONNACK return code ${body[1]} for ${clientId}`)
    return c
  }

  private connect (target: ConnTarget, timeoutMs: number): Promise<void> {
    return withTimeout(new Promise<void>((resolve, reject) => {
      if (target.transport === 'tcp') {
        const sock = net.connect({
          host: target.host,
          port: target.port,
          noDelay: true,
          onread: { buffer: SHARED_READ, callback: (n: number, buf: Uint8Array) => { this.onChunk(buf as Buffer, n); return true } }
        })
        this.tcp = sock
        sock.once('connect', () => resolve())
        sock.on('error', (err) => { this.fail(err); reject(err) })
        sock.on('close', () => this.markClosed())
        sock.on('drain', () => this.flushDrain())
      } else if (target.transport === 'tls') {
        // TLS: no `onread` (net only); chunks arrive as fresh buffers.
        const sock = tls.connect({ servername: net.isIP(target.host) === 0 ? target.host : undefined, ...target.tls, host: target.host, port: target.port })
        sock.setNoDelay(true)
        this.tcp = sock
        sock.once('secureConnect', () => resolve())
        sock.on('data', (chunk: Buffer) => this.onChunk(chunk, chunk.length))
        sock.on('error', (err) => { this.fail(err); reject(err) })
        sock.on('close', () => this.markClosed())
        sock.on('drain', () => this.flushDrain())
      } else {
        const scheme = target.transport === 'wss' ? 'wss' : 'ws'
        const ws = new WebSocket(`${scheme}://${target.host}:${target.port}${target.path ?? '/mqtt'}`, 'mqtt', { perMessageDeflate: false, ...(target.transport === 'wss' ? target.tls : {}) })
        this.ws = ws
        ws.binaryType = 'nodebuffer'
        ws.once('open', () => { (ws as unknown as { _socket: net.Socket })._socket.setNoDelay(true); resolve() })
        ws.on('message', (data: Buffer) => this.onChunk(data, data.length))
        ws.on('error', (err) => { this.fail(err); reject(err) })
        ws.on('close', () => this.markClosed())
      }
    }), timeoutMs, 'TCP/WebSocket connect')
  }

  private onChunk (buf: Buffer, n: number): void {
    this.splitter.push(buf, n)
    this.handler.onChunkEnd()
  }

  /** PacketSink: setup packets resolve `expect`; everything else goes to the handler. */
  onPacket (b0: number, buf: Buffer, start: number, end: number): void {
    const w = this.waiting
    if (w !== undefined && (b0 >> 4) === w.type) {
      this.waiting = undefined
      w.resolve(Buffer.from(buf.subarray(start, end)))
      return
    }
    this.handler.onPacket(b0, buf, start, end)
  }

  /** Resolves with the body of the next packet of `type` (one waiter at a time; setup only). */
  expect (type: number): Promise<Buffer> {
    return new Promise((resolve) => { this.waiting = { type, resolve } })
  }

  /** Subscribes to one filter and resolves with the granted QoS (SUBACK). */
  async subscribe (filter: string, qos: number, timeoutMs = 30_000): Promise<number> {
    const suback = this.expect(PacketType.SUBACK)
    this.write(encodeSubscribe(1, filter, qos))
    const body = await withTimeout(suback, timeoutMs, `SUBACK for ${filter}`)
    const granted = body[2]!
    if (granted > 2) throw new Error(`subscription to ${filter} refused (0x${granted.toString(16)})`)
    return granted
  }

  /** Writes one buffer; false means: wait for `drained()` before writing more. */
  write (buf: Buffer): boolean {
    if (this.tcp !== undefined) return this.tcp.write(buf)
    const ws = this.ws!
    if (ws.readyState !== WebSocket.OPEN) return true
    ws.send(buf, { binary: true })
    if (ws.bufferedAmount > 256 * 1024) { this.pollWsDrain(); return false }
    return true
  }

  /** Resolves when the pending output has drained (or the connection closed). */
  drained (): Promise<void> {
    if (this.closed || this.pendingOutput === 0) return Promise.resolve()
    return new Promise((resolve) => { this.drainWaiters.push(resolve) })
  }

  /** Bytes accepted by `write` but not yet handed to the kernel. */
  get pendingOutput (): number {
    return this.tcp !== undefined ? this.tcp.writableLength : (this.ws?.bufferedAmount ?? 0)
  }

  private pollWsDrain (): void {
    const tick = (): void => {
      if (this.closed || (this.ws?.bufferedAmount ?? 0) <= 64 * 1024) this.flushDrain()
      else setImmediate(tick)
    }
    setImmediate(tick)
  }

  private flushDrain (): void {
    const ws = this.drainWaiters
    if (ws.length === 0) return
    this.drainWaiters = []
    for (const f of ws) f()
  }

  private fail (err: Error): void {
    if (this.error === undefined) this.error = err
  }

  private markClosed (): void {
    if (this.closed) return
    this.closed = true
    this.flushDrain()
    this.onClose?.(this)
  }

  /** Sends DISCONNECT and ends the connection (graceful; `onClose` still fires). */
  end (): void {
    if (this.closed) return
    if (this.tcp !== undefined) this.tcp.end(DISCONNECT)
    else if (this.ws !== undefined) {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(DISCONNECT)
      this.ws.close()
    }
  }

  /** Drops the connection at once. */
  destroy (): void {
    this.onClose = undefined
    this.tcp?.destroy()
    this.ws?.terminate()
  }
}

/** Rejects with a descriptive error if `p` does not settle within `ms`. */
export function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timeout after ${ms} ms waiting for ${what}`)), ms)
    p.then((v) => { clearTimeout(t); resolve(v) }, (e: unknown) => { clearTimeout(t); reject(e) })
  })
}
