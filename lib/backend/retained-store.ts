import { RetainedTree } from './retained-tree.js'
import { isMessageExpired } from '../session/memory-session.js'
import type { Message } from '../session/session.js'

/** Counters a `RetainedStore` adds to (a `MemoryBackend` passes its `stats`). */
export interface RetainedStats {
  /** Messages refused because the store was full (in messages or in bytes). */
  retainedRefused: number
  /** Retained messages dropped because their Message Expiry Interval ran out. */
  retainedExpired: number
}

/** Default bound of the retained store. */
export const DEFAULT_MAX_RETAINED_MESSAGES = 100_000

/** Default bound of the retained store in bytes (payloads and topics): 256 MiB. */
export const DEFAULT_MAX_RETAINED_BYTES = 256 * 1024 * 1024

/** What a stored message counts for against the byte bound. */
function weight(message: Message): number {
  return message.payload.length + message.topic.length
}

/**
 * The retained messages of one backend: one per topic, bounded, with wildcard lookup. Internal to
 * the memory backend.
 */
export class RetainedStore {
  readonly #tree = new RetainedTree<Message>()
  readonly #max: number
  readonly #maxBytes: number
  #bytes = 0
  readonly #stats: RetainedStats
  readonly #now: () => number

  constructor(max: number, stats: RetainedStats, now: () => number, maxBytes = DEFAULT_MAX_RETAINED_BYTES) {
    this.#max = max
    this.#maxBytes = maxBytes
    this.#stats = stats
    this.#now = now
  }

  /** Bytes (payloads and topics) of the stored messages. */
  get bytes(): number {
    return this.#bytes
  }

  /** Number of stored messages. */
  get size(): number {
    return this.#tree.size
  }

  /**
   * Stores a copy of `message` as the retained message of its topic, replacing any. An empty
   * payload deletes the stored one and is not stored [MQTT-3.3.1-10] [MQTT-3.3.1-11]. A message on
   * a new topic is refused (and counted) when the store is full, and so is any message that would
   * take the store beyond its bytes. Returns false when refused.
   */
  store(message: Message): boolean {
    const old = this.#tree.get(message.topic)
    if (message.payload.length === 0) {
      if (old !== undefined && this.#tree.delete(message.topic)) this.#bytes -= weight(old)
      return true
    }
    const bytes = this.#bytes - (old === undefined ? 0 : weight(old)) + weight(message)
    if ((old === undefined && this.#tree.size >= this.#max) || bytes > this.#maxBytes) {
      this.#stats.retainedRefused++
      return false
    }
    this.#tree.set(message.topic, copyForStore(message))
    this.#bytes = bytes
    return true
  }

  /**
   * The stored messages whose topic `filter` matches (a valid, non-shared filter), in no particular
   * order. Expired messages are deleted on the way and not returned [MQTT-3.3.2-5].
   */
  match(filter: string): Message[] {
    const now = this.#now()
    const found: Message[] = []
    let expired: string[] | undefined
    this.#tree.match(filter, (message, topic) => {
      if (isMessageExpired(message, now)) {
        ;(expired ??= []).push(topic)
        this.#bytes -= weight(message)
      }
      else found.push(message)
    })
    if (expired !== undefined) {
      for (const topic of expired) this.#tree.delete(topic)
      this.#stats.retainedExpired += expired.length
    }
    return found
  }

  /** Forgets every message. */
  clear(): void {
    this.#tree.clear()
    this.#bytes = 0
  }
}

/**
 * A copy of `message` to keep: its own payload bytes (the original may be a view of a large input
 * chunk), the RETAIN flag set, and without the engine's encoding cache.
 */
function copyForStore(message: Message): Message {
  const copy: Message = {
    topic: message.topic,
    payload: Buffer.from(message.payload),
    qos: message.qos,
    retain: true
  }
  if (message.properties !== undefined) {
    const properties = { ...message.properties }
    if (properties.correlationData !== undefined) properties.correlationData = Buffer.from(properties.correlationData)
    copy.properties = properties
  }
  if (message.receivedAt !== undefined) copy.receivedAt = message.receivedAt
  if (message.origin !== undefined) copy.origin = message.origin
  return copy
}
