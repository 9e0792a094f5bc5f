/**
 * Inbound messages and their acknowledgement. A QoS 1 message is PUBACKed, a QoS 2 message
 * PUBRECed, when the application has handled it; acknowledgements go out in the order the messages
 * arrived [MQTT-4.6.0-2] [MQTT-4.6.0-3] whatever order the application acks in (a later ack waits
 * for earlier ones). Consumers hold a message while they handle it (`hold`/`release`); the last
 * release acks it. `ack()` acks at once, whoever still holds it.
 */
import type { PublishProperties, QoS } from '../packet/index.js'

/** A message received from the broker. */
export interface InboundMessage {
  readonly topic: string
  /** A view of the received bytes: copy (`Buffer.from`) to keep many small payloads. */
  readonly payload: Buffer
  readonly qos: QoS
  readonly retain: boolean
  readonly dup: boolean
  readonly properties: PublishProperties | undefined
  /** Stable across redelivery (a QoS 2 message handed over again carries the same id). */
  readonly id: string
  /** Handed to the application before (by this or an earlier connection/process). */
  readonly redelivered: boolean
  /** Acknowledge now (QoS 1/2; nothing for QoS 0). Idempotent. */
  ack(): void
}

/**
 * Ordered acknowledgements of one connection: parallel arrays (no object per message) used as a
 * queue from `head` to `tail`. The arrays keep their capacity: emptying the queue only resets the
 * indexes (truncating and regrowing three arrays per flush showed in a subscriber's profile).
 */
export class AckQueue {
  private readonly ids: number[] = []
  private readonly qos: (1 | 2)[] = []
  private readonly states: ({ acked: boolean } | undefined)[] = []
  private head = 0
  private tail = 0
  /** Called with (qos, packetId) for each acknowledgement that may go out now. */
  constructor(private readonly send: (qos: 1 | 2, packetId: number) => void) {}

  /** Un-acked inbound QoS 1/2 messages of this connection (Receive Maximum is checked against it). */
  get pending(): number {
    return this.tail - this.head
  }

  push(packetId: number, qos: 1 | 2, state: { acked: boolean }): void {
    const at = this.tail++
    this.ids[at] = packetId
    this.qos[at] = qos
    this.states[at] = state
    if (state.acked) this.flush()
  }

  /** Send every acknowledgement at the head whose message was acked. */
  flush(): void {
    const { ids, qos, states } = this
    while (this.head < this.tail) {
      const at = this.head
      if (!states[at]!.acked) break
      // Drop the reference: a message (and the socket chunk its payload views) is not kept alive.
      states[at] = undefined
      this.head++
      this.send(qos[at]!, ids[at]!)
    }
    if (this.head === this.tail) {
      this.head = 0
      this.tail = 0
    } else if (this.head > 1024 && this.head * 2 > this.tail) {
      ids.copyWithin(0, this.head, this.tail)
      qos.copyWithin(0, this.head, this.tail)
      states.copyWithin(0, this.head, this.tail)
      states.fill(undefined, this.tail - this.head, this.tail)
      this.tail -= this.head
      this.head = 0
    }
  }

  /** The connection closed: nothing more is sent. */
  clear(): void {
    this.ids.length = 0
    this.qos.length = 0
    this.states.length = 0
    this.head = 0
    this.tail = 0
  }
}

/**
 * The implementation of `InboundMessage`. Its data (`id` included) are own enumerable properties,
 * so a spread (`{ ...m }`) or `JSON.stringify` keeps them; the acknowledgement bookkeeping is in
 * private fields (never copied, no cycle for JSON).
 */
export class Message implements InboundMessage {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: QoS
  readonly retain: boolean
  readonly dup: boolean
  readonly properties: PublishProperties | undefined
  /** Stable across redelivery; `m<n>` for a message without a store record. */
  readonly id: string
  readonly redelivered: boolean
  /** @internal The acknowledgement state when the message is its own (see `#state`). */
  acked = false
  /** Shared with the ack queue (and, for QoS 2, the session's received table); the message itself when not given. */
  readonly #state: { acked: boolean }
  #holds = 0
  readonly #onAck: (() => void) | undefined

  constructor(
    fields: { topic: string; payload: Buffer; qos: QoS; retain: boolean; dup: boolean; properties?: PublishProperties | undefined },
    id: string | number,
    redelivered: boolean,
    state: { acked: boolean } | undefined,
    onAck: (() => void) | undefined
  ) {
    this.topic = fields.topic
    this.payload = fields.payload
    this.qos = fields.qos
    this.retain = fields.retain
    this.dup = fields.dup
    this.properties = fields.properties
    this.id = typeof id === 'string' ? id : `m${id}`
    this.redelivered = redelivered
    this.#state = state ?? this
    this.#onAck = onAck
  }

  ack(): void {
    const state = this.#state
    if (state.acked) return
    state.acked = true
    this.#onAck?.()
  }

  /** A consumer takes the message; it is acked when the last holder releases it. */
  hold(): void {
    this.#holds++
  }

  release(): void {
    if (--this.#holds <= 0) this.ack()
  }
}
