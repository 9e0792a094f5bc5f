import type { ClientHandle } from '../backend.js'
import { SessionTakenOverError } from '../../packet/errors.js'
import type { Message, StoredWill } from '../../session/session.js'
import { willMessage } from '../../session/will.js'
import { decodeWill, encodeWill } from './codec.js'
import type { LocalRouting } from './local-routing.js'
import type { NodeContext } from './node-context.js'
import { DELAY_WILL, SCHEDULE_WILL, SETTLE_WILL } from './scripts.js'

/** How a will reaches subscribers: the facade's own retained store and publish path (no client). */
export interface WillOutlet {
  storeRetained(message: Message): Promise<void>
  publish(message: Message): Promise<unknown>
}

/**
 * The wills the Redis backend publishes itself, cluster-wide: the delayed wills of ending
 * connections (kept in Redis, published by whichever node sweeps first), and the wills of sessions
 * whose node died (taken by the reaper). Internal to `KeyvBackend`.
 */
export class Wills {
  readonly #node: NodeContext
  readonly #routing: LocalRouting
  readonly #outlet: WillOutlet

  constructor(node: NodeContext, routing: LocalRouting, outlet: WillOutlet) {
    this.#node = node
    this.#routing = routing
    this.#outlet = outlet
  }

  /** `KeyvBackend.delayWill` (see there). */
  async delay(client: ClientHandle, will: StoredWill, dueAt: number): Promise<boolean> {
    const node = this.#node
    const link = await node.use()
    const entry = this.#routing.of(client)
    if (entry === undefined) return true
    const keys = entry.tenant.keys
    try {
      await link.script(SCHEDULE_WILL, [entry.session.key], [node.nodeId, entry.session.epoch, encodeWill(will), String(Math.round(dueAt)), keys.prefix, client.clientId])
    } catch (error) {
      if (!(error instanceof SessionTakenOverError)) throw error
    }
    return true
  }

  /**
   * `client`'s connection was accepted (the engine calls `queueOffline` after CONNACK): the delayed
   * will its setup found is cancelled [MQTT-3.1.3-9], or published now when the connection's Clean
   * Start ended that session. Nothing before: a CONNECT refused after its setup leaves the will due
   * (MQTT 5.0 3.1.3.2.2). No Redis call when the setup found none.
   */
  async settle(client: ClientHandle): Promise<void> {
    const entry = this.#routing.of(client)
    const settlement = entry?.delayedWill
    if (entry === undefined || settlement === undefined) return
    entry.delayedWill = undefined
    const node = this.#node
    const link = await node.use()
    const keys = entry.tenant.keys
    let bytes: Buffer
    try {
      bytes = await link.script<Buffer>(SETTLE_WILL, [entry.session.key], [node.nodeId, entry.session.epoch, keys.prefix, client.clientId])
    } catch (error) {
      // Taken over meanwhile: the newer connection settles it.
      if (error instanceof SessionTakenOverError) return
      throw error
    }
    if (settlement === 'publish' && bytes.length > 0) await this.publish(keys.tenant, client.clientId, decodeWill(bytes))
  }

  /**
   * A will the reaper took from a dead node's session (exactly once, by the ORPHAN script): published
   * now, or, with a Will Delay Interval, when the earlier of that delay and the session's expiry
   * has passed (unless the client connects again meanwhile) [MQTT-3.1.3-9]. The will of a
   * connection that another connection took over (`takenOver`) is published when not delayed, and
   * is cancelled otherwise: that connection was a new one to the session within the delay.
   */
  async release(tenantId: string, clientId: string, bytes: Buffer, expiry: number, now: number, takenOver = false): Promise<void> {
    const node = this.#node
    try {
      const will = decodeWill(bytes)
      const delay = Math.min(will.properties?.willDelayInterval ?? 0, expiry)
      if (takenOver && delay > 0) return
      const keys = (await node.tenant(tenantId)).keys
      if (delay > 0) {
        const link = await node.use()
        await link.script(DELAY_WILL, [keys.session(clientId)], [bytes, String(now + delay * 1000), keys.prefix, clientId])
        return
      }
      await this.publish(tenantId, clientId, will)
    } catch (error) {
      node.log('error', `the will of ${clientId} (released from a dead node) was not published: ${error instanceof Error ? error.message : String(error)}`)
    }
  }

  /** Publishes a will as the engine does: stored as retained first when its RETAIN flag is set. */
  async publish(tenant: string, clientId: string, will: StoredWill): Promise<void> {
    const message = willMessage(will, clientId, tenant)
    if (message.retain) await this.#outlet.storeRetained(message)
    await this.#outlet.publish(message)
    this.#node.stats.willsPublished++
  }
}
