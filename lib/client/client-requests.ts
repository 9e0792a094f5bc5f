/** SUBSCRIBE / UNSUBSCRIBE of one connection and their acknowledgements. */
import { ReasonCode, checkTopicFilter, encode } from '../packet/index.js'
import type { QoS, SubackPacket, SubscribePacket, Subscription, UnsubackPacket, UserProperty } from '../packet/index.js'
import type { ConnectionContext } from './client-context.js'
import { AbandonedError, CanceledError, ClosedError, ConnectionLostError, InvalidRequestError, LimitError, SubscribeError } from './errors.js'

/** One filter to subscribe to; a bare string means QoS 0 with default options. */
export interface SubscribeRequest {
  topicFilter: string
  /** Requested maximum QoS (default 0). */
  qos?: QoS
  /** MQTT 5 subscription options. */
  noLocal?: boolean
  retainAsPublished?: boolean
  retainHandling?: 0 | 1 | 2
}

/** Options of `subscribe` / `unsubscribe`. */
export interface SubscribeOptions {
  signal?: AbortSignal
  /** MQTT 5 Subscription Identifier (1..268,435,455) for the filters of this SUBSCRIBE. */
  subscriptionIdentifier?: number
  userProperties?: UserProperty[]
  /** Resolve even when some filters are refused (the codes say which); default false: `SubscribeError`. */
  allowPartial?: boolean
}

/** SUBACK: one code per filter (granted QoS, or ≥ 0x80 refused). */
export interface SubscribeResult {
  reasonCodes: number[]
  reasonString?: string | undefined
}

/** UNSUBACK: one code per filter at MQTT 5 (0 = success / 0x11 = no subscription existed); zeros before. */
export interface UnsubscribeResult {
  reasonCodes: number[]
  reasonString?: string | undefined
}

interface Pending {
  kind: 'suback' | 'unsuback'
  count: number
  allowPartial: boolean
  settle: ((error: Error | undefined, result?: SubscribeResult) => void) | undefined
}

/** Normalise the `subscribe` argument. */
export function toSubscriptions(input: string | SubscribeRequest | readonly (string | SubscribeRequest)[]): Subscription[] {
  const list = typeof input === 'string' || !Array.isArray(input) ? [input as string | SubscribeRequest] : (input as readonly (string | SubscribeRequest)[])
  return list.map((entry) => {
    if (typeof entry === 'string') return { topicFilter: entry, qos: 0 }
    const subscription: Subscription = { topicFilter: entry.topicFilter, qos: entry.qos ?? 0 }
    if (entry.noLocal !== undefined) subscription.noLocal = entry.noLocal
    if (entry.retainAsPublished !== undefined) subscription.retainAsPublished = entry.retainAsPublished
    if (entry.retainHandling !== undefined) subscription.retainHandling = entry.retainHandling
    return subscription
  })
}

/** See the module comment. */
export class Requests {
  private readonly pending = new Map<number, Pending>()

  constructor(private readonly client: ConnectionContext) {}

  subscribe(input: string | SubscribeRequest | readonly (string | SubscribeRequest)[], options: SubscribeOptions): Promise<SubscribeResult> {
    const client = this.client
    const limits = client.limits
    const level = client.protocolLevel
    const subscriptions = toSubscriptions(input)
    if (subscriptions.length === 0) return Promise.reject(new InvalidRequestError('nothing to subscribe to'))
    for (const subscription of subscriptions) {
      const bad = checkTopicFilter(subscription.topicFilter, { shared: level === 5 ? limits.sharedSubscriptionAvailable : true, wildcards: limits.wildcardSubscriptionAvailable })
      if (bad !== undefined) return Promise.reject(new InvalidRequestError(bad.message, { reasonCode: bad.reasonCode, cause: bad }))
      if (subscription.qos !== 0 && subscription.qos !== 1 && subscription.qos !== 2) return Promise.reject(new InvalidRequestError('QoS must be 0, 1 or 2'))
    }
    const packet: SubscribePacket = { type: 'subscribe', packetId: 0, subscriptions }
    if (level === 5) {
      const id = options.subscriptionIdentifier
      if (id !== undefined) {
        if (!limits.subscriptionIdentifiersAvailable) return Promise.reject(new InvalidRequestError('the broker does not support subscription identifiers', { reasonCode: ReasonCode.SubscriptionIdentifiersNotSupported }))
        if (!Number.isInteger(id) || id < 1 || id > 268_435_455) return Promise.reject(new InvalidRequestError('subscriptionIdentifier must be 1..268,435,455'))
      }
      if (id !== undefined || options.userProperties !== undefined) {
        packet.properties = {}
        if (id !== undefined) packet.properties.subscriptionIdentifiers = [id]
        if (options.userProperties !== undefined) packet.properties.userProperties = options.userProperties
      }
    }
    return this.start(packet, 'suback', subscriptions.length, options)
  }

  unsubscribe(input: string | readonly string[], options: SubscribeOptions): Promise<UnsubscribeResult> {
    const filters = typeof input === 'string' ? [input] : [...input]
    if (filters.length === 0) return Promise.reject(new InvalidRequestError('nothing to unsubscribe from'))
    for (const filter of filters) {
      const bad = checkTopicFilter(filter)
      if (bad !== undefined) return Promise.reject(new InvalidRequestError(bad.message, { reasonCode: bad.reasonCode, cause: bad }))
    }
    const properties = this.client.protocolLevel === 5 && options.userProperties !== undefined ? { userProperties: options.userProperties } : undefined
    return this.start({ type: 'unsubscribe', packetId: 0, topicFilters: filters, properties }, 'unsuback', filters.length, options)
  }

  private start(packet: SubscribePacket | { type: 'unsubscribe'; packetId: number; topicFilters: string[]; properties?: { userProperties: UserProperty[] } | undefined }, kind: Pending['kind'], count: number, options: SubscribeOptions): Promise<SubscribeResult> {
    const client = this.client
    const signal = options.signal
    if (signal?.aborted === true) return Promise.reject(new CanceledError({ cause: signal.reason }))
    const session = client.session
    const packetId = session.allocateId()
    if (packetId === 0) return Promise.reject(new LimitError('all 65,535 packet identifiers are in use'))
    packet.packetId = packetId
    const bytes = encode(packet, client.protocolLevel)
    if (bytes.length > client.limits.maximumPacketSize) {
      return Promise.reject(new InvalidRequestError(`${kind === 'suback' ? 'SUBSCRIBE' : 'UNSUBSCRIBE'} exceeds the broker's maximum packet size`, { reasonCode: ReasonCode.PacketTooLarge }))
    }
    session.requestIds.add(packetId)
    return new Promise<SubscribeResult>((resolve, reject) => {
      const onAbort = (): void => entry.settle?.(new AbandonedError({ cause: signal?.reason }))
      const entry: Pending = {
        kind,
        count,
        allowPartial: options.allowPartial ?? false,
        settle: (error, result) => {
          entry.settle = undefined
          signal?.removeEventListener('abort', onAbort)
          if (error === undefined) resolve(result!)
          else reject(error)
        }
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.pending.set(packetId, entry)
      client.send(bytes)
    })
  }

  onAck(packet: SubackPacket | UnsubackPacket): void {
    const entry = this.pending.get(packet.packetId)
    if (entry === undefined || entry.kind !== packet.type) return
    this.pending.delete(packet.packetId)
    this.client.session.requestIds.delete(packet.packetId)
    const codes = packet.reasonCodes ?? new Array<number>(entry.count).fill(0)
    const reasonString = packet.properties?.reasonString
    if (codes.length !== entry.count) {
      this.client.fail(new InvalidRequestError(`${packet.type.toUpperCase()} has ${codes.length} codes for ${entry.count} filters`, { reasonCode: ReasonCode.ProtocolError }))
      return
    }
    if (!entry.allowPartial && codes.some((code) => code >= 0x80)) {
      entry.settle?.(new SubscribeError(codes, reasonString, packet.type === 'suback' ? 'subscribe' : 'unsubscribe'))
      return
    }
    entry.settle?.(undefined, { reasonCodes: codes, reasonString })
  }

  /** The connection ended: every pending request settles (it was sent: outcome unknown). */
  closeAll(closed: ClosedError | undefined): void {
    for (const entry of this.pending.values()) {
      entry.settle?.(closed !== undefined ? new ClosedError('unknown') : new ConnectionLostError('unknown'))
    }
    this.pending.clear()
    this.client.session.requestIds.clear()
  }
}
