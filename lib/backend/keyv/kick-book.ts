/**
 * The takeover handshake between nodes, as seen by one node: the acknowledgements it waits for
 * (after kicking another node) and the kicks that arrived for sessions it is still setting up.
 * Sessions are named by their `sessionId` (keys.ts); an acknowledgement by the session and the epoch.
 * Every map is bounded. Internal to `KeyvBackend`.
 */
export class KickBook {
  readonly #waiters = new Map<string, () => void>()
  readonly #acks = new Set<string>()
  readonly #kicked = new Map<string, number>()

  /**
   * Waits until the acknowledgement of the kick of session `id` at `epoch` arrives, `timeoutMs` passed, or `alive()` answers false
   * (a dead node closes nothing). The acknowledgement may arrive before the wait starts: it travels
   * on another connection than the takeover's reply.
   */
  async wait(id: string, epoch: number, timeoutMs: number, alive: () => Promise<boolean>): Promise<void> {
    const key = ackKey(id, epoch)
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

  /** The acknowledgement of the kick of session `id` at `epoch` arrived. */
  acknowledged(id: string, epoch: string): void {
    const key = ackKey(id, epoch)
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
  noteKick(id: string, epoch: number): void {
    if (this.#kicked.size >= 10_000) this.#kicked.clear()
    this.#kicked.set(id, Math.max(epoch, this.#kicked.get(id) ?? 0))
  }

  /** The highest epoch a kick named for this session, if any, and forgets it. */
  takeKick(id: string): number | undefined {
    const epoch = this.#kicked.get(id)
    this.#kicked.delete(id)
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

/** The key of one kick's acknowledgement (a client id has no U+0000 [MQTT-1.5.4-2]). */
function ackKey(id: string, epoch: number | string): string {
  return `${id}\u0000${epoch}`
}
