/**
 * The session journal over a `ClientStore`: turns the session's durability points into store
 * records (lib/client/store/store.ts has the table of what must be durable before which packet)
 * and restores a session from a store snapshot.
 */
import { PublishTemplate } from '../packet/index.js'
import type { Awaitable } from '../util/awaitable.js'
import { Message } from './inbound.js'
import type { ClientSession, OutRecord, SessionJournal } from './session.js'
import { decodeStoredPublish } from './store/stored-publish.js'
import type { ClientStore, StoreRecord, StoreSnapshot, StoredSubscription } from './store/store.js'

const RESOLVED = Promise.resolve()

function promised(result: Awaitable<void>): Promise<void> {
  return result === undefined ? RESOLVED : result
}

/** See the module comment. */
export class StoreJournal implements SessionJournal {
  /** Inbound packet id → seq of its `in` record (until PUBREL). */
  private readonly inboundSeq = new Map<number, number>()
  /** Failures of lazy records (reported on the Service's errors$). */
  onLazyError: ((error: unknown) => void) | undefined

  constructor(private readonly store: ClientStore, private readonly session: ClientSession) {}

  private commit(records: StoreRecord[]): Promise<void> {
    try {
      return promised(this.store.commit(records))
    } catch (error) {
      return Promise.reject(error)
    }
  }

  private lazy(records: StoreRecord[]): void {
    this.commit(records).catch((error: unknown) => this.onLazyError?.(error))
  }

  accepted(record: OutRecord): Promise<void> {
    const packet = record.template.variant(record.qos, record.retain, false).bytes
    return this.commit([{ op: 'out', seq: record.seq, packet, packetId: record.packetId }])
  }

  assigned(record: OutRecord): Promise<void> {
    return this.commit([{ op: 'id', seq: record.seq, packetId: record.packetId }])
  }

  released(record: OutRecord): Promise<void> {
    return this.commit([{ op: 'rel', seq: record.seq }])
  }

  done(record: OutRecord): void {
    this.lazy([{ op: 'done', seq: record.seq }])
  }

  reset(): void {
    this.inboundSeq.clear()
    this.lazy([{ op: 'reset' }])
  }

  received(packetId: number, packet: Buffer): Promise<string> {
    const seq = this.session.takeSeq()
    this.inboundSeq.set(packetId, seq)
    return this.commit([{ op: 'in', seq, packetId, packet }]).then(() => String(seq))
  }

  consumed(id: string): void {
    this.lazy([{ op: 'consumed', seq: Number(id) }])
  }

  releasedInbound(packetId: number): Promise<void> {
    const seq = this.inboundSeq.get(packetId)
    this.inboundSeq.delete(packetId)
    return seq === undefined ? RESOLVED : this.commit([{ op: 'released', seq }])
  }

  /** Remember subscriptions (lazy). */
  subscribed(subscriptions: StoredSubscription[]): void {
    this.lazy([{ op: 'sub', subscriptions }])
  }

  unsubscribed(topicFilters: string[]): void {
    this.lazy([{ op: 'unsub', topicFilters }])
  }

  /**
   * Load a snapshot into the session: outbound messages (resent after the next CONNACK, in order),
   * inbound QoS 2 ids still held, subscriptions. Returns the inbound messages not yet consumed, to
   * be handed over again (same id, `redelivered`).
   */
  restore(snapshot: StoreSnapshot): Message[] {
    const session = this.session
    const level = session.protocolLevel
    session.startSeqAt(snapshot.nextSeq)
    for (const entry of snapshot.outbound) {
      const packet = decodeStoredPublish(entry.packet, level, entry.packetId)
      if (packet === undefined || packet.qos === 0) continue
      const template = new PublishTemplate({ topic: packet.topic, payload: packet.payload, properties: packet.properties }, level)
      template.seed(packet.qos, packet.retain, false, entry.packet)
      session.restore({
        seq: entry.seq,
        qos: packet.qos,
        retain: packet.retain,
        template,
        packetId: entry.packetId,
        state: entry.packetId === 0 ? 'queued' : entry.released ? 'rel' : 'sent',
        acceptedAt: 0,
        settle: undefined
      })
    }
    session.requeueAll()
    for (const subscription of snapshot.subscriptions) session.subscriptions.set(subscription.topicFilter, subscription)
    const redeliver: Message[] = []
    for (const entry of snapshot.inbound) {
      const state = { acked: entry.consumed, id: String(entry.seq) }
      if (!entry.released) {
        session.received.set(entry.packetId, state)
        this.inboundSeq.set(entry.packetId, entry.seq)
      }
      if (entry.consumed) continue
      const packet = decodeStoredPublish(entry.packet, level, entry.packetId)
      if (packet === undefined) continue
      const fields = { topic: packet.topic, payload: packet.payload, qos: packet.qos, retain: packet.retain, dup: packet.dup, properties: packet.properties }
      redeliver.push(new Message(fields, state.id, true, state, () => {
        this.consumed(state.id)
        session.flushAcks?.()
      }))
    }
    return redeliver
  }
}
