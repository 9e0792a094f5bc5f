import { SHARE_GROUP } from './keys.js'
import type { RedisClientLike, RedisLink } from './redis-link.js'
import { BINARY } from './redis-link.js'
import type { StreamEntry } from './stream-reader.js'

/**
 * The property (an enumerable symbol, so that the engine's copies of a message keep it) by which a
 * shared-subscription message carries its stream entry to `KeyvSession.saveOutgoing`.
 */
export const SHARE_TICKET: unique symbol = Symbol('mq.shareTicket')

/** A shared-subscription stream entry handed to a member and not yet acknowledged by it. */
export interface ShareTicket {
  readonly stream: string
  readonly id: string
}

type XReadReply = [Buffer, [Buffer, Buffer[] | null][]][] | null
type XPendingReply = [string, string, number, number][]

/**
 * This node's consumer of the shared-subscription streams (one Redis consumer group `g` per
 * `$share/{group}/{filter}`, this node's consumer named after its node id): it reads, with
 * `XREADGROUP … >` on its own blocking connection, the streams of the groups that have a live
 * member on this node, so each entry goes to exactly one node, which hands it to one member.
 *
 * - `add` / `remove` change the set of streams; a blocked read is interrupted (`CLIENT UNBLOCK`)
 *   so a new member gets messages at once.
 * - Entries stay pending (in the group's PEL) until `ack`; `claimDead` takes over those of
 *   consumers whose node is dead (never those of live nodes).
 * - A `NOGROUP` answer (Redis restarted without persistence) re-creates the groups.
 */
export class ShareConsumer {
  readonly #link: RedisLink
  readonly #client: RedisClientLike
  readonly #nodeId: string
  readonly #onEntry: (entry: StreamEntry) => void
  readonly #streams = new Set<string>()
  #clientId: string | undefined = undefined
  #running = false
  #blocked = false
  #loop: Promise<void> | undefined = undefined
  #wakeUp: (() => void) | undefined = undefined

  constructor(link: RedisLink, client: RedisClientLike, nodeId: string, onEntry: (entry: StreamEntry) => void) {
    this.#link = link
    this.#client = client
    this.#nodeId = nodeId
    this.#onEntry = onEntry
  }

  /** Connects the blocking connection and starts the read loop. */
  async start(): Promise<void> {
    this.#client.on('error', () => undefined)
    await this.#client.connect()
    this.#clientId = String(await this.#client.sendCommand<number>(['CLIENT', 'ID']))
    this.#running = true
    this.#loop = this.#run()
  }

  /** Stops the loop and closes the connection. */
  async stop(): Promise<void> {
    this.#running = false
    this.#wakeUp?.()
    try {
      this.#client.destroy()
    } catch {
      // already closed
    }
    await this.#loop
  }

  /** The streams read now. */
  get streams(): ReadonlySet<string> {
    return this.#streams
  }

  /** Starts reading `stream`. */
  add(stream: string): void {
    if (this.#streams.has(stream)) return
    this.#streams.add(stream)
    this.#interrupt()
  }

  /** Stops reading `stream` (its entries pending here stay pending until acknowledged or claimed). */
  remove(stream: string): void {
    if (this.#streams.delete(stream)) this.#interrupt()
  }

  /** Acknowledges entries: they leave the group's pending list. Errors are ignored (claimed later). */
  ack(ticket: ShareTicket): void {
    this.#link.send(['XACK', ticket.stream, SHARE_GROUP, ticket.id]).catch(() => undefined)
  }

  /**
   * Hands `ticket` on: acknowledges it and appends its message again at the end of the stream (for
   * another member, on any node) unless it already went round `maxHops` times. Returns false when
   * it was dropped.
   */
  async requeue(ticket: ShareTicket, fields: Map<string, Buffer>, maxHops = 5): Promise<boolean> {
    const hops = Number(fields.get('h')?.toString() ?? '0')
    const message = fields.get('m')
    if (message === undefined || hops >= maxHops) {
      await this.#link.send(['XACK', ticket.stream, SHARE_GROUP, ticket.id])
      return false
    }
    await this.#link.send(['XADD', ticket.stream, 'NOMKSTREAM', '*', 'm', message, 'h', String(hops + 1)])
    await this.#link.send(['XACK', ticket.stream, SHARE_GROUP, ticket.id])
    return true
  }

  /**
   * Takes over the pending entries of the consumers (in the streams this node reads) whose node is
   * not in `live`, hands them to `onEntry`, and deletes those consumers once they have none left.
   * Returns the number of entries claimed.
   */
  async claimDead(live: ReadonlySet<string>): Promise<number> {
    let claimed = 0
    for (const stream of [...this.#streams]) {
      const pending = await this.#link.sendText<XPendingReply>(['XPENDING', stream, SHARE_GROUP, '-', '+', '100'])
      const dead = new Map<string, string[]>()
      for (const [id, consumer] of pending) {
        if (consumer === this.#nodeId || live.has(consumer)) continue
        dead.set(consumer, [...(dead.get(consumer) ?? []), id])
      }
      for (const [consumer, ids] of dead) {
        claimed += await this.#claimIds(stream, ids)
        if (ids.length < 100) await this.#link.send(['XGROUP', 'DELCONSUMER', stream, SHARE_GROUP, consumer])
      }
    }
    return claimed
  }

  async #claimIds(stream: string, ids: string[]): Promise<number> {
    const entries = await this.#link.send<[Buffer, Buffer[] | null][]>(['XCLAIM', stream, SHARE_GROUP, this.#nodeId, '0', ...ids])
    let n = 0
    for (const [rawId, flat] of entries) {
      if (flat === null) continue // trimmed away meanwhile
      n++
      this.#emit(stream, rawId.toString(), flat)
    }
    return n
  }

  #emit(stream: string, id: string, flat: Buffer[]): void {
    const fields = new Map<string, Buffer>()
    for (let i = 0; i + 1 < flat.length; i += 2) fields.set((flat[i] as Buffer).toString(), flat[i + 1] as Buffer)
    try {
      this.#onEntry({ stream, id, fields })
    } catch {
      // the handler reports its own errors
    }
  }

  #interrupt(): void {
    this.#wakeUp?.()
    if (this.#blocked && this.#clientId !== undefined) {
      this.#link.send(['CLIENT', 'UNBLOCK', this.#clientId]).catch(() => undefined)
    }
  }

  async #recreateGroups(): Promise<void> {
    for (const stream of this.#streams) {
      try {
        await this.#link.send(['XGROUP', 'CREATE', stream, SHARE_GROUP, '0', 'MKSTREAM'])
      } catch {
        // BUSYGROUP: it exists
      }
    }
  }

  async #run(): Promise<void> {
    let backoff = 50
    while (this.#running) {
      if (this.#streams.size === 0) {
        await new Promise<void>((resolve) => (this.#wakeUp = resolve))
        this.#wakeUp = undefined
        continue
      }
      const keys = [...this.#streams]
      let reply: XReadReply
      try {
        this.#blocked = true
        reply = await this.#client.sendCommand<XReadReply>(
          ['XREADGROUP', 'GROUP', SHARE_GROUP, this.#nodeId, 'COUNT', '100', 'BLOCK', '2000', 'STREAMS', ...keys, ...keys.map(() => '>')],
          { typeMapping: BINARY }
        )
        backoff = 50
      } catch (error) {
        if (!this.#running) return
        if (error instanceof Error && error.message.includes('NOGROUP')) await this.#recreateGroups().catch(() => undefined)
        await new Promise((resolve) => setTimeout(resolve, backoff))
        backoff = Math.min(backoff * 2, 1000)
        continue
      } finally {
        this.#blocked = false
      }
      if (reply === null || !this.#running) continue
      for (const [name, entries] of reply) {
        const stream = name.toString()
        for (const [rawId, flat] of entries) if (flat !== null) this.#emit(stream, rawId.toString(), flat)
      }
    }
  }
}
