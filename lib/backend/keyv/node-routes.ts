import type { RedisLink } from './redis-link.js'

/**
 * This node's entries in the route table of the Redis backend (routed fan-out): for each filter
 * with at least one live subscription on this node, the node is a field of the filter's hash
 * `P:t:nr:<filter>`, which the `PUBLISH_BATCH` script reads to XADD a message to the stream of
 * each interested node only. The keys this node is in are also listed in its SET `P:_:routes:<n>`,
 * so that the reaper can remove a dead node's routes. Internal to `KeyvBackend`.
 *
 * Ordering: the count of local routes per key changes synchronously with the command that records
 * the change (HSET on the first route, HDEL after the last), and every command goes over the one
 * command connection in call order, so Redis always ends in the state of the last change. `add`
 * resolves once Redis routes the filter here: the SUBACK (or the session's restore) waits for it,
 * so a message published anywhere after it reaches this node.
 *
 * Failures: a removal that fails (Redis away) leaves a stale field, which only costs XADDs that
 * this node then ignores; `resync` (after every reconnect, and at start for a node id that was
 * used before) rewrites the table from the counts.
 */
export class NodeRoutes {
  readonly #nodeId: string
  /** The node's SET of route keys. */
  readonly #setKey: string
  /** Route key → number of local routes (subscription of a live connection on this node). */
  readonly #counts = new Map<string, number>()
  /** Route key → its HSET while not answered (a second local route waits for the first's write). */
  readonly #writes = new Map<string, Promise<void>>()

  constructor(nodeId: string, setKey: string) {
    this.#nodeId = nodeId
    this.#setKey = setKey
  }

  /** Number of route keys this node is in. */
  get size(): number {
    return this.#counts.size
  }

  /** A local route to `key`'s filter was added; resolves once Redis routes that filter here. */
  add(link: RedisLink, key: string): Promise<void> | undefined {
    const n = (this.#counts.get(key) ?? 0) + 1
    this.#counts.set(key, n)
    if (n > 1) return this.#writes.get(key)
    const write = Promise.all([link.send(['HSET', key, this.#nodeId, '1']), link.send(['SADD', this.#setKey, key])]).then(
      () => {
        if (this.#writes.get(key) === write) this.#writes.delete(key)
      },
      (error: unknown) => {
        if (this.#writes.get(key) === write) this.#writes.delete(key)
        throw error
      }
    )
    this.#writes.set(key, write)
    return write
  }

  /** A local route to `key`'s filter was removed; after the last, Redis stops routing it here. */
  remove(link: RedisLink | undefined, key: string): void {
    const n = (this.#counts.get(key) ?? 0) - 1
    if (n > 0) {
      this.#counts.set(key, n)
      return
    }
    this.#counts.delete(key)
    this.#writes.delete(key)
    if (link === undefined || !link.available) return
    link.send(['HDEL', key, this.#nodeId]).catch(() => undefined)
    link.send(['SREM', this.#setKey, key]).catch(() => undefined)
  }

  /**
   * Makes Redis agree with the counts: this node's field in every key it has routes for, and in
   * no other (stale fields of failed removals, or of an earlier process with this node id).
   */
  async resync(link: RedisLink): Promise<void> {
    const members = await link.sendText<string[]>(['SMEMBERS', this.#setKey])
    // Decided and sent in one synchronous step: an `add` after it is sent after these commands.
    const writes: Promise<unknown>[] = []
    for (const key of members) {
      if (this.#counts.has(key)) continue
      writes.push(link.send(['HDEL', key, this.#nodeId]), link.send(['SREM', this.#setKey, key]))
    }
    for (const key of this.#counts.keys()) writes.push(link.send(['HSET', key, this.#nodeId, '1']), link.send(['SADD', this.#setKey, key]))
    await Promise.all(writes)
  }

  /** Removes every route of this node (it is closing). */
  async clear(link: RedisLink): Promise<void> {
    this.#counts.clear()
    this.#writes.clear()
    await this.resync(link)
    await link.send(['DEL', this.#setKey])
  }
}

/**
 * Removes the routes of dead node `node` (the reaper's step, after its sessions were released):
 * its field in every route key listed in its SET, then the SET.
 */
export async function forgetNodeRoutes(link: RedisLink, node: string, setKey: string): Promise<void> {
  const members = await link.sendText<string[]>(['SMEMBERS', setKey])
  await Promise.all(members.map((key) => link.send(['HDEL', key, node])))
  await link.send(['DEL', setKey])
}
