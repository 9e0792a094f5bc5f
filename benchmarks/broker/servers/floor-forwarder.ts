/**
 * The Node.js floor: the least an MQTT broker on Node's public socket API has to do, as a benchmark
 * target next to ours and Mosquitto. It answers CONNECT, SUBSCRIBE (exact topics only; a wildcard
 * filter gets SUBACK 0x80) and PINGREQ, and forwards each PUBLISH's received bytes unchanged to the
 * subscribers of its topic; a QoS 1 PUBLISH gets its PUBACK, and the subscribers' PUBACKs are
 * ignored. It keeps no session, no in-flight window and no order guarantee beyond TCP's, checks
 * nothing, and speaks MQTT 3.1.1 only: **not a broker**, a lower bound on the cost of the socket
 * path. Output is batched as ours is: one `write()` per receiving socket at the end of each input
 * chunk, TCP_NODELAY on.
 *
 * Two ways to read, one target each:
 * - `node-floor`: `'data'` events, as ours reads.
 * - `node-floor-onread`: `onread` into one shared 64 KiB buffer. Node 20 offers `onread` only to
 *   sockets it creates, so the accepted socket's handle is re-wrapped through the undocumented
 *   `_handle` (`pauseOnConnect` keeps it from reading meanwhile). Forwarded bytes are copied when
 *   written, since the next read overwrites the buffer.
 *
 * Used by `run.ts --targets ours,node-floor,node-floor-onread,mosquitto` to show how far a Node
 * broker can get at all (benchmarks/broker/README.md, "The Node.js floor").
 */
import net from 'node:net'
import { serverArgs } from './server-args.js'

interface Peer {
  socket: net.Socket
  /** An incomplete packet left over from the previous chunk (a copy). */
  carry: Buffer | undefined
  out: Buffer[]
  topics: Set<string>
}

/** How a floor target reads its sockets. */
export type FloorRead = 'data' | 'onread'

/** Runs the floor forwarder on the `--port` of `args`; prints `listening PORT` once ready. */
export function serveFloor (read: FloorRead, args: string[]): void {
  const { port, transport } = serverArgs(args)
  if (transport !== 'tcp') {
    process.stderr.write('the Node.js floor serves TCP only\n')
    process.exit(2)
  }
  const subscribers = new Map<string, Set<Peer>>()
  const dirty: Peer[] = []
  const copyOnFlush = read === 'onread'

  const emit = (p: Peer, bytes: Buffer): void => {
    if (p.out.length === 0) dirty.push(p)
    p.out.push(bytes)
  }
  const flush = (): void => {
    for (const p of dirty) {
      const out = p.out.length === 1 ? (copyOnFlush ? Buffer.from(p.out[0]!) : p.out[0]!) : Buffer.concat(p.out)
      p.out = []
      if (!p.socket.destroyed) p.socket.write(out)
    }
    dirty.length = 0
  }
  const onPacket = (p: Peer, buf: Buffer, start: number, body: number, end: number): void => {
    const type = buf[start]! >> 4
    if (type === 3) {
      const topicLength = buf.readUInt16BE(body)
      const topic = buf.toString('utf8', body + 2, body + 2 + topicLength)
      const qos = (buf[start]! >> 1) & 3
      const set = subscribers.get(topic)
      if (set !== undefined) {
        const packet = buf.subarray(start, end)
        for (const d of set) emit(d, packet)
      }
      if (qos === 1) {
        const id = body + 2 + topicLength
        emit(p, Buffer.from([0x40, 2, buf[id]!, buf[id + 1]!]))
      }
    } else if (type === 1) {
      emit(p, Buffer.from([0x20, 2, 0, 0]))
    } else if (type === 8) {
      // One filter per SUBSCRIBE is all the load generator sends; more are refused with 0x80 each.
      const codes: number[] = []
      for (let at = body + 2; at < end;) {
        const length = buf.readUInt16BE(at)
        const filter = buf.toString('utf8', at + 2, at + 2 + length)
        const qos = buf[at + 2 + length]! & 3
        at += 3 + length
        if (/[#+]/.test(filter)) { codes.push(0x80); continue }
        let set = subscribers.get(filter)
        if (set === undefined) subscribers.set(filter, set = new Set())
        set.add(p)
        p.topics.add(filter)
        codes.push(qos > 1 ? 1 : qos)
      }
      emit(p, Buffer.from([0x90, 2 + codes.length, buf[body]!, buf[body + 1]!, ...codes]))
    } else if (type === 12) {
      emit(p, Buffer.from([0xd0, 0]))
    } else if (type === 14) {
      p.socket.end()
    }
  }
  const onChunk = (p: Peer, chunk: Buffer): void => {
    const buf = p.carry === undefined ? chunk : Buffer.concat([p.carry, chunk])
    p.carry = undefined
    let at = 0
    for (;;) {
      let length = 0
      let shift = 0
      let body = at + 1
      let complete = false
      while (body < buf.length && shift <= 21) {
        const b = buf[body++]!
        length += (b & 0x7f) << shift
        shift += 7
        if ((b & 0x80) === 0) { complete = true; break }
      }
      if (!complete || body + length > buf.length) break
      onPacket(p, buf, at, body, body + length)
      at = body + length
    }
    if (at < buf.length) p.carry = Buffer.from(buf.subarray(at))
    flush()
  }
  const forget = (p: Peer): void => {
    for (const topic of p.topics) subscribers.get(topic)?.delete(p)
    p.topics.clear()
  }

  const shared = Buffer.allocUnsafe(65_536)
  const server = net.createServer({ noDelay: true, pauseOnConnect: read === 'onread' }, (accepted) => {
    let socket = accepted
    const p: Peer = { socket, carry: undefined, out: [], topics: new Set() }
    if (read === 'onread') {
      const handle = (accepted as unknown as { _handle: unknown })._handle
      socket = new net.Socket({
        handle, readable: true, writable: true,
        onread: { buffer: shared, callback: (n: number, b: Uint8Array) => { onChunk(p, (b as Buffer).subarray(0, n)); return true } }
      } as net.SocketConstructorOpts)
      socket.setNoDelay(true)
      p.socket = socket
    } else {
      socket.on('data', (chunk: Buffer) => { onChunk(p, chunk) })
    }
    socket.on('error', () => { forget(p) })
    socket.on('close', () => { forget(p) })
  })
  server.listen(port, '127.0.0.1', () => { process.stdout.write(`listening ${port}\n`) })
  const stop = (): void => { server.close(); process.exit(0) }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}
