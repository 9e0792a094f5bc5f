import { StoreError } from './store.js'
import type {
  InboundEntry,
  OutboundEntry,
  StoreMeta,
  StoreRecord,
  StoreSnapshot,
  StoredSubscription,
  StoreWarning,
} from './store.js'

/**
 * The session state a journal describes: applies `StoreRecord`s in order and answers the snapshot.
 * Shared by MemoryStore and FileStore, and exported for third-party stores that keep a log of
 * records (a store that keeps rows per message need not use it).
 */
export class StoreState {
  meta: StoreMeta | undefined = undefined
  nextSeq = 1
  readonly outbound = new Map<number, OutboundEntry>()
  readonly inbound = new Map<number, InboundEntry>()
  readonly subscriptions = new Map<string, StoredSubscription>()
  /** Approximate bytes the live state needs in a journal (messages and subscriptions). */
  liveBytes = 0

  /** Apply one record (no validation: use `validateRecords` on input from the session). */
  apply(record: StoreRecord): void {
    switch (record.op) {
      case 'meta':
        this.meta = { ...record.meta }
        return
      case 'out':
        this.seen(record.seq)
        this.drop(this.outbound.get(record.seq))
        this.liveBytes += record.packet.length + ENTRY_OVERHEAD
        this.outbound.set(record.seq, {
          seq: record.seq,
          packet: record.packet,
          packetId: record.packetId ?? 0,
          released: false,
        })
        return
      case 'id': {
        const entry = this.outbound.get(record.seq)
        if (entry !== undefined) entry.packetId = record.packetId
        return
      }
      case 'rel': {
        const entry = this.outbound.get(record.seq)
        if (entry !== undefined) entry.released = true
        return
      }
      case 'done':
        this.drop(this.outbound.get(record.seq))
        this.outbound.delete(record.seq)
        return
      case 'in':
        this.seen(record.seq)
        this.drop(this.inbound.get(record.seq))
        this.liveBytes += record.packet.length + ENTRY_OVERHEAD
        this.inbound.set(record.seq, {
          seq: record.seq,
          packetId: record.packetId,
          packet: record.packet,
          consumed: false,
          released: false,
        })
        return
      case 'consumed': {
        const entry = this.inbound.get(record.seq)
        if (entry === undefined) return
        if (entry.released) this.remove(this.inbound, entry)
        else entry.consumed = true
        return
      }
      case 'released': {
        const entry = this.inbound.get(record.seq)
        if (entry === undefined) return
        if (entry.consumed) this.remove(this.inbound, entry)
        else entry.released = true
        return
      }
      case 'sub':
        for (const s of record.subscriptions) {
          this.unsubscribe(s.topicFilter)
          this.liveBytes += s.topicFilter.length + SUBSCRIPTION_OVERHEAD
          this.subscriptions.set(s.topicFilter, { ...s })
        }
        return
      case 'unsub':
        for (const f of record.topicFilters) {
          this.unsubscribe(f)
          this.subscriptions.delete(f)
        }
        return
      case 'reset':
        for (const entry of this.outbound.values()) {
          if (entry.released) this.remove(this.outbound, entry)
          else entry.packetId = 0
        }
        for (const entry of this.inbound.values()) {
          if (entry.consumed) this.remove(this.inbound, entry)
          else entry.released = true
        }
        return
    }
  }

  private unsubscribe(topicFilter: string): void {
    if (this.subscriptions.has(topicFilter)) this.liveBytes -= topicFilter.length + SUBSCRIPTION_OVERHEAD
  }

  private drop(entry: { packet: Buffer } | undefined): void {
    if (entry !== undefined) this.liveBytes -= entry.packet.length + ENTRY_OVERHEAD
  }

  private remove<E extends { seq: number; packet: Buffer }>(map: Map<number, E>, entry: E): void {
    this.drop(entry)
    map.delete(entry.seq)
  }

  /** Raise `nextSeq` above `seq` (a record or a compaction watermark). */
  seen(seq: number): void {
    if (seq >= this.nextSeq) this.nextSeq = seq + 1
  }

  /** True when no message is held (what `open` may rebind to another protocol level). */
  get empty(): boolean {
    return this.outbound.size === 0 && this.inbound.size === 0
  }

  /** A snapshot (fresh arrays and entry objects; packet buffers are shared). */
  snapshot(meta: StoreMeta, warnings: StoreWarning[]): StoreSnapshot {
    const bySeq = (a: { seq: number }, b: { seq: number }): number => a.seq - b.seq
    return {
      meta: { ...meta },
      nextSeq: this.nextSeq,
      outbound: [...this.outbound.values()].map((e) => ({ ...e })).sort(bySeq),
      inbound: [...this.inbound.values()].map((e) => ({ ...e })).sort(bySeq),
      subscriptions: [...this.subscriptions.values()].map((s) => ({ ...s })),
      warnings,
    }
  }

  /** Records that rebuild this state from nothing (for compaction), live messages in seq order. */
  toRecords(): StoreRecord[] {
    const records: StoreRecord[] = []
    if (this.meta !== undefined) records.push({ op: 'meta', meta: this.meta })
    if (this.subscriptions.size > 0) records.push({ op: 'sub', subscriptions: [...this.subscriptions.values()] })
    const out = [...this.outbound.values()].sort((a, b) => a.seq - b.seq)
    for (const e of out) {
      records.push({ op: 'out', seq: e.seq, packet: e.packet, packetId: e.packetId })
      if (e.released) records.push({ op: 'rel', seq: e.seq })
    }
    const inb = [...this.inbound.values()].sort((a, b) => a.seq - b.seq)
    for (const e of inb) {
      records.push({ op: 'in', seq: e.seq, packetId: e.packetId, packet: e.packet })
      if (e.consumed) records.push({ op: 'consumed', seq: e.seq })
      if (e.released) records.push({ op: 'released', seq: e.seq })
    }
    return records
  }
}

/** Journal bytes per live message besides its packet (headers of its records, generously). */
const ENTRY_OVERHEAD = 48

/** Journal bytes per remembered subscription besides its filter. */
const SUBSCRIPTION_OVERHEAD = 48

const MAX_SEQ = Number.MAX_SAFE_INTEGER

function checkSeq(seq: unknown, op: string): void {
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 1 || seq > MAX_SEQ) {
    throw new StoreError('invalid', `store: ${op} record: seq must be a positive safe integer, got ${String(seq)}`)
  }
}

function checkPacketId(id: unknown, op: string, allowZero: boolean): void {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < (allowZero ? 0 : 1) || id > 0xffff) {
    throw new StoreError('invalid', `store: ${op} record: packetId must be an integer 1..65535, got ${String(id)}`)
  }
}

function checkPacket(packet: unknown, op: string): void {
  if (!Buffer.isBuffer(packet) || packet.length === 0) {
    throw new StoreError('invalid', `store: ${op} record: packet must be a non-empty Buffer`)
  }
}

function checkMeta(meta: StoreMeta | undefined): void {
  if (typeof meta !== 'object' || meta === null || typeof meta.clientId !== 'string') {
    throw new StoreError('invalid', 'store: meta.clientId must be a string')
  }
  if (meta.protocolLevel !== 3 && meta.protocolLevel !== 4 && meta.protocolLevel !== 5) {
    throw new StoreError('invalid', `store: meta.protocolLevel must be 3, 4 or 5, got ${String(meta.protocolLevel)}`)
  }
  if (meta.assignedClientId !== undefined && typeof meta.assignedClientId !== 'string') {
    throw new StoreError('invalid', 'store: meta.assignedClientId must be a string')
  }
}

/**
 * Check records from a session before anything of them is applied: throws `StoreError`
 * (`invalid`) naming the first bad field. New messages (`out`, `in`) must use a seq of at least
 * `nextSeq`, increasing within the batch; an `out` may also repeat the seq of an outbound message
 * still held (`heldOut`), which replaces it.
 */
export function validateRecords(
  records: readonly StoreRecord[],
  nextSeq: number,
  heldOut: (seq: number) => boolean = () => false
): void {
  if (!Array.isArray(records)) throw new StoreError('invalid', 'store: commit takes an array of records')
  let next = nextSeq
  for (const r of records as readonly (StoreRecord | undefined)[]) {
    if (typeof r !== 'object' || r === null) throw new StoreError('invalid', 'store: a record must be an object')
    switch (r.op) {
      case 'meta':
        checkMeta(r.meta)
        break
      case 'out':
      case 'in':
        checkSeq(r.seq, r.op)
        if (r.op === 'out' && r.seq < nextSeq && heldOut(r.seq)) {
          // re-accepted (e.g. republished with a new packet id after Session Present 0)
        } else if (r.seq < next) {
          throw new StoreError('invalid', `store: ${r.op} record: seq ${r.seq} was already used (next is ${next})`)
        }
        if (r.seq >= next) next = r.seq + 1
        checkPacket(r.packet, r.op)
        if (r.op === 'in') checkPacketId(r.packetId, r.op, false)
        else if (r.packetId !== undefined) checkPacketId(r.packetId, r.op, true)
        break
      case 'id':
        checkSeq(r.seq, r.op)
        checkPacketId(r.packetId, r.op, false)
        break
      case 'rel':
      case 'done':
      case 'consumed':
      case 'released':
        checkSeq(r.seq, r.op)
        break
      case 'sub':
        if (!Array.isArray(r.subscriptions)) throw new StoreError('invalid', 'store: sub record: subscriptions must be an array')
        for (const s of r.subscriptions as unknown[]) {
          const sub = s as Partial<StoredSubscription> | null
          if (typeof sub !== 'object' || sub === null || typeof sub.topicFilter !== 'string') {
            throw new StoreError('invalid', 'store: sub record: each subscription needs a topicFilter string')
          }
          if (sub.qos !== 0 && sub.qos !== 1 && sub.qos !== 2) {
            throw new StoreError('invalid', `store: sub record: qos must be 0, 1 or 2 (${sub.topicFilter})`)
          }
        }
        break
      case 'unsub':
        if (!Array.isArray(r.topicFilters) || r.topicFilters.some((f) => typeof f !== 'string')) {
          throw new StoreError('invalid', 'store: unsub record: topicFilters must be an array of strings')
        }
        break
      case 'reset':
        break
      default:
        throw new StoreError('invalid', `store: unknown record op ${JSON.stringify((r as { op?: unknown }).op)}`)
    }
  }
}

/** The `open` rule shared by the stores: same client id; another protocol level only when empty. */
export function bindMeta(state: StoreState, meta: StoreMeta): StoreMeta | undefined {
  checkMeta(meta)
  const stored = state.meta
  if (stored === undefined) return { ...meta }
  if (stored.clientId !== meta.clientId) {
    throw new StoreError(
      'mismatch',
      `store: bound to client id ${JSON.stringify(stored.clientId)}, not ${JSON.stringify(meta.clientId)}`
    )
  }
  if (stored.protocolLevel !== meta.protocolLevel) {
    if (!state.empty) {
      throw new StoreError(
        'mismatch',
        `store: holds messages encoded at protocol level ${stored.protocolLevel}, not ${meta.protocolLevel}`
      )
    }
    return { ...stored, protocolLevel: meta.protocolLevel }
  }
  return undefined
}
