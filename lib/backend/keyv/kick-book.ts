/**
 * The takeover handshake between nodes, as seen by one node: the acknowledgements it waits for
 * (after kicking another node) and the kicks that arrived for sessions it is still setting up.
 * Keys: `<tenant>\0<client id>\0<epoch>` for acknowledgements, `<tenant>\0<client id>` for kicks.
 * Every map is bounded. Internal to `KeyvBackend`.
 */
export class KickBook {
  readonly #waiters = new Map<string, () => void>()
  readonly #acks = new Set<string>()
  readonly #kicked = new Map<string, number>()

  /**
   * Waits until the acknowledgement `key` arrives, `timeoutMs` passed, or `alive()` answers false
   * (a dead node closes nothing). The acknowledgement may arrive before the wait starts: it travels
   * on another connection than the takeover's reply.
   */
  async wait(key: string, timeoutMs: number, alive: () => Promise<boolean>): Promise<void> {
    if (this.#acks.delete(key)) return
    let done = (): void => undefined
    const acknowledged = new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), timeoutMs)
      done = () => {
        clearTimeout(timer)
        resolve()
      }
      this.#waiters.set(key, done)
    })
    try {
      if (!(await alive()) || this.#acks.delete(key)) done()
      await acknowledged
    } finally {
      done()
      this.#waiters.delete(key)
      this.#acks.delete(key)
    }
  }

  /** The acknowledgement `key` arrived. */
  acknowledged(key: string): void {
    const waiter = this.#waiters.get(key)
    if (waiter !== undefined) {
      waiter()
      return
    }
    // Acknowledgements nobody waits for (the wait was skipped or timed out) are dropped in bulk.
    if (this.#acks.size >= 1000) this.#acks.clear()
    this.#acks.add(key)
  }

  /** A kick for a session with no local connection arrived: a setup may still be running. */
  noteKick(sessionKey: string, epoch: number): void {
    if (this.#kicked.size >= 10_000) this.#kicked.clear()
    this.#kicked.set(sessionKey, Math.max(epoch, this.#kicked.get(sessionKey) ?? 0))
  }

  /** The highest epoch a kick named for this session, if any, and forgets it. */
  takeKick(sessionKey: string): number | undefined {
    const epoch = this.#kicked.get(sessionKey)
    this.#kicked.delete(sessionKey)
    return epoch
  }

  /** Ends every wait (at close). */
  clear(): void {
    for (const done of [...this.#waiters.values()]) done()
    this.#waiters.clear()
    this.#acks.clear()
    this.#kicked.clear()
  }
}
