/**
 * Publisher and subscriber roles of the load generator.
 *
 * Payload layout (at least 16 bytes): publisher index (uint16 BE), sequence number (uint32 BE),
 * send time (float64 BE, `nowMs()`), then filler. Subscribers use it to count every
 * delivery exactly once (lost / duplicate) and, when asked, to record latency.
 */
import { performance } from 'node:perf_hooks'
import { PacketType, PublishTemplate } from './mqtt-bytes.js'
import type { Conn, ConnHandler } from './conn.js'

/**
 * Milliseconds on the monotonic clock shared by every thread and process of the machine
 * (`process.hrtime`), so that a publisher in a worker thread and a subscriber in the main thread
 * stamp and read the same clock.
 */
export function nowMs (): number {
  return performance.now() + HRTIME_OFFSET
}

/**
 * `performance.now()` reads the same monotonic clock as `process.hrtime`, from this thread's time
 * origin: the offset is taken once per thread, so that `nowMs` allocates nothing (a BigInt per call
 * was garbage in both generator threads of the latency scenario, several times per message). Each
 * sample reads hrtime first, so it is the offset minus the time between the two reads: the largest
 * of many samples is the offset to a fraction of a microsecond, even on a busy machine.
 */
const HRTIME_OFFSET = ((): number => {
  let best = -Infinity
  for (let i = 0; i < 2000; i++) {
    const hr = Number(process.hrtime.bigint()) / 1e6
    const d = hr - performance.now()
    if (d > best) best = d
  }
  return best
})()

/** Smallest payload that carries the generator's header. */
export const MIN_PAYLOAD = 16

/** Shared tallies of one run; roles update them and call `check` when they may be done. */
export interface Tally {
  deliveries: number
  duplicates: number
  /** Deliveries with a publisher index or sequence number out of range. */
  foreign: number
  acked: number
  lastDeliveryAt: number
  check (): void
}

/**
 * Publishes `count` messages to one topic. QoS 0: batches of `batch` messages per write, paced
 * only by socket back-pressure. QoS 1: keeps at most `window` messages unacknowledged and refills
 * the window once per received chunk, with one write.
 */
export class Publisher implements ConnHandler {
  sent = 0
  acked = 0
  private inflight = 0
  private nextId = 1
  private readonly idInUse = new Uint8Array(65_536)
  private readonly tpl: PublishTemplate
  private pumping = false
  /** Protocol surprises (unknown PUBACK ids, unexpected packets). */
  errors = 0

  constructor (
    private readonly conn: Conn,
    private readonly index: number,
    topic: string,
    payload: number,
    private readonly qos: 0 | 1 | 2,
    private readonly count: number,
    private readonly batch: number,
    private readonly window: number,
    private readonly tally: Tally
  ) {
    this.tpl = new PublishTemplate(topic, payload, qos)
    conn.handler = this
  }

  /** Starts publishing (QoS 0 runs until all are written; QoS 1 fills the first window). */
  start (): void { this.pump() }

  /** The buffer of the last paced write (filled again once the socket holds none of it). */
  private paced: Buffer | undefined = undefined

  /**
   * Paced publishing (QoS 0): writes the next `n` messages now, in one write. When the socket took
   * the previous write at once (nothing of it is held), its buffer is filled again: the paced
   * publisher allocates no buffer per message, so its own garbage collections stay rare and out of
   * the latencies it measures.
   */
  publishNow (n: number): void {
    n = Math.min(n, this.count - this.sent)
    if (n <= 0 || this.conn.closed) return
    let out = this.paced
    if (out === undefined || out.length !== n * this.tpl.length || this.conn.pendingOutput > 0) {
      out = this.paced = Buffer.allocUnsafe(n * this.tpl.length)
    }
    this.conn.write(this.build(n, out))
  }

  /** Builds `n` consecutive messages into one buffer (`into`, or a new one). */
  private build (n: number, into?: Buffer): Buffer {
    const tpl = this.tpl
    const len = tpl.length
    const out = into ?? Buffer.allocUnsafe(n * len)
    const now = nowMs()
    for (let k = 0; k < n; k++) {
      const base = k * len
      tpl.bytes.copy(out, base)
      const p = base + tpl.payloadOffset
      out.writeUInt16BE(this.index, p)
      out.writeUInt32BE(this.sent++, p + 2)
      out.writeDoubleBE(now, p + 6)
      if (tpl.idOffset >= 0) {
        let id = this.nextId
        while (this.idInUse[id] !== 0) id = id === 65_535 ? 1 : id + 1
        this.idInUse[id] = 1
        this.nextId = id === 65_535 ? 1 : id + 1
        out.writeUInt16BE(id, base + tpl.idOffset)
        this.inflight++
      }
    }
    return out
  }

  private pump (): void {
    if (this.pumping || this.conn.closed) return
    if (this.qos !== 0) {
      const n = Math.min(this.window - this.inflight, this.count - this.sent)
      if (n > 0) this.conn.write(this.build(n))
      return
    }
    this.pumping = true
    while (this.sent < this.count) {
      const n = Math.min(this.batch, this.count - this.sent)
      if (!this.conn.write(this.build(n))) {
        void this.conn.drained().then(() => { this.pumping = false; this.pump() })
        return
      }
    }
    this.pumping = false
  }

  /** QoS 2: PUBRELs owed for this chunk's PUBRECs (sent with one write at the chunk's end). */
  private releases: number[] = []

  onPacket (b0: number, buf: Buffer, start: number, end: number): void {
    const type = b0 >> 4
    if ((type === PacketType.PUBACK || type === PacketType.PUBCOMP) && end - start >= 2) {
      const id = buf.readUInt16BE(start)
      if (this.idInUse[id] !== (type === PacketType.PUBACK ? 1 : 2)) { this.errors++; return }
      this.idInUse[id] = 0
      this.inflight--
      this.acked++
      this.tally.acked++
    } else if (type === PacketType.PUBREC && end - start >= 2) {
      const id = buf.readUInt16BE(start)
      if (this.idInUse[id] !== 1) { this.errors++; return }
      this.idInUse[id] = 2
      this.releases.push(id)
    } else if (type !== PacketType.PINGRESP) {
      this.errors++
    }
  }

  onChunkEnd (): void {
    if (this.releases.length > 0) {
      const out = Buffer.allocUnsafe(this.releases.length * 4)
      for (const [i, id] of this.releases.entries()) {
        out[i * 4] = 0x62
        out[i * 4 + 1] = 2
        out.writeUInt16BE(id, i * 4 + 2)
      }
      this.releases = []
      this.conn.write(out)
    }
    if (this.qos !== 0) {
      this.pump()
      if (this.acked === this.count) this.tally.check()
    }
  }
}

/** Scratch space for one chunk's PUBACKs (reads are processed one at a time). */
let ackScratch = Buffer.allocUnsafe(64 * 1024)

/**
 * Receives deliveries, marks each (publisher, sequence) seen, counts duplicates, acknowledges
 * QoS 1 deliveries with one write per received chunk and optionally records latencies.
 */
export class Subscriber implements ConnHandler {
  received = 0
  /** Protocol surprises (unexpected packets, short payloads). */
  errors = 0
  private readonly seen: Uint8Array
  private acks = 0
  private chunkTime = -1

  /**
   * @param slots publisher index → slot in `seen` (-1: not expected here)
   * @param latencies when set, the latency (ms) of each delivery is appended here
   */
  constructor (
    private readonly conn: Conn,
    private readonly slots: Int32Array,
    nSlots: number,
    private readonly count: number,
    private readonly tally: Tally,
    private readonly latencies?: { values: Float64Array; n: number; sentAt?: Float64Array }
  ) {
    this.seen = new Uint8Array(nSlots * count)
    conn.handler = this
  }

  onPacket (b0: number, buf: Buffer, start: number, end: number): void {
    if ((b0 >> 4) !== PacketType.PUBLISH) {
      if ((b0 >> 4) === PacketType.PUBREL && end - start >= 2) this.pushAck(0x70, buf[start]!, buf[start + 1]!)
      else if ((b0 >> 4) !== PacketType.PINGRESP) this.errors++
      return
    }
    const qos = (b0 >> 1) & 3
    let p = start + 2 + buf.readUInt16BE(start)
    if (qos > 0) {
      // QoS 1: PUBACK; QoS 2: PUBREC now, PUBCOMP when PUBREL comes.
      this.pushAck(qos === 1 ? 0x40 : 0x50, buf[p]!, buf[p + 1]!)
      p += 2
    }
    if (end - p < MIN_PAYLOAD) { this.errors++; return }
    const pub = buf.readUInt16BE(p)
    const seq = buf.readUInt32BE(p + 2)
    const slot = pub < this.slots.length ? this.slots[pub]! : -1
    const tally = this.tally
    if (slot < 0 || seq >= this.count) { tally.foreign++; return }
    const k = slot * this.count + seq
    if (this.seen[k] === 1) { tally.duplicates++; return }
    this.seen[k] = 1
    this.received++
    tally.deliveries++
    const lat = this.latencies
    if (lat !== undefined) {
      if (this.chunkTime < 0) this.chunkTime = nowMs()
      if (lat.n < lat.values.length) {
        const sentAt = buf.readDoubleBE(p + 6)
        if (lat.sentAt !== undefined) lat.sentAt[lat.n] = sentAt
        lat.values[lat.n++] = this.chunkTime - sentAt
      }
    }
  }

  private pushAck (b0: number, idHigh: number, idLow: number): void {
    if (this.acks * 4 + 4 > ackScratch.length) {
      const bigger = Buffer.allocUnsafe(ackScratch.length * 2)
      ackScratch.copy(bigger, 0, 0, this.acks * 4)
      ackScratch = bigger
    }
    const a = this.acks++ * 4
    ackScratch[a] = b0
    ackScratch[a + 1] = 2
    ackScratch[a + 2] = idHigh
    ackScratch[a + 3] = idLow
  }

  onChunkEnd (): void {
    if (this.acks > 0) {
      const out = Buffer.allocUnsafe(this.acks * 4)
      ackScratch.copy(out, 0, 0, this.acks * 4)
      this.acks = 0
      this.conn.write(out)
    }
    this.chunkTime = -1
    this.tally.lastDeliveryAt = performance.now()
    this.tally.check()
  }
}
