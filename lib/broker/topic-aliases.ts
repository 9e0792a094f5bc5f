/**
 * MQTT 5 topic aliases of one connection (MQTT 5.0 section 3.3.2.3.4). Aliases live as long as
 * the network connection and are never shared between connections [MQTT-3.3.2-7].
 */

/**
 * Aliases a client set up in its PUBLISH packets, at most the Topic Alias Maximum the broker told
 * it (checked by the caller).
 */
export class InboundAliases {
  private readonly topics: (string | undefined)[] = []

  /**
   * Resolve the topic of a PUBLISH carrying `alias`: a non-empty `topic` (re)binds the alias and is
   * returned; an empty one is looked up. Undefined when the alias was never bound (a protocol
   * error, 0x82).
   */
  resolve(alias: number, topic: string): string | undefined {
    if (topic.length > 0) {
      this.topics[alias] = topic
      return topic
    }
    return this.topics[alias]
  }
}

/**
 * Aliases the broker uses towards a client, within the client's Topic Alias Maximum
 * [MQTT-3.3.2-11] [MQTT-3.1.2-26]. When every alias is taken, the least recently used one is rebound.
 *
 * Two-phase: `lookup` / `candidate` do not change anything, `commit` records a binding once the
 * packet that carries it is actually sent (a packet dropped as too large must not leave the client
 * and the broker disagreeing).
 */
export class OutboundAliases {
  /** topic -> alias, in least-recently-used-first order (Map iteration order). */
  private readonly byTopic = new Map<string, number>()

  constructor(readonly maximum: number) {}

  /** Number of aliases bound. */
  get size(): number {
    return this.byTopic.size
  }

  /** The alias bound to `topic` (0: none). */
  lookup(topic: string): number {
    return this.byTopic.get(topic) ?? 0
  }

  /** The alias a new binding would take: the next unused one, or the least recently used. */
  candidate(): number {
    if (this.byTopic.size < this.maximum) return this.byTopic.size + 1
    const oldest = this.byTopic.values().next()
    return oldest.done === true ? 1 : oldest.value
  }

  /** Record that `alias` now stands for `topic` (or that a bound alias was used again). */
  commit(topic: string, alias: number): void {
    const bound = this.byTopic.get(topic)
    if (bound !== undefined) {
      // Used again: move to the most recently used end.
      this.byTopic.delete(topic)
      this.byTopic.set(topic, bound)
      return
    }
    if (this.byTopic.size >= this.maximum) {
      for (const [oldTopic, oldAlias] of this.byTopic) {
        if (oldAlias === alias) {
          this.byTopic.delete(oldTopic)
          break
        }
      }
    }
    this.byTopic.set(topic, alias)
  }
}
