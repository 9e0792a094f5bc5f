/**
 * Inbound PUBLISH and PUBREL of one connection: topic aliases (ours, per connection), Receive
 * Maximum (ours, [MQTT-3.3.4-9]), QoS 2 de-duplication by packet id until PUBREL, and the hand-over
 * to `messages$`. With a session journal an inbound QoS 2 message is durable before it is handed
 * over or PUBREC'd, and its release is durable before PUBCOMP.
 */
import { MqttError, ProtocolError, ReasonCode, encode } from '../packet/index.js'
import type { Decoder, PublishPacket } from '../packet/index.js'
import type { ConnectionContext } from './client-context.js'
import { ConnectionLostError } from './errors.js'
import { Message } from './inbound.js'
import { DEFAULT_RECEIVE_MAXIMUM } from './options.js'

/** QoS 0 messages kept for the first observer of `messages$` (the oldest are dropped beyond). */
const EARLY_QOS0 = 1000

const ACKED = Object.freeze({ acked: true }) as { acked: boolean }

/** See the module comment. */
export class Inbound {
  private readonly aliases = new Map<number, string>()
  /** Deliveries waiting on the journal: later messages wait behind them (order is kept). */
  private tail: Promise<void> | undefined
  private waiting = 0

  /**
   * Acks go out on whatever connection is current when the application acks (a QoS 2 message may
   * be acked after a reconnect, when the broker resent it on the new connection). One function for
   * every message: no closure per message.
   */
  private readonly onAck: () => void

  constructor(private readonly client: ConnectionContext) {
    const session = client.session
    this.onAck = () => session.flushAcks?.()
  }

  onPublish(packet: PublishPacket, decoder: Decoder): void {
    const client = this.client
    let topic = packet.topic
    const alias = packet.properties?.topicAlias
    if (alias !== undefined) {
      const max = client.options.properties?.topicAliasMaximum ?? 0
      if (alias === 0 || alias > max) return client.fail(new MqttError(ReasonCode.TopicAliasInvalid, `topic alias ${alias} exceeds our maximum ${max}`))
      if (topic === '') {
        const known = this.aliases.get(alias)
        if (known === undefined) return client.fail(new ProtocolError(`unknown topic alias ${alias}`))
        topic = known
      } else this.aliases.set(alias, topic)
    }
    const qos = packet.qos
    // The packet has every field a Message takes: a new object only when an alias gave the topic.
    const fields = topic === packet.topic ? packet : { topic, payload: packet.payload, qos, retain: packet.retain, dup: packet.dup, properties: packet.properties }
    const session = client.session
    if (qos === 0) {
      this.deliver(new Message(fields, session.nextInboundNumber(), false, ACKED, undefined))
      return
    }
    const packetId = packet.packetId!
    const acks = client.acks
    if (client.protocolLevel === 5 && acks.pending >= (client.options.properties?.receiveMaximum ?? DEFAULT_RECEIVE_MAXIMUM)) {
      return client.fail(new MqttError(ReasonCode.ReceiveMaximumExceeded, 'the broker exceeded our Receive Maximum'))
    }
    const onAck = this.onAck
    if (qos === 1) {
      const message = new Message(fields, session.nextInboundNumber(), false, undefined, onAck)
      acks.push(packetId, 1, message)
      this.deliver(message)
      return
    }
    const known = session.received.get(packetId)
    if (known !== undefined) {
      // A resent PUBLISH we already have: not handed over again; PUBREC once the application acked.
      acks.push(packetId, 2, known)
      return
    }
    const journal = session.journal
    if (journal === undefined) {
      const state = { acked: false, id: session.nextInboundId() }
      session.received.set(packetId, state)
      acks.push(packetId, 2, state)
      this.deliver(new Message(fields, state.id, false, state, onAck))
      return
    }
    const state = { acked: false, id: '' }
    session.received.set(packetId, state)
    acks.push(packetId, 2, state)
    // The stored bytes carry the resolved topic, never an alias (aliases are per connection).
    const raw = alias === undefined ? decoder.rawPacket() : undefined
    const bytes = raw === undefined ? encode({ ...packet, topic, properties: withoutAlias(packet.properties) }, client.protocolLevel) : Buffer.from(raw)
    // The payload view must outlive the chunk now: copy it for the asynchronous hand-over.
    const copied = { ...fields, payload: Buffer.from(fields.payload) }
    const stored = journal.received(packetId, bytes)
    this.after(() => stored.then((id) => {
      state.id = id
      this.emit(new Message(copied, id, false, state, () => {
        journal.consumed(id)
        onAck()
      }))
    }, (error: unknown) => client.close('protocol', new ConnectionLostError('unknown', 'session store failed', { cause: error }))))
  }

  onPubrel(packetId: number): void {
    const client = this.client
    const session = client.session
    const known = session.received.delete(packetId)
    const level = client.protocolLevel
    const reasonCode = known ? ReasonCode.Success : ReasonCode.PacketIdentifierNotFound
    const journal = session.journal
    if (!known) {
      client.send(encode({ type: 'pubcomp', packetId, reasonCode }, level))
      return
    }
    if (journal === undefined) {
      client.sendAck(0x70, packetId)
      return
    }
    journal.releasedInbound(packetId).then(
      () => client.send(encode({ type: 'pubcomp', packetId, reasonCode }, level)),
      (error: unknown) => client.close('protocol', new ConnectionLostError('unknown', 'session store failed', { cause: error }))
    )
  }

  /** Hand a message to `messages$` observers; acked when every observer returned (unless manual). */
  private deliver(message: Message): void {
    if (this.waiting > 0) this.after(() => this.emit(message))
    else this.emit(message)
  }

  private emit(message: Message): void {
    const early = this.client.early
    if (early !== undefined) {
      // Nobody observes yet: hold it (unacknowledged) for the first observer.
      if (message.qos === 0 && early.length >= EARLY_QOS0) {
        const at = early.findIndex((m) => m.qos === 0)
        if (at >= 0) early.splice(at, 1)
      }
      if (this.client.options.manualAck !== true || message.qos === 0) message.hold()
      early.push(message)
      return
    }
    const subject = this.client.messageSubject
    if (this.client.options.manualAck === true && message.qos !== 0) {
      subject.next(message)
      return
    }
    message.hold()
    try {
      subject.next(message)
    } finally {
      message.release()
    }
  }

  /** Run `step` after the deliveries already waiting (a step's failure does not stop the chain). */
  private after(step: () => Promise<void> | void): void {
    this.waiting++
    const previous = this.tail ?? Promise.resolve()
    this.tail = previous.then(step).catch(() => undefined).finally(() => {
      if (--this.waiting === 0) this.tail = undefined
    })
  }
}

function withoutAlias(properties: PublishPacket['properties']): PublishPacket['properties'] {
  if (properties === undefined) return undefined
  const { topicAlias: _alias, ...rest } = properties
  return rest
}
