import { decodeMessage } from './codec.js'
import { sessionId } from './keys.js'
import type { LocalRouting } from './local-routing.js'
import type { NodeContext } from './node-context.js'
import type { RedisClientLike, RedisLink } from './redis-link.js'
import { StreamReader } from './stream-reader.js'
import type { StreamEntry } from './stream-reader.js'
import type { Takeover } from './takeover.js'

/** Takes the operators' requests and replies of this node's inbox (`AdminRequests.onEntry`). */
export type AdminEntries = (fields: Map<string, Buffer>) => void

/** Where this node starts reading its streams: the last entries before it started. */
export interface StreamPositions {
  readonly bus: string
  readonly routeLog: string
}

/**
 * The streams one node reads with a blocking XREAD on a connection of its own, and where each
 * entry goes: its message stream (live messages routed here → local clients), the route log
 * (wildcard filter changes → the tenant's filter mirror) and its inbox (wakes of persistent
 * sessions, takeover kicks and their acknowledgements, operators' requests). Internal to `KeyvBackend`.
 */
export class StreamDispatch {
  readonly #node: NodeContext
  readonly #routing: LocalRouting
  readonly #takeover: Takeover
  readonly #admin: AdminEntries
  /** The stream of the live messages routed to this node. */
  readonly #ownBus: string
  #reader: StreamReader | undefined = undefined

  constructor(node: NodeContext, routing: LocalRouting, takeover: Takeover, admin: AdminEntries) {
    this.#node = node
    this.#routing = routing
    this.#takeover = takeover
    this.#admin = admin
    this.#ownBus = node.nodeKeys.bus(node.nodeId)
  }

  /**
   * The last ids of this node's message stream and of the route log, read before the node starts
   * (its inbox is read from the start: kicks may be waiting).
   */
  async positions(link: RedisLink): Promise<StreamPositions> {
    const last = async (key: string): Promise<string> => {
      const reply = await link.sendText<[string, unknown][]>(['XREVRANGE', key, '+', '-', 'COUNT', '1'])
      return reply[0]?.[0] ?? '0-0'
    }
    const [bus, routeLog] = await Promise.all([last(this.#ownBus), last(this.#node.nodeKeys.routeLog)])
    return { bus, routeLog }
  }

  /** Starts reading on `blocking` (connected, used by nothing else) from `from`. */
  start(blocking: RedisClientLike, from: StreamPositions): void {
    const nodeKeys = this.#node.nodeKeys
    this.#reader = new StreamReader(
      blocking,
      [
        [this.#ownBus, from.bus],
        [nodeKeys.routeLog, from.routeLog],
        [nodeKeys.inbox(this.#node.nodeId), '0-0']
      ],
      (entry) => this.#onEntry(entry),
      () => undefined
    )
    this.#reader.start()
  }

  async stop(): Promise<void> {
    await this.#reader?.stop()
  }

  /**
   * The messages one `PUBLISH_BATCH` call routed to this node, in publish order: per message, u16
   * tenant length, tenant, u32 encoded length, encoded message. A frame that does not fit ends
   * the entry (reported once; the messages before it were delivered).
   */
  #onBatch(batch: Buffer): void {
    const node = this.#node
    let at = 0
    while (at < batch.length) {
      if (at + 2 > batch.length) break
      const tenantLength = batch.readUInt16BE(at)
      const messageAt = at + 2 + tenantLength + 4
      if (messageAt > batch.length) break
      const length = batch.readUInt32BE(messageAt - 4)
      if (messageAt + length > batch.length) break
      const tenant = node.tenants.get(batch.toString('utf8', at + 2, at + 2 + tenantLength))
      at = messageAt + length
      if (tenant === undefined) continue
      node.stats.busReceived++
      this.#routing.deliverLocal(tenant, decodeMessage(batch.subarray(messageAt, messageAt + length)))
    }
    if (at !== batch.length) node.log('warn', `a message batch on ${this.#ownBus} is cut short at byte ${at} of ${batch.length}: its rest is ignored`)
  }

  #onEntry(entry: StreamEntry): void {
    const node = this.#node
    const f = entry.fields
    const text = (name: string): string => f.get(name)?.toString() ?? ''
    if (entry.stream === this.#ownBus) {
      const batch = f.get('b')
      if (batch !== undefined) {
        this.#onBatch(batch)
        return
      }
      // One message per entry (written by an earlier version of PUBLISH_BATCH).
      const tenant = node.tenants.get(text('t'))
      if (tenant === undefined) return
      const bytes = f.get('m')
      if (bytes === undefined) return
      node.stats.busReceived++
      this.#routing.deliverLocal(tenant, decodeMessage(bytes))
      return
    }
    if (entry.stream === node.nodeKeys.routeLog) {
      node.tenants.get(text('t'))?.applyRouteChange(entry.id, text('f'), text('c') === '1', Number(text('v') || '0'))
      return
    }
    const type = text('type')
    const tenant = text('t')
    const clientId = text('c')
    if (type === 'wake') this.#routing.wake(tenant, clientId)
    else if (type === 'kick') this.#takeover.onKick(sessionId(tenant, clientId), Number(text('e')), tenant, clientId, text('n'))
    else if (type === 'kicked') this.#takeover.acknowledged(sessionId(tenant, clientId), text('e'))
    else if (type === 'admin' || type === 'admin-reply') this.#admin(f)
  }
}
