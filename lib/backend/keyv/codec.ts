import type { QoS } from '../../packet/types.js'
import type { Message, OutgoingRecord, QueuedMessage, StoredSubscription, StoredWill } from '../../session/session.js'

/**
 * Binary encodings of what the Redis backend stores: messages, queued messages, outgoing records
 * and wills. Payloads are stored as raw bytes (never base64, never through Keyv's JSON envelope);
 * the rest goes in a small JSON header in which Buffers (correlation data) are tagged.
 *
 * Layout: `[tag u8][header length u32 BE][header JSON, UTF-8][payload bytes]`. For queued messages
 * `tag` is the delivered QoS (0, 1, 2): the enqueue script reads it to evict QoS 0 messages first;
 * its high bit (128) marks an entry put back after a connection had taken it (sent again with DUP).
 */

interface Header {
  t: string
  q: QoS
  r: boolean
  p?: unknown
  at?: number
  o?: string
  s?: StoredSubscription
  /** Outgoing records: 'publish' or 'pubrel', and the packet id. */
  k?: 'publish' | 'pubrel'
  id?: number
}

const BUFFER_TAG = '$b64'

function replacer(this: unknown, key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown>)[key]
  if (Buffer.isBuffer(raw)) return { [BUFFER_TAG]: raw.toString('base64') }
  return value
}

function reviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const tagged = (value as Record<string, unknown>)[BUFFER_TAG]
    if (typeof tagged === 'string' && Object.keys(value).length === 1) return Buffer.from(tagged, 'base64')
  }
  return value
}

/** JSON with Buffers kept byte-exact (tagged base64). */
export function toJson(value: unknown): string {
  return JSON.stringify(value, replacer)
}

/** The inverse of `toJson`. */
export function fromJson<T>(text: string | Buffer): T {
  return JSON.parse(typeof text === 'string' ? text : text.toString('utf8'), reviver) as T
}

/**
 * The header as JSON. Only properties and subscriptions can hold Buffers (the replacer); without
 * them the JSON is built directly (the same text `JSON.stringify` makes, in about half its time:
 * it runs for every message a node publishes through Redis).
 */
function headerJson(header: Header): string {
  if (header.p !== undefined || header.s !== undefined) return toJson(header)
  const { at, id } = header
  if ((at !== undefined && !Number.isFinite(at)) || (id !== undefined && !Number.isFinite(id))) return JSON.stringify(header)
  let json = '{"t":' + JSON.stringify(header.t) + ',"q":' + header.q + ',"r":' + header.r
  if (at !== undefined) json += ',"at":' + at
  if (header.o !== undefined) json += ',"o":' + JSON.stringify(header.o)
  if (header.k !== undefined) json += ',"k":' + JSON.stringify(header.k)
  if (id !== undefined) json += ',"id":' + id
  return json + '}'
}

function pack(tag: number, header: Header, payload: Buffer): Buffer {
  const json = headerJson(header)
  const length = Buffer.byteLength(json, 'utf8')
  const out = Buffer.allocUnsafe(5 + length + payload.length)
  out[0] = tag
  out.writeUInt32BE(length, 1)
  out.write(json, 5, 'utf8')
  payload.copy(out, 5 + length)
  return out
}

function unpack(bytes: Buffer): { tag: number; header: Header; payload: Buffer } {
  if (bytes.length < 5) throw new TypeError('stored record too short')
  const length = bytes.readUInt32BE(1)
  const json = bytes.toString('utf8', 5, 5 + length)
  // Only a header holding a tagged Buffer needs the reviver (JSON.parse with one is much slower).
  const header = (json.includes(BUFFER_TAG) ? JSON.parse(json, reviver) : JSON.parse(json)) as Header
  // A copy: the reply buffer may be large and shared.
  const payload = Buffer.from(bytes.subarray(5 + length))
  return { tag: bytes[0] as number, header, payload }
}

function headerOf(message: Message): Header {
  const header: Header = { t: message.topic, q: message.qos, r: message.retain }
  if (message.properties !== undefined) header.p = message.properties
  if (message.receivedAt !== undefined) header.at = message.receivedAt
  if (message.origin !== undefined) header.o = message.origin
  return header
}

function messageOf(header: Header, payload: Buffer): Message {
  const message: Message = { topic: header.t, payload, qos: header.q, retain: header.r }
  if (header.p !== undefined) message.properties = header.p as Message['properties']
  if (header.at !== undefined) message.receivedAt = header.at
  if (header.o !== undefined) message.origin = header.o
  return message
}

/** Encodes a message (without the engine's `encoded` cache). */
export function encodeMessage(message: Message): Buffer {
  return pack(message.qos, headerOf(message), message.payload)
}

/** Decodes `encodeMessage` output. */
export function decodeMessage(bytes: Buffer): Message {
  const { header, payload } = unpack(bytes)
  return messageOf(header, payload)
}

/** The QoS a queued message is delivered at: the lower of the message's and the subscription's. */
export function deliveredQoS(item: QueuedMessage): QoS {
  return item.message.qos < item.subscription.qos ? item.message.qos : item.subscription.qos
}

/** Encodes an offline-queue entry; its first byte is the delivered QoS. */
export function encodeQueued(item: QueuedMessage): Buffer {
  const header = headerOf(item.message)
  header.s = item.subscription
  return pack(deliveredQoS(item), header, item.message.payload)
}

/** Decodes `encodeQueued` output. */
export function decodeQueued(bytes: Buffer): QueuedMessage {
  const { tag, header, payload } = unpack(bytes)
  const message = messageOf(header, payload)
  // High bit: taken by a connection that may have sent it (see TAKEOVER): DUP on the next sending.
  if (tag >= 128) message.redelivery = true
  return { message, subscription: header.s ?? { topicFilter: header.t, qos: header.q } }
}

/** Encodes an outgoing record. */
export function encodeOutgoing(record: OutgoingRecord): Buffer {
  if (record.kind === 'pubrel') return pack(0, { t: '', q: 0, r: false, k: 'pubrel', id: record.packetId }, Buffer.alloc(0))
  const header = headerOf(record.message)
  header.k = 'publish'
  header.id = record.packetId
  if (record.subscription !== undefined) header.s = record.subscription
  return pack(0, header, record.message.payload)
}

/** Decodes `encodeOutgoing` output. */
export function decodeOutgoing(bytes: Buffer): OutgoingRecord {
  const { header, payload } = unpack(bytes)
  const packetId = header.id ?? 0
  if (header.k === 'pubrel') return { kind: 'pubrel', packetId }
  const record: OutgoingRecord = { kind: 'publish', packetId, message: messageOf(header, payload) }
  if (header.s !== undefined) record.subscription = header.s
  return record
}

/** Encodes a will. */
export function encodeWill(will: StoredWill): Buffer {
  const header: Header = { t: will.topic, q: will.qos, r: will.retain }
  if (will.properties !== undefined) header.p = will.properties
  return pack(0, header, will.payload)
}

/** Decodes `encodeWill` output. */
export function decodeWill(bytes: Buffer): StoredWill {
  const { header, payload } = unpack(bytes)
  const will: StoredWill = { topic: header.t, payload, qos: header.q, retain: header.r }
  if (header.p !== undefined) will.properties = header.p as StoredWill['properties']
  return will
}
