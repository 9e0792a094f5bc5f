import type { ClientHandle, SetupResult } from '../backend.js'
import { BackendUnavailableError } from '../errors.js'
import { SessionTakenOverError } from '../../packet/errors.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import { KeyvSession } from './keyv-session.js'
import type { KeyvSessionContext } from './keyv-session.js'
import { SessionSuffix, sessionId } from './keys.js'
import { KickBook } from './kick-book.js'
import { LocalEntry } from './local-state.js'
import type { LocalRouting } from './local-routing.js'
import type { NodeContext } from './node-context.js'
import type { RedisLink } from './redis-link.js'
import { REINDEX, TAKEOVER } from './scripts.js'

const TAKEN_OVER = 'another connection took the session over'
/** The reason string of the connections a node closes when it finds the cluster released it. */
export const SESSIONS_LOST = 'the broker process lost its sessions; connect again'

/**
 * Session setup and takeover across nodes: the TAKEOVER script makes this node the owner with a new
 * epoch and kicks the previous owner through its inbox; this node waits (bounded) for that node's
 * acknowledgement, and closes its own connections of a session another node or connection took
 * over (0x8E) [MQTT-3.1.4-3]. Internal to `KeyvBackend`.
 */
export class Takeover {
  readonly #node: NodeContext
  readonly #routing: LocalRouting
  readonly #kicks = new KickBook()
  readonly #onReleased: () => void

  /** `onReleased`: a TAKEOVER found this node released by the cluster (it should beat now). */
  constructor(node: NodeContext, routing: LocalRouting, onReleased: () => void = () => undefined) {
    this.#node = node
    this.#routing = routing
    this.#onReleased = onReleased
  }

  /** `Backend.setup`: creates or resumes the session of `client` and takes it over. */
  async setup(client: ClientHandle, clean: boolean, expiryInterval: number): Promise<SetupResult> {
    const node = this.#node
    const link = await node.use()
    const tenant = await node.tenant(client.tenant)
    const keys = tenant.keys
    const clientId = client.clientId
    const id = sessionId(keys.tenant, clientId)
    const sessionKey = keys.session(clientId)
    const persistent = expiryInterval > 0
    const [oldRaw, epoch, present, wasPersistRaw, delayedWill] = await this.#takeOver(
      link,
      [sessionKey],
      [
        node.nodeId,
        clean ? '1' : '0',
        String(Date.now()),
        persistent ? '1' : '0',
        String(expiryInterval),
        keys.prefix,
        clientId,
        node.nodeKeys.routeLog,
        keys.tenant,
        node.nodeKeys.inboxPrefix,
        node.nodeKeys.sessionsPrefix,
        id,
        node.nodeKeys.nodes,
        node.nodeKeys.reapClaim(node.nodeId),
        node.nodeKeys.oldWillsPrefix
      ]
    )
    const old = oldRaw.toString()
    if (old !== '' && old !== node.nodeId) await this.#awaitKick(link, id, epoch, old)
    const pids = await link.sendText<string[]>(['HKEYS', sessionKey + SessionSuffix.outgoing])
    const session = new KeyvSession(node.sessionContext as KeyvSessionContext, keys, clientId, String(epoch), expiryInterval, pids.map(Number))
    if (present === 1 && (wasPersistRaw.toString() === '1') !== persistent) {
      await link.script(REINDEX, [sessionKey], [node.nodeId, String(epoch), keys.prefix, clientId, persistent ? '1' : '0'])
    }
    // Another connection of this node: the newer epoch wins, the other is closed [MQTT-3.1.4-3].
    const prior = this.#routing.get(id)
    if (prior !== undefined && prior.client !== client) {
      if (Number(prior.session.epoch) > epoch) {
        client.close(ReasonCode.SessionTakenOver, TAKEN_OVER)
        throw new SessionTakenOverError()
      }
      this.#routing.evict(prior)
      if (prior.client.connected) {
        node.stats.takeovers++
        prior.client.close(ReasonCode.SessionTakenOver, TAKEN_OVER)
      }
    }
    const entry = new LocalEntry(client, session, tenant, persistent)
    if (delayedWill === 1) entry.delayedWill = clean ? 'publish' : 'cancel'
    this.#routing.set(entry)
    // A kick for a newer epoch may have arrived while this setup was running.
    const kicked = this.#kicks.takeKick(id)
    if (kicked !== undefined && kicked > epoch) {
      this.#routing.detach(entry)
      client.close(ReasonCode.SessionTakenOver, TAKEN_OVER)
      throw new SessionTakenOverError()
    }
    return { session, present: present === 1 }
  }

  /**
   * Node `from` took session `id` over at `epoch`: this node's connection of an older epoch is
   * closed (0x8E), and the kick acknowledged to `from` once it is. The copy of that connection's will
   * TAKEOVER kept for the reaper goes: this node's engine publishes the will (or ended the
   * connection already). Unless this node was released while alive (a reaper's mark is there, not
   * yet seen by its heartbeat): the reaper took that copy, or the session's will, and published it,
   * so the connection is closed with 0x00, which publishes none again (as `Membership` closes the
   * others).
   */
  onKick(id: string, epoch: number, tenant: string, clientId: string, from: string): void {
    const node = this.#node
    const link = node.link
    const entry = this.#routing.get(id)
    const ack = (): void => {
      link
        ?.send(['XADD', node.nodeKeys.inbox(from), 'MAXLEN', '~', '10000', '*', 'type', 'kicked', 't', tenant, 'c', clientId, 'e', String(epoch)])
        .catch(() => undefined)
    }
    const forget = link?.send<number>(['HDEL', node.nodeKeys.oldWills(node.nodeId), id]).catch(() => 0)
    if (entry === undefined || Number(entry.session.epoch) >= epoch) {
      // A setup of this node may still be running for an older epoch: it checks this.
      if (entry === undefined) this.#kicks.noteKick(id, epoch)
      ack()
      return
    }
    if (link === undefined || !entry.client.connected) {
      this.#close(entry, false)
      ack()
      return
    }
    void Promise.all([forget, this.#releasedMark(link)]).then(([, released]) => {
      this.#close(entry, released)
      ack()
    })
  }

  /**
   * A fenced write of `client`'s connection was refused (`SessionTakenOverError`), possibly before
   * this node read the kick of the connection that took the session over (under load the kick,
   * read on another connection, can come after the refusal of the old connection's next write):
   * when the session now belongs to a newer connection, this connection is closed as the kick
   * would close it (0x8E) [MQTT-3.1.4-3], not with the error of a failed step (0x83); when this
   * node was released while alive (the reaper's mark), closed with 0x00 (its will went out with the
   * reaping). Answers whether the connection is closed for one of these (here, or by the kick);
   * false when the fence has another cause (an operator deleted the session, ...).
   */
  async lost(client: ClientHandle): Promise<boolean> {
    const entry = this.#routing.of(client)
    // The kick was read meanwhile: it closed the connection.
    if (entry === undefined) return !client.connected
    return await this.#lost(entry)
  }

  /** `KeyvSessionContext.fenced`: a fenced write of `session` was refused (see `lost`). */
  async fenced(session: KeyvSession): Promise<void> {
    const entry = this.#routing.find(session.keys.tenant, session.clientId)
    if (entry !== undefined && entry.session === session) await this.#lost(entry)
  }

  async #lost(entry: LocalEntry): Promise<boolean> {
    const link = await this.#node.use()
    const [[owner, epoch], released] = await Promise.all([
      link.sendText<(string | null)[]>(['HMGET', entry.session.key, 'node', 'epoch']),
      this.#releasedMark(link)
    ])
    const takenOver = owner !== null && owner !== undefined && owner !== '' && epoch !== null && epoch !== undefined && Number(epoch) > Number(entry.session.epoch)
    if (!takenOver && !released) return false
    // As in onKick: the engine publishes this connection's will, not the reaper.
    if (!released) link.send(['HDEL', this.#node.nodeKeys.oldWills(this.#node.nodeId), sessionId(entry.tenant.keys.tenant, entry.client.clientId)]).catch(() => undefined)
    this.#close(entry, released)
    return true
  }

  /** Whether a reaper released this node while it was alive and its heartbeat has not seen it yet. */
  async #releasedMark(link: RedisLink): Promise<boolean> {
    try {
      return (await link.send<number>(['EXISTS', this.#node.nodeKeys.releasedMark(this.#node.nodeId)])) === 1
    } catch {
      return false
    }
  }

  /** Closes the connection of `entry`, still this node's: taken over (0x8E), or its node released (0x00, no will). */
  #close(entry: LocalEntry, released: boolean): void {
    if (this.#routing.of(entry.client) !== entry) return
    this.#routing.evict(entry)
    if (!entry.client.connected) return
    if (released) {
      entry.client.close(ReasonCode.NormalDisconnection, SESSIONS_LOST)
      return
    }
    this.#node.stats.takeovers++
    entry.client.close(ReasonCode.SessionTakenOver, TAKEN_OVER)
  }

  /** The node this node kicked acknowledged the kick of session `id` at `epoch`. */
  acknowledged(id: string, epoch: string): void {
    this.#kicks.acknowledged(id, epoch)
  }

  /** Ends every wait (at close). */
  clear(): void {
    this.#kicks.clear()
  }

  /**
   * Runs TAKEOVER. A node the cluster released while it was silent (or is releasing: a reaper
   * claimed it) takes no session: one it registered now would be in no session set a reaper reads,
   * so its will would never be published. The setup is refused (0x88) until the node's next
   * heartbeat registers it again (and closes the connections it had): it is asked for at once.
   */
  async #takeOver(link: RedisLink, keys: string[], args: string[]): Promise<[Buffer, number, number, Buffer, number]> {
    try {
      return await link.script<[Buffer, number, number, Buffer, number]>(TAKEOVER, keys, args)
    } catch (error) {
      if (error instanceof Error && error.message.includes('RELEASED')) {
        this.#onReleased()
        throw new BackendUnavailableError(`node ${this.#node.nodeId} was released by the cluster (silent for too long): no session until its next heartbeat`, error)
      }
      throw error
    }
  }

  /** Waits (bounded) until `old` closed its connection of the session, unless `old` is dead. */
  async #awaitKick(link: RedisLink, id: string, epoch: number, old: string): Promise<void> {
    const node = this.#node
    await this.#kicks.wait(id, epoch, node.takeoverTimeout, async () => {
      const seen = await link.sendText<string | null>(['ZSCORE', node.nodeKeys.nodes, old])
      return seen !== null && Number(seen) >= Date.now() - node.deadAfterMs
    })
  }
}
