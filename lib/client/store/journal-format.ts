/**
 * The FileStore journal record format (version 1), documented in docs/client-store.md:
 *
 * ```
 * offset 0  u16 magic 0x4D4A ("MJ")
 *        2  u32 length of the body (big endian)
 *        6  u32 CRC-32 (zlib) of bytes 2..5 followed by the body
 *       10  body: u8 format version (1) | u8 op | fields
 * ```
 *
 * Fields (integers big endian; seq as u32 high | u32 low):
 * meta 1: u8 protocolLevel | u8 flags (bit 0: assigned id follows) | u16 len | clientId | [u16 len | assignedClientId]
 * out 2: seq | u16 packetId (0 = none) | packet … in 6: seq | u16 packetId | packet
 * id 3: seq | u16 packetId      rel 4, done 5, consumed 7, released 8: seq
 * sub 9, unsub 10: JSON (UTF-8) of the subscriptions / topic filters      reset 11: nothing
 * checkpoint 12: seq (the next free seq) — the first record of every segment
 */
import { crc32 } from 'node:zlib'
import type { StoreRecord, StoredSubscription } from './store.js'

export const MAGIC = 0x4d4a
export const HEADER_BYTES = 10
export const FORMAT_VERSION = 1
/** Larger bodies are taken for corruption (an MQTT packet is at most 256 MiB). */
export const MAX_BODY = 268_435_455 + 64

const OP = {
  meta: 1,
  out: 2,
  id: 3,
  rel: 4,
  done: 5,
  in: 6,
  consumed: 7,
  released: 8,
  sub: 9,
  unsub: 10,
  reset: 11,
  checkpoint: 12,
} as const

/** A journal entry: a store record or the checkpoint that opens a segment. */
export type JournalRecord = StoreRecord | { op: 'checkpoint'; seq: number }

function writeSeq(buf: Buffer, offset: number, seq: number): void {
  buf.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), offset)
  buf.writeUInt32BE(seq >>> 0, offset + 4)
}

function readSeq(buf: Buffer, offset: number): number {
  return buf.readUInt32BE(offset) * 0x1_0000_0000 + buf.readUInt32BE(offset + 4)
}

/**
 * Encode one record as buffers to write in order: a header+fields buffer and, for `out`/`in`,
 * the packet itself (not copied).
 */
export function encodeRecord(record: JournalRecord): Buffer[] {
  let fields: Buffer
  let packet: Buffer | undefined
  switch (record.op) {
    case 'meta': {
      const id = Buffer.from(record.meta.clientId, 'utf8')
      const assigned = record.meta.assignedClientId === undefined ? undefined : Buffer.from(record.meta.assignedClientId, 'utf8')
      fields = Buffer.allocUnsafe(4 + id.length + (assigned === undefined ? 0 : 2 + assigned.length))
      fields[0] = record.meta.protocolLevel
      fields[1] = assigned === undefined ? 0 : 1
      fields.writeUInt16BE(id.length, 2)
      id.copy(fields, 4)
      if (assigned !== undefined) {
        fields.writeUInt16BE(assigned.length, 4 + id.length)
        assigned.copy(fields, 6 + id.length)
      }
      break
    }
    case 'out':
    case 'in':
    case 'id':
      fields = Buffer.allocUnsafe(10)
      writeSeq(fields, 0, record.seq)
      fields.writeUInt16BE(record.op === 'out' ? (record.packetId ?? 0) : record.packetId, 8)
      if (record.op !== 'id') packet = record.packet
      break
    case 'rel':
    case 'done':
    case 'consumed':
    case 'released':
    case 'checkpoint':
      fields = Buffer.allocUnsafe(8)
      writeSeq(fields, 0, record.seq)
      break
    case 'sub':
      fields = Buffer.from(JSON.stringify(record.subscriptions), 'utf8')
      break
    case 'unsub':
      fields = Buffer.from(JSON.stringify(record.topicFilters), 'utf8')
      break
    case 'reset':
      fields = Buffer.alloc(0)
      break
  }
  const bodyLength = 2 + fields.length + (packet?.length ?? 0)
  const head = Buffer.allocUnsafe(HEADER_BYTES + 2 + fields.length)
  head.writeUInt16BE(MAGIC, 0)
  head.writeUInt32BE(bodyLength, 2)
  head[10] = FORMAT_VERSION
  head[11] = OP[record.op]
  fields.copy(head, 12)
  let crc = crc32(head.subarray(2, 6))
  crc = crc32(head.subarray(HEADER_BYTES), crc)
  if (packet !== undefined) crc = crc32(packet, crc)
  head.writeUInt32BE(crc, 6)
  return packet === undefined ? [head] : [head, packet]
}

/** What `readRecord` found at an offset. */
export type ReadResult =
  | { kind: 'record'; record: JournalRecord; end: number }
  /** A well-framed record of an unknown version or op (skip it). */
  | { kind: 'unknown'; end: number; version: number; op: number }
  /** Not a complete, valid record at this offset. */
  | { kind: 'bad'; reason: string }

/**
 * Read the record at `offset` of `buf`. Packets are views of `buf` (not copied). Never throws.
 */
export function readRecord(buf: Buffer, offset: number): ReadResult {
  if (buf.length - offset < HEADER_BYTES + 2) return { kind: 'bad', reason: 'short header' }
  if (buf.readUInt16BE(offset) !== MAGIC) return { kind: 'bad', reason: 'no record marker' }
  const length = buf.readUInt32BE(offset + 2)
  if (length < 2 || length > MAX_BODY) return { kind: 'bad', reason: `implausible length ${length}` }
  const end = offset + HEADER_BYTES + length
  if (end > buf.length) return { kind: 'bad', reason: 'record cut short' }
  const body = buf.subarray(offset + HEADER_BYTES, end)
  const crc = crc32(body, crc32(buf.subarray(offset + 2, offset + 6)))
  if (crc !== buf.readUInt32BE(offset + 6)) return { kind: 'bad', reason: 'checksum mismatch' }
  const version = body[0] ?? 0
  const op = body[1] ?? 0
  if (version !== FORMAT_VERSION) return { kind: 'unknown', end, version, op }
  try {
    const record = decodeBody(op, body.subarray(2))
    if (record === undefined) return { kind: 'unknown', end, version, op }
    return { kind: 'record', record, end }
  } catch (err) {
    return { kind: 'bad', reason: `undecodable fields (${(err as Error).message})` }
  }
}

function need(f: Buffer, n: number): void {
  if (f.length < n) throw new RangeError('fields too short')
}

function decodeBody(op: number, f: Buffer): JournalRecord | undefined {
  switch (op) {
    case OP.meta: {
      need(f, 4)
      const level = f[0]
      if (level !== 3 && level !== 4 && level !== 5) throw new RangeError(`protocol level ${level}`)
      const idLength = f.readUInt16BE(2)
      need(f, 4 + idLength)
      const clientId = f.toString('utf8', 4, 4 + idLength)
      if (((f[1] ?? 0) & 1) === 0) return { op: 'meta', meta: { clientId, protocolLevel: level } }
      need(f, 6 + idLength)
      const aLength = f.readUInt16BE(4 + idLength)
      need(f, 6 + idLength + aLength)
      const assignedClientId = f.toString('utf8', 6 + idLength, 6 + idLength + aLength)
      return { op: 'meta', meta: { clientId, protocolLevel: level, assignedClientId } }
    }
    case OP.out:
    case OP.in: {
      need(f, 11)
      const seq = readSeq(f, 0)
      const packetId = f.readUInt16BE(8)
      const packet = f.subarray(10)
      return op === OP.out ? { op: 'out', seq, packetId, packet } : { op: 'in', seq, packetId, packet }
    }
    case OP.id:
      need(f, 10)
      return { op: 'id', seq: readSeq(f, 0), packetId: f.readUInt16BE(8) }
    case OP.rel:
    case OP.done:
    case OP.consumed:
    case OP.released:
    case OP.checkpoint: {
      need(f, 8)
      const seq = readSeq(f, 0)
      const name = op === OP.rel ? 'rel' : op === OP.done ? 'done' : op === OP.consumed ? 'consumed' : op === OP.released ? 'released' : 'checkpoint'
      return { op: name, seq }
    }
    case OP.sub:
      return { op: 'sub', subscriptions: JSON.parse(f.toString('utf8')) as StoredSubscription[] }
    case OP.unsub:
      return { op: 'unsub', topicFilters: JSON.parse(f.toString('utf8')) as string[] }
    case OP.reset:
      return { op: 'reset' }
    default:
      return undefined
  }
}

/** Total length of a list of chunks. */
export function chunksLength(chunks: readonly Buffer[]): number {
  let n = 0
  for (const c of chunks) n += c.length
  return n
}
