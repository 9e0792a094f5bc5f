/**
 * Outbound PUBLISH of one connection: validation against what the broker announced, the QoS 1/2
 * in-flight window (the broker's Receive Maximum [MQTT-4.9.0-1]), the resend of unfinished
 * exchanges after a reconnect (in their original order, DUP set, original ids [MQTT-4.4.0-1]),
 * the Session Present 0 policy, outbound topic aliases (QoS 0 only, per connection
 * [MQTT-3.3.2-7]) and the acknowledgements PUBACK / PUBREC / PUBCOMP.
 */
import { PublishTemplate, ReasonCode, checkTopicName, encode } from '../packet/index.js'
import type { AckPacket, ProtocolLevel, PublishProperties, QoS } from '../packet/index.js'
import { MAX_VARINT, varintLength, writeVarint } from '../packet/varint.js'
import type { ConnectionContext } from './client-context.js'
import { CanceledError, ClosedError, ConnectionLostError, ExpiredError, InvalidRequestError, PublishFailedError, SessionLostError } from './errors.js'
import type { OutRecord, PublishResult } from './session.js'

/** Options of `publish`. */
export interface PublishOptions {
  qos?: QoS
  retain?: boolean
  /** MQTT 5 properties (message expiry, response topic, correlation data, user properties, ...). */
  properties?: PublishProperties
  signal?: AbortSignal
  /** @internal Told the message's id once it is accepted (QoS 1/2: in the session, durable with a store): `Service.enqueue`. */
  onAccepted?: (id: string) => void
}

const DONE: PublishResult = Object.freeze({ reasonCode: 0 }) as PublishResult

/** See the module comment. */
export class Outbound {
  /** QoS 1/2 exchanges of this connection awaiting their final acknowledgement. */
  onWire = 0
  private resending: OutRecord[] = []
  private resendHead = 0
  private paused = true
  private readonly aliases = new Map<string, number>()
  private drainWaiter: (() => void) | undefined
  private validTopic = ''
  /** The length-prefixed UTF-8 of \`topicHeadOf\`, the last topic of a plain QoS 0 publish. */
  private topicHead: Buffer | undefined
  private topicHeadOf = ''

  constructor(private readonly client: ConnectionContext) {}

  publish(topic: string, payload: Buffer | Uint8Array | string, options: PublishOptions): Promise<PublishResult> {
    const client = this.client
    const qos = options.qos ?? 0
    const retain = options.retain ?? false
    const properties = options.properties
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
    const problem = this.check(topic, qos, retain, properties)
    if (problem !== undefined) return Promise.reject(problem)
    const level = client.protocolLevel
    if (qos === 0) {
      if (options.signal?.aborted === true) return Promise.reject(new CanceledError({ cause: options.signal.reason }))
      if (client.options.topicAliases === true && level === 5 && client.limits.topicAliasMaximum > 0) {
        const packet = this.aliased(topic, bytes, retain, properties)
        if (packet.length > client.limits.maximumPacketSize) return Promise.reject(tooLarge(packet.length, client.limits.maximumPacketSize))
        client.send(packet)
      } else if (properties === undefined) {
        const packet = this.plain(topic, bytes, retain, level)
        if (packet === undefined) return Promise.reject(tooLarge(this.plainSize(bytes, level), client.limits.maximumPacketSize))
        client.send(packet)
      } else {
        const variant = new PublishTemplate({ topic, payload: bytes, properties }, level).variant(0, retain, false)
        if (variant.bytes.length > client.limits.maximumPacketSize) return Promise.reject(tooLarge(variant.bytes.length, client.limits.maximumPacketSize))
        client.sendPublish(variant, 0)
      }
      return client.flushed()
    }
    const template = new PublishTemplate({ topic, payload: bytes, properties }, level)
    const size = template.variant(qos, retain, false).bytes.length
    if (size > client.limits.maximumPacketSize) return Promise.reject(tooLarge(size, client.limits.maximumPacketSize))
    return client.session.accept(template, qos, retain, client.clock.now(), options.signal, options.onAccepted)
  }

  /**
   * A QoS 0 PUBLISH without properties as one new Buffer, or undefined when it exceeds the broker's
   * maximum packet size. The payload is copied now (the caller may reuse its buffer once
   * \`publish\` returned); the topic's length-prefixed UTF-8 is kept for the next publish to the
   * same topic. No template and no second intermediate copy: the profile of a QoS 0 publisher had
   * ~25 % of its time in \`PublishTemplate\` (its object, the topic's encoding, the variant).
   */
  private plain(topic: string, payload: Buffer, retain: boolean, level: ProtocolLevel): Buffer | undefined {
    let head = this.topicHead
    if (head === undefined || this.topicHeadOf !== topic) {
      const n = Buffer.byteLength(topic)
      head = Buffer.allocUnsafeSlow(2 + n)
      head[0] = n >> 8
      head[1] = n & 0xff
      head.write(topic, 2)
      this.topicHead = head
      this.topicHeadOf = topic
    }
    const length = head.length + (level === 5 ? 1 : 0) + payload.length
    if (length > MAX_VARINT || 1 + varintLength(length) + length > this.client.limits.maximumPacketSize) return undefined
    const out = Buffer.allocUnsafe(1 + varintLength(length) + length)
    out[0] = retain ? 0x31 : 0x30
    let o = writeVarint(out, 1, length)
    out.set(head, o)
    o += head.length
    // MQTT 5: a property length of 0.
    if (level === 5) out[o++] = 0
    out.set(payload, o)
    return out
  }

  /** The size `plain` would have made (for the error message). */
  private plainSize(payload: Buffer, level: ProtocolLevel): number {
    const length = this.topicHead!.length + (level === 5 ? 1 : 0) + payload.length
    return 1 + varintLength(length) + length
  }

  /** Validate a publish against the topic rules and what the broker announced. */
  check(topic: string, qos: QoS, retain: boolean, properties: PublishProperties | undefined): InvalidRequestError | undefined {
    if (topic !== this.validTopic) {
      const bad = checkTopicName(topic)
      if (bad !== undefined) return new InvalidRequestError(bad.message, { reasonCode: bad.reasonCode, cause: bad })
      // Publishers mostly repeat a topic: remember the last valid one.
      this.validTopic = topic
    }
    if (qos !== 0 && qos !== 1 && qos !== 2) return new InvalidRequestError(`QoS must be 0, 1 or 2 (got ${String(qos)})`)
    const limits = this.client.limits
    if (qos > limits.maximumQoS) return new InvalidRequestError(`the broker accepts QoS ≤ ${limits.maximumQoS}`, { reasonCode: ReasonCode.QoSNotSupported })
    if (retain && !limits.retainAvailable) return new InvalidRequestError('the broker does not support retained messages', { reasonCode: ReasonCode.RetainNotSupported })
    if (properties?.topicAlias !== undefined) return new InvalidRequestError('topic aliases are managed by the client (option topicAliases)', { reasonCode: ReasonCode.TopicAliasInvalid })
    if (properties?.subscriptionIdentifiers !== undefined) return new InvalidRequestError('a client does not send subscription identifiers in PUBLISH', { reasonCode: ReasonCode.ProtocolError })
    return undefined
  }

  /** CONNACK accepted: resend what the broker still knows, or apply the session-lost policy; then send. */
  resume(sessionPresent: boolean): void {
    const client = this.client
    const session = client.session
    session.onQueued = () => this.pump()
    this.aliases.clear()
    if (sessionPresent) {
      this.resending = [...session.out.values()].filter((record) => record.state !== 'queued')
      this.resendHead = 0
      this.paused = false
      this.pump()
      return
    }
    const policy = client.options.onSessionLost ?? 'republish'
    const inDoubt = [...session.out.values()]
    session.reset()
    for (const record of inDoubt) {
      if (record.state === 'rel') {
        // The broker acknowledged receipt (PUBREC) before it lost the session: delivered.
        session.delivered(record, { reasonCode: record.reasonCode ?? 0 })
      } else if (record.state === 'sent') {
        if (policy === 'fail') {
          session.finish(record)
          record.settle?.(new SessionLostError())
        } else record.state = 'queued'
      }
    }
    session.requeueAll()
    const journal = session.journal
    if (journal === undefined || session.out.size === 0) {
      this.paused = false
      this.pump()
      return
    }
    // With a store every message carries its packet id from acceptance on: give the republished
    // ones new ids and make them durable before any is sent.
    const records = [...session.out.values()]
    for (const record of records) {
      session.assignId(record)
      record.idDurable = true
    }
    Promise.all(records.map((record) => journal.accepted(record))).then(
      () => {
        this.paused = false
        this.pump()
      },
      (error: unknown) => client.close('protocol', new ConnectionLostError('not-sent', 'session store failed', { cause: error }))
    )
  }

  /** Send queued messages while the window has room. */
  pump(): void {
    const client = this.client
    if (this.paused || !client.connected) return
    const session = client.session
    const max = client.limits.receiveMaximum
    while (this.onWire < max) {
      if (this.resendHead < this.resending.length) {
        const record = this.resending[this.resendHead++]!
        if (session.out.get(record.seq) !== record) continue
        this.onWire++
        if (record.state === 'rel') client.sendAck(0x62, record.packetId)
        else client.sendPublish(record.template.variant(record.qos, record.retain, true), record.packetId)
        continue
      }
      const record = session.nextQueued()
      if (record === undefined) break
      if (record.acceptedAt >= 0 && !this.fresh(record)) continue
      if (record.packetId === 0 && !session.assignId(record)) {
        session.unshift(record)
        break
      }
      record.state = 'sent'
      this.onWire++
      const journal = session.journal
      if (journal !== undefined && record.packetId !== 0 && !record.idDurable) {
        // A restored or republished message that got its id only now: the id is durable before
        // its first PUBLISH; later sends of this pump wait behind it (order is kept).
        record.idDurable = true
        this.later(() => journal.assigned(record))
      }
      const variant = record.template.variant(record.qos, record.retain, false)
      if (this.chain === undefined) client.sendPublish(variant, record.packetId)
      else this.later(() => client.sendPublish(variant, record.packetId))
    }
  }

  /** Sends waiting on the journal, in order. */
  private chain: Promise<void> | undefined
  private chained = 0

  private later(step: () => Promise<void> | void): void {
    this.chained++
    const client = this.client
    this.chain = (this.chain ?? Promise.resolve()).then(step).then(
      () => {
        if (--this.chained === 0) this.chain = undefined
      },
      (error: unknown) => {
        if (--this.chained === 0) this.chain = undefined
        client.close('protocol', new ConnectionLostError('not-sent', 'session store failed', { cause: error }))
      }
    )
  }

  /**
   * MQTT 5 message expiry while queued: a message whose interval ran out is dropped (its promise
   * rejects with `ExpiredError`); one that waited is sent with the interval less the time spent
   * [MQTT-3.3.2-6 for the broker; the same courtesy here]. False when dropped.
   */
  private fresh(record: OutRecord): boolean {
    const content = record.template.content
    const expiry = content.properties?.messageExpiryInterval
    if (expiry === undefined || this.client.protocolLevel !== 5) return true
    const waited = Math.floor((this.client.clock.now() - record.acceptedAt) / 1000)
    if (waited <= 0) return true
    if (waited >= expiry) {
      this.client.session.finish(record)
      record.settle?.(new ExpiredError())
      return false
    }
    if (record.packetId === 0 || this.client.session.journal === undefined) {
      record.template = new PublishTemplate({ ...content, properties: { ...content.properties, messageExpiryInterval: expiry - waited } }, this.client.protocolLevel)
    }
    return true
  }

  onAck(packet: AckPacket<'puback' | 'pubrec' | 'pubcomp'>): void {
    const client = this.client
    const session = client.session
    const record = session.byPacketId.get(packet.packetId)
    const code = packet.reasonCode ?? 0
    const reasonString = packet.properties?.reasonString
    if (packet.type === 'pubrec') {
      if (record === undefined || record.qos !== 2 || record.state === 'queued') {
        // Not ours (any more): answer so the broker can finish [MQTT-4.3.3]; v5 says why.
        client.send(encode({ type: 'pubrel', packetId: packet.packetId, reasonCode: ReasonCode.PacketIdentifierNotFound }, client.protocolLevel))
        return
      }
      if (record.state === 'rel') {
        client.sendAck(0x62, record.packetId)
        return
      }
      if (code >= 0x80) {
        this.complete(record, new PublishFailedError(code, reasonString))
        return
      }
      record.state = 'rel'
      record.reasonCode = code
      const journal = session.journal
      if (journal === undefined) client.sendAck(0x62, record.packetId)
      else {
        // Durable before PUBREL: after a restart we must resend PUBREL, never the PUBLISH.
        journal.released(record).then(
          () => client.sendAck(0x62, record.packetId),
          (error: unknown) => client.close('protocol', new ConnectionLostError('unknown', 'session store failed', { cause: error }))
        )
      }
      return
    }
    if (record === undefined) return
    if (packet.type === 'puback') {
      if (record.qos !== 1 || record.state !== 'sent') return
      this.complete(record, code >= 0x80 ? new PublishFailedError(code, reasonString) : undefined, code === 0 ? DONE : { reasonCode: code, reasonString })
      return
    }
    if (record.state !== 'rel') return
    this.complete(record, undefined, record.reasonCode === undefined || record.reasonCode === 0 ? DONE : { reasonCode: record.reasonCode })
  }

  private complete(record: OutRecord, error: Error | undefined, result?: PublishResult): void {
    this.onWire--
    const session = this.client.session
    if (error === undefined) session.delivered(record, result!)
    else {
      session.finish(record)
      record.settle?.(error)
    }
    this.pump()
    if (this.drainWaiter !== undefined && this.client.session.size === 0) this.drainWaiter()
  }

  /** Wait (at most `ms`) until no QoS 1/2 exchange is unfinished. */
  drain(ms: number): Promise<void> {
    if (this.client.session.size === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = this.client.clock.setTimer(() => done(), ms)
      const done = (): void => {
        timer.cancel()
        this.drainWaiter = undefined
        resolve()
      }
      this.drainWaiter = done
    })
  }

  /** The connection ended: settle or keep (Service) the session's messages. */
  closeAll(closed: ClosedError | undefined, cause: Error): void {
    const session = this.client.session
    // An end() waiting for the drain stops waiting: the connection is gone.
    this.drainWaiter?.()
    this.onWire = 0
    this.resending = []
    this.resendHead = 0
    this.paused = true
    if (session.onQueued !== undefined) session.onQueued = undefined
    if (session.keep) return
    for (const record of [...session.out.values()]) {
      const outcome = record.state === 'queued' ? 'not-sent' : 'unknown'
      session.finish(record)
      record.settle?.(closed !== undefined ? new ClosedError(outcome) : new ConnectionLostError(outcome, 'connection lost', { cause }))
    }
  }

  /** An MQTT 5 QoS 0 PUBLISH with a topic alias: the topic the first time, the alias alone after. */
  private aliased(topic: string, payload: Buffer, retain: boolean, properties: PublishProperties | undefined): Buffer {
    let alias = this.aliases.get(topic)
    let sendTopic = ''
    if (alias === undefined) {
      sendTopic = topic
      if (this.aliases.size < this.client.limits.topicAliasMaximum) {
        alias = this.aliases.size + 1
        this.aliases.set(topic, alias)
      }
    }
    const props = alias === undefined ? properties : { ...properties, topicAlias: alias }
    return encode({ type: 'publish', topic: sendTopic, payload, qos: 0, retain, dup: false, properties: props }, 5)
  }
}

function tooLarge(size: number, maximum: number): InvalidRequestError {
  return new InvalidRequestError(`PUBLISH of ${size} bytes exceeds the broker's maximum packet size of ${maximum}`, { reasonCode: ReasonCode.PacketTooLarge })
}
